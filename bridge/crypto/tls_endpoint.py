"""Where a TLS connection goes and as whom: `TlsEndpoint`, the client's `ClientIdentity`, the `ServerTrust`.

The server chain is checked with `cryptography.x509.verification` (trust anchors + host name); a
failure says whether the host name or the chain is wrong.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from bridge.crypto.tls_errors import TlsError
from bridge.errors import BridgeError, ErrorCode
from bridge.fr_dates import fr_date

__all__ = ["ClientIdentity", "ServerTrust", "TlsEndpoint"]


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

    def check_validity(self, now: dt.datetime | None = None) -> None:
        """Refuse an expired or not-yet-valid certificate before any connection.

        The server would only close the handshake, which reads as a network outage; the person must
        instead be told the card (or establishment certificate) is out of date.
        """
        now = now or dt.datetime.now(dt.UTC)
        leaf = self.chain[0]
        if now >= leaf.not_valid_after_utc:
            raise BridgeError(
                ErrorCode.CERTIFICATE_EXPIRED,
                expiredOn=fr_date(leaf.not_valid_after_utc),
                notAfter=leaf.not_valid_after_utc.isoformat(),
            )
        if now < leaf.not_valid_before_utc:
            raise BridgeError(
                ErrorCode.CERTIFICATE_NOT_YET_VALID,
                validFrom=fr_date(leaf.not_valid_before_utc),
                notBefore=leaf.not_valid_before_utc.isoformat(),
            )

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
