"""DIRECTE mode end to end: virtual CPS cards on the real pcscd; the card signs the TLS handshake
(authentication key) and the VIHF and XAdES (signature key), and the simulator checks them all.

First at the service level (the card service and its DIRECTE source, without the daemon), then
through the daemon: `cps.login` over JSON-RPC, the `dmp.*` methods, and the CLI with `--pin-stdin`.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from smartcard.System import readers

from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.dmp.context import NewDocument
from bridge.dmp.xds_model import Code
from bridge.errors import BridgeError, ErrorCode
from bridge.paths import data_dir
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_card import CardServiceDirectSource
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim import cps3, cps4
from bridge.sim.vpcd import VirtualSlot
from bridge.xmlsafe import parse_xml
from tests.api_helpers import FakeApprover, next_notification, open_ws, rpc
from tests.conftest import wait_card_state
from tests.dmp_fixtures import PATIENT, PATIENT_IDENTITY, RunningSim, dmp_pki, dmp_sim  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 32 + b"\n%%EOF\n"


class Caller:
    """A context key (stands for one WebSocket connection)."""


async def _insert(slot: VirtualSlot, profile: str, pki: TestPki, index: int, generation: str = "CPS3") -> str:
    slot.insert((cps4.create_card if generation == "CPS4" else cps3.create_card)(profile, pki))
    names = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))
    await asyncio.to_thread(wait_card_state, names[index], True)
    return names[index]


@pytest.mark.pcsc
@pytest.mark.parametrize("generation", ["CPS3", "CPS4"])
async def test_direct_mode_with_virtual_cps(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    generation: str,
) -> None:
    gp_reader = await _insert(slots[0], "gp", dmp_pki, 0, generation)
    gp2_reader = await _insert(slots[1], "gp2", dmp_pki, 1, generation)
    cards = PcscCardService()
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    direct = CardServiceDirectSource(cards)
    service = DmpService(config, direct=direct)
    gp, gp2 = Caller(), Caller()
    try:
        with pytest.raises(BridgeError) as no_login:
            await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert no_login.value.code is ErrorCode.PIN_REQUIRED

        await cards.login(gp_reader, bytearray(b"1234"), allow_last_try=False)
        await cards.login(gp2_reader, bytearray(b"1234"), allow_last_try=False)
        identity = await direct.direct_identity(gp2_reader)
        assert identity.national_id == "810098765432"
        service.set_context(gp, DmpContext(mode=AuthMode.DIRECTE, reader=gp_reader, situation=2))
        service.set_context(gp2, DmpContext(mode=AuthMode.DIRECTE, reader=gp2_reader))

        document = NewDocument(
            content=PDF,
            mime_type="application/pdf",
            title="Compte rendu",
            type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation"),
            patient_identity=PATIENT_IDENTITY,
        )
        result = await service.submit(gp, PATIENT, document)
        (uid,) = result.unique_ids
        found = await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert [e.unique_id for e in found] == [uid]
        # The author is the card holder, in the chosen situation (slot 2: the health centre).
        assert found[0].authors[0].person.id == "810012345678"
        assert found[0].authors[0].institutions[0].id == "10B0123456"

        doc = await service.get(gp, PATIENT, uid)
        assert doc.content == result.stored[0]
        text = parse_xml(doc.content).findtext(".//{urn:hl7-org:v3}nonXMLBody/{urn:hl7-org:v3}text")
        assert text is not None and base64.b64decode(text) == PDF

        await service.set_visibility(gp, PATIENT, uid, hidden_from_professionals=True, hidden_from_patient=None)
        assert await service.find(gp2, PATIENT, [AvailabilityStatus.APPROVED], []) == ()
        assert len(await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], [])) == 1
        await service.set_visibility(gp, PATIENT, uid, hidden_from_professionals=None, hidden_from_patient=True)
        await service.set_status(gp, PATIENT, uid, AvailabilityStatus.ARCHIVED)
        assert await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], []) == ()
        await service.set_status(gp, PATIENT, uid, AvailabilityStatus.APPROVED)
        await service.set_status(gp, PATIENT, uid, AvailabilityStatus.DELETED)
        assert await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], []) == ()
    finally:
        await service.aclose()
        await cards.close()


READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
PATIENT_JSON = {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}
WHO = {"ins": PATIENT.value}


@pytest.fixture
async def card_daemon(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Application]:
    """The daemon with the real reader monitor and card service, its [dmp] table on the simulator."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    dmp = DmpConfig(url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value)
    app = Application(
        BridgeConfig(port=0, dmp=dmp),
        data_dir=data_dir(),
        approver=FakeApprover(),
        monitor=monitor,
        cards=PcscCardService(monitor),
    )
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def _insert_seen(ws: aiohttp.ClientWebSocketResponse, slot: VirtualSlot, card: Any, reader: str) -> None:
    await asyncio.to_thread(slot.insert, card)
    while (await next_notification(ws, "card.inserted", timeout=15))["reader"] != reader:
        pass


