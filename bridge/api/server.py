"""The aiohttp server: diagnostics page, SDK, OpenRPC document and the `/ws` JSON-RPC endpoint.

Bound to 127.0.0.1 and ::1 only (::1 skipped when the host has no IPv6 loopback). Every request goes
through `_guard` (Host check; a foreign Origin is refused everywhere except the public SDK/OpenRPC
resources and the WebSocket, which does its own caller classification).

Oversized WebSocket frames: aiohttp stops reading at `max_message_size`; before the close (code 1009)
the bridge sends a JSON-RPC error with ``data.code = INVALID_INPUT`` and detail ``message-too-big``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import socket
from importlib import resources
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader_py import WebSocketDataQueue as PyWebSocketDataQueue
from aiohttp._websocket.reader_py import WebSocketReader as PyWebSocketReader
from aiohttp.helpers import DEFAULT_CHUNK_SIZE

from bridge.api import jsonrpc
from bridge.api.connection import Connection, FrameBudget
from bridge.api.http_guard import ConnectionGuard, GuardedRunner, lift_deadline
from bridge.api.methods import Registry, Services
from bridge.api.openrpc import openrpc_document
from bridge.api.ports import PortInUseError, port_holder
from bridge.api.security import (
    Caller,
    CallerKind,
    Refusal,
    check_host,
    classify_caller,
    cors_headers,
    normalise_origin,
    own_origins,
)
from bridge.errors import BridgeError, ErrorCode
from bridge.logs import LogThrottle

__all__ = ["UNAPPROVED_MAX_MESSAGE", "BridgeServer"]

log = logging.getLogger(__name__)
# Refused requests come in floods (rebinding probes, forged origins): one line per reason per interval.
_refusals = LogThrottle(log)

#: Message limit of a web page not approved yet: pairing.request and bridge.info fit many times over.
UNAPPROVED_MAX_MESSAGE = 64 * 1024
_TOKEN_ROTATED = 4001  # WebSocket close code (private range) for local clients after a token rotation
#: Large frames decoded or running at once, daemon-wide, in multiples of the message limit.
_BUDGET_MESSAGES = 3

_PUBLIC_PATHS = ("/sdk/dmp-bridge.js", "/sdk/dmp-bridge.d.ts", "/openrpc.json")
_PAGES = {
    "/": ("index.html", "text/html"),
    "/diagnostics.js": ("diagnostics.js", "text/javascript"),
    "/diagnostics.css": ("diagnostics.css", "text/css"),
    "/sdk/dmp-bridge.js": ("dmp-bridge.js", "text/javascript"),
    "/sdk/dmp-bridge.d.ts": ("dmp-bridge.d.ts", "text/plain"),
}


def _refusal(status: int, code: ErrorCode, detail: str) -> web.Response:
    body = {"error": BridgeError(code, detail).to_data()}
    return web.json_response(body, status=status)


class _BridgeWebSocket(web.WebSocketResponse):
    """Sends a JSON-RPC error before aiohttp closes an oversized message with 1009; its limit can grow once."""

    def __init__(self, *, max_msg_size: int, raised_max_msg_size: int, heartbeat: float) -> None:
        super().__init__(max_msg_size=max_msg_size, heartbeat=heartbeat, compress=False)
        self._raised_max_msg_size = raised_max_msg_size

    def _post_start(self, request: Any, protocol: str | None, writer: Any) -> None:
        if not self.limited:
            super()._post_start(request, protocol, writer)
            return
        # aiohttp's own set-up with the pure-Python reader: the compiled reader's limit cannot be raised later.
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        assert self._loop is not None
        self._reader = PyWebSocketDataQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop)
        self._parser = PyWebSocketReader(
            self._reader, self._max_msg_size, compress=False, decode_text=self._decode_text
        )
        callback = None if self._heartbeat is None else self._on_data_received
        request.protocol.set_parser(self._parser, data_received_cb=callback)
        request.protocol.keep_alive(False)

    @property
    def limited(self) -> bool:
        """Whether the small, not-yet-approved message limit applies."""
        return self._max_msg_size < self._raised_max_msg_size

    def raise_limit(self) -> None:
        """Give an approved page the configured message limit."""
        limit = self._raised_max_msg_size
        self._max_msg_size = limit
        parser: Any = self._parser
        parser._max_msg_size = limit
        parser._max_fragments = max(1024, limit // 256)

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        """Close; on 1009 tell the client why first."""
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            error = BridgeError(ErrorCode.INVALID_INPUT, "message-too-big", maxBytes=self._max_msg_size)
            with contextlib.suppress(Exception):
                await self.send_str(jsonrpc.encode(jsonrpc.error_response(None, error, jsonrpc.INVALID_REQUEST)))
            message = message or b"message too big"
        return await super().close(code=code, message=message, drain=drain)


class BridgeServer:
    """The HTTP/WebSocket front of the bridge."""

    def __init__(
        self,
        services: Services,
        registry: Registry,
        *,
        port: int,
        token: str,
        max_message_size: int,
        max_in_flight: int,
        extra_hosts: tuple[str, ...] = (),
    ) -> None:
        self.services = services
        self.registry = registry
        self.port = port
        self.token = token
        self.max_message_size = max_message_size
        self.max_in_flight = max_in_flight
        self.extra_hosts = extra_hosts
        self.connections: set[Connection] = set()
        self._sockets: dict[Connection, _BridgeWebSocket] = {}
        self.budget = FrameBudget(_BUDGET_MESSAGES * max_message_size)
        #: Same OS user only, the plain-HTTP deadline, file-descriptor exhaustion (tests shorten the deadline).
        self.guard = ConnectionGuard()
        self._runner: web.AppRunner | None = None
        #: Given to the diagnostics page in the HTML it is served (readable only by a same-user program
        #: or a page of the bridge's own origin), proved over the WebSocket instead of trusting its Origin.
        self.page_secret = secrets.token_urlsafe(32)
        self._static = resources.files("bridge.api") / "static"

    # -- events -------------------------------------------------------------------------------

    def publish(self, method: str, params: dict[str, Any]) -> None:
        """Fan a notification out to the connections entitled to events."""
        text = jsonrpc.encode(jsonrpc.notification(method, params))  # once, not once per connection
        for conn in list(self.connections):
            if conn.receives_events():
                conn.offer_event(text)

    async def set_token(self, token: str, *, keep: object) -> None:
        """Accept only `token` from now on; close the local connections opened with the old one (but `keep`)."""
        self.token = token
        for conn, ws in list(self._sockets.items()):
            if conn.caller.kind is CallerKind.LOCAL and conn is not keep:
                await conn.close()
                with contextlib.suppress(Exception):
                    await ws.close(code=_TOKEN_ROTATED, message=b"local token rotated")

    def pairing_decided(self, request_id: str, origin: str, approved: bool) -> None:
        """PairingManager listener: notify the origin's connections."""
        for conn in list(self.connections):
            if approved and conn.origin == origin:
                self._raise_limit(conn)
            conn.pairing_decided(request_id, origin, approved)

    def _raise_limit(self, conn: Connection) -> None:
        ws = self._sockets.get(conn)
        if ws is not None and ws.limited and conn.receives_events():
            ws.raise_limit()

    # -- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not check_host(request.headers.get("Host"), self.port, self.extra_hosts):
            _refusals.log(logging.WARNING, "host", "refused request with Host %r", request.headers.get("Host", "")[:80])
            return _refusal(403, ErrorCode.UNAUTHORIZED, Refusal.BAD_HOST.value)
        raw_origin = request.headers.get("Origin")
        if request.path in _PUBLIC_PATHS:
            if request.method == "OPTIONS":
                return web.Response(status=204, headers=cors_headers(request.headers, preflight=True))
            response: web.StreamResponse = await handler(request)
            response.headers.update(cors_headers(request.headers, preflight=False))
            return response
        if (
            request.path != "/ws"
            and raw_origin is not None
            and normalise_origin(raw_origin) not in own_origins(self.port)
        ):
            return _refusal(403, ErrorCode.ORIGIN_NOT_APPROVED, Refusal.BAD_ORIGIN.value)
        response = await handler(request)
        return response

    async def _page(self, request: web.Request) -> web.Response:
        filename, content_type = _PAGES[request.path]
        body = (self._static / filename).read_bytes()
        if filename == "index.html":
            body = body.replace(b"{{PAGE_SECRET}}", self.page_secret.encode())
        ws_sources = " ".join(f"ws://{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]"))
        headers = {
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        }
        if filename == "index.html":
            headers["Cache-Control"] = "no-store"  # it holds this run's page secret
            headers["Content-Security-Policy"] = (
                f"default-src 'self'; connect-src 'self' {ws_sources}; img-src 'self' data:; frame-ancestors 'none'"
            )
            headers["X-Frame-Options"] = "DENY"
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=headers)

    async def _openrpc(self, request: web.Request) -> web.Response:
        return web.json_response(openrpc_document(self.registry, self.services.version, self.port))

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        decision = classify_caller(request.headers, port=self.port, token=self.token, extra_hosts=self.extra_hosts)
        if isinstance(decision, Refusal):
            _refusals.log(logging.WARNING, decision.value, "refused WebSocket: %s", decision.value)
            if decision is Refusal.BAD_TOKEN:
                return _refusal(401, ErrorCode.UNAUTHORIZED, decision.value)
            return _refusal(403, ErrorCode.ORIGIN_NOT_APPROVED, decision.value)
        # No permessage-deflate: on loopback it only costs CPU (it was ~10% of a status call).
        limit = self.max_message_size
        if decision.kind is not CallerKind.LOCAL:
            # A page has proven nothing yet at the upgrade; the limit grows once it has (and is approved).
            limit = min(limit, UNAPPROVED_MAX_MESSAGE)
        lift_deadline(request)  # the heartbeat bounds a WebSocket from here on
        ws = _BridgeWebSocket(max_msg_size=limit, raised_max_msg_size=self.max_message_size, heartbeat=30.0)
        await ws.prepare(request)
        await self._serve(ws, decision)
        return ws

    async def _serve(self, ws: _BridgeWebSocket, caller: Caller) -> None:
        conn = Connection(
            caller,
            self.services,
            self.registry,
            max_in_flight=self.max_in_flight,
            budget=self.budget,
            page_secret=self.page_secret,
        )
        self.connections.add(conn)
        self._sockets[conn] = ws
        writer = asyncio.create_task(self._write(ws, conn), name=f"ws{conn.id}:writer")
        log.info("ws%d opened (%s)", conn.id, caller.kind.value)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await conn.handle_text(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    error = BridgeError(ErrorCode.INVALID_INPUT, "binary-frame")
                    conn.send(jsonrpc.error_response(None, error, jsonrpc.INVALID_REQUEST))
                if ws.limited:
                    # A key proven, or an approval made outside this daemon (CLI editing the file): next frame.
                    self._raise_limit(conn)
                # Inline answers (and anything queued meanwhile) go out now, without a writer wake-up.
                await self._flush(ws, conn)
        finally:
            self.connections.discard(conn)
            self._sockets.pop(conn, None)
            await conn.close()
            with contextlib.suppress(Exception):
                await writer
            log.info("ws%d closed", conn.id)

    async def _write(self, ws: web.WebSocketResponse, conn: Connection) -> None:
        outbox = conn.outbox
        while True:
            await outbox.wait()
            # Frames queued before close() still go out (as with the former end-of-queue sentinel).
            if ws.closed or not await self._flush(ws, conn) or outbox.closed:
                return

    @staticmethod
    async def _flush(ws: web.WebSocketResponse, conn: Connection) -> bool:
        """Send the queued frames in order, unless another coroutine is sending (it sends them); False once broken."""
        outbox = conn.outbox
        if outbox.sending:
            return True
        outbox.sending = True
        try:
            while (text := outbox.pop()) is not None:
                if ws.closed:
                    return False
                await ws.send_str(text)
        except ConnectionError:
            return False
        finally:
            outbox.sending = False
        return True

    def build_app(self) -> web.Application:
        """The aiohttp application (also used by tests with their own runner)."""
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        for path in _PAGES:
            app.router.add_get(path, self._page)
        for path in _PUBLIC_PATHS:
            app.router.add_route("OPTIONS", path, self._page)  # answered by the middleware
        app.router.add_get("/openrpc.json", self._openrpc)
        app.router.add_get("/ws", self._ws)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        # Close the sockets ourselves (1001 "going away"): aiohttp would otherwise wait for the handlers.
        for conn, ws in list(self._sockets.items()):
            await conn.close()
            with contextlib.suppress(Exception):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"bridge stopping")

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> None:
        """Listen on the loopback addresses; port 0 picks a free port (the first host decides)."""
        runner = GuardedRunner(self.build_app(), self.guard, access_log=None, handle_signals=False)
        await runner.setup()
        self.guard.install(asyncio.get_running_loop())
        self._runner = runner
        try:
            for host in hosts:
                if host == "::1" and not socket.has_ipv6:
                    continue
                site = web.TCPSite(runner, host, self.port, reuse_address=True)
                try:
                    await site.start()
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise PortInUseError(self.port, port_holder(self.port)) from None
                    if host == "::1":
                        log.warning("IPv6 loopback unavailable; listening on 127.0.0.1 only")
                        continue
                    raise
                if self.port == 0:
                    self.port = int(runner.addresses[0][1])
        except BaseException:
            await runner.cleanup()
            self._runner = None
            self.guard.uninstall()
            raise
        log.info("listening on http://127.0.0.1:%d", self.port)

    async def stop(self) -> None:
        """Close every connection and the listeners."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.guard.uninstall()
