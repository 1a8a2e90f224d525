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

Both are PKCS#1 v1.5 only (CPS3 has no RSA-PSS). `CardRsaPssMessageKey` is the CPS4 signature key: a
`CardRsaMessageKey` that also signs RSA-PSS (MGF1 with the message's hash, salt as long as the hash:
the card pads). Every signature returned by the card is checked
with the public key before it is handed out, so a card fault or a key/certificate mismatch becomes
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
    "CardRsaPssMessageKey",
    "SignDigest",
    "SignMessage",
]

SignDigest = Callable[[bytes, hashes.HashAlgorithm], bytes]
"""(digest, hash algorithm) -> raw PKCS#1 v1.5 signature, computed by the card."""

SignMessage = Callable[[bytes, hashes.HashAlgorithm], bytes]
"""(whole message, hash algorithm) -> raw PKCS#1 v1.5 signature; the card finishes the hash."""

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

    def _check(self, signature: bytes, data: bytes, algorithm: Prehashed | hashes.HashAlgorithm) -> None:
        """Verify the card's answer with the public key: never hand out a wrong signature."""
        try:
            self._public_key.verify(signature, data, asym_padding.PKCS1v15(), algorithm)
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

    Args:
        public_key: the key's public half, from the card's signature certificate.
        sign_message: called with (message, algorithm); returns the card's signature.
        label: a non-secret name for logs and repr (e.g. "CPS signature").
    """

    def __init__(self, public_key: rsa.RSAPublicKey, sign_message: SignMessage, *, label: str) -> None:
        super().__init__(public_key, _no_digest_path, label=label)
        self._sign_message = sign_message

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """Sign the whole message `data` with PKCS#1 v1.5; the card finishes the SHA-256/SHA-1 hash."""
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
        signature = self._sign_message(message, algorithm)
        self._check(signature, message, algorithm)
        return signature


class CardRsaPssMessageKey(CardRsaMessageKey):
    """A card signature key that signs the message with PKCS#1 v1.5 or RSA-PSS (CPS4 ChipDoc, PSO CDS).

    PKCS#1 v1.5 behaves as `CardRsaMessageKey`. PSS is accepted with MGF1 over the message's hash and a
    salt as long as the hash (``PSS.DIGEST_LENGTH`` or that number), the only form the card computes;
    other parameters raise `UnsupportedAlgorithm` before the card is asked.

    Args:
        public_key: the key's public half, from the card's signature certificate.
        sign_message: (message, algorithm) -> the card's PKCS#1 v1.5 signature.
        sign_message_pss: (message, algorithm) -> the card's PSS signature.
        label: a non-secret name for logs and repr.
    """

    def __init__(
        self, public_key: rsa.RSAPublicKey, sign_message: SignMessage, sign_message_pss: SignMessage, *, label: str
    ) -> None:
        super().__init__(public_key, sign_message, label=label)
        self._sign_message_pss = sign_message_pss

    def sign(
        self,
        data: bytes,
        padding: AsymmetricPadding,
        algorithm: Prehashed | hashes.HashAlgorithm | NoDigestInfo,
    ) -> bytes:
        """Sign the whole message `data`: PKCS#1 v1.5 as the parent class, or PSS computed by the card."""
        if not isinstance(padding, asym_padding.PSS):
            return super().sign(data, padding, algorithm)
        if not isinstance(algorithm, hashes.SHA256 | hashes.SHA1):
            raise _unsupported(
                f"{self._label}: the card signs PSS over a SHA-256 or SHA-1 message hash only",
                _Reasons.UNSUPPORTED_HASH,
            )
        _require_card_pss(padding, algorithm, self._label)
        message = bytes(data)
        signature = self._sign_message_pss(message, algorithm)
        try:
            self._public_key.verify(
                signature, message, asym_padding.PSS(asym_padding.MGF1(algorithm), algorithm.digest_size), algorithm
            )
        except InvalidSignature:
            raise BridgeError(ErrorCode.CARD_ERROR, f"{self._label}: the card returned an invalid signature") from None
        return signature


def _require_card_pss(padding: asym_padding.PSS, algorithm: hashes.HashAlgorithm, label: str) -> None:
    """The card computes PSS with MGF1(same hash) and salt length = hash length: refuse anything else."""
    mgf = padding.mgf
    mgf_hash = getattr(mgf, "_algorithm", None)
    salt = padding._salt_length
    salt_ok = salt is asym_padding.PSS.DIGEST_LENGTH or salt == algorithm.digest_size
    if not isinstance(mgf, asym_padding.MGF1) or type(mgf_hash) is not type(algorithm) or not salt_ok:
        raise _unsupported(
            f"{label}: the card signs PSS with MGF1({algorithm.name}) and a {algorithm.digest_size}-byte salt only",
            _Reasons.UNSUPPORTED_PADDING,
        )


def _no_digest_path(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    raise _unsupported("the CPS3 signature key needs the message")


def _require_pkcs1v15(padding: AsymmetricPadding) -> None:
    if not isinstance(padding, asym_padding.PKCS1v15):
        raise _unsupported(
            f"card keys sign with PKCS#1 v1.5 only (CPS3 has no RSA-PSS), not {padding.name}",
            _Reasons.UNSUPPORTED_PADDING,
        )


def _require_hash(algorithm: hashes.HashAlgorithm) -> hashes.HashAlgorithm:
    if not isinstance(algorithm, SUPPORTED_HASHES):
        raise _unsupported(f"card keys cannot sign with {algorithm.name}", _Reasons.UNSUPPORTED_HASH)
    return algorithm
