"""RSA private keys that live on a smart card, behind cryptography's `RSAPrivateKey` interface.

The same object goes to signxml (`XMLSigner.sign(data, key=card_key, cert=...)`, which only calls
`sign`, `key_size` and `public_key()`) and to the TLS client code. The private operation is a callable
given by the card driver; it runs the APDUs on the card's worker thread and blocks the caller, so a
key must never be used from the asyncio event loop thread.

Two shapes, because the two CPS3 keys do not take the same input:

* `CardRsaPrivateKey` (authentication key, INTERNAL AUTHENTICATE): the card pads a DigestInfo that
  the host builds, so the callable receives the *digest* and its algorithm. `sign` accepts either a
  `HashAlgorithm` (the data is hashed here) or `Prehashed`.
* `CardRsaMessageKey` (CPS3 signature key, PSO HASH + PSO CDS): the card finishes the hash itself,
  so the callable needs the *whole message*; `sign` with `Prehashed` raises `UnsupportedAlgorithm`
  ("the CPS3 signature key needs the message").

Both sign with PKCS#1 v1.5; a `CardRsaMessageKey` built with a `sign_message_pss` callable (a CPS4
through the Cryptolib, CKM_SHA256_RSA_PKCS_PSS) also signs with RSA-PSS. Every signature returned by
the card is checked with the public key before it is handed out, so a card fault or a key/certificate mismatch becomes
a `BridgeError` rather than a bad signature on the wire. Export and decryption raise
`UnsupportedAlgorithm`; `repr` shows the label and size only.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm, _Reasons
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives._asymmetric import AsymmetricPadding
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "SUPPORTED_HASHES",
    "CardRsaMessageKey",
    "CardRsaPrivateKey",
    "SignDigest",
    "SignMessage",
    "SignMessagePss",
]

SignDigest = Callable[[bytes, hashes.HashAlgorithm], bytes]
"""(digest, hash algorithm) -> raw PKCS#1 v1.5 signature, computed by the card."""

SignMessage = Callable[[bytes, hashes.HashAlgorithm], bytes]
"""(whole message, hash algorithm) -> raw PKCS#1 v1.5 signature; the card finishes the hash."""

SignMessagePss = Callable[[bytes, hashes.HashAlgorithm, int], bytes]
"""(whole message, hash algorithm, salt length in bytes) -> raw RSA-PSS signature (MGF1 with the same hash)."""

# DER DigestInfo headers (RFC 8017 §9.2 note 1): the digest follows.

# DigestInfo prefixes exist for these; the CPS3 algorithm references cover SHA-1 and SHA-256.
SUPPORTED_HASHES: tuple[type[hashes.HashAlgorithm], ...] = (
    hashes.SHA1,
    hashes.SHA224,
    hashes.SHA256,
    hashes.SHA384,
    hashes.SHA512,
)


def _unsupported(message: str, reason: _Reasons = _Reasons.UNSUPPORTED_PUBLIC_KEY_ALGORITHM) -> UnsupportedAlgorithm:
    return UnsupportedAlgorithm(message, reason)


class CardRsaPrivateKey(rsa.RSAPrivateKey):
    """A card's RSA key signing a digest (PKCS#1 v1.5): the CPS3 authentication key, used for TLS and auth.

    Args:
        public_key: the key's public half, from the card's certificate.
        sign_digest: called with (digest, algorithm); returns the card's signature.
        label: a non-secret name for logs and repr (e.g. "CPS auth").
    """

    def __init__(self, public_key: rsa.RSAPublicKey, sign_digest: SignDigest, *, label: str) -> None:
        self._public_key = public_key
        self._sign_digest = sign_digest
        self._label = label

    @property
    def label(self) -> str:
        """The non-secret name of the key."""
        return self._label

    @property
    def key_size(self) -> int:
        """The bit length of the modulus."""
        return self._public_key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        """The public half (from the card's certificate)."""
        return self._public_key

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """Sign `data` (or a digest when `algorithm` is Prehashed) with PKCS#1 v1.5 on the card."""
        _require_pkcs1v15(padding)
        if isinstance(algorithm, NoDigestInfo):
            raise _unsupported("card keys sign a DigestInfo built from a known hash; NoDigestInfo is not supported")
        if isinstance(algorithm, Prehashed):
            hash_algorithm = _require_hash(algorithm._algorithm)
            if len(data) != hash_algorithm.digest_size:
                raise ValueError(
                    f"a {hash_algorithm.name} digest is {hash_algorithm.digest_size} bytes, got {len(data)}"
                )
            digest = bytes(data)
        else:
            hash_algorithm = _require_hash(algorithm)
            h = hashes.Hash(hash_algorithm)
            h.update(data)
            digest = h.finalize()
        signature = self._sign_digest(digest, hash_algorithm)
        self._check(signature, digest, Prehashed(hash_algorithm))
        return signature

    def _check(
        self,
        signature: bytes,
        data: bytes,
        algorithm: Prehashed | hashes.HashAlgorithm,
        padding: AsymmetricPadding | None = None,
    ) -> None:
        """Verify the card's answer with the public key: never hand out a wrong signature."""
        try:
            self._public_key.verify(signature, data, padding or asym_padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise BridgeError(ErrorCode.CARD_ERROR, f"{self._label}: the card returned an invalid signature") from None

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        """Not offered: the bridge only signs with card keys."""
        raise _unsupported(f"{self._label}: decryption with a card key is not supported")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """Never available: the private key does not leave the card."""
        raise _unsupported(f"{self._label}: the private key stays on the card")

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        """Never available: the private key does not leave the card."""
        raise _unsupported(f"{self._label}: the private key stays on the card")

    def __copy__(self) -> CardRsaPrivateKey:
        return self  # a handle on the card: copies would share the card anyway

    def __deepcopy__(self, memo: dict[int, object]) -> CardRsaPrivateKey:
        return self

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._label!r} RSA-{self.key_size}>"


