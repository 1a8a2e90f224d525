"""DIRECTE mode end to end at the service level: virtual CPS cards on the real pcscd, the card signs the
TLS handshake (authentication key) and the VIHF and XAdES (signature key), the simulator checks them all.

`cps.login` over JSON-RPC is not wired on main yet, so the cards are logged in through the DMP service's
own direct source (CardConnection + the CPS3 driver), and the use cases are called on `DmpService`.
"""

from __future__ import annotations

import asyncio
import base64

import pytest
from smartcard.System import readers

from bridge.crypto.pki import TestPki
from bridge.dmp.client import NewDocument
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.dmp.xds_model import Code
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_card import CpsDirectSource
from bridge.service.dmp_config import DmpConfig
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from bridge.xmlsafe import parse_xml
from tests.conftest import wait_card_state
from tests.dmp_fixtures import PATIENT, PATIENT_IDENTITY, RunningSim, dmp_pki, dmp_sim  # noqa: F401

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 32 + b"\n%%EOF\n"


class Caller:
    """A context key (stands for one WebSocket connection)."""


async def _insert(slot: VirtualSlot, profile: str, pki: TestPki, index: int) -> str:
    slot.insert(create_card(profile, pki))
    names = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))
    await asyncio.to_thread(wait_card_state, names[index], True)
    return names[index]


@pytest.mark.pcsc
async def test_direct_mode_with_virtual_cps(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    gp_reader = await _insert(slots[0], "gp", dmp_pki, 0)
    gp2_reader = await _insert(slots[1], "gp2", dmp_pki, 1)
    source = CpsDirectSource()
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    service = DmpService(config, direct=source)
    gp, gp2 = Caller(), Caller()
    try:
        with pytest.raises(BridgeError) as no_login:
            await service.find(gp, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert no_login.value.code is ErrorCode.PIN_REQUIRED

        await source.login(gp_reader, bytearray(b"1234"))
        identity = await source.login(gp2_reader, bytearray(b"1234"))
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
        await source.aclose()
