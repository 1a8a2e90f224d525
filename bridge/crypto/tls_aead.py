"""Record protection for tlslite-ng backed by `cryptography` (OpenSSL) instead of pure-Python ciphers.

tlslite-ng encrypts records with objects from `tlslite.utils.cipherfactory`; without M2Crypto or
pycrypto those are pure Python (AES-GCM at well under 1 MB/s). The record layer picks the factory
function in one static method, `RecordLayer._getCipherSettings(suite)`. Rather than patching tlslite
globally, `FastRecordLayer` overrides that one method, and `install_fast_record_layer(connection)`
swaps the record layer of ONE connection before its handshake (idempotent). Other tlslite users in
the process are untouched.

Only what the DMP's suites need is provided (PDT-INF-579v4): AES-128/256-GCM, ChaCha20-Poly1305 and
AES-256-CBC (MAC-then-encrypt, HMAC stays tlslite's, which already uses the C `hmac`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from tlslite.constants import CipherSuite
from tlslite.recordlayer import RecordLayer

__all__ = [
    "AeadCipher",
    "CbcCipher",
    "FastRecordLayer",
    "install_fast_record_layer",
]

_IMPLEMENTATION = "cryptography"


class AeadCipher:
    """tlslite's AEAD object contract (`seal`/`open`, `nonceLength`, `tagLength`) over `cryptography`."""

    isBlockCipher = False
    isAEAD = True
    nonceLength = 12
    tagLength = 16
    implementation = _IMPLEMENTATION

    def __init__(self, key: bytes | bytearray, chacha: bool = False) -> None:
        self.key = bytes(key)
        # tlslite's record layer tests "aes" in the name to know the nonce is explicit (RFC 5288).
        if chacha:
            self.name = "chacha20-poly1305"
            self._aead: AESGCM | ChaCha20Poly1305 = ChaCha20Poly1305(self.key)
        else:
            self.name = f"aes{len(self.key) * 8}gcm"
            self._aead = AESGCM(self.key)

    def seal(self, nonce: bytes | bytearray, plaintext: bytes | bytearray, data: bytes | bytearray) -> bytearray:
        """Encrypt and authenticate; returns ciphertext || tag."""
        return bytearray(self._aead.encrypt(bytes(nonce), bytes(plaintext), bytes(data)))

    def open(
        self, nonce: bytes | bytearray, ciphertext: bytes | bytearray, data: bytes | bytearray
    ) -> bytearray | None:
        """Check and decrypt; None on a bad tag (tlslite turns that into bad_record_mac)."""
        if len(ciphertext) < self.tagLength:
            return None
        try:
            return bytearray(self._aead.decrypt(bytes(nonce), bytes(ciphertext), bytes(data)))
        except InvalidTag:
            return None


class CbcCipher:
    """tlslite's block cipher contract (`encrypt`/`decrypt` chaining across calls) for AES-CBC."""

    isBlockCipher = True
    isAEAD = False
    block_size = 16
    implementation = _IMPLEMENTATION

    def __init__(self, key: bytes | bytearray, iv: bytes | bytearray) -> None:
        self.key = bytes(key)
        self.name = f"aes{len(self.key) * 8}"
        cipher = Cipher(algorithms.AES(self.key), modes.CBC(bytes(iv)))
        # One context per direction: OpenSSL keeps the CBC chaining state between update() calls,
        # exactly like tlslite's own AES objects keep their IV (TLS 1.2 adds an explicit IV anyway).
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def encrypt(self, plaintext: bytes | bytearray) -> bytearray:
        """Encrypt whole blocks (the record layer has already padded)."""
        return bytearray(self._enc.update(bytes(plaintext)))

    def decrypt(self, ciphertext: bytes | bytearray) -> bytearray:
        """Decrypt whole blocks."""
        return bytearray(self._dec.update(bytes(ciphertext)))


def _aesgcm(key: bytes | bytearray, _impl: Any = None) -> AeadCipher:
    return AeadCipher(key)


def _chacha(key: bytes | bytearray, _impl: Any = None) -> AeadCipher:
    return AeadCipher(key, chacha=True)


def _aes_cbc(key: bytes | bytearray, iv: bytes | bytearray, _impl: Any = None) -> CbcCipher:
    return CbcCipher(key, iv)


class FastRecordLayer(RecordLayer):  # type: ignore[misc]  # tlslite is untyped
    """A tlslite RecordLayer whose AES-GCM, ChaCha20-Poly1305 and AES-CBC come from `cryptography`."""

    @staticmethod
    def _getCipherSettings(cipherSuite: int) -> tuple[int, int, Callable[..., Any] | None]:
        """(key length, IV length, factory) for a suite, with our factories where we have them."""
        if cipherSuite in CipherSuite.aes256GcmSuites:
            return 32, 4, _aesgcm
        if cipherSuite in CipherSuite.aes128GcmSuites:
            return 16, 4, _aesgcm
        if cipherSuite in CipherSuite.chacha20Suites:
            return 32, 12, _chacha
        if cipherSuite in CipherSuite.aes256Suites:
            return 32, 16, _aes_cbc
        if cipherSuite in CipherSuite.aes128Suites:
            return 16, 16, _aes_cbc
        settings: tuple[int, int, Callable[..., Any] | None] = RecordLayer._getCipherSettings(cipherSuite)
        return settings


def install_fast_record_layer(connection: Any) -> None:
    """Give one not-yet-handshaken tlslite connection the `cryptography`-backed record layer.

    Idempotent. Must run before the handshake: the record layer holds the connection's keys and
    sequence numbers, so swapping it later would break the connection.
    """
    current = connection._recordLayer
    if isinstance(current, FastRecordLayer):
        return
    if current._readState.encContext is not None or current._writeState.encContext is not None:
        raise RuntimeError("install_fast_record_layer() must be called before the handshake")
    connection._recordLayer = FastRecordLayer(connection.sock)