class CardRsaMessageKey(CardRsaPrivateKey):
    """A card's RSA key that needs the whole message: the CPS3 signature key (nonRepudiation, ref 0x81).

    The IAS-ECC signature key computes the last hash step itself: the host sends the intermediate
    SHA-256 (or SHA-1) state and the last 1..64 bytes (PSO HASH), then asks for the signature (PSO CDS).
    So `sign(data, PKCS1v15(), SHA256())` passes the raw `data` to `sign_message`, and `sign` with
    `Prehashed` raises `UnsupportedAlgorithm` ("the CPS3 signature key needs the message"): a digest
    alone cannot be finished by the card. XML-DSig (signxml) always passes the message, so it works.

    With `sign_message_pss`, `sign(data, PSS(MGF1(h), salt), h)` (h SHA-256 or SHA-1, MGF1 on the
    same hash, salt `DIGEST_LENGTH`, `MAX_LENGTH` or a byte count) goes to that callable instead.

    Args:
        public_key: the key's public half, from the card's signature certificate.
        sign_message: called with (message, algorithm); returns the card's signature.
        label: a non-secret name for logs and repr (e.g. "CPS signature").
        sign_message_pss: called with (message, algorithm, salt length); None when the card has no PSS.
    """

    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        sign_message: SignMessage,
        *,
        label: str,
        sign_message_pss: SignMessagePss | None = None,
    ) -> None:
        super().__init__(public_key, _no_digest_path, label=label)
        self._sign_message = sign_message
        self._sign_message_pss = sign_message_pss

    @property
    def supports_pss(self) -> bool:
        """Whether `sign` accepts `padding.PSS` (a CPS4 through the Cryptolib)."""
        return self._sign_message_pss is not None

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """Sign the whole message `data` (PKCS#1 v1.5, or PSS when offered); the card finishes the hash."""
        pss = isinstance(padding, asym_padding.PSS) and self._sign_message_pss is not None
        if not pss:
            _require_pkcs1v15(padding)
        if isinstance(algorithm, Prehashed | NoDigestInfo):
            raise _unsupported(
                f"{self._label}: the CPS3 signature key needs the message, not a digest (the card finishes the hash)"
            )
        if not isinstance(algorithm, hashes.SHA256 | hashes.SHA1):
            raise _unsupported(
                f"{self._label}: the CPS3 signature key hashes with SHA-256 or SHA-1 only, not {algorithm.name}",
                _Reasons.UNSUPPORTED_HASH,
            )
        message = bytes(data)
        if pss and isinstance(padding, asym_padding.PSS) and self._sign_message_pss is not None:
            salt = self._pss_salt_length(padding, algorithm)
            signature = self._sign_message_pss(message, algorithm, salt)
            self._check(signature, message, algorithm, asym_padding.PSS(asym_padding.MGF1(algorithm), salt))
            return signature
        signature = self._sign_message(message, algorithm)
        self._check(signature, message, algorithm)
        return signature

    def _pss_salt_length(self, padding: asym_padding.PSS, algorithm: hashes.HashAlgorithm) -> int:
        """The salt length in bytes that `padding` asks for; MGF1 must use the message's hash (PKCS#11 pairs them)."""
        mgf = padding.mgf
        mgf_hash = getattr(mgf, "_algorithm", None)
        if not isinstance(mgf, asym_padding.MGF1) or not isinstance(mgf_hash, type(algorithm)):
            raise _unsupported(f"{self._label}: PSS needs MGF1 with {algorithm.name}", _Reasons.UNSUPPORTED_PADDING)
        salt = padding._salt_length
        if salt is asym_padding.PSS.DIGEST_LENGTH:
            return algorithm.digest_size
        if salt is asym_padding.PSS.MAX_LENGTH:
            return (self.key_size + 7) // 8 - algorithm.digest_size - 2
        if isinstance(salt, int) and 0 <= salt <= (self.key_size + 7) // 8 - algorithm.digest_size - 2:
            return salt
        raise ValueError(f"{self._label}: PSS salt length must be DIGEST_LENGTH, MAX_LENGTH or a fitting byte count")


def _no_digest_path(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    raise _unsupported("the CPS3 signature key needs the message")


def _require_pkcs1v15(padding: AsymmetricPadding) -> None:
    if not isinstance(padding, asym_padding.PKCS1v15):
        raise _unsupported(
            f"this card key signs with PKCS#1 v1.5 only (RSA-PSS needs a CPS4 signature key), not {padding.name}",
            _Reasons.UNSUPPORTED_PADDING,
        )


def _require_hash(algorithm: hashes.HashAlgorithm) -> hashes.HashAlgorithm:
    if not isinstance(algorithm, SUPPORTED_HASHES):
        raise _unsupported(f"card keys cannot sign with {algorithm.name}", _Reasons.UNSUPPORTED_HASH)
    return algorithm
