"""TLS 1.2 client with mutual authentication by a key that can only sign (CPS card or PKCS#12).

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
import datetime as dt
import ipaddress
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from tlslite.api import X509, HandshakeSettings, TLSConnection, X509CertChain
from tlslite.constants import AlertDescription, CipherSuite
from tlslite.errors import TLSAbruptCloseError, TLSError, TLSLocalAlert, TLSRemoteAlert

from bridge.crypto.tls_aead import install_fast_record_layer
from bridge.crypto.tls_key import ExternalRsaKey
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "DMP_CIPHER_SUITES",
    "RECORD_PAYLOAD",
    "ClientIdentity",
    "HandshakeInfo",
    "ServerTrust",
    "TlsConnection",
    "TlsEndpoint",
    "TlsError",
    "TlsSessionCache",
    "TlsTimeout",
]

log = logging.getLogger(__name__)

#: The DMP's TLS 1.2 suites for LPS access (PDT-INF-579v4, 10/07/2025), IANA value -> name.
DMP_CIPHER_SUITES: dict[int, str] = {
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
}

#: Largest application payload of one TLS record; writes are cut to this size (tlslite re-slices
#: a bigger buffer with a copy per record, which is quadratic).
RECORD_PAYLOAD = 16384


class TlsError(BridgeError):
    """A TLS failure that is not the card's: unreachable, refused, untrusted server, host mismatch."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(ErrorCode.DMP_UNREACHABLE, detail, **extra)


class TlsTimeout(TlsError):
    """A deadline ran out; `stage` says during what (connect, tls-handshake, send, receive)."""

    def __init__(self, stage: str, detail: str) -> None:
        BridgeError.__init__(self, ErrorCode.TIMEOUT, detail, stage=stage)
        self.stage = stage


@dataclass(frozen=True)
class ClientIdentity:
    """The client certificate chain (leaf first) and its private key (software or card-backed)."""

    chain: tuple[x509.Certificate, ...]
    key: rsa.RSAPrivateKey

    def __post_init__(self) -> None:
        if not self.chain:
            raise ValueError("a client identity needs at least its certificate")
        leaf_key = self.chain[0].public_key()
        if not isinstance(leaf_key, rsa.RSAPublicKey) or leaf_key.public_numbers() != (
            self.key.public_key().public_numbers()
        ):
            raise ValueError("the private key does not match the client certificate")

    def __repr__(self) -> str:
        return f"ClientIdentity({self.chain[0].subject.rfc4514_string()!r})"

    @classmethod
    def from_pkcs12(cls, data: bytes, password: bytes | bytearray | None) -> ClientIdentity:
        """Load a PKCS#12 (e.g. the establishment's AUTH_CLI certificate, indirect mode)."""
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, bytes(password) if password else None)
        except ValueError as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "PKCS#12 unreadable or wrong password") from exc
        if cert is None or not isinstance(key, rsa.RSAPrivateKey):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "PKCS#12 without an RSA key and certificate")
        return cls((cert, *extra), key)


@dataclass(frozen=True)
class ServerTrust:
    """Trust anchors for the server chain (IGC-Santé roots in production, the test CA in tests)."""

    roots: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem_file(cls, path: str | Path) -> ServerTrust:
        """Read a PEM bundle of root certificates."""
        try:
            roots = x509.load_pem_x509_certificates(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"cannot read trust anchors from {path}") from exc
        return cls(tuple(roots))

    def verify(self, server_name: str, chain: Sequence[x509.Certificate]) -> None:
        """Check `chain` (leaf first) up to a root, for `server_name`; TlsError saying why if not."""
        subject: x509.DNSName | x509.IPAddress
        try:
            subject = x509.IPAddress(ipaddress.ip_address(server_name))
        except ValueError:
            subject = x509.DNSName(server_name)
        verifier = (
            PolicyBuilder().store(Store(list(self.roots))).time(dt.datetime.now(dt.UTC)).build_server_verifier(subject)
        )
        try:
            verifier.verify(chain[0], list(chain[1:]))
        except VerificationError as exc:
            names = _dns_names(chain[0])
            if not _name_matches(server_name, names):
                raise TlsError(f"host name mismatch: certificate is for {', '.join(names) or 'no name'}") from exc
            raise TlsError(f"server certificate not trusted: {exc}") from exc


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]


