"""End to end: a JSON-RPC WebSocket client and the CLI drive the real daemon, which drives the real DMP
simulator over mutual TLS (indirect mode: the establishment's test certificates, no card)."""

from __future__ import annotations

import asyncio
import base64
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
from bridge.dmp.codes import InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_config import DmpConfig
from tests.api_helpers import FakeApprover, open_ws, rpc
from tests.dmp_fixtures import (  # noqa: F401  (fixtures)
    PATIENT,
    RunningSim,
    dmp_pki,
    dmp_sim,
    establishment,
)

REPO = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
AUTHOR = {"nationalId": "810012345678", "lastName": "MARTIN", "firstName": "PAUL", "specialty": "SM54"}
OTHER = {"nationalId": "810098765432", "lastName": "DURAND", "firstName": "JEANNE", "specialty": "SM54"}
PATIENT_JSON = {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}
WHO = {"ins": PATIENT.value}


def dmp_config(sim: RunningSim, pki: TestPki) -> DmpConfig:
    """The daemon's [dmp] table for the simulator and the test establishment."""
    certs = establishment(pki)
    password = certs.auth_cli_p12.parent / "p12-password"
    return DmpConfig(
        url=sim.url,
        ca_bundle=sim.ca_file,
        server_name="localhost",
        ins_oid=InsOid.NIR_TEST.value,
        default_mode="INDIRECTE",
        establishment_auth_p12=certs.auth_cli_p12,
        establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=password,
        establishment_id="10B0127189",
        establishment_name="CLINIQUE DU TEST",
        practitioner_id=AUTHOR["nationalId"],
        practitioner_family="MARTIN",
        practitioner_given="PAUL",
        practitioner_specialty="SM54",
    )


