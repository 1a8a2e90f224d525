"""`dmp-bridge vcard` against the real pcscd: the card appears in the reader, answers, and goes away on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

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
