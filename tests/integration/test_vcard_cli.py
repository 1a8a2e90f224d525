"""`dmp-bridge vcard` against the real pcscd: the card appears in the reader, answers, and goes away on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from smartcard.System import readers

from bridge.sim.generic import GENERIC_ATR
from tests.conftest import wait_card_state

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.pcsc
def test_vcard_generic_served_until_ctrl_c(slot_ports: list[int]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "vcard", "generic", "--port", str(slot_ports[1])],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        name = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[1]
        assert wait_card_state(name, present=True) == GENERIC_ATR
        conn = next(r for r in readers() if str(r) == name).createConnection()
        conn.connect()
        try:
            data, sw1, sw2 = conn.transmit(list(bytes.fromhex("00B0810004")))
            assert (bytes(data), sw1, sw2) == (b"dmp-", 0x90, 0x00)
        finally:
            conn.disconnect()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Carte retirée" in out
        wait_card_state(name, present=False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.pcsc
def test_vcard_on_an_occupied_slot_says_so_and_waits_its_turn(slot_ports: list[int]) -> None:
    """vpcd serves one card per slot: a second card is told the slot is busy, then inserted once it is free."""

    def vcard(kind: str) -> subprocess.Popen[str]:
        argv = ["vcard", kind, "--port", str(slot_ports[1]), "--occupied-after", "0.5"]
        return subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", *argv],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    name = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[1]
    first = vcard("generic")
    second = None
    try:
        assert wait_card_state(name, present=True) == GENERIC_ATR
        assert first.stdout is not None and "Carte insérée" in _line_with(first.stdout, "Carte insérée")
        second = vcard("vitale")
        assert second.stderr is not None
        busy = _line_with(second.stderr, "occupe")
        assert "une autre carte virtuelle l'occupe" in busy and "--slot 1" in busy
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=10)
        # vpcd only talks to a card it serves: the second card now holds the slot.
        assert second.stdout is not None and "Carte insérée" in _line_with(second.stdout, "Carte insérée")
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        wait_card_state(name, present=False)


def _line_with(stream: Any, text: str) -> str:
    """Read lines until one holds `text` (the process prints it when the event happens)."""
    for line in stream:
        if text in line:
            return str(line)
    raise AssertionError(f"no line with {text!r}")
