"""The patient's DMP methods through the real daemon's JSON-RPC API and the CLI, against the real simulator
over mutual TLS (indirect mode: the establishment's certificate, whose rights the matrix limits)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_config import DmpConfig
from tests.api_helpers import FakeApprover
from tests.dmp_fixtures import RunningSim, dmp_pki, establishment, simulator  # noqa: F401

pytestmark = [pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]
MARTIN = {"ins": "178037511501201"}  # the establishment's default practitioner: authorisation expired
CLOSED = {"ins": "164063155504440"}
NO_DMP = {"ins": "185057800608491"}


@pytest.fixture
async def daemon(dmp_pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Application]:  # noqa: F811
    """The real Application on a free port, its [dmp] table pointing at a simulator seeded as the sandbox's."""
    tls, data = tmp_path / "tls", tmp_path / "data"
    tls.mkdir()
    data.mkdir()
    sim = simulator(dmp_pki, tls, data)
    await sim.start()
    certs = establishment(dmp_pki)
    config = DmpConfig(
        url=sim.url, ca_bundle=dmp_pki.ca_bundle_path(), server_name="localhost", ins_oid=InsOid.NIR_TEST.value,
        default_mode="INDIRECTE", establishment_auth_p12=certs.auth_cli_p12, establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=certs.auth_cli_p12.parent / "p12-password", establishment_id="10B0127189",
        establishment_name="CLINIQUE DU TEST", practitioner_id="810012345678", practitioner_family="MARTIN",
        practitioner_given="PAUL", practitioner_specialty="SM54", webps_url="https://webps.example.test",
    )  # fmt: skip
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    from bridge.paths import data_dir

    app = Application(BridgeConfig(port=0, dmp=config), data_dir=data_dir(), approver=FakeApprover())
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()
        await sim.stop()


