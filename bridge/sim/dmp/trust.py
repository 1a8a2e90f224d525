"""Certificate trust for signatures: does a certificate chain to the test IGC-Santé CA bundle?

TLS client certificates are checked by the `ssl` module; VIHF and XAdES signer certificates arrive
inside the XML, so they are checked here against the same CA bundle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = ["TrustError", "TrustStore", "require_signature_usage"]

_MAX_DEPTH = 5


class TrustError(ValueError):
    """The certificate does not chain to a trusted CA, is expired or unfit."""


def _check_signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except (InvalidSignature, AssertionError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def require_signature_usage(cert: x509.Certificate) -> None:
    """A VIHF/XAdES signer must be a signature certificate (nonRepudiation), not the card's authentication one.

    The DMP answers `DMPInvalidCertificate` "Not a valid signature certificate" when the authentication
    certificate signs the VIHF (notes §3.2, Dehempe).
    """
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise TrustError("Not a valid signature certificate (KeyUsage absent)") from None
    if not usage.content_commitment:
        raise TrustError("Not a valid signature certificate")


@dataclass(frozen=True)
class TrustStore:
    """The trusted CA certificates (roots and intermediates of the test IGC-Santé)."""

    cas: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem_file(cls, path: str | Path) -> TrustStore:
        """Load every certificate of a PEM bundle."""
        return cls(tuple(x509.load_pem_x509_certificates(Path(path).read_bytes())))

    def verify(
        self,
        leaf: x509.Certificate,
        extra: tuple[x509.Certificate, ...] = (),
        at: dt.datetime | None = None,
    ) -> None:
        """Raise TrustError unless `leaf` chains to a trusted CA and every link is valid at `at`."""
        now = at or dt.datetime.now(dt.UTC)
        if _is_ca(leaf):
            raise TrustError("un certificat d'autorité ne peut pas signer")
        pool = list(self.cas) + [c for c in extra if _is_ca(c)]
        current = leaf
        for _ in range(_MAX_DEPTH):
            if not (current.not_valid_before_utc <= now <= current.not_valid_after_utc):
                raise TrustError("certificat hors de sa période de validité")
            if current in self.cas:
                return
            issuer = next(
                (c for c in pool if c.subject == current.issuer and _is_ca(c) and _check_signed_by(current, c)),
                None,
            )
            if issuer is None:
                raise TrustError("certificat non émis par l'IGC-Santé de test")
            current = issuer
        raise TrustError("chaîne de certification trop longue")
