"""Adapt a `cryptography` RSAPrivateKey (possibly card-backed) to tlslite-ng's RSAKey.

tlslite signs a TLS 1.2 CertificateVerify with ``RSAKey.sign(DigestInfo, "pkcs1", None, 0)``: it
has already put the DigestInfo prefix before the hash, and expects the key to pad (EMSA-PKCS1-v1_5
type 01) and do the raw RSA operation. A CPS card cannot do raw RSA on arbitrary blocks; it takes
exactly that DigestInfo in INTERNAL AUTHENTICATE and pads itself (cards.md §1.6 A). So this adapter
takes the DigestInfo apart and calls ``key.sign(digest, PKCS1v15(), Prehashed(hash))``: one card
signature, no raw private operation. RSA-PSS and raw operations (RSA key exchange decryption) are
refused: the DMP's suites are all ECDHE_RSA and the card is PKCS#1 v1.5 only.
"""

from __future__ import annotations

import builtins
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from tlslite.errors import TLSInternalError
from tlslite.utils.rsakey import RSAKey

from bridge.crypto.digest_info import DIGEST_INFO_PREFIXES, split_digest_info

_BY_NAME: dict[str, hashes.HashAlgorithm] = {h.name: h for h in DIGEST_INFO_PREFIXES.values()}

__all__ = ["ExternalRsaKey"]


class ExternalRsaKey(RSAKey):  # type: ignore[misc]  # tlslite is untyped
    """A tlslite RSAKey whose only private operation is `key.sign(..., PKCS1v15(), Prehashed(h))`.

    Errors raised by the key (e.g. a BridgeError for a wrong PIN or a removed card) propagate out
    of the handshake unchanged.
    """

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        # RSAKey.__init__ only raises NotImplementedError: set its attributes ourselves.
        numbers = key.public_key().public_numbers()
        self.n = numbers.n
        self.e = numbers.e
        self.key_type = "rsa"
        self._key_hash = None
        self._key = key

    def __repr__(self) -> str:
        return f"ExternalRsaKey({self.n.bit_length()} bits)"

    def hasPrivateKey(self) -> bool:
        """True: the key can sign (through the wrapped object)."""
        return True

    def sign(
        self,
        bytes: bytes | bytearray,
        padding: str = "pkcs1",
        hashAlg: str | None = None,
        saltLen: int | None = None,
    ) -> bytearray:
        """PKCS#1 v1.5 signature of a DigestInfo (hashAlg None) or of a bare digest (hashAlg set)."""
        if padding.lower() != "pkcs1":
            # The CPS authentication key is PKCS#1 v1.5 only; we never offer PSS, so this is our bug.
            raise TLSInternalError("only PKCS#1 v1.5 signatures are possible with this key")
        data = builtins.bytes(bytes)
        if hashAlg is None:
            try:
                algorithm, digest = split_digest_info(data)
            except ValueError as exc:
                raise TLSInternalError(str(exc)) from exc
        else:
            if hashAlg.lower() not in _BY_NAME:
                raise TLSInternalError(f"hash {hashAlg} not allowed")
            algorithm, digest = _BY_NAME[hashAlg.lower()], data
        signature = self._key.sign(digest, PKCS1v15(), Prehashed(algorithm))
        return bytearray(signature)

    def _rawPrivateKeyOp(self, message: int) -> int:
        raise TLSInternalError("raw RSA private operations are not possible with this key")

    def _rawPublicKeyOp(self, ciphertext: int) -> int:
        result: int = pow(ciphertext, self.e, self.n)
        return result

    def acceptsPassword(self) -> bool:
        """False: nothing to export."""
        return False

    def write(self, password: Any = None) -> str:
        """Refused: a card key cannot be exported."""
        raise TLSInternalError("this key cannot be exported")
