"""TLS 1.2 client with mutual authentication by a key that can only sign (CPS card or PKCS#12): the connection.

This module holds `TlsConnection`, an established connection and its I/O (records, socket deadlines,
abort, close). The handshake is in `tls_handshake`, the session cache in `tls_sessions`, where to
connect and as whom in `tls_endpoint`, the errors in `tls_errors`.

Built on tlslite-ng (pure Python, so the CertificateVerify signature can come from any
`cryptography` RSAPrivateKey, e.g. the card-backed one) with three local adaptations:

* `ExternalRsaKey` (tls_key.py) turns tlslite's "sign this DigestInfo" into `key.sign(digest,
  PKCS1v15(), Prehashed(h))`, which is what the card's INTERNAL AUTHENTICATE does;
* `FastRecordLayer` (tls_aead.py) encrypts records with `cryptography`'s AES-GCM/ChaCha20/AES-CBC;
* the server chain is checked with `cryptography.x509.verification` (trust anchors + host name) as
  soon as the server's Certificate message arrives, i.e. BEFORE the card is asked to sign.

Only TLS 1.2 and the DMP's suites (PDT-INF-579v4, "Accès LPS") are offered, AEAD first. Sessions
(session ID or ticket) are kept in a `TlsSessionCache` owned by the caller, so a reconnect resumes
without a new card signature. Sessions heal: a server that refuses the offered session (e.g. it was
restarted with new ticket keys) gets a full handshake on the same connection, and a resumed handshake
that fails anyway drops the cached session and is redone at once as a full handshake; a session is not
offered past its age limit.

Deadlines: `open`, `send_all` and `recv` take an absolute `deadline` (time.monotonic()); every socket
wait is bounded by what is left of it, and running out raises `TlsTimeout` (TIMEOUT, saying which step
timed out). `abort()` may be called from another thread to end a blocked call at once.

Everything here is blocking: call it from a worker thread (see `bridge.dmp.http`), never from the
event loop. The card signature happens on that thread, inside `TlsConnection.open`.
"""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tlslite.errors import TLSError

from bridge.crypto.tls_endpoint import TlsEndpoint
from bridge.crypto.tls_errors import TlsError, TlsTimeout, time_left
from bridge.crypto.tls_handshake import HandshakeInfo, handshake
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.errors import BridgeError

__all__ = ["RECORD_PAYLOAD", "TlsConnection"]

#: Largest application payload of one TLS record; writes are cut to this size (tlslite re-slices
#: a bigger buffer with a copy per record, which is quadratic).
RECORD_PAYLOAD = 16384


@dataclass
class TlsConnection:
    """One established TLS 1.2 connection (blocking; use it from one thread at a time)."""

    endpoint: TlsEndpoint
    info: HandshakeInfo
    _conn: Any = field(repr=False)
    _closed: bool = False
    #: The socket timeout last set (the handshake's, until the first send or receive).
    _timeout: float = 0.0

    @classmethod
    def open(
        cls,
        endpoint: TlsEndpoint,
        sessions: TlsSessionCache | None = None,
        *,
        deadline: float | None = None,
        on_socket: Callable[[socket.socket], None] | None = None,
    ) -> TlsConnection:
        """Connect and handshake (resuming a cached session when possible), before `deadline` (monotonic).

        A resumed handshake that fails drops the cached session and is retried once at once as a full
        handshake, so a restarted server never leaves the client stuck on a stale session. `on_socket`
        is given each TCP socket as soon as it is connected (so another thread may shut it down).

        Raises:
            TlsTimeout: `deadline` or a configured timeout ran out (TIMEOUT, with the stage).
            TlsError: unreachable, refused, untrusted server, host mismatch.
            BridgeError: whatever the client key raised (e.g. PIN_INCORRECT, CARD_REMOVED), unchanged.
        """
        conn, info = handshake(endpoint, sessions, deadline=deadline, on_socket=on_socket)
        return cls(endpoint, info, conn)

    @property
    def closed(self) -> bool:
        """True once closed by us or by an I/O failure."""
        return self._closed or bool(self._conn.closed)

    def peer_closed_while_idle(self) -> bool:
        """True if the idle connection has something to read: the server closed it (FIN or alert).

        An HTTP server sends nothing unsolicited on an idle keep-alive connection, so anything
        readable means it is going away; checking before reusing the connection avoids sending a
        request into a closing socket (and a retry).
        """
        if self.closed:
            return True
        try:
            readable, _, _ = select.select([self._conn.sock.socket], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def send_all(self, data: bytes | bytearray | memoryview, deadline: float | None = None) -> None:
        """Send bytes, one TLS record per 16 KiB slice (no copy of the caller's buffer), before `deadline`."""
        view = memoryview(data).cast("B")
        try:
            for start in range(0, len(view), RECORD_PAYLOAD):
                self._bound(deadline, "send")
                self._conn.write(view[start : start + RECORD_PAYLOAD])
        except BaseException as exc:
            self._closed = True
            raise _map_io_error(self.endpoint, exc, "send") from exc

    def recv(self, max_bytes: int = 65536, deadline: float | None = None) -> bytes:
        """Up to `max_bytes` of application data, before `deadline`; b"" when the server closed the connection."""
        try:
            self._bound(deadline, "receive")
            data = self._conn.read(max=max_bytes)
        except BaseException as exc:
            self._closed = True
            raise _map_io_error(self.endpoint, exc, "receive") from exc
        if not data:
            self._closed = True
        return bytes(data)

    def _bound(self, deadline: float | None, stage: str) -> None:
        # Each socket wait gets what is left of the call's deadline (never more than io_timeout). The
        # timeout is re-set only when it shrank by half a second (one syscall per record otherwise); the
        # HTTPS client's watchdog holds the exact deadline.
        left = time_left(self.endpoint.io_timeout, deadline, stage, f"{self.endpoint.host}:{self.endpoint.port}")
        if left < self._timeout - 0.5 or left > self._timeout:
            self._conn.sock.socket.settimeout(left)
            self._timeout = left

    def abort(self) -> None:
        """End any blocked send or receive at once (safe from another thread); the connection is then dead."""
        self._closed = True
        with contextlib.suppress(Exception):
            self._conn.sock.socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close (sends close_notify when possible; never raises)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._conn.sock.socket.settimeout(2.0)
            # closeSocket=True: send close_notify and shut down without waiting for the peer's
            # (some servers never answer); a clean close keeps the session resumable.
            self._conn.closeSocket = True
            self._conn.close()
        with contextlib.suppress(Exception):
            self._conn.sock.socket.close()


def _map_io_error(endpoint: TlsEndpoint, exc: BaseException, stage: str) -> BaseException:
    where = f"{endpoint.host}:{endpoint.port}"
    if isinstance(exc, BridgeError):
        return exc
    if isinstance(exc, TimeoutError):
        return TlsTimeout(stage, f"timeout ({stage}) with {where}")
    doing = "sending" if stage == "send" else "receiving"
    if isinstance(exc, (TLSError, OSError, ValueError)):
        return TlsError(f"connection to {where} lost while {doing} ({exc.__class__.__name__})")
    return exc
