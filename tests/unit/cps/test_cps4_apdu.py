"""CPS4 APDU builders and parsers: the exact bytes the Cryptolib 5.2 sends (notes cryptolib-cps4.md §0, §3-§5)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes

from bridge.cards.cps4_apdu import (
    CPS4_ATRS,
    Scheme,
    algorithm_id,
    mse_decipher,
    mse_sign,
    needs_reselect,
    parse_fci_size,
    parse_pin_counter,
    parse_serial,
    pin_counter,
    pkcs1_type1,
    pso_cds,
    pso_decipher,
    read_binary,
    select_chipdoc,
    select_path,
    verify,
)
from bridge.cards.cps_data import CardDataError
from bridge.cards.cps_info import PinStatus
from bridge.cards.pkcs15 import AuthObject, pin_block
from bridge.crypto.digest_info import digest_info
from bridge.pcsc.apdu import StatusWord


def _pin_object(**changes: object) -> AuthObject:
    base: dict[str, object] = {
        "label": "PIN",
        "auth_id": b"\x01",
        "flags": 0,
        "pin_type": 1,
        "min_length": 4,
        "stored_length": 8,
        "max_length": 8,
        "reference": 1,
        "pad_char": None,
        "path": None,
    }
    base.update(changes)
    return AuthObject(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("command", "wire"),
    [
        (select_chipdoc(), "01a4040c088025000001ff0100"),
        (select_chipdoc(0x04), "01a40404088025000001ff0100"),
        (select_path(bytes.fromhex("3F00D003"), fci=True), "01a4080002d00300"),
        (select_path(bytes.fromhex("3F002F00"), fci=True), "01a40800022f0000"),
        (select_path(bytes.fromhex("3F005015"), fci=False), "01a40800025015"),
        (select_path(bytes.fromhex("3F00"), fci=False), "01a40000023f00"),
        (read_binary(0, 12), "01b000000c"),
        (read_binary(0x0100, 256), "01b0010000"),
        (pin_counter(0x01), "01200001"),
        (verify(b"1234\xff\xff\xff\xff", 0x01), "012000010831323334ffffffff"),
        (mse_sign(0x28, 0x01), "012281b6049102" + "2881"),
        (mse_sign(0x2C, 0x20), "012281b6049102" + "2ca0"),
        (mse_decipher(), "012241b803830120"),
        (pso_cds(bytes(32)), "012a9e9a20" + "00" * 32 + "00"),
    ],
)
def test_builders_give_the_cryptolib_bytes(command: object, wire: str) -> None:
    assert command.to_bytes().hex() == wire  # type: ignore[attr-defined]


def test_decipher_is_chained_in_a_255_byte_link_and_a_last_one() -> None:
    block = bytes(range(256))
    first, last = pso_decipher(block)
    assert first.to_bytes().hex() == "112a8086ff" + block[:255].hex()
    assert last.to_bytes().hex() == "012a808601ff00"


def test_builders_refuse_what_the_card_cannot_take() -> None:
    for bad in (
        lambda: select_path(bytes.fromhex("5015"), fci=True),
        lambda: read_binary(0, 257),
        lambda: pso_cds(bytes(48)),
        lambda: verify(b"", 1),
        lambda: pso_decipher(b""),
        lambda: algorithm_id(Scheme.PSS, hashes.SHA512()),
    ):
        with pytest.raises(ValueError):
            bad()


def test_algorithm_ids() -> None:
    assert algorithm_id(Scheme.PKCS1V15, hashes.SHA256()) == 0x28
    assert algorithm_id(Scheme.PKCS1V15, hashes.SHA1()) == 0x0A
    assert algorithm_id(Scheme.PSS, hashes.SHA256()) == 0x2C
    assert algorithm_id(Scheme.PSS, hashes.SHA1()) == 0x15


@pytest.mark.parametrize(
    ("changes", "pin", "block"),
    [
        ({}, b"1234", "31323334"),
        ({"flags": 1 << 5, "pad_char": 0xFF}, b"1234", "31323334ffffffff"),
        ({"flags": 1 << 5}, b"123456", "3132333435360000"),
        ({"pin_type": 0, "stored_length": 8, "max_length": None, "pad_char": 0xFF}, b"12345", "12345f"),
        ({"pin_type": 0, "flags": 1 << 5, "pad_char": 0xFF}, b"1234", "1234ffff"),
    ],
)
def test_pin_block_follows_the_aodf(changes: dict[str, object], pin: bytes, block: str) -> None:
    assert pin_block(pin, _pin_object(**changes)).hex() == block


def test_pin_length_is_checked_against_the_aodf() -> None:
    with pytest.raises(ValueError):
        pin_block(b"123", _pin_object())
    with pytest.raises(ValueError):
        pin_block(b"123456789", _pin_object())


def test_serial_is_the_pan_without_issuer_nor_luhn_byte() -> None:
    assert parse_serial(bytes.fromhex("5A0A80250000019921384 50F".replace(" ", ""))) == "99213845"
    for bad in ("5A0980250000019921384500", "5A0A80250000029921384 50F", "5A0A8025000001992138"):
        with pytest.raises(CardDataError):
            parse_serial(bytes.fromhex(bad.replace(" ", "")))


def test_fci_size_from_6f_only() -> None:
    assert parse_fci_size(bytes.fromhex("6F0E8002000C820101 8302D003 8A0105".replace(" ", ""))) == 12
    assert parse_fci_size(bytes.fromhex("6F048102001C")) == 28
    with pytest.raises(CardDataError):
        parse_fci_size(bytes.fromhex("62048002000C"))  # an FCP is refused, as by the Cryptolib


def test_pin_counter_answers() -> None:
    assert parse_pin_counter(StatusWord(0x63C2)) == PinStatus(2, 3)
    assert parse_pin_counter(StatusWord(0x6983)) == PinStatus(0, 3)
    assert parse_pin_counter(StatusWord(0x9000)) is None
    with pytest.raises(ValueError):
        parse_pin_counter(StatusWord(0x6A88))


def test_reselect_rule_and_padding() -> None:
    assert needs_reselect(StatusWord(0x6E00)) and needs_reselect(StatusWord(0x6A86))
    assert not needs_reselect(StatusWord(0x6982))
    info = digest_info(bytes(32), hashes.SHA256())
    block = pkcs1_type1(info, 256)
    assert len(block) == 256 and block[:2] == b"\x00\x01" and block.endswith(b"\x00" + info)
    with pytest.raises(ValueError):
        pkcs1_type1(bytes(246), 256)


def test_the_three_cryptolib_atrs() -> None:
    assert [a.hex() for a in CPS4_ATRS] == [
        "3b9b188001001225006480040100009044",
        "3b9b188001001225006480000401009044",
        "3bdc18ff00001225006480000401009000",
    ]
