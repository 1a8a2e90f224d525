"""How frames leave the bridge: inline answers sent by the reader loop, task answers and events by the writer.

Pipelined calls on one socket (no waiting between them) mixed with card events: every call is answered
once, inline answers in request order, and every event reaches the client. permessage-deflate offers
are declined (loopback compression only costs CPU).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.app import Application
from tests.api_helpers import CardInserted, CardRemoved, FakeMonitor, Row, approved_page, open_ws, running_bridge

WEB = "https://dpi.example.fr"
READER = "Virtual PCD 00 00"
ATR = bytes.fromhex("3B751300004309EA9000")


pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
def monitor() -> FakeMonitor:
    return FakeMonitor([Row(READER, False, None)])


@pytest.fixture
async def bridge(monitor: FakeMonitor) -> AsyncIterator[Application]:
    async with running_bridge(monitor=monitor) as app:
        yield app


async def test_pipelined_calls_and_events_all_delivered(bridge: Application, monitor: FakeMonitor) -> None:
    key = approved_page(bridge, WEB)
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, bridge, origin=WEB, key=key)
        calls = 200
        for i in range(calls):
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": "readers.list"}))
            if i % 50 == 25:  # events raised while answers are being produced
                monitor.emit(CardInserted(READER, ATR) if i % 100 == 25 else CardRemoved(READER))
        ids: list[int] = []
        events: list[str] = []
        async with asyncio.timeout(10):
            while len(ids) < calls or len(events) < 4:
                message = json.loads(await ws.receive_str())
                if "id" in message:
                    assert "result" in message, message
                    ids.append(message["id"])
                else:
                    events.append(message["method"])
        assert ids == list(range(calls))  # inline answers keep the request order
        assert events.count("card.inserted") == 2 and events.count("card.removed") == 2
        await ws.close()


async def test_task_answers_interleaved_with_inline_answers(bridge: Application) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, bridge, token=bridge.token)
        sent: dict[int, str] = {}
        for i in range(60):
            method = "diagnostics.report" if i % 3 == 0 else "readers.list"  # a task call, then two inline ones
            sent[i] = method
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": i, "method": method}))
        answers: dict[int, dict[str, object]] = {}
        async with asyncio.timeout(10):
            while len(answers) < len(sent):
                message = json.loads(await ws.receive_str())
                if "id" in message:
                    assert message["id"] not in answers  # answered exactly once
                    answers[message["id"]] = message["result"]
        assert all(("cardService" in answers[i]) == (m == "diagnostics.report") for i, m in sent.items())
        # diagnostics.report adds `card` to its rows; readers.list rows must not inherit it.
        row = {"name": READER, "cardPresent": False, "atr": None, "kind": None}
        listed = [answers[i] for i, m in sent.items() if m == "readers.list"]
        assert listed == [{"pcsc": "available", "readers": [row]}] * len(listed)
        await ws.close()


async def test_permessage_deflate_offer_declined(bridge: Application) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {WEB}\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
    )
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1").lower()
    assert head.startswith("http/1.1 101")
    assert "sec-websocket-extensions" not in head
    writer.close()
    await writer.wait_closed()
