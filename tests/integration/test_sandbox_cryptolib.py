"""`dmp-bridge sandbox` where the ANS Cryptolib is installed: it reads the CPS through it and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.api.client import LocalClient, call_daemon
from bridge.api.token import token_path
from tests.cryptolib_fixtures import cryptolib_install
from tests.cryptolib_harness import CryptolibInstall
from tests.sandbox_process import running_sandbox

__all__ = ["cryptolib_install"]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.pcsc
@pytest.mark.cryptolib
async def test_sandbox_reads_the_cps_through_the_cryptolib(tmp_path: Path, cryptolib_install: CryptolibInstall) -> None:
    # The Cryptolib at its standard place (laid over /opt/santesocial in this namespace): found as installed.
    module = {"DMP_BRIDGE_PKCS11_MODULE": str(cryptolib_install.module)}
    with running_sandbox(tmp_path, env=module) as sandbox:
        port, text = sandbox.port, sandbox.summary
        assert "CPS lue par : Cryptolib CPS de l'ANS (PKCS#11)" in text, text
        token = token_path(tmp_path / "data").read_text().strip()
        card = await call_daemon(port, token, "cps.read")
        assert (card["backend"], card["generation"], card["kind"]) == ("pkcs11", "CPS4", "CPS4")
        async with LocalClient(port, token) as client:
            await client.call("cps.login", {"pin": "1234"})
            await client.call("dmp.context.set", {"authMode": "DIRECTE"})
            found = await client.call("dmp.documents.find", {"patient": {"ins": "178037511501201"}})
        assert found == {"documents": []}  # TLS client auth, VIHF signed through the Cryptolib
