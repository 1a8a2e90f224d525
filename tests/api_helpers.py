"""Helpers for API tests and benchmarks: a running bridge on a free port, WS clients, fakes of the UI.

`FakeMonitor` stands in for bridge.pcsc.monitor.ReaderMonitor (same event classes) where a test needs
precise event control without pcscd; tests marked `pcsc` use the real monitor with virtual cards.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from bridge.api.key_proof import proof_message
from bridge.api.pairing import PendingPairing
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.paths import data_dir
from bridge.pcsc.monitor import CardInserted, CardRemoved, MonitorState, ReaderEvent
from bridge.pcsc.monitor import ReaderState as Row
from bridge.service.cards import CardService
from bridge.service.readers import MonitorLike
from bridge.tray import Decide, LastTryRequest

__all__ = [
    "CardInserted",
    "CardRemoved",
    "FakeApprover",
    "FakeMonitor",
    "PageKey",
    "Row",
    "approved_page",
    "next_notification",
    "open_ws",
    "rpc",
    "running_bridge",
    "wait_for_id",
]

_ids = itertools.count(1)


class FakeApprover:
    """Records pairing requests and last-try confirmations; the test decides through the CLI (or `decide`)."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[tuple[PendingPairing, Decide]] = asyncio.Queue()
        self.notices: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.last_tries: asyncio.Queue[tuple[LastTryRequest, Decide]] = asyncio.Queue()

    def pairing_requested(self, pending: PendingPairing, decide: Decide) -> None:
        """Queue the request."""
        self.requests.put_nowait((pending, decide))

    def last_try_requested(self, request: LastTryRequest, decide: Decide) -> None:
        """Queue the last-try confirmation (the test decides, or lets it time out)."""
        self.last_tries.put_nowait((request, decide))

    def notify(self, title: str, message: str) -> None:
        """Queue the notice."""
        self.notices.put_nowait((title, message))


class FakeMonitor:
    """Reader state set by the test; events pushed to subscribers."""

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.state = MonitorState.RUNNING
        self.queues: list[asyncio.Queue[ReaderEvent]] = []

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[ReaderEvent]:
        """A new subscriber queue."""
        queue: asyncio.Queue[ReaderEvent] = asyncio.Queue(maxsize)
        self.queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ReaderEvent]) -> None:
        """Forget a queue."""
        self.queues.remove(queue)

    def snapshot(self) -> list[Row]:
        """Current rows."""
        return list(self.rows)

    def emit(self, event: CardInserted | CardRemoved) -> None:
        """Update rows from a card event and publish it."""
        present = isinstance(event, CardInserted)
        self.rows = [
            Row(r.name, present, event.atr if present else None) if r.name == event.reader else r for r in self.rows
        ]
        for queue in self.queues:
            queue.put_nowait(event)


class PageKey:
    """A web page's ECDSA P-256 key, as the SDK keeps it in IndexedDB; signs the bridge's challenges."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spki = base64.b64encode(der).decode()

    def sign(self, origin: str, challenge_b64: str) -> str:
        """The P1363 (r||s) signature of the proof message, base64, as WebCrypto returns it."""
        der = self.private.sign(proof_message(origin, base64.b64decode(challenge_b64)), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()

    async def prove(self, ws: aiohttp.ClientWebSocketResponse, origin: str) -> dict[str, Any]:
        """Run the SDK's handshake on `ws`: challenge, then the signed proof; the prove response."""
        challenge = (await rpc(ws, "pairing.challenge"))["result"]["challenge"]
        return await rpc(ws, "pairing.prove", {"publicKey": self.spki, "signature": self.sign(origin, challenge)})


def approved_page(app: Application, origin: str) -> PageKey:
    """A page key approved for `origin` (as if the person had approved its pairing)."""
    key = PageKey()
    app.store.approve(origin, key.spki)
    return key


@asynccontextmanager
async def running_bridge(
    config: BridgeConfig | None = None,
    *,
    monitor: MonitorLike | None = None,
    cards: CardService | None = None,
    approver: FakeApprover | None = None,
) -> AsyncIterator[Application]:
    """An Application on a free loopback port, using DMP_BRIDGE_HOME's data folder."""
    ui = approver or FakeApprover()
    app = Application(
        config or BridgeConfig(port=0),
        data_dir=data_dir(),
        approver=ui,
        notifier=ui,
        monitor=monitor,
        cards=cards,
    )
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def open_ws(
    session: aiohttp.ClientSession,
    app: Application,
    *,
    origin: str | None = None,
    token: str | None = None,
    host: str | None = None,
    key: PageKey | None = None,
    page_secret: str | None = None,
) -> aiohttp.ClientWebSocketResponse:
    """Open /ws as a browser page (origin, proving `key` like the SDK) or a local client (token).

    `page_secret`: the diagnostics page's secret (`app.server.page_secret`), proved like its script does.
    """
    headers: dict[str, str] = {}
    if origin is not None:
        headers["Origin"] = origin
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if host is not None:
        headers["Host"] = host
    ws = await session.ws_connect(f"http://127.0.0.1:{app.port}/ws", headers=headers, max_msg_size=0)
    if key is not None and origin is not None:
        assert "result" in await key.prove(ws, origin)
    if page_secret is not None:
        assert "result" in await rpc(ws, "pairing.prove", {"pageSecret": page_secret})
    return ws


async def rpc(
    ws: aiohttp.ClientWebSocketResponse,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    notes: list[dict[str, Any]] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Send a request and return its response (notifications seen meanwhile go to `notes`)."""
    request_id = next(_ids)
    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}))
    return await wait_for_id(ws, request_id, notes=notes, timeout=timeout)


async def wait_for_id(
    ws: aiohttp.ClientWebSocketResponse,
    request_id: Any,
    *,
    notes: list[dict[str, Any]] | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Read frames until the one answering `request_id`."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.receive_str())
            if "id" in message and message["id"] == request_id:
                return dict(message)
            if notes is not None:
                notes.append(message)


async def next_notification(ws: aiohttp.ClientWebSocketResponse, method: str, timeout: float = 10.0) -> dict[str, Any]:
    """Read frames until a notification named `method`."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.receive_str())
            if message.get("method") == method and "id" not in message:
                return dict(message["params"])


class LogSeen(logging.Handler):
    """Sets `event` when a log record's message contains `text` (the daemon's own word that it did a thing)."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        """Set the event on a matching record."""
        if self.text in record.getMessage():
            self.event.set()


async def monitor_event(events: asyncio.Queue[Any], kind: str, reader: str, timeout: float = 15) -> None:
    """Wait for the monitor's `kind` event (CardInserted, CardRemoved…) on `reader` from a subscribed queue."""
    async with asyncio.timeout(timeout):
        while True:
            event = await events.get()
            if type(event).__name__ == kind and getattr(event, "reader", None) == reader:
                return