@pytest.fixture
async def daemon(
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Application]:
    """The real Application on a free port, its [dmp] table pointing at the simulator."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    from bridge.paths import data_dir

    app = Application(
        BridgeConfig(port=0, dmp=dmp_config(dmp_sim, dmp_pki)), data_dir=data_dir(), approver=FakeApprover()
    )
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def _client(app: Application, practitioner: dict[str, str]) -> LocalClient:
    client = LocalClient(app.port, app.token)
    await client.__aenter__()
    await client.call("dmp.context.set", {"authMode": "INDIRECTE", "practitioner": practitioner})
    return client


async def test_documents_through_json_rpc(
    daemon: Application,
    dmp_sim: RunningSim,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    # INFO is the daemon's level (signxml logs whole canonicalised VIHFs at DEBUG: reported to the lead).
    caplog.set_level(logging.INFO)
    author, other = await _client(daemon, AUTHOR), await _client(daemon, OTHER)
    try:
        submitted = await author.call(
            "dmp.documents.submit",
            {
                "patient": PATIENT_JSON,
                "content": base64.b64encode(PDF).decode(),
                "mimeType": "application/pdf",
                "title": "Compte rendu de consultation",
                "typeCode": "11488-4",
                "progressId": "p1",
                "insQualified": True,
            },
        )
        uid = submitted["uniqueId"]
        progress = [n["params"] for n in author.notifications if n.get("method") == "dmp.progress"]
        assert progress and progress[-1]["sent"] == progress[-1]["total"] > len(PDF)
        assert all(p["progressId"] == "p1" for p in progress)

        found = (await author.call("dmp.documents.find", {"patient": WHO}))["documents"]
        assert [(d["uniqueId"], d["typeCode"], d["hiddenFromProfessionals"]) for d in found] == [
            (uid, "11488-4", False)
        ]
        got = await author.call("dmp.documents.get", {"patient": WHO, "uniqueId": uid})
        assert base64.b64decode(got["body"]) == PDF  # byte-identical original
        assert got["bodyMimeType"] == "application/pdf"
        assert base64.b64decode(got["content"]).startswith(b"<?xml")  # the stored CDA

        masked = await author.call(
            "dmp.documents.setVisibility", {"patient": WHO, "uniqueId": uid, "hiddenFromProfessionals": True}
        )
        assert masked["hiddenFromProfessionals"] is True
        assert (await other.call("dmp.documents.find", {"patient": WHO}))["documents"] == []
        mine = (await author.call("dmp.documents.find", {"patient": WHO}))["documents"]
        assert [d["hiddenFromProfessionals"] for d in mine] == [True]
        await author.call(
            "dmp.documents.setVisibility", {"patient": WHO, "uniqueId": uid, "hiddenFromProfessionals": False}
        )
        assert len((await other.call("dmp.documents.find", {"patient": WHO}))["documents"]) == 1

        hidden = await author.call(
            "dmp.documents.setVisibility", {"patient": WHO, "uniqueId": uid, "hiddenFromPatient": True}
        )
        assert hidden == {"uniqueId": uid, "hiddenFromProfessionals": False, "hiddenFromPatient": True}
        shown = await author.call(
            "dmp.documents.setVisibility", {"patient": WHO, "uniqueId": uid, "hiddenFromPatient": False}
        )
        assert shown["hiddenFromPatient"] is False

        archived = await author.call("dmp.documents.setStatus", {"patient": WHO, "uniqueId": uid, "status": "archived"})
        assert archived == {"uniqueId": uid, "status": "archived", "previous": "approved"}
        assert (await author.call("dmp.documents.find", {"patient": WHO}))["documents"] == []
        both = await author.call("dmp.documents.find", {"patient": WHO, "statuses": ["approved", "archived"]})
        assert [d["status"] for d in both["documents"]] == ["archived"]
        await author.call("dmp.documents.setStatus", {"patient": WHO, "uniqueId": uid, "status": "approved"})
        assert len((await author.call("dmp.documents.find", {"patient": WHO}))["documents"]) == 1

        # A DMP refusal keeps the DMP's own code: only the author may delete.
        with pytest.raises(BridgeError) as refused:
            await other.call("dmp.documents.delete", {"patient": WHO, "uniqueId": uid})
        assert refused.value.code is ErrorCode.DMP_FAULT
        assert refused.value.detail == "XDSMetadataUpdateError"
        assert await author.call("dmp.documents.delete", {"patient": WHO, "uniqueId": uid}) == {
            "uniqueId": uid,
            "deleted": True,
        }
        assert (await author.call("dmp.documents.find", {"patient": WHO}))["documents"] == []

        # A patient without a DMP: the registry's code comes through.
        with pytest.raises(BridgeError) as unknown:
            await author.call("dmp.documents.find", {"patient": {"ins": "169017505601246"}})
        assert unknown.value.code is ErrorCode.DMP_UNKNOWN
        assert unknown.value.detail == "XDSUnknownPatientId"

        # Bad params are refused before any DMP access.
        with pytest.raises(BridgeError) as bad:
            await author.call("dmp.documents.submit", {**PATIENT_JSON, "content": "x"})
        assert bad.value.code is ErrorCode.INVALID_PARAMS

        # The simulator goes away: DMP_UNREACHABLE (find is retried once, then reported).
        await dmp_sim.sim.stop()
        with pytest.raises(BridgeError) as down:
            await author.call("dmp.documents.find", {"patient": WHO})
        assert down.value.code is ErrorCode.DMP_UNREACHABLE

        # Nothing of the patient, the practitioners or the document reached a log record.
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "dmp.documents.find" in logged  # the calls were logged...
        for secret in (PATIENT.value, "MARTIN", "JEAN", "DURAND", AUTHOR["nationalId"], "%PDF", "Compte rendu"):
            leaks = [f"{r.name}: {r.getMessage()[:300]}" for r in caplog.records if secret in r.getMessage()]
            assert not leaks, leaks  # ...without patient data, names or content
    finally:
        await author.__aexit__(None, None, None)
        await other.__aexit__(None, None, None)


async def _cli(app: Application, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "dmp", *args, "--port", str(app.port), "--ins", PATIENT.value,
        cwd=REPO, env=dict(os.environ), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_submit_find_get(daemon: Application, tmp_path: Path) -> None:
    pdf = tmp_path / "cr.pdf"
    pdf.write_bytes(PDF)
    code, out, err = await _cli(
        daemon, "submit", str(pdf), "--title", "CR", "--type", "11488-4",
        "--family", "MARTIN", "--given", "JEAN", "--gender", "M", "--birth-date", "19780314", "--ins-qualified",
    )  # fmt: skip
    assert code == 0, err
    uid = out.strip()
    assert uid.startswith("1.2.250.1.999.7.1.3.")
    assert "octets envoyés / bytes sent" in err

    code, out, err = await _cli(daemon, "find", "--json")
    assert code == 0, err
    assert '"uniqueId": "' + uid + '"' in out

    back = tmp_path / "back.pdf"
    code, out, err = await _cli(daemon, "get", uid, "--out", str(back))
    assert code == 0, err
    assert back.read_bytes() == PDF

    code, out, err = await _cli(daemon, "archive", uid)
    assert code == 0, err
    code, out, err = await _cli(daemon, "find")
    assert code == 0 and out.strip() == ""
    code, out, err = await _cli(daemon, "delete", "1.2.250.1.999.7.1.3.1")
    assert code == 1 and "(document)" in err


async def test_access_rules_and_openrpc(daemon: Application) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{daemon.port}/openrpc.json") as resp:
            methods = {m["name"]: m for m in (await resp.json())["methods"]}
        for name in ("dmp.context.set", "dmp.documents.submit", "dmp.documents.find", "dmp.documents.get",
                     "dmp.documents.setVisibility", "dmp.documents.setStatus", "dmp.documents.delete"):  # fmt: skip
            assert name in methods
        submit_params = {p["name"] for p in methods["dmp.documents.submit"]["params"]}
        assert {"patient", "content", "mimeType", "title", "typeCode"} <= submit_params

        # A web page whose origin was not approved gets nothing from the DMP methods.
        ws = await open_ws(session, daemon, origin="https://unknown.example")
        answer = await rpc(ws, "dmp.documents.find", {"patient": WHO})
        assert answer["error"]["data"]["code"] == "ORIGIN_NOT_APPROVED"
        await ws.close()

    # DIRECTE needs a logged-in CPS; the card service is not wired in this daemon.
    client = await _client(daemon, AUTHOR)
    try:
        await client.call("dmp.context.set", {"authMode": "DIRECTE", "situation": 0})
        with pytest.raises(BridgeError) as no_card:
            await client.call("dmp.documents.find", {"patient": WHO})
        assert (no_card.value.code, no_card.value.detail) == (ErrorCode.UNSUPPORTED_CARD, "card-service-unavailable")
    finally:
        await client.__aexit__(None, None, None)


async def test_submit_with_the_callers_unique_id_is_checkable_and_never_stored_twice(
    daemon: Application,
    dmp_sim: RunningSim,  # noqa: F811
) -> None:
    chosen = "1.2.250.1.999.7.1.3.777.1"
    params = {
        "patient": PATIENT_JSON, "content": base64.b64encode(PDF).decode(), "mimeType": "application/pdf",
        "title": "Compte rendu", "typeCode": "11488-4", "uniqueId": chosen, "insQualified": True,
    }  # fmt: skip
    client = await _client(daemon, AUTHOR)
    try:
        assert (await client.call("dmp.documents.submit", params))["uniqueId"] == chosen
        # A caller told DMP_OUTCOME_UNKNOWN looks the document up before sending it again...
        found = await client.call("dmp.documents.find", {"patient": WHO})
        assert chosen in [d["uniqueId"] for d in found["documents"]]
        # ...and a resend with the same id is refused, not stored twice.
        with pytest.raises(BridgeError) as again:
            await client.call("dmp.documents.submit", params)
        assert again.value.code is ErrorCode.DOCUMENT_ALREADY_EXISTS
    finally:
        await client.__aexit__(None, None, None)
    assert len(dmp_sim.sim.store.entries_by_unique_id(chosen)) == 1
