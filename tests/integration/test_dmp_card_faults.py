"""DIRECTE mode (virtual CPS on the real pcscd, real simulator) when the card side fails: pcscd killed
mid-session gives PCSC_UNAVAILABLE, not PIN_REQUIRED; after it returns, the lost login is announced."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from pathlib import Path

import aiohttp
import pytest
from smartcard.System import readers

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.paths import data_dir
from bridge.pcsc.monitor import CardInserted, CardRemoved, PcscAvailable, PcscUnavailable, ReaderMonitor
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_card import CardServiceDirectSource
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.pcscd import PrivatePcscd
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover, LogSeen, open_ws, rpc
from tests.conftest import wait_card_state
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim  # noqa: F401
from tests.faults import Fault, FaultProxy
from tests.gated_vicc import GatedVicc
from tests.pcsc_fixtures import restartable_pcscd

pytestmark = pytest.mark.pcsc
__all__ = ["restartable_pcscd"]  # a fixture used by name


class Caller:
    """A context key (stands for one WebSocket connection)."""


def _config(sim: RunningSim) -> DmpConfig:
    return DmpConfig(url=sim.url, ca_bundle=sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value)


async def test_a_dmp_call_during_a_pcscd_outage_says_pcsc_unavailable(
    restartable_pcscd: PrivatePcscd,
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    slots[0].insert(create_card("gp", dmp_pki))
    reader = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
    await asyncio.to_thread(wait_card_state, reader, True)
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
        await cards.login(reader, bytearray(b"1234"), allow_last_try=False)
        assert await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], []) == ()

        await asyncio.to_thread(restartable_pcscd.stop)
        while await asyncio.wait_for(events.get(), 10) != PcscUnavailable():
            pass
        with pytest.raises(BridgeError) as down:
            await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert down.value.code is ErrorCode.PCSC_UNAVAILABLE  # before: PIN_REQUIRED

        await asyncio.to_thread(restartable_pcscd.start)
        slots[0].insert(create_card("gp", dmp_pki))
        seen = []
        while not isinstance(event := await asyncio.wait_for(events.get(), 10), CardInserted):
            seen.append(event)
        assert PcscAvailable() in seen and CardRemoved(reader) in seen
        # Logged out with the old pcscd: the DMP call asks for the PIN again, truthfully.
        with pytest.raises(BridgeError) as again:
            await service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], [])
        assert again.value.code is ErrorCode.PIN_REQUIRED
    finally:
        await service.aclose()
        await cards.close()
        await monitor.stop()


INS_PSO = 0x2A  # PERFORM SECURITY OPERATION: the card's signature (VIHF, XAdES)


async def test_a_card_wedged_during_a_dmp_call_is_timeout_not_internal(
    slots: list[VirtualSlot],
    slot_ports: list[int],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    vicc = GatedVicc(create_card("gp", dmp_pki), slot_ports[0])
    monitor = ReaderMonitor()
    cards = PcscCardService(monitor, operation_timeout=1.0)
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    service = DmpService(config, direct=CardServiceDirectSource(cards, monitor))
    caller = Caller()
    service.set_context(caller, DmpContext(mode=AuthMode.DIRECTE))
    try:
        reader = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
        await asyncio.to_thread(wait_card_state, reader, True)
        await monitor.start()
        await cards.login(reader, bytearray(b"1234"), allow_last_try=False)
        vicc.arm(INS_PSO)  # the card takes the signature command and never answers
        started = time.monotonic()
        with pytest.raises(BridgeError) as wedged:
            await asyncio.wait_for(service.find(caller, PATIENT, [AvailabilityStatus.APPROVED], []), 10)
        elapsed = time.monotonic() - started
        assert wedged.value.code is ErrorCode.TIMEOUT  # before: INTERNAL ("unexpected error", a bare TimeoutError)
        assert wedged.value.extra["stage"] == "signature"
        assert elapsed < 3
        print(
            f"FAULT-REPORT card wedged during a DMP call: code={wedged.value.code.value} time={elapsed:.2f}s stored=0"
        )
        vicc.release()
    finally:
        await service.aclose()
        await cards.close()
        await monitor.stop()
        vicc.close()


async def test_a_dmp_call_owns_its_card_against_another_callers_card_methods(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    slots[0].insert(create_card("gp", dmp_pki))
    reader = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
    await asyncio.to_thread(wait_card_state, reader, True)
    async with FaultProxy(dmp_sim.sim.port, 64 * 1024) as proxy:
        dmp = DmpConfig(
            url=dmp_sim.url.replace(f":{dmp_sim.sim.port}/", f":{proxy.port}/"), ca_bundle=dmp_sim.ca_file,
            server_name="localhost", ins_oid=InsOid.NIR_TEST.value,
        )  # fmt: skip
        monitor = ReaderMonitor()
        app = Application(
            BridgeConfig(port=0, dmp=dmp, card_busy_wait=0.5), data_dir=data_dir(), approver=FakeApprover(),
            monitor=monitor, cards=PcscCardService(monitor),
        )  # fmt: skip
        await app.start(hosts=("127.0.0.1",))
        try:
            async with LocalClient(app.port, app.token) as author, LocalClient(app.port, app.token) as other:
                await author.call("cps.login", {"pin": "1234"})
                await author.call("dmp.context.set", {"authMode": "DIRECTE"})
                proxy.fault = Fault.HOLD_RESPONSE
                params = {
                    "patient": {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M",
                                "birthDate": "19780314"},
                    "content": base64.b64encode(b"%PDF-1.4\n" + bytes(200 * 1024) + b"%%EOF").decode(),
                    "mimeType": "application/pdf", "title": "CR", "typeCode": "11488-4", "insQualified": True,
                }  # fmt: skip
                submit = asyncio.create_task(author.call("dmp.documents.submit", params))
                await asyncio.wait_for(proxy.triggered.wait(), 20)  # signed by the card, answer held
                for method in ("cps.logout", "cps.read"):
                    started = time.monotonic()
                    with pytest.raises(BridgeError) as busy:
                        await asyncio.wait_for(other.call(method), 10)
                    assert busy.value.code is ErrorCode.CARD_BUSY, method  # before: logout accepted mid-submit
                    assert time.monotonic() - started < 2
                proxy.release.set()
                uid = (await asyncio.wait_for(submit, 20))["uniqueId"]
                assert (await other.call("cps.read"))["cardType"] == "CPS"  # free again once the call is over
        finally:
            await app.stop()
    assert len(dmp_sim.sim.store.entries_by_unique_id(uid)) == 1


async def test_a_dmp_call_whose_connection_closes_sends_no_further_apdu(
    slots: list[VirtualSlot],
    slot_ports: list[int],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    caplog.set_level(logging.INFO, logger="bridge.api.server")
    closed = LogSeen("closed")
    logging.getLogger("bridge.api.server").addHandler(closed)
    vicc = GatedVicc(create_card("gp", dmp_pki), slot_ports[0])
    reader = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
    await asyncio.to_thread(wait_card_state, reader, True)
    monitor = ReaderMonitor()
    app = Application(
        BridgeConfig(port=0, dmp=_config(dmp_sim), card_busy_wait=10), data_dir=data_dir(), approver=FakeApprover(),
        monitor=monitor, cards=PcscCardService(monitor),
    )  # fmt: skip
    await app.start(hosts=("127.0.0.1",))
    try:
        async with aiohttp.ClientSession() as http, LocalClient(app.port, app.token) as other:
            await other.call("cps.read")
            vicc.clear()
            await other.call("cps.read")
            one_read = vicc.log()
            dead = await open_ws(http, app, token=app.token)
            assert "result" in await rpc(dead, "cps.login", {"pin": "1234"}, timeout=15)
            assert "result" in await rpc(dead, "dmp.context.set", {"authMode": "DIRECTE"})
            vicc.clear()
            vicc.arm(INS_PSO)  # the VIHF signature: PSO HASH held, PSO CDS would follow
            params = {"patient": {"ins": PATIENT.value}}
            await dead.send_json({"jsonrpc": "2.0", "id": "find", "method": "dmp.documents.find", "params": params})
            assert await asyncio.to_thread(vicc.held.wait, 15)
            held = len(vicc.log())
            await dead.close()
            assert await asyncio.to_thread(closed.event.wait, 10)  # its calls were cancelled
            waiting = asyncio.create_task(other.call("cps.read"))
            vicc.release()
            assert (await asyncio.wait_for(waiting, 10))["cardType"] == "CPS"
        assert vicc.log()[held:] == one_read  # before: the dead call's PSO CDS (and TLS signature) first
    finally:
        logging.getLogger("bridge.api.server").removeHandler(closed)
        await app.stop()
        vicc.close()
