"""SHA-256 and SHA-1 in pure Python with an exportable intermediate state.

The CPS3 signature key follows the IAS-ECC rule that the card computes the last hash step itself:
the host sends the chaining value H0..H7 after every whole 64-byte block except the last 1..64 bytes
of the message, the count of bits already hashed, and those remaining bytes (PSO HASH, cards.md §1.6 B).
`hashlib` cannot export that chaining value, so this module carries its own compression functions.
The same classes let the virtual card finish a hash from a received state.

Speed is not a goal (a few kilobytes of SignedInfo or assertion at most): clarity is.
"""

from __future__ import annotations

import struct
from typing import ClassVar, Self

__all__ = [
    "BLOCK_SIZE",
    "MdState",
    "Sha1State",
    "Sha256State",
    "split_for_card",
    "split_for_card_sha1",
]

BLOCK_SIZE = 64
_MASK = 0xFFFFFFFF

# FIPS 180-4 §5.3.3: initial hash value for SHA-256.
_SHA256_IV = (
    0x6A09E667,
    0xBB67AE85,
    0x3C6EF372,
    0xA54FF53A,
    0x510E527F,
    0x9B05688C,
    0x1F83D9AB,
    0x5BE0CD19,
)

# FIPS 180-4 §4.2.2: SHA-256 round constants.
_K256 = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)  # fmt: skip

# FIPS 180-4 §5.3.1: initial hash value for SHA-1.
_SHA1_IV = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0)


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _MASK


def _rotl(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _MASK


def _sha256_compress(h: list[int], block: bytes) -> None:
    """FIPS 180-4 §6.2.2: fold one 64-byte block into the chaining value `h` (in place)."""
    w = list(struct.unpack(">16I", block))
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)
        s1 = _rotr(y, 17) ^ _rotr(y, 19) ^ (y >> 10)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _MASK)
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        t1 = (hh + (_rotr(e, 6) ^ _rotr(e, 11) ^ _rotr(e, 25)) + ((e & f) ^ (~e & g)) + _K256[t] + w[t]) & _MASK
        t2 = ((_rotr(a, 2) ^ _rotr(a, 13) ^ _rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) & _MASK
        hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _MASK, c, b, a, (t1 + t2) & _MASK
    for i, v in enumerate((a, b, c, d, e, f, g, hh)):
        h[i] = (h[i] + v) & _MASK


def _sha1_compress(h: list[int], block: bytes) -> None:
    """FIPS 180-4 §6.1.2: fold one 64-byte block into the chaining value `h` (in place)."""
    w = list(struct.unpack(">16I", block))
    for t in range(16, 80):
        w.append(_rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1))
    a, b, c, d, e = h
    for t in range(80):
        if t < 20:
            f, k = (b & c) | (~b & d), 0x5A827999
        elif t < 40:
            f, k = b ^ c ^ d, 0x6ED9EBA1
        elif t < 60:
            f, k = (b & c) | (b & d) | (c & d), 0x8F1BBCDC
        else:
            f, k = b ^ c ^ d, 0xCA62C1D6
        a, b, c, d, e = (_rotl(a, 5) + (f & _MASK) + e + k + w[t]) & _MASK, a, _rotl(b, 30), c, d
    for i, v in enumerate((a, b, c, d, e)):
        h[i] = (h[i] + v) & _MASK


class MdState:
    """A Merkle-Damgård hash over 64-byte blocks whose chaining value can be exported and imported.

    Subclasses give the initial value, the word count and the compression function.
    """

    name: ClassVar[str]
    digest_size: ClassVar[int]
    _iv: ClassVar[tuple[int, ...]]

    def __init__(self) -> None:
        self._h = list(self._iv)
        self._blocks = 0
        self._buffer = b""

    @classmethod
    def from_state(cls, state: bytes, bits_hashed: int) -> Self:
        """Resume from an exported chaining value and the number of bits it covers (a whole number of blocks)."""
        if len(state) != cls.digest_size:
            raise ValueError(f"{cls.name} state must be {cls.digest_size} bytes, got {len(state)}")
        if bits_hashed < 0 or bits_hashed % (BLOCK_SIZE * 8):
            raise ValueError("bits_hashed must be a non-negative multiple of 512")
        obj = cls()
        obj._h = list(struct.unpack(f">{cls.digest_size // 4}I", state))
        obj._blocks = bits_hashed // (BLOCK_SIZE * 8)
        return obj

    def _compress(self, block: bytes) -> None:
        raise NotImplementedError

    def update(self, data: bytes) -> None:
        """Feed more message bytes; whole blocks are compressed, the tail is buffered."""
        buffer = self._buffer + bytes(data)
        whole = len(buffer) - len(buffer) % BLOCK_SIZE
        for offset in range(0, whole, BLOCK_SIZE):
            self._compress(buffer[offset : offset + BLOCK_SIZE])
        self._blocks += whole // BLOCK_SIZE
        self._buffer = buffer[whole:]

    def state(self) -> tuple[bytes, int]:
        """The chaining value (big-endian words) and the bits it covers, over whole blocks only."""
        return struct.pack(f">{len(self._h)}I", *self._h), self._blocks * BLOCK_SIZE * 8

    @property
    def pending(self) -> bytes:
        """Bytes fed but not yet compressed (less than one block)."""
        return self._buffer

    def digest(self) -> bytes:
        """Finish with the standard padding (message length in bits, big-endian 64-bit) without changing self."""
        total_bits = (self._blocks * BLOCK_SIZE + len(self._buffer)) * 8
        pad_zeros = (BLOCK_SIZE - 9 - len(self._buffer)) % BLOCK_SIZE
        tail = self._buffer + b"\x80" + b"\x00" * pad_zeros + total_bits.to_bytes(8, "big")
        copy = type(self)()
        copy._h = list(self._h)
        for offset in range(0, len(tail), BLOCK_SIZE):
            copy._compress(tail[offset : offset + BLOCK_SIZE])
        return struct.pack(f">{len(copy._h)}I", *copy._h)


class Sha256State(MdState):
    """SHA-256 (FIPS 180-4) with an exportable chaining value."""

    name = "sha256"
    digest_size = 32
    _iv = _SHA256_IV

    def _compress(self, block: bytes) -> None:
        _sha256_compress(self._h, block)


class Sha1State(MdState):
    """SHA-1 (FIPS 180-4) with an exportable chaining value (CPS3 also accepts SHA-1 in PSO HASH)."""

    name = "sha1"
    digest_size = 20
    _iv = _SHA1_IV

    def _compress(self, block: bytes) -> None:
        _sha1_compress(self._h, block)


def _split(cls: type[MdState], message: bytes) -> tuple[bytes, int, bytes]:
    # Keep back 1..64 bytes: the card must always have a last block to finish (ANS convention).
    keep = len(message) % BLOCK_SIZE or min(len(message), BLOCK_SIZE)
    head = len(message) - keep
    md = cls()
    md.update(message[:head])
    state, bits = md.state()
    return state, bits, bytes(message[head:])


def split_for_card(message: bytes) -> tuple[bytes, int, bytes]:
    """Split `message` for CPS3 PSO HASH with SHA-256: (intermediate state, bits hashed, last 1..64 bytes).

    A message whose length is a multiple of 64 keeps back its whole last block; an empty message gives
    the initial value, 0 and b"".
    """
    return _split(Sha256State, message)


def split_for_card_sha1(message: bytes) -> tuple[bytes, int, bytes]:
    """The SHA-1 counterpart of `split_for_card` (20-byte state)."""
    return _split(Sha1State, message)
