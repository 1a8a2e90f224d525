"""Proof that a web page holds the key its origin was paired with: challenges and their signatures, pure.

A page's `Origin` header is a claim any local program can forge; a WebCrypto key that the page created
non-extractable and keeps in its origin's IndexedDB is not. Pairing binds (origin, public key); every
connection then signs a fresh challenge of the bridge with that key before it gets anything beyond the
public methods.

The signed bytes (ECDSA P-256 with SHA-256, the IEEE P1363 `r || s` form WebCrypto produces)::

    b"dmp-bridge key proof v1" 0x00 origin (ASCII, as the bridge normalised it) 0x00 challenge (32 bytes)

The label keeps a signature from meaning anything to another protocol; the origin keeps a signature
made for one origin from proving another; the challenge is random, single-use and owned by one
connection, so a signature cannot be replayed on another connection or twice on the same one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "CHALLENGE_BYTES",
    "PROOF_LABEL",
    "decode_public_key",
    "fingerprint",
    "new_challenge",
    "proof_message",
    "verify_proof",
]

PROOF_LABEL = b"dmp-bridge key proof v1"
CHALLENGE_BYTES = 32
_P256_SPKI_LEN = 91  # DER SubjectPublicKeyInfo of an uncompressed P-256 point
_P1363_LEN = 64


def _b64(value: str, *, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BridgeError(ErrorCode.INVALID_PARAMS, f"{what}: base64") from None


def new_challenge() -> bytes:
    """A fresh random challenge."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def proof_message(origin: str, challenge: bytes) -> bytes:
    """The exact bytes a page signs to prove its key for `origin`."""
    return PROOF_LABEL + b"\x00" + origin.encode("ascii") + b"\x00" + challenge


def decode_public_key(spki_b64: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key in a base64 DER SubjectPublicKeyInfo; INVALID_PARAMS for anything else."""
    der = _b64(spki_b64, what="publicKey")
    if len(der) != _P256_SPKI_LEN:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "publicKey: P-256")
    try:
        key = load_der_public_key(der)
    except ValueError:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "publicKey: P-256") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BridgeError(ErrorCode.INVALID_PARAMS, "publicKey: P-256")
    return key


def fingerprint(spki_b64: str) -> str:
    """A short, stable name for a key (SHA-256 of its DER, 16 hex digits): what the CLI and logs show."""
    return hashlib.sha256(_b64(spki_b64, what="publicKey")).hexdigest()[:16]


def verify_proof(spki_b64: str, origin: str, challenge: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` (P1363 r||s) is the key's signature of `proof_message(origin, challenge)`."""
    key = decode_public_key(spki_b64)
    raw = _b64(signature_b64, what="signature")
    if len(raw) != _P1363_LEN:
        return False
    half = _P1363_LEN // 2
    der = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
    try:
        key.verify(der, proof_message(origin, challenge), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
