"""Events reach only entitled connections; card calls are serialised per card and cancelled on close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bridge.config import BridgeConfig
from bridge.errors import BridgeError, ErrorCode
from tests.api_helpers import (
    CardInserted,
    CardRemoved,
    FakeMonitor,
    PageKey,
    Row,
    approved_page,
    next_notification,
    open_ws,
    rpc,
    running_bridge,
)

WEB = "https://dpi.example.fr"
OTHER = "https://unknown.example.fr"
READER = "Virtual PCD 00 00"


pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_events_only_to_approved_connections(session: aiohttp.ClientSession) -> None:
    monitor = FakeMonitor([Row(READER, False, None), Row("Virtual PCD 00 01", False, None)])
    async with running_bridge(monitor=monitor) as app:
        key = approved_page(app, WEB)
        approved = await open_ws(session, app, origin=WEB, key=key)
        stranger = await open_ws(session, app, origin=OTHER)
        page = await open_ws(session, app, origin=f"http://127.0.0.1:{app.port}", page_secret=app.server.page_secret)
        local = await open_ws(session, app, token=app.token)
        for ws in (approved, stranger, page, local):
            await rpc(ws, "bridge.info")  # connection registered
        monitor.emit(CardInserted(READER, bytes.fromhex("3B8F8001")))
        for ws in (approved, page, local):
            assert await next_notification(ws, "card.inserted") == {"reader": READER, "atr": "3B8F8001"}
            changed = await next_notification(ws, "readers.changed")
            assert changed["readers"][0] == {"name": READER, "cardPresent": True, "atr": "3B8F8001", "kind": "UNKNOWN"}
        monitor.emit(CardRemoved(READER))
        assert await next_notification(approved, "card.removed") == {"reader": READER}
        # The stranger got nothing: its next frame is the answer to its own call.
        notes: list[dict[str, Any]] = []
        await rpc(stranger, "bridge.info", notes=notes)
        assert notes == []
        listing = (await rpc(approved, "readers.list"))["result"]
        assert listing["pcsc"] == "available" and not listing["readers"][0]["cardPresent"]
        for ws in (approved, stranger, page, local):
            await ws.close()


class GatedCards:
    """A card service whose cps.read blocks until released (to observe locking and cancellation)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.pins: list[bytearray] = []

    async def resolve(self, reader: str | None, kind: str) -> str:
        if reader not in (None, READER):
            raise BridgeError(ErrorCode.NO_CARD)
        return READER

    async def cps_read(self, reader: str) -> dict[str, Any]:
        self.started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return {"reader": reader}

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        self.pins.append(pin)
        if pin != bytearray(b"1234"):
            raise BridgeError(ErrorCode.PIN_INCORRECT, triesLeft=2)
        return {"triesLeft": 3}

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        return {}

    async def cps_sign(self, reader: str, data: bytes, *, digest: str, prehashed: bool, key: str) -> dict[str, Any]:
        return {"length": len(data), "digest": digest, "prehashed": prehashed, "key": key}

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        return {}

    async def forget(self, reader: str) -> None:
        pass

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        return {"type": "CPS3", "certificateNotAfter": "2029-01-01", "pinTriesLeft": 3}


async def test_second_caller_gets_card_busy_after_bounded_wait(session: aiohttp.ClientSession) -> None:
    cards = GatedCards()
    async with running_bridge(BridgeConfig(port=0, card_busy_wait=0.3), cards=cards) as app:
        first = await open_ws(session, app, token=app.token)
        second = await open_ws(session, app, token=app.token)
        await first.send_str(json.dumps({"jsonrpc": "2.0", "id": "slow", "method": "cps.read"}))
        await asyncio.wait_for(cards.started.wait(), 5)
        busy = await rpc(second, "cps.read")
        assert busy["error"]["data"]["code"] == "CARD_BUSY" and busy["error"]["data"]["waitSeconds"] == 0.3
        cards.gate.set()
        answer = json.loads(await first.receive_str(timeout=5))
        assert answer == {"jsonrpc": "2.0", "id": "slow", "result": {"reader": READER}}
        assert (await rpc(second, "cps.read"))["result"] == {"reader": READER}
        await first.close()
        await second.close()


async def test_closing_a_connection_cancels_its_card_call(session: aiohttp.ClientSession) -> None:
    cards = GatedCards()
    async with running_bridge(BridgeConfig(port=0, card_busy_wait=5), cards=cards) as app:
        first = await open_ws(session, app, token=app.token)
        await first.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "cps.read"}))
        await asyncio.wait_for(cards.started.wait(), 5)
        await first.close()
        await asyncio.wait_for(cards.cancelled.wait(), 5)
        # The card is free again at once: the lock was released by the cancellation.
        cards.gate.set()
        second = await open_ws(session, app, token=app.token)
        assert (await rpc(second, "cps.read", timeout=2))["result"] == {"reader": READER}
        await second.close()


