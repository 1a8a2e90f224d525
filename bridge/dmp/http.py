"""Async HTTPS/1.1 client for the DMP over the card-authenticated TLS connection.

One `HttpsClient` = one endpoint, one keep-alive connection, one worker thread. All socket and TLS
work (including the handshake, hence the card signature) runs on that thread; the event loop only
awaits it. One handshake serves many calls (keep-alive); when the server has closed an idle
connection the request is sent again on a new connection that resumes the TLS session, so no new
card signature is needed.

Errors: network, timeout and TLS failures are `TlsError` (DMP_UNREACHABLE with a detail); a
malformed response is `HttpProtocolError`; a BridgeError raised by the card-backed key (PIN,
CARD_REMOVED, ...) comes out unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, ParamSpec, TypeVar, cast

from bridge.crypto.tls import RECORD_PAYLOAD, HandshakeInfo, TlsConnection, TlsEndpoint, TlsError, TlsSessionCache
from bridge.dmp.http_wire import HttpResponse, ResponseParser, build_request_head
from bridge.errors import BridgeError, ErrorCode

__all__ = ["Body", "HttpsClient"]

#: A request body: bytes-like, a sequence of bytes-like parts sent one after the other (e.g. the
#: MTOM envelope, the document, the closing boundary, without joining them), or a binary file
#: object read in 16 KiB slices (sized from its current position to its end).
Body = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview] | BinaryIO

_RECV = 256 * 1024
_P = ParamSpec("_P")
_T = TypeVar("_T")


class HttpsClient:
    """Keep-alive HTTPS/1.1 client for one endpoint (requests are serialised on one connection)."""

    def __init__(
        self,
        endpoint: TlsEndpoint,
        *,
        sessions: TlsSessionCache | None = None,
        max_response: int = 64 * 1024 * 1024,
    ) -> None:
        self.endpoint = endpoint
        self.sessions = sessions if sessions is not None else TlsSessionCache()
        self.max_response = max_response
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"https-{endpoint.host}")
        self._lock = asyncio.Lock()
        self._conn: TlsConnection | None = None
        #: Every handshake made so far (full or resumed), oldest first.
        self.handshakes: list[HandshakeInfo] = []

    async def __aenter__(self) -> HttpsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def host_header(self) -> str:
        """The Host header value."""
        name = self.endpoint.expected_name
        return name if self.endpoint.port == 443 else f"{name}:{self.endpoint.port}"

    async def connect(self) -> HandshakeInfo:
        """Make sure a connection is up (e.g. to do the card signature at login); its handshake info."""
        async with self._lock:
            return await self._run(self._ensure_connection)

    async def get(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
        """GET `path`."""
        return await self.request("GET", path, headers=headers)

    async def post(
        self, path: str, body: Body, content_type: str, headers: Sequence[tuple[str, str]] = ()
    ) -> HttpResponse:
        """POST `body` with `content_type` (e.g. a SOAP or MTOM multipart/related type)."""
        return await self.request("POST", path, body=body, headers=[("Content-Type", content_type), *headers])

    async def request(
        self, method: str, path: str, *, body: Body | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> HttpResponse:
        """Send one request on the keep-alive connection and return the whole response."""
        length, parts = _prepare_body(body)
        head = build_request_head(method, path, self.host_header, headers, length if body is not None else None)
        async with self._lock:
            return await self._run(self._exchange, method, head, parts)

    async def aclose(self) -> None:
        """Close the connection and stop the worker thread."""
        async with self._lock:
            await self._run(self._close)
        self._executor.shutdown(wait=False)

    async def _run(self, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        # Every blocking step (TLS, socket, card signature) runs on this client's own thread.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(func, *args, **kwargs))

    # -- everything below runs on the worker thread ---------------------------------------------

    def _ensure_connection(self) -> HandshakeInfo:
        if self._conn is None or self._conn.closed:
            self._conn = TlsConnection.open(self.endpoint, self.sessions)
            self.handshakes.append(self._conn.info)
        return self._conn.info

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _exchange(self, method: str, head: bytes, parts: _BodyParts) -> HttpResponse:
        if self._conn is not None and self._conn.peer_closed_while_idle():
            self._close()  # the server ended keep-alive while we were idle: reconnect (resumed) first
        reused = self._conn is not None
        self._ensure_connection()
        try:
            return self._send_and_receive(method, head, parts)
        except _NoResponse as exc:
            self._close()
            # A kept-alive connection the server closed while idle fails before any response byte:
            # the request never reached the application, so it is sent again once, on a new
            # connection (which resumes the TLS session: no new card signature).
            if not reused or not parts.rewind():
                raise exc.public() from exc.cause
        except BaseException:
            self._close()
            raise
        self._ensure_connection()
        try:
            return self._send_and_receive(method, head, parts)
        except _NoResponse as exc:
            self._close()
            raise exc.public() from exc.cause
        except BaseException:
            self._close()
            raise

    def _send_and_receive(self, method: str, head: bytes, parts: _BodyParts) -> HttpResponse:
        conn = self._conn
        assert conn is not None
        parser = ResponseParser(self.max_response, method)
        try:
            if parts.small is not None and len(head) + len(parts.small) <= RECORD_PAYLOAD:
                conn.send_all(head + parts.small)  # one record for small requests
            else:
                conn.send_all(head)
                parts.send(conn)
        except TlsError as exc:
            raise _NoResponse(exc) from exc
        while True:
            try:
                data = conn.recv(_RECV)
            except TlsError as exc:
                if not parser.started:
                    raise _NoResponse(exc) from exc
                raise
            if not data:
                if not parser.started:
                    raise _NoResponse(None)
                final = parser.feed_eof()
                self._close()
                return final
            parser.feed(data)
            response = parser.next_response()
            if response is not None:
                if not response.keep_alive:
                    self._close()
                return response


class _NoResponse(Exception):
    """Sending failed, or the server closed the connection, before any byte of response."""

    def __init__(self, cause: TlsError | None) -> None:
        super().__init__()
        self.cause = cause

    def public(self) -> TlsError:
        """The error to report when the request is not (or no longer) retried."""
        return self.cause or TlsError("the server closed the connection without answering")


class _BodyParts:
    """A request body as slices to send, without joining or copying the caller's buffers."""

    def __init__(self, views: list[memoryview], stream: BinaryIO | None, stream_length: int) -> None:
        self._views = views
        self._stream = stream
        self._start = stream.tell() if stream is not None else 0
        self.total = sum(len(v) for v in views) + stream_length
        #: The whole body as one small bytes object, when it fits in one record with the head.
        self.small: bytes | None = None
        if stream is None and self.total < RECORD_PAYLOAD:
            self.small = b"".join(views)

    def send(self, conn: TlsConnection) -> None:
        """Write everything to `conn` in record-sized slices."""
        for view in self._views:
            conn.send_all(view)
        if self._stream is not None:
            buf = bytearray(RECORD_PAYLOAD)
            view = memoryview(buf)
            while True:
                n = self._stream.readinto(view)  # type: ignore[attr-defined]
                if not n:
                    break
                conn.send_all(view[:n])

    def rewind(self) -> bool:
        """Prepare to send again; False if the body cannot be re-read."""
        if self._stream is None:
            return True
        try:
            self._stream.seek(self._start)
        except (OSError, io.UnsupportedOperation):
            return False
        return True


def _prepare_body(body: Body | None) -> tuple[int, _BodyParts]:
    if body is None:
        parts = _BodyParts([], None, 0)
    elif isinstance(body, bytes | bytearray | memoryview):
        parts = _BodyParts([memoryview(body).cast("B")], None, 0)
    elif isinstance(body, Sequence):
        pieces = cast("Sequence[bytes | bytearray | memoryview]", body)
        parts = _BodyParts([memoryview(p).cast("B") for p in pieces], None, 0)
    else:
        with contextlib.suppress(OSError, io.UnsupportedOperation):
            start = body.tell()
            end = body.seek(0, io.SEEK_END)
            body.seek(start)
            return end - start, _BodyParts([], body, end - start)
        raise BridgeError(ErrorCode.INVALID_PARAMS, "a streamed body must be seekable (its length is sent first)")
    return parts.total, parts