async def _refused(client: LocalClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(BridgeError) as refused:
        await client.call(method, params)
    return refused.value.to_data()


async def test_status_and_refusals_through_json_rpc(daemon: Application) -> None:
    async with LocalClient(daemon.port, daemon.token) as client:
        status = await client.call("dmp.patient.status", {"patient": MARTIN})
        assert (status["dmp"], status["authorization"], status["mes"]) == ("exists", "expired", True)
        assert (status["actor"], status["accessMode"]) == ("Certificat ES", "normal")
        rights = {(r["transaction"], r["operation"]): r["verdict"] for r in status["rights"]}
        assert rights[("TD0.3", "Se déclarer autorisé")] == "refused"
        assert rights[("TD2.1", "Alimentation d'un DMP")] == "allowed"  # note (4) only says: imputed to the structure
        assert (await client.call("dmp.patient.status", {"patient": CLOSED}))["dmp"] == "closed"
        unknown = await client.call("dmp.patient.status", {"patient": NO_DMP})
        assert (unknown["dmp"], unknown["authorization"]) == ("unknown", None)

        # The matrix: an establishment certificate may not declare itself authorised, list professionals
        # or open the Web PS; each refusal names the line of the sheet.
        data = await _refused(
            client, "dmp.patient.authorize", {"patient": MARTIN, "action": "declare", "patientAgreement": True}
        )
        assert (data["code"], data["transaction"]) == ("NOT_PERMITTED_FOR_ACTOR", "TD0.3")
        assert data["actor"] == "Certificat ES"
        assert (await _refused(client, "dmp.patient.professionals", {"patient": MARTIN}))["code"] == (
            "NOT_PERMITTED_FOR_ACTOR"
        )
        assert (await _refused(client, "dmp.webps.url", {"patient": MARTIN}))["code"] == "NOT_PERMITTED_FOR_ACTOR"
        bad = await _refused(client, "dmp.patient.authorize", {"patient": MARTIN, "action": "maybe"})
        assert (bad["code"], bad["detail"]) == ("INVALID_PARAMS", "action: enum")

        # Document transactions on a closed or unknown DMP: each its own code and message. Feeding is what the
        # matrix allows the establishment certificate (metadata search and retrieval are refused before
        # sending: NOT_PERMITTED_FOR_ACTOR, PDT-INF-526).
        def feed(patient: dict[str, str]) -> dict[str, object]:
            who = {"lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}
            return {
                "patient": {**patient, **who},
                "content": base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode(), "mimeType": "application/pdf",
                "title": "CR", "typeCode": "11488-4", "insQualified": True,
            }  # fmt: skip

        closed = await _refused(client, "dmp.documents.submit", feed(CLOSED))
        assert (closed["code"], closed["dmpCode"]) == ("DMP_CLOSED", "DMPClosed")
        assert "fermé" in closed["message_fr"] and "closed" in closed["message_en"]
        unknown_dmp = await _refused(client, "dmp.documents.submit", feed(NO_DMP))
        assert unknown_dmp["code"] == "DMP_UNKNOWN"
        refused = await _refused(client, "dmp.documents.get", {"patient": MARTIN, "uniqueId": "1.2.250.1.999.1"})
        assert (refused["code"], refused["transaction"]) == ("NOT_PERMITTED_FOR_ACTOR", "TD3.2")


async def _cli(app: Application, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "patient", *args, "--port", str(app.port),
        cwd=REPO, env=dict(os.environ), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_status_authorize_professionals_webps(daemon: Application) -> None:
    code, out, err = await _cli(daemon, "status", "--ins", MARTIN["ins"], "--json")
    assert code == 0, err
    assert json.loads(out)["authorization"] == "expired"
    code, out, err = await _cli(daemon, "status", "--ins", MARTIN["ins"])
    assert code == 0, err
    assert "Autorisation : expirée" in out and "Mon espace santé : associé" in out
    code, out, err = await _cli(daemon, "status", "--ins", NO_DMP["ins"])
    assert (code, out.strip()) == (0, "DMP : inexistant")
    # Refused by the rights matrix: the DMP-refusal exit family (10).
    code, out, err = await _cli(daemon, "authorize", "--ins", MARTIN["ins"], "--declare", "--patient-agreed", "--json")
    assert code == 10
    assert json.loads(out)["error"]["code"] == ErrorCode.NOT_PERMITTED_FOR_ACTOR.value
    code, out, err = await _cli(daemon, "professionals", "--ins", MARTIN["ins"], "--json")
    assert code == 10
    code, out, err = await _cli(daemon, "webps", "--page", "dashboard", "--json")
    assert code == 10 and "NOT_PERMITTED_FOR_ACTOR" in out + err


SAMPLE = {"ins": "207058575627097"}  # not associated with Mon espace santé
TROIS = {"ins": "279035121518989"}


async def test_admin_data_and_close_through_json_rpc_and_cli(daemon: Application) -> None:
    async with LocalClient(daemon.port, daemon.token) as client:
        data = await client.call("dmp.patient.admin.get", {"patient": SAMPLE})
        assert (data["lastName"], data["city"], data["closed"]) == ("PATB-QUATRE", "Paris", False)
        assert {"use": "MC", "value": "tel:0102030405"} in data["telecoms"]
        changed = await client.call(
            "dmp.patient.admin.update",
            {
                "patient": SAMPLE,
                "changes": {"city": "Lyon", "street": ["2 place Bellecour"], "oppositionBrisDeGlace": True},
            },
        )
        assert (changed["city"], changed["street"], changed["oppositionBrisDeGlace"]) == (
            "Lyon",
            ["2 place Bellecour"],
            True,
        )
        assert (await client.call("dmp.patient.admin.get", {"patient": SAMPLE}))["city"] == "Lyon"
        mes = await _refused(client, "dmp.patient.close", {"patient": TROIS, "patientRequest": True})
        assert (mes["code"], mes["transaction"]) == ("DMP_MANAGED_BY_MES", "TD1.4")
        assert "Mon espace santé" in mes["message_fr"]
        bad = await _refused(client, "dmp.patient.admin.update", {"patient": SAMPLE, "changes": {"closed": True}})
        assert bad["code"] == "INVALID_PARAMS"
        assert (await _refused(client, "dmp.patient.close", {"patient": SAMPLE}))["code"] == "INVALID_PARAMS"

    code, out, err = await _cli(daemon, "admin", "--ins", SAMPLE["ins"], "--set", "postalCode=69002", "--json")
    assert code == 0, err
    assert json.loads(out)["postalCode"] == "69002"
    code, out, err = await _cli(daemon, "admin", "--ins", SAMPLE["ins"])
    assert code == 0 and "Opposition bris de glace : oui" in out, err
    code, out, err = await _cli(daemon, "close", "--ins", SAMPLE["ins"], "--patient-request")
    assert (code, out.strip()) == (0, "DMP fermé / DMP closed"), err
    code, out, err = await _cli(daemon, "close", "--ins", SAMPLE["ins"], "--patient-request", "--json")
    assert code == 10 and json.loads(out)["error"]["code"] == "DMP_CLOSED"


async def test_authorized_dmps_and_search_through_json_rpc_and_cli(daemon: Application) -> None:
    async with LocalClient(daemon.port, daemon.token) as client:
        listed = await client.call("dmp.patients.authorized", {"contextPatient": SAMPLE, "since": "20200101000000"})
        assert [(d["lastName"], d["treatingPhysician"]) for d in listed["dmps"]] == [("PATB-QUATRE", True)]
        by_doc = {"contextPatient": SAMPLE, "since": "20200101000000", "dateType": "document"}
        refused = await _refused(client, "dmp.patients.authorized", by_doc)
        assert (refused["code"], refused["reason"]) == ("NOT_PERMITTED_FOR_ACTOR", "(3)")
        search = {"contextPatient": SAMPLE, "lastName": "Lefebvre"}
        assert (await _refused(client, "dmp.patients.search", search))["code"] == "NOT_PERMITTED_FOR_ACTOR"
        await client.call("dmp.context.set", {"authMode": "INDIRECTE", "accessMode": "centre_15"})
        found = await client.call("dmp.patients.search", search)
        assert (len(found["candidates"]), found["total"], found["remaining"]) == (10, 12, 2)
        assert {c["lastName"] for c in found["candidates"]} <= {"LEFEBVRE", "LEFÈBVRE"}

    code, out, err = await _cli(
        daemon, "search", "--ins", SAMPLE["ins"], "--family", "LEFEBVRE", "--mode", "INDIRECTE", "--access", "centre_15"
    )
    assert code == 0, err
    assert out.count("LEFEBVRE") + out.count("LEFÈBVRE") == 10 and "2 autres" in out
    code, out, err = await _cli(daemon, "authorized", "--ins", SAMPLE["ins"], "--since", "2020", "--json")
    assert code == 0, err
    assert [d["lastName"] for d in json.loads(out)["dmps"]] == ["PATB-QUATRE"]