def _result(answer: dict[str, Any]) -> Any:
    assert "result" in answer, answer
    return answer["result"]


@pytest.mark.pcsc
async def test_direct_mode_through_cps_login_json_rpc_and_cli(
    card_daemon: Application,
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
) -> None:
    async with aiohttp.ClientSession() as session:
        gp = await open_ws(session, card_daemon, token=card_daemon.token)
        gp2 = await open_ws(session, card_daemon, token=card_daemon.token)
        await rpc(gp, "bridge.info")
        await _insert_seen(gp, slots[0], cps3.create_card("gp", dmp_pki), READERS[0])
        await _insert_seen(gp, slots[1], cps3.create_card("gp2", dmp_pki), READERS[1])

        _result(await rpc(gp, "dmp.context.set", {"authMode": "DIRECTE", "reader": READERS[0], "situation": 0}))
        refused = await rpc(gp, "dmp.documents.find", {"patient": WHO}, timeout=30)
        assert refused["error"]["data"]["code"] == "PIN_REQUIRED"
        _result(await rpc(gp, "cps.login", {"pin": "1234", "reader": READERS[0]}, timeout=30))
        _result(await rpc(gp2, "cps.login", {"pin": "1234", "reader": READERS[1]}, timeout=30))
        _result(await rpc(gp2, "dmp.context.set", {"authMode": "DIRECTE", "reader": READERS[1]}))

        params = {
            "patient": PATIENT_JSON,
            "content": base64.b64encode(PDF).decode(),
            "mimeType": "application/pdf",
            "title": "CR",
            "typeCode": "11488-4",
            "insQualified": True,
        }
        uid = _result(await rpc(gp, "dmp.documents.submit", params, timeout=60))["uniqueId"]
        got = _result(await rpc(gp, "dmp.documents.get", {"patient": WHO, "uniqueId": uid}, timeout=30))
        assert base64.b64decode(got["body"]) == PDF
        masked = {"patient": WHO, "uniqueId": uid, "hiddenFromProfessionals": True}
        _result(await rpc(gp, "dmp.documents.setVisibility", masked, timeout=30))
        assert _result(await rpc(gp2, "dmp.documents.find", {"patient": WHO}, timeout=30))["documents"] == []
        mine = _result(await rpc(gp, "dmp.documents.find", {"patient": WHO}, timeout=30))["documents"]
        assert [(d["uniqueId"], d["authorId"]) for d in mine] == [(uid, "810012345678")]

    # The CLI logs the card in itself (--pin-stdin) and acts in DIRECTE mode through the daemon.
    out_file = tmp_path / "back.pdf"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "dmp", "get", uid, "--out", str(out_file), "--ins", PATIENT.value,
        "--port", str(card_daemon.port), "--pin-stdin", "--reader", READERS[0], "--mode", "DIRECTE",
        cwd=REPO, env=dict(os.environ), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(b"1234\n"), 120)
    assert proc.returncode == 0, err.decode()
    assert out_file.read_bytes() == PDF
