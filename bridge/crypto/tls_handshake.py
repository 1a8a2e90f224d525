"""The TLS 1.2 client handshake: DMP suites only, the server chain checked before the card signs, sessions resumed.

`handshake` connects and runs tlslite's client handshake (`_VerifyingConnection` checks the server
chain as soon as the server's Certificate message arrives, so an untrusted server never gets a card
signature), resuming a cached session when it can; a resumed handshake that fails drops the session
and is redone at once as a full handshake.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from tlslite.api import X509, HandshakeSettings, TLSConnection, X509CertChain
from tlslite.constants import AlertDescription, CipherSuite
from tlslite.errors import TLSAbruptCloseError, TLSError, TLSLocalAlert, TLSRemoteAlert

from bridge.crypto.tls_aead import install_fast_record_layer
from bridge.crypto.tls_endpoint import ServerTrust, TlsEndpoint
from bridge.crypto.tls_errors import TlsError, TlsTimeout, time_left
from bridge.crypto.tls_key import ExternalRsaKey
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.errors import BridgeError

__all__ = ["DMP_CIPHER_SUITES", "HandshakeInfo", "handshake"]

log = logging.getLogger(__name__)


#: The DMP's TLS 1.2 suites for LPS access (PDT-INF-579v4, 10/07/2025), IANA value -> name.
DMP_CIPHER_SUITES: dict[int, str] = {
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
}


@dataclass(frozen=True)
class HandshakeInfo:
    """What a handshake negotiated."""

    cipher_suite: str
    resumed: bool
    server_chain: tuple[x509.Certificate, ...]
    client_authenticated: bool


def handshake(
    endpoint: TlsEndpoint,
    sessions: TlsSessionCache | None,
    *,
    deadline: float | None,
    on_socket: Callable[[socket.socket], None] | None,
) -> tuple[Any, HandshakeInfo]:
    """Connect and handshake (see `TlsConnection.open`): the established tlslite connection and what it negotiated."""
    if endpoint.identity is not None:
        endpoint.identity.check_validity()
    cached = sessions.get(endpoint) if sessions is not None else None
    if cached is not None:
        assert sessions is not None
        try:
            return _open_once(endpoint, sessions, cached, deadline, on_socket)
        except TlsTimeout:
            raise
        except TlsError as exc:
            if exc.extra.get("stage") == "connect":
                raise  # nothing to do with the session: the server is not there
            log.info("resuming the TLS session with %s:%d failed (%s): full handshake", endpoint.host,
                     endpoint.port, exc.detail)  # fmt: skip
            sessions.forget(endpoint)
    return _open_once(endpoint, sessions, None, deadline, on_socket)


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


def _open_once(
    endpoint: TlsEndpoint,
    sessions: TlsSessionCache | None,
    cached: tuple[Any, tuple[x509.Certificate, ...]] | None,
    deadline: float | None,
    on_socket: Callable[[socket.socket], None] | None,
) -> tuple[Any, HandshakeInfo]:
    where = f"{endpoint.host}:{endpoint.port}"
    try:
        sock = socket.create_connection(
            (endpoint.host, endpoint.port), timeout=time_left(endpoint.connect_timeout, deadline, "connect", where)
        )
    except TimeoutError as exc:
        raise TlsTimeout("connect", f"timeout connecting to {where}") from exc
    except OSError as exc:
        raise TlsError(f"cannot connect to {where}: {exc.strerror or exc}", stage="connect") from exc
    if on_socket is not None:
        on_socket(sock)
    try:
        sock.settimeout(time_left(endpoint.io_timeout, deadline, "tls-handshake", where))
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
    return conn, info


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


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
