"""The card service when callers or cards misbehave, through the real daemon, pcscd and gated virtual cards.

A client that closes its WebSocket mid-operation frees the card at once (no further APDU of its call);
`cps.*` with no CPS but a Vitale elsewhere is NO_CARD, not UNSUPPORTED_CARD; a card that never answers
gives TIMEOUT naming the operation within the configured `card_timeout`, and the card serves again after.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.pcsc.monitor import ReaderMonitor
from bridge.sim.cps3 import create_card
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import LogSeen, open_ws, rpc, running_bridge, wait_for_id
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.gated_vicc import GatedVicc

__all__ = ["pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.usefixtures("home")]

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
INS_VERIFY = 0x20
INS_PSO = 0x2A
INS_READ_BINARY = 0xB0
INS_GET_DATA = 0xCB


@asynccontextmanager
async def _daemon(config: BridgeConfig) -> AsyncIterator[tuple[Application, asyncio.Queue[Any]]]:
    """The daemon as `dmp-bridge run` builds it (its own card service from `config`), and the monitor's events."""
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    events = monitor.subscribe()
    async with running_bridge(config, monitor=monitor) as app:
        yield app, events


async def _seen_inserted(events: asyncio.Queue[Any], *readers: str) -> None:
    """Until the monitor reported a card inserted in each of `readers` (in any order)."""
    waiting = set(readers)
    async with asyncio.timeout(15):
        while waiting:
            event = await events.get()
            if type(event).__name__ == "CardInserted":
                waiting.discard(event.reader)


async def test_a_closed_connection_abandons_its_card_work_and_frees_the_card(
    slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.service.pcsc_cards")
    abandoned = LogSeen("abandoned by its caller")
    logging.getLogger("bridge.service.pcsc_cards").addHandler(abandoned)
    vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
    try:
        async with _daemon(BridgeConfig(port=0, card_busy_wait=10)) as (app, events):
            await _seen_inserted(events, READERS[0])
            async with aiohttp.ClientSession() as http, LocalClient(app.port, app.token) as other:
                await other.call("cps.read")  # the card's PKCS#15 directory is read once per session
                vicc.clear()
                await other.call("cps.read")
                one_read = vicc.log()
                dead = await open_ws(http, app, token=app.token)
                vicc.clear()
                vicc.arm(INS_GET_DATA)  # the dead caller's read stops mid-way, at its PIN counter
                for request_id in (1, 2):  # the second one queues behind the first
                    await dead.send_json({"jsonrpc": "2.0", "id": request_id, "method": "cps.read", "params": {}})
                assert await asyncio.to_thread(vicc.held.wait, 15)
                held = len(vicc.log())
                await dead.close()
                assert await asyncio.to_thread(abandoned.event.wait, 10)  # the daemon saw the close
                waiting = asyncio.create_task(other.call("cps.read"))
                released = time.monotonic()
                vicc.release()  # the APDU in flight returns; nothing of the dead call may follow it
                result = await asyncio.wait_for(waiting, 10)
                elapsed = time.monotonic() - released
        assert result["cardNumber"] == "2600000100"
        assert vicc.log()[held:] == one_read  # before: the dead call's remaining APDUs, then its queued read
        assert elapsed < 2
        print(f"FAULT-REPORT client closed mid cps.read: other caller served in {elapsed:.2f}s, dead APDUs=0")
    finally:
        logging.getLogger("bridge.service.pcsc_cards").removeHandler(abandoned)
        vicc.close()


async def test_cps_calls_without_a_cps_say_no_card_even_with_a_vitale_in(slots: list[VirtualSlot]) -> None:
    async with _daemon(BridgeConfig(port=0)) as (app, events):
        await asyncio.to_thread(slots[1].insert, make_card("vitale", "famille"))
        await _seen_inserted(events, READERS[1])
        async with aiohttp.ClientSession() as http:
            ws = await open_ws(http, app, token=app.token)
            data = base64.b64encode(b"document").decode()
            for method, params in (
                ("cps.read", {}),
                ("cps.login", {"pin": "1234"}),
                ("cps.logout", {}),
                ("cps.sign", {"data": data}),
            ):
                error = (await rpc(ws, method, params, timeout=15))["error"]["data"]
                assert error["code"] == "NO_CARD", (method, error)  # before: UNSUPPORTED_CARD (the Vitale)
                assert "Aucune carte CPS insérée" in error["message_fr"] and "insérez" in error["message_fr"]
                assert "No CPS card" in error["message_en"]
            # The Vitale is still read, and asking for it explicitly as a CPS still says what it is.
            assert len((await rpc(ws, "vitale.read", timeout=15))["result"]["beneficiaries"]) == 3
            named = (await rpc(ws, "cps.read", {"reader": READERS[1]}, timeout=15))["error"]["data"]
            assert (named["code"], named["kind"]) == ("UNSUPPORTED_CARD", "VITALE2")
            await ws.close()


async def test_vitale_read_without_a_vitale_says_no_card_even_with_a_cps_in(
    slots: list[VirtualSlot], pki: TestPki
) -> None:
    async with _daemon(BridgeConfig(port=0)) as (app, events):
        await asyncio.to_thread(slots[0].insert, create_card("gp", pki))
        await _seen_inserted(events, READERS[0])
        async with aiohttp.ClientSession() as http:
            ws = await open_ws(http, app, token=app.token)
            error = (await rpc(ws, "vitale.read", timeout=15))["error"]["data"]
            assert error["code"] == "NO_CARD" and "Aucune carte Vitale insérée" in error["message_fr"]
            await ws.close()


async def _timed_out(ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any]) -> float:
    """Call `method` on a wedged card: TIMEOUT naming the card operation; returns the seconds it took."""
    started = time.monotonic()
    response = await rpc(ws, method, params, timeout=10)
    elapsed = time.monotonic() - started
    error = response["error"]["data"]
    assert (error["code"], error["stage"], error["operation"]) == ("TIMEOUT", "card", method), error
    assert "La carte ne répond pas" in error["message_fr"] and "réinsérez" in error["message_fr"]
    print(f"FAULT-REPORT card wedged during {method}: code=TIMEOUT stage=card time={elapsed:.2f}s")
    return elapsed


