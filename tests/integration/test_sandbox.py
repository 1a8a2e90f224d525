"""`dmp-bridge sandbox` end to end: its own pcscd, virtual CPS and Vitale cards, the daemon answering."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.api.client import call_daemon
from bridge.api.token import token_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.pcsc
@pytest.mark.skipif(os.geteuid() != 0, reason="the private pcscd needs root")
async def test_sandbox_starts_cards_and_daemon(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DMP_BRIDGE_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "sandbox", "--pcscd", "private", "--port", str(port), "--no-tray"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        summary = []
        for line in proc.stdout:  # the summary ends with the Ctrl-C hint; EOF means the sandbox died
            summary.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(summary)
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "carte cps, profil gp" in text and "carte vitale, profil famille" in text
        token = token_path(tmp_path / "data").read_text().strip()
        result = await call_daemon(port, token, "readers.list")
        atrs = [reader["atr"] for reader in result["readers"] if reader["cardPresent"]]
        assert atrs == ["3BAC00402A001225006480000310009000", "3B751300004309EA9000"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
