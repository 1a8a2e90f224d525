"""DMP calls name the card problem a person can fix: an expired CPS (not a network outage), no CPS at all
(not « type your PIN »)."""

from __future__ import annotations

import asyncio

import pytest
from smartcard.System import readers

from bridge.crypto.pki import TestPki
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.monitor import CardInserted, ReaderMonitor
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_card import CardServiceDirectSource
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim import cps4
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim  # noqa: F401


class Caller:
    """A context key (stands for one WebSocket connection)."""


@pytest.mark.pcsc
async def test_dmp_call_with_an_expired_cps_says_expired_with_the_date(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    slots[0].insert(cps4.create_card("expired", dmp_pki))
    reader = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
    await asyncio.to_thread(wait_card_state, reader, True)
    cards = PcscCardService()
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    service = DmpService(config, direct=CardServiceDirectSource(cards))
    caller = Caller()
    try:
        await cards.login(reader, bytearray(b"1234"), allow_last_try=False)
        service.set_context(caller, DmpContext(mode=AuthMode.DIRECTE, reader=reader))
        with pytest.raises(BridgeError) as refused:
            await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert refused.value.code is ErrorCode.CERTIFICATE_EXPIRED  # not DMP_UNREACHABLE
        data = refused.value.to_data()
        assert "a expiré" in data["message_fr"] and "renouvellement" in data["hint_fr"]
        assert data["expiredOn"] in data["hint_fr"]
    finally:
        await service.aclose()
        await cards.close()


@pytest.mark.pcsc
async def test_dmp_call_without_any_cps_says_so_instead_of_asking_for_the_pin(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    names = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))
    slots[1].insert(make_card("vitale", "famille"))
    await asyncio.to_thread(wait_card_state, names[1], True)
    monitor = ReaderMonitor()
    await monitor.start()
    events = monitor.subscribe()
    cards = PcscCardService(monitor)
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    service = DmpService(config, direct=CardServiceDirectSource(cards, monitor))
    caller = Caller()
    service.set_context(caller, DmpContext(mode=AuthMode.DIRECTE))
    try:
        with pytest.raises(BridgeError) as no_cps:
            await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert (no_cps.value.code, no_cps.value.detail) == (ErrorCode.NO_CARD, "no-cps")
        assert "Aucune carte CPS" in no_cps.value.message_fr
        slots[0].insert(cps4.create_card("gp", dmp_pki))
        while (
            not isinstance(event := await asyncio.wait_for(events.get(), 10), CardInserted) or event.reader != names[0]
        ):
            pass
        with pytest.raises(BridgeError) as no_pin:
            await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert no_pin.value.code is ErrorCode.PIN_REQUIRED  # now the PIN is what is missing
    finally:
        await service.aclose()
        await cards.close()
        await monitor.stop()
