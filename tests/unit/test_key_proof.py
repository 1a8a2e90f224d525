"""The key proof's signed bytes and verification (what the SDK signs with WebCrypto, checked with `cryptography`)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.api.key_proof import (
    CHALLENGE_BYTES,
    decode_public_key,
    fingerprint,
    new_challenge,
    proof_message,
    verify_proof,
)
from bridge.errors import BridgeError, ErrorCode
from tests.api_helpers import PageKey

ORIGIN = "https://dpi.example.fr"


def _spki(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_message_is_label_origin_challenge_separated() -> None:
    challenge = bytes(range(32))
    assert proof_message(ORIGIN, challenge) == b"dmp-bridge key proof v1\x00https://dpi.example.fr\x00" + challenge
    assert len(new_challenge()) == CHALLENGE_BYTES and new_challenge() != new_challenge()


def test_valid_proof_accepted_and_bound_to_origin_challenge_and_key() -> None:
    key = PageKey()
    challenge = new_challenge()
    b64 = base64.b64encode(challenge).decode()
    signature = key.sign(ORIGIN, b64)
    assert verify_proof(key.spki, ORIGIN, challenge, signature)
    assert not verify_proof(key.spki, "https://evil.example", challenge, signature)  # another origin
    assert not verify_proof(key.spki, ORIGIN, new_challenge(), signature)  # another challenge
    assert not verify_proof(PageKey().spki, ORIGIN, challenge, signature)  # another key
    assert not verify_proof(key.spki, ORIGIN, challenge, base64.b64encode(bytes(64)).decode())
    assert not verify_proof(key.spki, ORIGIN, challenge, base64.b64encode(bytes(10)).decode())
    assert len(fingerprint(key.spki)) == 16


@pytest.mark.parametrize(
    "spki",
    [
        "not base64!",
        base64.b64encode(b"x" * 91).decode(),
        _spki(ec.generate_private_key(ec.SECP384R1())),
        _spki(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    ],
)
def test_only_p256_public_keys(spki: str) -> None:
    with pytest.raises(BridgeError) as info:
        decode_public_key(spki)
    assert info.value.code is ErrorCode.INVALID_PARAMS
