"""`dmp-bridge sandbox` where the ANS Cryptolib is installed: it reads the CPS through it and says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.api.client import LocalClient, call_daemon
from bridge.api.token import token_path
from tests.cryptolib_fixtures import cryptolib_install
from tests.cryptolib_harness import CryptolibInstall

__all__ = ["cryptolib_install"]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.pcsc
@pytest.mark.cryptolib
async def test_sandbox_reads_the_cps_through_the_cryptolib(tmp_path: Path, cryptolib_install: CryptolibInstall) -> None:
    with socket.socket() as probe, socket.socket() as probe2:
        probe.bind(("127.0.0.1", 0))
        probe2.bind(("127.0.0.1", 0))
        port, demo_port = probe.getsockname()[1], probe2.getsockname()[1]
    # The Cryptolib at its standard place (laid over /opt/santesocial in this namespace): found as installed.
    env = {**os.environ, "DMP_BRIDGE_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env["DMP_BRIDGE_PKCS11_MODULE"] = str(cryptolib_install.module)
    options = ["--pcscd", "private", "--port", str(port), "--no-tray", "--demo-port", str(demo_port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "sandbox", *options],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        summary = []
        for line in proc.stdout:  # the summary ends with the Ctrl-C hint; EOF means the sandbox died
            summary.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(summary)
        assert "CPS lue par : Cryptolib CPS de l'ANS (PKCS#11)" in text, text
        token = token_path(tmp_path / "data").read_text().strip()
        card = await call_daemon(port, token, "cps.read")
        assert (card["backend"], card["generation"], card["kind"]) == ("pkcs11", "CPS4", "CPS4")
        async with LocalClient(port, token) as client:
            await client.call("cps.login", {"pin": "1234"})
            await client.call("dmp.context.set", {"authMode": "DIRECTE"})
            found = await client.call("dmp.documents.find", {"patient": {"ins": "178037511501201"}})
        assert found == {"documents": []}  # TLS client auth, VIHF signed through the Cryptolib
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