async def test_pin_is_wiped_and_sign_checks_before_card(session: aiohttp.ClientSession) -> None:
    cards = GatedCards()
    async with running_bridge(cards=cards) as app:
        ws = await open_ws(session, app, token=app.token)
        wrong = await rpc(ws, "cps.login", {"pin": "9999"})
        assert wrong["error"]["data"] == {
            "code": "PIN_INCORRECT",
            "message_fr": "Code porteur incorrect.",
            "message_en": "Incorrect PIN.",
            "hint_fr": "Vérifiez le code porteur avant de le ressaisir : 2 essai(s) restant(s).",
            "hint_en": "Check the PIN before typing it again: 2 try(ies) left.",
            "triesLeft": 2,
        }
        assert (await rpc(ws, "cps.login", {"pin": "1234"}))["result"] == {"triesLeft": 3}
        assert cards.pins == [bytearray(4), bytearray(4)]  # zeroed after each call
        bad = await rpc(ws, "cps.sign", {"data": "not base64!"})
        assert bad["error"]["data"]["detail"] == "data: base64"
        short = await rpc(ws, "cps.sign", {"data": "AAAA", "prehashed": True})
        assert short["error"]["data"]["detail"] == "data: digest-length"
        signed = await rpc(ws, "cps.sign", {"data": "AAAA", "key": "authentication"})
        assert signed["result"] == {"length": 3, "digest": "SHA-256", "prehashed": False, "key": "authentication"}
        page = await open_ws(session, app, origin=f"http://127.0.0.1:{app.port}", page_secret=app.server.page_secret)
        report = (await rpc(page, "diagnostics.report"))["result"]
        assert report["cardService"] is True
        await ws.close()
        await page.close()


async def test_in_flight_limit_pushes_back_instead_of_failing(session: aiohttp.ClientSession) -> None:
    cards = GatedCards()
    async with running_bridge(BridgeConfig(port=0, max_in_flight=1, card_busy_wait=30), cards=cards) as app:
        ws = await open_ws(session, app, token=app.token)
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "a", "method": "cps.read"}))
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "b", "method": "bridge.info"}))
        await asyncio.wait_for(cards.started.wait(), 5)
        # "b" waits for the only slot: nothing arrives until "a" finishes.
        with pytest.raises(TimeoutError):
            await ws.receive_str(timeout=0.3)
        cards.gate.set()
        ids = [json.loads(await ws.receive_str(timeout=5))["id"] for _ in range(2)]
        assert ids == ["a", "b"]
        await ws.close()


async def test_tray_approval_and_pcsc_notices(session: aiohttp.ClientSession) -> None:
    """The Approver's decision (as the tray makes it, from its own thread) and PC/SC loss notices."""
    import threading

    from bridge.pcsc.monitor import MonitorState, PcscAvailable, PcscUnavailable
    from tests.api_helpers import FakeApprover

    ui = FakeApprover()
    monitor = FakeMonitor([Row(READER, False, None)])
    async with running_bridge(monitor=monitor, approver=ui) as app:
        ws = await open_ws(session, app, origin=WEB, key=PageKey())
        answer = (await rpc(ws, "pairing.request"))["result"]
        pending, decide = await asyncio.wait_for(ui.requests.get(), 5)
        assert (pending.origin, pending.code) == (WEB, answer["code"])
        threading.Thread(target=decide, args=(True,)).start()  # the tray calls back from its thread
        assert await next_notification(ws, "pairing.approved") == {"requestId": answer["requestId"], "origin": WEB}
        assert (await rpc(ws, "readers.list"))["result"]["pcsc"] == "available"

        monitor.state = MonitorState.PCSC_UNAVAILABLE
        for queue in monitor.queues:
            queue.put_nowait(PcscUnavailable())
        assert await next_notification(ws, "readers.changed") == {"pcsc": "unavailable", "readers": []}
        title, message = await asyncio.wait_for(ui.notices.get(), 5)
        assert title == "Lecteurs de carte"
        assert "ne répond plus" in message
        monitor.state = MonitorState.RUNNING
        for queue in monitor.queues:
            queue.put_nowait(PcscAvailable())
        assert (await next_notification(ws, "readers.changed"))["pcsc"] == "available"
        assert "de nouveau" in (await asyncio.wait_for(ui.notices.get(), 5))[1]
        await ws.close()
