"""INSi end to end through the daemon: `ins.search` / `ins.verify` over JSON-RPC and the CLI, against the
INSi simulator over mutual TLS (INSI-AUTO certificate), and the qualified-INS rule of `dmp.documents.submit`
against the DMP simulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.service.insi_config import InsiConfig
from tests.api_helpers import FakeApprover
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim  # noqa: F401
from tests.insi_fixtures import ESTABLISHMENT, IDAM, RunningInsi, insi_sim  # noqa: F401
from tests.integration.test_dmp_e2e import AUTHOR, PDF, dmp_config

REPO = Path(__file__).resolve().parents[2]
JEAN = {"birthName": "Martin", "firstNames": "Jean", "sex": "M", "birthDate": "1978-03-14"}
LEGRAND = {"birthName": "LEGRAND", "firstNames": "Paul Pierre", "sex": "M", "birthDate": "1965-02-10"}


def insi_config(insi: RunningInsi, pki: TestPki) -> InsiConfig:
    """The daemon's [insi] table: the simulator, the INSI-AUTO certificate of the test establishment."""
    _, p12, _ = pki.insi_certificate(*ESTABLISHMENT, cn="INSI-AUTO")
    return InsiConfig(
        url=insi.url, ca_bundle=insi.ca_file, server_name="localhost", idam=IDAM, default_auth="establishment",
        certificate_p12=p12, certificate_p12_password_file=p12.parent / "p12-password",
    )  # fmt: skip