def _name_matches(host: str, names: Sequence[str]) -> bool:
    # Only used to word the error; the decision is cryptography's.
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower()
        if name == host or (name.startswith("*.") and host.split(".", 1)[-1] == name[2:] and "." in host):
            return True
    return False


@dataclass(frozen=True)
class TlsEndpoint:
    """Where to connect, and as whom."""

    host: str
    port: int
    trust: ServerTrust
    identity: ClientIdentity | None = None
    #: Name checked against the server certificate and sent as SNI; defaults to `host`.
    server_name: str | None = None
    connect_timeout: float = 15.0
    io_timeout: float = 60.0

    @property
    def expected_name(self) -> str:
        """The name the server certificate must carry."""
        return self.server_name or self.host


@dataclass(frozen=True)
class HandshakeInfo:
    """What a handshake negotiated."""

    cipher_suite: str
    resumed: bool
    server_chain: tuple[x509.Certificate, ...]
    client_authenticated: bool


class TlsSessionCache:
    """TLS sessions to resume, one per (endpoint, client certificate); owned by one client, not global.

    The client certificate is part of the key, so a session authenticated by one card is never
    resumed for another. Call `clear()` when the card is removed or the user logs out: a resumed
    session needs no card, so keeping it would let calls go on without the card.
    """

    def __init__(self, max_age: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[_CacheKey, tuple[Any, tuple[x509.Certificate, ...], float]] = {}
        #: Seconds a session is offered after its full handshake (tickets also expire by their own
        #: lifetime hint, which tlslite checks); a server keeps sessions for a while only.
        self.max_age = max_age
        self._clock = clock

    def get(self, endpoint: TlsEndpoint) -> tuple[Any, tuple[x509.Certificate, ...]] | None:
        """The stored (tlslite Session, validated server chain) for this endpoint, if still resumable."""
        key = _cache_key(endpoint)
        with self._lock:
            entry = self._sessions.get(key)
            if entry is not None and self._clock() - entry[2] > self.max_age:
                del self._sessions[key]
                entry = None
        if entry is None or not entry[0].valid():
            return None
        return entry[0], entry[1]

    def put(self, endpoint: TlsEndpoint, session: Any, chain: tuple[x509.Certificate, ...]) -> None:
        """Remember a session after a successful handshake (a resumed one keeps its original age)."""
        key = _cache_key(endpoint)
        with self._lock:
            old = self._sessions.get(key)
            born = old[2] if old is not None and old[0] is session else self._clock()
            self._sessions[key] = (session, chain, born)

    def forget(self, endpoint: TlsEndpoint) -> None:
        """Drop the session of one endpoint and identity."""
        with self._lock:
            self._sessions.pop(_cache_key(endpoint), None)

    def clear(self) -> None:
        """Drop every session (card removed, logout)."""
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


_CacheKey = tuple[str, int, str, bytes | None]


def _cache_key(endpoint: TlsEndpoint) -> _CacheKey:
    identity = endpoint.identity
    fingerprint = identity.chain[0].fingerprint(hashes.SHA256()) if identity else None
    return (endpoint.host, endpoint.port, endpoint.expected_name, fingerprint)


def _handshake_settings() -> Any:
    settings = HandshakeSettings()
    settings.minVersion = (3, 3)
    settings.maxVersion = (3, 3)
    settings.versions = [(3, 3)]
    # Order = preference: AEAD first, CBC-SHA384 last (PDT-INF-579v4).
    settings.cipherNames = ["aes128gcm", "aes256gcm", "chacha20-poly1305", "aes256"]
    settings.macNames = ["aead", "sha384"]
    settings.keyExchangeNames = ["ecdhe_rsa"]
    settings.eccCurves = ["x25519", "secp256r1", "secp384r1"]
    # The card signs PKCS#1 v1.5 DigestInfos only: never offer PSS for our own signature.
    settings.rsaSchemes = ["pkcs1"]
    settings.rsaSigHashes = ["sha256", "sha384", "sha512"]
    # The DMP and IGC-Santé are RSA: advertise nothing else for the server's signatures either.
    settings.ecdsaSigHashes = []
    settings.dsaSigHashes = []
    settings.more_sig_schemes = []
    settings.useExtendedMasterSecret = True
    return settings.validate()


def _to_tlslite_chain(chain: Sequence[x509.Certificate]) -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = []
    for cert in chain:
        parsed = X509()
        parsed.parseBinary(bytearray(cert.public_bytes(Encoding.DER)))  # returns None, unlike parse()
        certs.append(parsed)
    return X509CertChain(certs)


class _VerifyingConnection(TLSConnection):  # type: ignore[misc]  # tlslite is untyped
    """tlslite's TLSConnection that checks the server chain when the Certificate message arrives.

    Checking there (rather than with tlslite's post-handshake `checker`) means an untrusted server
    never gets a card signature and the user is never asked for one.
    """

    def __init__(self, sock: socket.socket, trust: ServerTrust, server_name: str) -> None:
        super().__init__(sock)
        self.bridge_trust = trust
        self.bridge_server_name = server_name
        self.bridge_server_chain: tuple[x509.Certificate, ...] = ()
        self.bridge_verify_error: TlsError | None = None

    def _clientGetKeyFromChain(self, certificate: Any, settings: Any, tack_ext: Any = None) -> Iterator[Any]:
        chain = certificate.cert_chain
        if chain is not None and chain.getNumCerts() > 0:
            certs = tuple(x509.load_der_x509_certificate(bytes(c.bytes)) for c in chain.x509List)
            try:
                self.bridge_trust.verify(self.bridge_server_name, certs)
            except TlsError as exc:
                self.bridge_verify_error = exc
                alert = AlertDescription.bad_certificate
                if "not trusted" in (exc.detail or ""):
                    alert = AlertDescription.unknown_ca
                yield from self._sendError(alert, exc.detail)
            self.bridge_server_chain = certs
        yield from super()._clientGetKeyFromChain(certificate, settings, tack_ext)

    def _clientResume(
        self, session: Any, serverHello: Any, clientRandom: Any, nextProto: Any, settings: Any
    ) -> Iterator[Any]:
        # tlslite assumes a TLS 1.2 ticket is accepted whenever it offered one, so a server that refused
        # it (restarted, new ticket keys) and goes on with a full handshake fails with "Expecting
        # new_session_ticket, got certificate". RFC 5077 §3.4: a server accepting the ticket echoes
        # our (non-empty) session ID; any other ID means a full handshake, which tlslite then does.
        if session is not None and session.tls_1_0_tickets and serverHello.session_id != session.sessionID:
            return
        yield from super()._clientResume(session, serverHello, clientRandom, nextProto, settings)


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
        cached = sessions.get(endpoint) if sessions is not None else None
        if cached is not None:
            assert sessions is not None
            try:
                return cls._open_once(endpoint, sessions, cached, deadline, on_socket)
            except TlsTimeout:
                raise
            except TlsError as exc:
                if exc.extra.get("stage") == "connect":
                    raise  # nothing to do with the session: the server is not there
                log.info("resuming the TLS session with %s:%d failed (%s): full handshake", endpoint.host,
                         endpoint.port, exc.detail)  # fmt: skip
                sessions.forget(endpoint)
        return cls._open_once(endpoint, sessions, None, deadline, on_socket)

    @classmethod
    def _open_once(
        cls,
        endpoint: TlsEndpoint,
        sessions: TlsSessionCache | None,
        cached: tuple[Any, tuple[x509.Certificate, ...]] | None,
        deadline: float | None,
        on_socket: Callable[[socket.socket], None] | None,
    ) -> TlsConnection:
        where = f"{endpoint.host}:{endpoint.port}"
        try:
            sock = socket.create_connection(
                (endpoint.host, endpoint.port), timeout=_bounded(endpoint.connect_timeout, deadline, "connect", where)
            )
        except TimeoutError as exc:
            raise TlsTimeout("connect", f"timeout connecting to {where}") from exc
        except OSError as exc:
            raise TlsError(f"cannot connect to {where}: {exc.strerror or exc}", stage="connect") from exc
        if on_socket is not None:
            on_socket(sock)
        try:
            sock.settimeout(_bounded(endpoint.io_timeout, deadline, "tls-handshake", where))
        except TlsTimeout:
            _close_quietly(sock)
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _VerifyingConnection(sock, endpoint.trust, endpoint.expected_name)
        install_fast_record_layer(conn)
        # A peer closing a keep-alive connection without close_notify must not spoil the session
        # (HTTP framing detects truncation); tlslite would otherwise mark it non-resumable.
        conn.ignoreAbruptClose = True
        identity = endpoint.identity
        try:
            conn.handshakeClientCert(
                certChain=_to_tlslite_chain(identity.chain) if identity else None,
                privateKey=ExternalRsaKey(identity.key) if identity else None,
                session=cached[0] if cached else None,
                settings=_handshake_settings(),
                serverName=None if _is_ip(endpoint.expected_name) else endpoint.expected_name,
            )
        except BridgeError:
            _close_quietly(sock)
            raise
        except BaseException as exc:
            _close_quietly(sock)
            raise _map_handshake_error(conn, endpoint, exc) from exc
        suite = conn.session.cipherSuite
        if suite not in DMP_CIPHER_SUITES:  # tlslite only offers ours; a server picking another is broken
            _close_quietly(sock)
            raise TlsError(f"server chose a cipher suite not allowed for the DMP: {suite:#06x}")
        resumed = bool(conn.resumed)
        chain = cached[1] if resumed and cached else conn.bridge_server_chain
        if sessions is not None and conn.session.valid():
            sessions.put(endpoint, conn.session, chain)
        info = HandshakeInfo(
            cipher_suite=DMP_CIPHER_SUITES[suite],
            resumed=resumed,
            server_chain=chain,
            client_authenticated=identity is not None and (resumed or conn.session.clientCertChain is not None),
        )
        log.info(
            "TLS 1.2 with %s:%d: %s, %s",
            endpoint.host,
            endpoint.port,
            info.cipher_suite,
            "resumed" if resumed else "full handshake",
        )
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
        left = _bounded(self.endpoint.io_timeout, deadline, stage, f"{self.endpoint.host}:{self.endpoint.port}")
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


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _bounded(limit: float, deadline: float | None, stage: str, where: str) -> float:
    """`limit` seconds, or less if the deadline comes first; TlsTimeout if it has passed."""
    if deadline is None:
        return limit
    left = deadline - time.monotonic()
    if left <= 0:
        raise TlsTimeout(stage, f"deadline reached before {stage} with {where}")
    return min(limit, left)


def _close_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _map_handshake_error(conn: _VerifyingConnection, endpoint: TlsEndpoint, exc: BaseException) -> BaseException:
    where = f"{endpoint.host}:{endpoint.port}"
    if conn.bridge_verify_error is not None:
        return conn.bridge_verify_error
    if isinstance(exc, TLSRemoteAlert):
        return TlsError(f"{where} refused the TLS handshake ({AlertDescription.toStr(exc.description)})")
    if isinstance(exc, TLSLocalAlert):
        return TlsError(f"TLS handshake with {where} failed: {exc.message or AlertDescription.toStr(exc.description)}")
    if isinstance(exc, TLSAbruptCloseError):
        return TlsError(f"{where} closed the connection during the TLS handshake")
    if isinstance(exc, TimeoutError):
        return TlsTimeout("tls-handshake", f"timeout during the TLS handshake with {where}")
    if isinstance(exc, (TLSError, OSError)):
        return TlsError(f"TLS handshake with {where} failed: {exc.__class__.__name__}")
    return exc


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
