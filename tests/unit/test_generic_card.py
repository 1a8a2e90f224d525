"""The generic virtual card, the card registry and the `vcard` command's offline paths."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.pcsc.apdu import Command
from bridge.sim.direct import DirectChannel
from bridge.sim.generic import GENERIC_AID, GENERIC_ATR, GenericCard
from bridge.sim.registry import CARD_KINDS, list_profiles, make_card
from bridge.tlv import parse_tlv

ROOT = Path(__file__).resolve().parents[2]


def test_generic_atr_check_byte() -> None:
    tck = 0
    for b in GENERIC_ATR[1:]:
        tck ^= b
    assert tck == 0


def test_generic_card_reads_through_the_transport() -> None:
    ch = DirectChannel(GenericCard())
    r = ch.transmit(Command(0x00, 0xA4, 0x04, 0x00, GENERIC_AID, le=256))
    assert r.sw.ok
    (fci,) = parse_tlv(r.data)
    assert fci.tag == 0x6F and fci.find(0x84) is not None
    first = ch.transmit(Command(0x00, 0xB0, 0x81, 0x00, le=256))
    rest = ch.transmit(Command(0x00, 0xB0, 0x01, 0x00, le=256))
    assert first.sw.ok and rest.sw.ok
    assert first.data + rest.data == bytes(range(256)) + bytes(range(44))
    rec = ch.transmit(Command(0x00, 0xB2, 0x03, 0x14, le=256))
    assert rec.data.decode("latin-1") == "troisième"
    assert ch.transmit(Command(0x00, 0xB2, 0x04, 0x14, le=256)).sw.value == 0x6A83


def test_registry() -> None:
    assert {"generic", "vitale"} <= set(CARD_KINDS)
    assert list_profiles("generic") == ["default"]
    assert make_card("generic").atr() == GENERIC_ATR
    with pytest.raises(KeyError):
        make_card("generic", "nope")
    with pytest.raises(KeyError):
        list_profiles("nope")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "vcard", *args], cwd=ROOT, capture_output=True, text=True, timeout=30
    )


def test_cli_lists_profiles() -> None:
    out = _cli("--list-profiles")
    assert out.returncode == 0, out.stderr
    assert "generic: default" in out.stdout and "vitale:" in out.stdout


def test_cli_unknown_profile() -> None:
    out = _cli("generic", "--profile", "nope")
    assert out.returncode == 2 and "Profil inconnu" in out.stderr


def test_cli_explains_unreachable_vpcd() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener now
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = _cli("generic", "--port", str(port))
    assert out.returncode == 1
    assert "Impossible de joindre le lecteur virtuel vpcd" in out.stderr and str(port) in out.stderr
