"""Async HTTPS/1.1 client for the DMP over the card-authenticated TLS connection.

One `HttpsClient` = one endpoint and a small pool of keep-alive connections, each request on a worker
thread of the client's own pool: one slow call never blocks another caller. All socket and TLS work
(including the handshake, hence the card signature) runs on those threads; the event loop only
awaits them. New connections resume the shared TLS session, so no new card signature is needed.

At most once: a request is sent again automatically only when that cannot apply it twice — its bytes
provably never all left (sending failed), or it is idempotent (reads) and a kept-alive connection
closed before any response byte. A non-idempotent request (`idempotent=False`, the default for POST)
whose bytes all went out and got no answer raises `OutcomeUnknown` (DMP_OUTCOME_UNKNOWN): the server
may or may not have applied it, and only the caller can check before trying again.

Deadlines: every request has a total deadline (queueing for a connection, connect, TLS, send,
receive); running out is TIMEOUT saying which step timed out (or DMP_OUTCOME_UNKNOWN for a write
already sent). A watchdog on the event loop aborts the socket at the deadline, so even a stalled
handshake ends on time.

Errors: network and TLS failures are `TlsError` (DMP_UNREACHABLE with a detail); a malformed response
is `HttpProtocolError`; a BridgeError raised by the card-backed key (PIN, CARD_REMOVED, ...) comes out
unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, ParamSpec, TypeVar, cast

from bridge.crypto.tls_connection import RECORD_PAYLOAD, TlsConnection
from bridge.crypto.tls_endpoint import TlsEndpoint
from bridge.crypto.tls_errors import TlsError, TlsTimeout
from bridge.crypto.tls_handshake import HandshakeInfo
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.http_wire import HttpResponse, ResponseParser, build_request_head
from bridge.errors import BridgeError, ErrorCode

__all__ = ["Body", "HttpsClient", "OutcomeUnknown"]

#: A request body: bytes-like, a sequence of bytes-like parts sent one after the other (e.g. the
#: MTOM envelope, the document, the closing boundary, without joining them), or a binary file
#: object read in 16 KiB slices (sized from its current position to its end).
Body = bytes | bytearray | memoryview | Sequence[bytes | bytearray | memoryview] | BinaryIO

_RECV = 256 * 1024
#: Seconds after the deadline before the watchdog shuts the socket (the worker's own socket timeouts
#: normally end the call first, with a precise stage).
_WATCHDOG_GRACE = 0.25
_P = ParamSpec("_P")
_T = TypeVar("_T")


class OutcomeUnknown(BridgeError):
    """A non-idempotent request went out whole and no answer came: it may or may not have been applied."""

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(ErrorCode.DMP_OUTCOME_UNKNOWN, detail, **extra)


class HttpsClient:
    """Pooled keep-alive HTTPS/1.1 client for one endpoint (see the module docstring)."""

    def __init__(
        self,
        endpoint: TlsEndpoint,
        *,
        sessions: TlsSessionCache | None = None,
        max_response: int = 64 * 1024 * 1024,
        max_connections: int = 4,
        timeout: float = 120.0,
    ) -> None:
        self.endpoint = endpoint
        self.sessions = sessions if sessions is not None else TlsSessionCache()
        self.max_response = max_response
        #: Default total deadline of one request, in seconds.
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=max_connections, thread_name_prefix=f"https-{endpoint.host}")
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[TlsConnection] = []  # touched on the event loop only
        self._closed = False
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

    async def connect(self, *, deadline: float | None = None) -> HandshakeInfo:
        """Make sure a connection is up (e.g. to do the card signature at login); its handshake info."""
        deadline = self._deadline(deadline)
        async with self._slot(deadline):
            conn = self._take_idle()
            if conn is None:
                attempt = _Attempt()
                conn = await self._guarded(deadline, attempt, self._open, deadline, attempt)
            self._give_back(conn)
            return conn.info

    async def get(self, path: str, headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
        """GET `path` (idempotent)."""
        return await self.request("GET", path, headers=headers)

    async def post(
        self,
        path: str,
        body: Body,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
        *,
        idempotent: bool = False,
        deadline: float | None = None,
    ) -> HttpResponse:
        """POST `body` with `content_type`; `idempotent=True` only for requests safe to apply twice."""
        return await self.request(
            "POST",
            path,
            body=body,
            headers=[("Content-Type", content_type), *headers],
            idempotent=idempotent,
            deadline=deadline,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Body | None = None,
        headers: Sequence[tuple[str, str]] = (),
        idempotent: bool | None = None,
        deadline: float | None = None,
    ) -> HttpResponse:
        """Send one request on a pooled connection and return the whole response.

        `idempotent` defaults to True for GET and HEAD only; `deadline` is a time.monotonic() instant
        (default: now + `timeout`).

        Raises:
            OutcomeUnknown: a non-idempotent request was sent and no answer came.
            TlsTimeout: the deadline ran out (TIMEOUT) before the request was sent, or for a read.
            TlsError: the DMP could not be reached or the connection failed (the request was not applied).
        """
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD")
        deadline = self._deadline(deadline)
        length, parts = _prepare_body(body)
        head = build_request_head(method, path, self.host_header, headers, length if body is not None else None)
        async with self._slot(deadline):
            attempt = _Attempt()
            conn = self._take_idle()
            response, kept = await self._guarded(
                deadline, attempt, self._exchange, attempt, conn, method, head, parts, idempotent, deadline
            )
            if kept is not None:
                self._give_back(kept)
            return response

    async def aclose(self) -> None:
        """Close the idle connections and stop the worker threads (calls in flight finish first)."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=False)

    # -- event-loop side ---------------------------------------------------------------------------

    def _deadline(self, deadline: float | None) -> float:
        return deadline if deadline is not None else time.monotonic() + self.timeout

    @contextlib.asynccontextmanager
    async def _slot(self, deadline: float) -> AsyncIterator[None]:
        # One connection per call in flight, at most `max_connections`; waiting counts in the deadline.
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await self._slots.acquire()
        except TimeoutError:
            where = f"{self.endpoint.host}:{self.endpoint.port}"
            raise TlsTimeout("queue", f"no free connection to {where} before the deadline") from None
        try:
            yield
        finally:
            self._slots.release()

    def _take_idle(self) -> TlsConnection | None:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        return None

    def _give_back(self, conn: TlsConnection) -> None:
        if self._closed or conn.closed:
            conn.close()
        else:
            self._idle.append(conn)

    async def _guarded(
        self, deadline: float, attempt: _Attempt, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        # Every blocking step (TLS, socket, card signature) runs on a worker thread; a watchdog shuts
        # the attempt's socket just after the deadline so that even a stalled handshake ends.
        if self._closed:
            raise TlsError("the DMP client is closed")
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - time.monotonic()) + _WATCHDOG_GRACE
        watchdog = loop.call_later(delay, attempt.abort)
        try:
            # In the caller's context: a card signature (TLS client auth) of a gone caller stops at its APDU.
            work = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
            return await loop.run_in_executor(self._executor, work)
        finally:
            watchdog.cancel()

    # -- everything below runs on a worker thread ---------------------------------------------

    def _open(self, deadline: float, attempt: _Attempt) -> TlsConnection:
        conn = TlsConnection.open(self.endpoint, self.sessions, deadline=deadline, on_socket=attempt.watch_socket)
        self.handshakes.append(conn.info)
        if not attempt.watch(conn.abort):
            conn.close()
            raise TlsTimeout("tls-handshake", "deadline reached during the TLS handshake")
        return conn

    def _exchange(
        self,
        attempt: _Attempt,
        conn: TlsConnection | None,
        method: str,
        head: bytes,
        parts: _BodyParts,
        idempotent: bool,
        deadline: float,
    ) -> tuple[HttpResponse, TlsConnection | None]:
        if conn is not None and conn.peer_closed_while_idle():
            conn.close()  # the server ended keep-alive while we were idle: reconnect (resumed) first
            conn = None
        for tries_left in (1, 0):
            reused = conn is not None
            if conn is None:
                conn = self._open(deadline, attempt)
            else:
                attempt.watch(conn.abort)
            try:
                return self._send_and_receive(conn, method, head, parts, deadline)
            except _NotSent as exc:
                conn.close()
                conn = None
                # The server never got the whole request, so it cannot have applied it: sending it again
                # on a new connection (resumed TLS session, no card signature) is safe for any request.
                if not (reused and tries_left and parts.rewind()) or time.monotonic() >= deadline:
                    raise exc.public(deadline) from exc.cause
            except _NoAnswer as exc:
                conn.close()
                conn = None
                if not idempotent:
                    raise exc.unknown(deadline) from exc.cause
                # A read that met a closing kept-alive connection is sent again once.
                if not (reused and tries_left and parts.rewind()) or time.monotonic() >= deadline:
                    raise exc.public(deadline) from exc.cause
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _send_and_receive(
        self, conn: TlsConnection, method: str, head: bytes, parts: _BodyParts, deadline: float
    ) -> tuple[HttpResponse, TlsConnection | None]:
        parser = ResponseParser(self.max_response, method)
        try:
            if parts.small is not None and len(head) + len(parts.small) <= RECORD_PAYLOAD:
                conn.send_all(head + parts.small, deadline)  # one record for small requests
            else:
                conn.send_all(head, deadline)
                parts.send(conn, deadline)
        except TlsError as exc:
            raise _NotSent(exc) from exc
        while True:
            try:
                data = conn.recv(_RECV, deadline)
            except TlsError as exc:
                # Before any response byte nothing says whether the server applied the request.
                raise _NoAnswer(exc, started=parser.started) from exc
            if not data:
                if not parser.started:
                    raise _NoAnswer(None, started=False)
                try:
                    final = parser.feed_eof()
                except BridgeError as exc:
                    raise _NoAnswer(exc, started=True) from exc
                conn.close()
                return final, None
            parser.feed(data)
            response = parser.next_response()
            if response is not None:
                if not response.keep_alive:
                    conn.close()
                    return response, None
                return response, conn


