"""`dmp-bridge readers` run as a real process against the private pcscd."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.sim.pcscd import PrivatePcscd
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.pcsc_fixtures import restartable_pcscd
from tests.scripted_card import ATR, ScriptedCard

pytestmark = pytest.mark.pcsc
__all__ = ["restartable_pcscd"]  # a fixture used by name

ROOT = Path(__file__).resolve().parents[2]
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def card_in_slot0(slots: list[VirtualSlot]) -> None:
    wait_card_state(READERS[0], False)
    wait_card_state(READERS[1], False)
    slots[0].insert(ScriptedCard())
    wait_card_state(READERS[0], True)


@pytest.mark.usefixtures("card_in_slot0")
def test_readers_json() -> None:
    result = cli("readers", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "readers": [
            {"name": READERS[0], "state": "present", "atr": ATR.hex().upper(), "kind": "UNKNOWN"},
            {"name": READERS[1], "state": "empty", "atr": None, "kind": None},
        ]
    }


@pytest.mark.usefixtures("card_in_slot0")
def test_readers_human_output_is_french() -> None:
    result = cli("readers")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Lecteurs de carte : 2"
    assert lines[1] == f"  {READERS[0]} : Carte non reconnue (UNKNOWN), ATR {ATR.hex().upper()}"
    assert lines[2] == f"  {READERS[1]} : vide"


def test_readers_without_pcscd(restartable_pcscd: PrivatePcscd) -> None:
    restartable_pcscd.stop()
    result = cli("readers", "--json")
    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["code"] == "PCSC_UNAVAILABLE"
    assert "service carte à puce (PC/SC) ne répond pas" in result.stderr
    assert "pcscd" in result.stderr
