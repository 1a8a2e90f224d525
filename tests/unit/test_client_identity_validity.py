"""A client certificate out of its validity is refused before any connection, with the dates people read."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.errors import BridgeError, ErrorCode


def _identity(not_before: dt.datetime, not_after: dt.datetime) -> ClientIdentity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TEST")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return ClientIdentity((cert,), key)


def test_expired_and_future_certificates_are_refused_with_their_dates() -> None:
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    expired = _identity(dt.datetime(2023, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    with pytest.raises(BridgeError) as refused:
        expired.check_validity(now)
    assert refused.value.code is ErrorCode.CERTIFICATE_EXPIRED
    assert refused.value.to_data()["hint_fr"].startswith("Expiré le 30/11/2026 : demandez son renouvellement")
    future = _identity(dt.datetime(2027, 1, 2, tzinfo=dt.UTC), dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(BridgeError) as early:
        future.check_validity(now)
    assert early.value.code is ErrorCode.CERTIFICATE_NOT_YET_VALID and early.value.extra["validFrom"] == "02/01/2027"
    _identity(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).check_validity(now)
