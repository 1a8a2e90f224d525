"""`dmp-bridge sandbox` end to end: its own pcscd, virtual CPS and Vitale cards, the daemon answering,
the DMP simulator wired into the daemon (dumping exchanges with --dump), and the demo page on its own port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bridge.api.client import LocalClient, call_daemon
from bridge.api.token import token_path
from tests.sandbox_process import running_sandbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.pcsc
@pytest.mark.skipif(os.geteuid() != 0, reason="the private pcscd needs root")
async def test_sandbox_starts_cards_and_daemon(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    env = {**os.environ, "DMP_BRIDGE_HOME": str(tmp_path)}  # the CLI below finds the sandbox's token there
    with running_sandbox(tmp_path, "--dump", str(dump)) as sandbox:
        port, demo_port, text = sandbox.port, sandbox.demo_port, sandbox.summary
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "carte cps, profil gp" in text and "carte vitale, profil famille" in text
        token = token_path(tmp_path / "data").read_text().strip()
        result = await call_daemon(port, token, "readers.list")
        atrs = [reader["atr"] for reader in result["readers"] if reader["cardPresent"]]
        assert atrs == ["3B9B188001001225006480040100009044", "3B751300004309EA9000"]  # a CPS4 and a Vitale

        # The DMP simulator runs with the test PKI, and the daemon's DMP service points at it.
        sim_url = re.search(r"Simulateur DMP : (https://127\.0\.0\.1:\d+/si-dmp-server/v2/services)", text)
        assert sim_url is not None, text
        assert str(dump) in text
        async with LocalClient(port, token) as client:
            await client.call("cps.login", {"pin": "1234"})
            await client.call("dmp.context.set", {"authMode": "DIRECTE"})
            found = await client.call("dmp.documents.find", {"patient": {"ins": "178037511501201"}})
        assert found == {"documents": []}
        # The indirect mode works too: the sandbox establishment's certificates come from the test PKI.
        async with LocalClient(port, token) as client:
            practitioner = {"nationalId": "810012345678", "lastName": "MARTIN", "specialty": "SM54"}
            await client.call("dmp.context.set", {"authMode": "INDIRECTE", "practitioner": practitioner})
            found = await client.call("dmp.documents.find", {"patient": {"ins": "178037511501201"}})
        assert found == {"documents": []}
        # --dump reached the simulator: the TD3.1 exchange is on disk, signed by the virtual CPS.
        names = ["0001-TD3.1-request.http", "0001-TD3.1-response.http", "0002-TD3.1-request.http"]
        assert sorted(p.name for p in dump.iterdir())[:3] == names
        assert b"saml2:Assertion" in (dump / "0001-TD3.1-request.http").read_bytes()
        assert b"INDIRECTE" in (dump / "0002-TD3.1-request.http").read_bytes()
        # A legacy program names nobody: the sandbox's default indirect-mode physician acts.
        cli = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "dmp", "find", "--ins", "178037511501201", "--mode", "INDIRECTE",
             "--port", str(port)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert b"810099990001" in (dump / "0003-TD3.1-request.http").read_bytes()

        # The INSi simulator runs too: the virtual CPS (CPS mode) and the sandbox's INSI-AUTO certificate
        # both get the insured's INS from the family Vitale card's traits.
        assert re.search(r"Simulateur INSi : https://127\.0\.0\.1:\d+/lps", text), text
        jean = {"birthName": "MARTIN", "firstNames": "JEAN", "sex": "M", "birthDate": "1978-03-14"}
        async with LocalClient(port, token) as client:
            await client.call("cps.login", {"pin": "1234"})
            by_card = await client.call("ins.search", {"traits": jean, "auth": "cps"})
            by_certificate = await client.call("ins.search", {"traits": jean, "auth": "establishment"})
        assert by_card["identity"]["ins"] == by_certificate["identity"]["ins"] == "178037511501201"

        # The demo page is served on its own port (a foreign origin for the bridge) and loads the SDK.
        assert f"Page de démonstration : http://localhost:{demo_port}/" in text
        assert "dmp-bridge origins approve CODE" in text
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{demo_port}/") as page:
            assert page.status == 200
            html = await page.text()
        assert f'content="{port}"' in html and "/demo.js" in html
