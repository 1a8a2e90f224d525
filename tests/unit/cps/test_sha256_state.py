"""The exportable SHA-256/SHA-1 states against hashlib, and the CPS3 PSO HASH split."""

from __future__ import annotations

import hashlib
import random

import pytest

from bridge.crypto.sha256_state import (
    Sha1State,
    Sha256State,
    split_for_card,
    split_for_card_sha1,
)

EDGE_LENGTHS = [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192]


def _messages() -> list[bytes]:
    rng = random.Random(20261126)
    fixed = [bytes(rng.getrandbits(8) for _ in range(n)) for n in EDGE_LENGTHS]
    randoms = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 2000))) for _ in range(25)]
    return fixed + randoms


@pytest.mark.parametrize("message", _messages(), ids=lambda m: f"len{len(m)}")
def test_sha256_matches_hashlib_in_one_go(message: bytes) -> None:
    md = Sha256State()
    md.update(message)
    assert md.digest() == hashlib.sha256(message).digest()


@pytest.mark.parametrize("message", _messages(), ids=lambda m: f"len{len(m)}")
def test_sha1_matches_hashlib(message: bytes) -> None:
    md = Sha1State()
    md.update(message)
    assert md.digest() == hashlib.sha1(message).digest()


def test_sha256_incremental_updates_in_odd_pieces() -> None:
    rng = random.Random(7)
    message = bytes(rng.getrandbits(8) for _ in range(1000))
    md = Sha256State()
    pos = 0
    while pos < len(message):
        step = rng.randrange(1, 150)
        md.update(message[pos : pos + step])
        pos += step
    assert md.digest() == hashlib.sha256(message).digest()
    # digest() leaves the object usable
    md.update(b"more")
    assert md.digest() == hashlib.sha256(message + b"more").digest()


def _finish_with_own_padding(state: bytes, bits: int, remainder: bytes) -> bytes:
    # What the card does: resume the chaining value, pad with the TOTAL length, compress.
    md = Sha256State.from_state(state, bits)
    md.update(remainder)
    return md.digest()


@pytest.mark.parametrize("message", _messages(), ids=lambda m: f"len{len(m)}")
def test_split_for_card_then_finish_equals_hashlib(message: bytes) -> None:
    state, bits, remainder = split_for_card(message)
    assert len(state) == 32
    assert bits % 512 == 0
    assert bits // 8 + len(remainder) == len(message)
    if message:
        assert 1 <= len(remainder) <= 64
    else:
        assert remainder == b""
    assert message.endswith(remainder)
    assert _finish_with_own_padding(state, bits, remainder) == hashlib.sha256(message).digest()


@pytest.mark.parametrize(
    ("length", "kept"),
    [(0, 0), (1, 1), (55, 55), (56, 56), (63, 63), (64, 64), (65, 1), (119, 55), (120, 56), (128, 64), (129, 1)],
)
def test_split_keeps_back_one_to_64_bytes(length: int, kept: int) -> None:
    _state, bits, remainder = split_for_card(bytes(length))
    assert len(remainder) == kept
    assert bits == (length - kept) * 8


def test_split_of_empty_message_is_the_initial_value() -> None:
    state, bits, remainder = split_for_card(b"")
    assert state.hex() == "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19"
    assert (bits, remainder) == (0, b"")


def test_sha1_split_round_trip() -> None:
    message = bytes(range(200))
    state, bits, remainder = split_for_card_sha1(message)
    assert len(state) == 20 and len(remainder) == 200 - 192
    md = Sha1State.from_state(state, bits)
    md.update(remainder)
    assert md.digest() == hashlib.sha1(message).digest()


def test_from_state_rejects_partial_blocks_and_bad_sizes() -> None:
    with pytest.raises(ValueError):
        Sha256State.from_state(bytes(32), 100)
    with pytest.raises(ValueError):
        Sha256State.from_state(bytes(20), 512)