async def test_a_wedged_card_operation_is_timeout_within_card_timeout_then_the_card_serves_again(
    slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki
) -> None:
    bound = 0.5
    cps = GatedVicc(create_card("gp", pki), slot_ports[0])
    vitale = GatedVicc(make_card("vitale", "famille"), slot_ports[1])
    try:
        async with _daemon(BridgeConfig(port=0, card_timeout=bound)) as (app, events):
            await _seen_inserted(events, *READERS)
            async with aiohttp.ClientSession() as http:
                ws = await open_ws(http, app, token=app.token)
                cps_only, vitale_only = {"reader": READERS[0]}, {"reader": READERS[1]}
                data = {"data": base64.b64encode(b"document").decode(), **cps_only}
                steps: list[tuple[GatedVicc, int, str, dict[str, Any]]] = [
                    (cps, INS_GET_DATA, "cps.read", cps_only),
                    (cps, INS_VERIFY, "cps.login", {"pin": "1234", **cps_only}),
                    (cps, INS_PSO, "cps.sign", data),
                    (vitale, INS_READ_BINARY, "vitale.read", vitale_only),
                ]
                for vicc, ins, method, params in steps:
                    if method == "cps.sign":
                        assert "result" in await rpc(ws, "cps.login", {"pin": "1234", **cps_only}, timeout=15)
                    vicc.arm(ins)  # the card takes this command and never answers
                    assert await _timed_out(ws, method, params) < bound + 1.5  # before: no such bound in config
                    vicc.release()  # the card answers again: the next call is served
                    assert "result" in await rpc(ws, method, params, timeout=15), method
                await ws.close()
    finally:
        cps.close()
        vitale.close()


async def test_a_card_still_wedged_is_reported_again_not_waited_for(
    slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki
) -> None:
    bound = 0.5
    vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
    try:
        async with _daemon(BridgeConfig(port=0, card_timeout=bound)) as (app, events):
            await _seen_inserted(events, READERS[0])
            async with aiohttp.ClientSession() as http:
                ws = await open_ws(http, app, token=app.token)
                vicc.arm(INS_GET_DATA)
                await _timed_out(ws, "cps.read", {})
                started = time.monotonic()
                again = (await rpc(ws, "cps.read", timeout=10))["error"]["data"]
                assert again["code"] == "TIMEOUT" and time.monotonic() - started < bound + 1.5
                request = {"jsonrpc": "2.0", "id": "after", "method": "cps.read", "params": {}}
                vicc.release()
                await ws.send_json(request)
                assert (await wait_for_id(ws, "after", timeout=15))["result"]["cardNumber"] == "2600000100"
                await ws.close()
    finally:
        vicc.close()