@pytest.fixture
async def daemon(
    dmp_sim: RunningSim,  # noqa: F811
    insi_sim: RunningInsi,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Application]:
    """The real Application, [dmp] and [insi] pointing at the two simulators."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    from bridge.paths import data_dir

    config = BridgeConfig(port=0, dmp=dmp_config(dmp_sim, dmp_pki), insi=insi_config(insi_sim, dmp_pki))
    app = Application(config, data_dir=data_dir(), approver=FakeApprover())
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def test_search_and_verify_through_json_rpc(daemon: Application, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with LocalClient(daemon.port, daemon.token) as client:
        found = await client.call("ins.search", {"traits": LEGRAND})
        assert found["code"] == "00" and found["qualified"] is True and found["source"] == "traits"
        who = found["identity"]
        assert (who["ins"], who["oid"], who["kind"]) == ("165026912345603", "1.2.250.1.213.1.4.10", "INS-NIR")
        assert (who["birthName"], who["firstName"], who["firstNames"]) == ("LEGRAND", "PIERRE", "PIERRE PAUL JACQUES")
        assert (who["sex"], who["birthDate"], who["birthPlace"]) == ("M", "1965-02-10", "69123")
        assert who["history"] == [{"ins": "165026912345504", "oid": "1.2.250.1.213.1.4.10"}]

        verified = await client.call("ins.verify", {"ins": "165026912345504", "traits": LEGRAND})
        assert verified["verified"] is True and verified["insIsCurrent"] is False
        assert verified["identity"]["ins"] == "165026912345603"

        refusals = [
            ("ins.search", {"traits": {**LEGRAND, "birthName": "Inconnu"}}, ErrorCode.INS_NOT_FOUND),
            ("ins.search", {"traits": {"birthName": "Dupont", "firstNames": "Marie", "sex": "F",
                                       "birthDate": "1990-01-01"}}, ErrorCode.INS_MULTIPLE_MATCHES),
            ("ins.verify", {"ins": "207058575627097", "traits": LEGRAND}, ErrorCode.INS_MISMATCH),
            ("ins.search", {"traits": {**LEGRAND, "birthName": "Legrand2"}}, ErrorCode.INVALID_PARAMS),
            ("ins.search", {"traits": LEGRAND, "vitale": {"beneficiary": 0}}, ErrorCode.INVALID_PARAMS),
            ("ins.search", {"traits": {**LEGRAND, "birthDate": "10/02/1965"}}, ErrorCode.INVALID_PARAMS),
            ("ins.search", {"traits": LEGRAND, "auth": "cps"}, ErrorCode.UNSUPPORTED_CARD),
        ]  # fmt: skip
        for method, params, code in refusals:
            with pytest.raises(BridgeError) as refused:
                await client.call(method, params)
            assert refused.value.code is code, (method, params)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "ins.search" in logged
    for secret in ("LEGRAND", "PIERRE", "165026912345603", "1965-02-10"):
        assert secret not in logged


async def test_submit_needs_a_qualified_ins_unless_the_caller_says_otherwise(
    daemon: Application,
    dmp_sim: RunningSim,  # noqa: F811
) -> None:
    document = {
        "patient": {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M",
                    "birthDate": "19780314"},
        "content": base64.b64encode(PDF).decode(), "mimeType": "application/pdf", "title": "CR",
        "typeCode": "11488-4",
    }  # fmt: skip
    async with LocalClient(daemon.port, daemon.token) as client:
        await client.call("dmp.context.set", {"authMode": "INDIRECTE", "practitioner": AUTHOR})
        with pytest.raises(BridgeError) as refused:
            await client.call("dmp.documents.submit", document)
        assert refused.value.code is ErrorCode.INS_NOT_QUALIFIED
        assert "INSi" in refused.value.message_fr
        # Nothing reached the DMP (read from the simulator's store: the establishment may not search metadata).
        assert dmp_sim.sim.store.entries(PATIENT.value) == []

        stated = await client.call("dmp.documents.submit", {**document, "insQualified": True})
        assert stated["insQualification"] == "stated"
        accepted = await client.call("dmp.documents.submit", {**document, "allowUnqualifiedIns": True})
        assert accepted["insQualification"] == "unqualified"

        # The INSi returns this INS: from then on it is qualified for this daemon.
        found = await client.call("ins.search", {"traits": JEAN})
        assert (found["identity"]["ins"], found["identity"]["oid"]) == (PATIENT.value, PATIENT.oid.value)
        qualified = await client.call("dmp.documents.submit", document)
        assert qualified["insQualification"] == "insi"
        for sent in (stated, accepted, qualified):  # each registered once (read from the simulator's store)
            assert len(dmp_sim.sim.store.entries_by_unique_id(sent["uniqueId"])) == 1


async def test_openrpc_documents_the_insi_methods(daemon: Application) -> None:
    url = f"http://127.0.0.1:{daemon.port}/openrpc.json"
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        methods = {m["name"]: m for m in (await resp.json())["methods"]}
    for name in ("ins.search", "ins.verify"):
        assert name in methods
        codes = json.dumps(methods[name])
        assert "INS_NOT_FOUND" in codes and "INSI_UNAVAILABLE" in codes
    assert {p["name"] for p in methods["ins.verify"]["params"]} >= {"ins", "traits"}


async def _cli(app: Application, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "ins", *args, "--port", str(app.port),
        cwd=REPO, env=dict(os.environ), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_search_and_verify(daemon: Application) -> None:
    traits = ["--birth-name", "Patb-Quatre", "--first-names", "Laurence", "--sex", "F", "--birth-date", "1907-05-25"]
    code, out, err = await _cli(daemon, "search", *traits, "--json")
    assert code == 0, err
    assert json.loads(out)["identity"]["ins"] == "207058575627097"
    code, out, err = await _cli(daemon, "search", *traits)
    assert code == 0 and out.splitlines()[0] == "207058575627097\t1.2.250.1.213.1.4.8\tINS-NIR"
    code, out, err = await _cli(daemon, "verify", "--ins", "207058575627097", *traits, "--json")
    assert code == 0 and json.loads(out)["verified"] is True

    code, out, err = await _cli(daemon, "search", *traits[:-1], "1907-05-26", "--json")
    assert code == 13  # exit family: the patient's identity
    assert json.loads(out)["error"]["code"] == "INS_NOT_FOUND"
    code, out, err = await _cli(daemon, "search", *traits[:-1], "1907-05-26")
    assert code == 13 and "Aucune identité INS" in err and "[INS_NOT_FOUND]" in err
    assert "pièce d'identité" in err  # the next step
    code, out, err = await _cli(daemon, "verify", "--ins", "165026912345603", *traits, "--json")
    assert code == 13 and json.loads(out)["error"]["code"] == "INS_MISMATCH"