class _Attempt:
    """How to abort what a worker is blocked on (its socket), for the event loop's watchdog."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._abort: Callable[[], None] | None = None
        self._aborted = False

    def watch(self, abort: Callable[[], None]) -> bool:
        """Use `abort` from now on; False (and `abort` called) if the watchdog already fired."""
        with self._lock:
            self._abort = abort
            if self._aborted:
                abort()
            return not self._aborted

    def watch_socket(self, sock: socket.socket) -> None:
        """Follow a socket being connected or handshaking."""

        def shut() -> None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        self.watch(shut)

    def abort(self) -> None:
        """The deadline passed: end whatever the worker is blocked on."""
        with self._lock:
            self._aborted = True
            if self._abort is not None:
                self._abort()


class _NotSent(Exception):
    """Sending failed: the server never had the whole request."""

    def __init__(self, cause: TlsError) -> None:
        super().__init__()
        self.cause = cause

    def public(self, deadline: float) -> BridgeError:
        """The error to report (not retried)."""
        if isinstance(self.cause, TlsTimeout) or time.monotonic() >= deadline:
            return TlsTimeout("send", "deadline reached while sending the request (not delivered)")
        return self.cause


class _NoAnswer(Exception):
    """The request went out whole; the connection failed or closed before the response was complete."""

    def __init__(self, cause: BridgeError | None, *, started: bool) -> None:
        super().__init__()
        self.cause = cause
        self.started = started

    def public(self, deadline: float) -> BridgeError:
        """The error to report for an idempotent request that is not (or no longer) retried."""
        if isinstance(self.cause, TlsTimeout) or time.monotonic() >= deadline:
            return TlsTimeout("receive", "deadline reached while waiting for the answer")
        if isinstance(self.cause, BridgeError):
            return self.cause
        return TlsError("the server closed the connection without answering")

    def unknown(self, deadline: float) -> OutcomeUnknown:
        """The error to report for a non-idempotent request: sent, and its fate unknown."""
        if isinstance(self.cause, TlsTimeout) or time.monotonic() >= deadline:
            why = "no answer before the deadline"
        elif self.started:
            why = "the answer was cut"
        else:
            why = "the connection closed without an answer"
        return OutcomeUnknown(f"request sent, {why}: it may have been applied")


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

    def send(self, conn: TlsConnection, deadline: float | None = None) -> None:
        """Write everything to `conn` in record-sized slices, before `deadline`."""
        for view in self._views:
            conn.send_all(view, deadline)
        if self._stream is not None:
            buf = bytearray(RECORD_PAYLOAD)
            view = memoryview(buf)
            while True:
                n = self._stream.readinto(view)  # type: ignore[attr-defined]
                if not n:
                    break
                conn.send_all(view[:n], deadline)

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
