"""The virtual CPS4 byte for byte: the Cryptolib's sequences, and the strict refusals (no pcscd)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.crypto.pki import TestPki
from bridge.sim.cps4 import CPS4_ATR, Cps4Emulator, create_card
from bridge.sim.registry import make_card

SELECT_CHIPDOC = "01a4040c088025000001ff0100"
PIN_BLOCK = "0831323334ffffffff"
Card = Callable[[str], Cps4Emulator]


@pytest.fixture
def card(pki: TestPki) -> Card:
    def make(profile: str = "gp") -> Cps4Emulator:
        emulator = create_card(profile, pki)
        emulator.power_on()
        return emulator

    return make


def _run(card: Cps4Emulator, *apdus: str) -> list[str]:
    return [card.process(bytes.fromhex(a.replace(" ", ""))).hex() for a in apdus]


def _sw(card: Cps4Emulator, apdu: str) -> str:
    return _run(card, apdu)[0][-4:]


def test_match_sequence_of_the_cryptolib(card: Card) -> None:
    c = card("gp")
    assert c.atr() == CPS4_ATR
    select, fci, sn = _run(c, SELECT_CHIPDOC, "01a4080002d00300", "01b000000c")
    assert select == "9000"
    assert fci.startswith("6f") and "8002000c" in fci and fci.endswith("9000")
    assert sn[:14] == "5a0a8025000001" and sn.endswith("9000") and len(sn) == 2 * 14


def test_channel_rules(card: Card) -> None:
    c = card("gp")
    assert _sw(c, "01a4080002d00300") == "6881"  # channel 1 not open yet
    assert _sw(c, "00a4040c088025000001ff0002") == "6a82"  # CPS2ter on the basic channel: not emulated
    assert _sw(c, "00b000000c") == "6d00"
    assert _sw(c, "01a4040c07a0000001510000") == "6a82"  # the ISD: not emulated, channel stays closed
    assert _sw(c, "01200001") == "6881"
    assert _sw(c, SELECT_CHIPDOC) == "9000"
    assert _sw(c, "02200001") == "6881"
    assert _sw(c, "81200001") == "6e00"
    c.reset()
    assert _sw(c, "01200001") == "6881"  # a reset closes channel 1


@pytest.mark.parametrize(
    ("apdu", "sw"),
    [
        ("01a4080002d00300", "6f"),  # FCI with Le
        ("01a4080002d003", "9000"),  # case 3: no data
        ("01a4080002d00400", "6a82"),
        ("01a4100002d00300", "6a86"),  # unknown P1
        ("01a4080002d003", "9000"),
        ("01a40404088025000001ff0100", "9000"),  # recovery re-select (P2=04, case 3)
        ("01a4040808 8025000001ff0100", "6a86"),
        ("01b0000000", "6986"),  # no current EF after the re-select
        ("01200101", "6a86"),
        ("01200002", "6a88"),
        ("0120000104 31323334", "6700"),  # the AODF asks for 8 padded bytes
        ("0120000108 3132ff34ffffffff", "6a80"),
        ("012283b6049102 2881", "6a86"),
        ("012281b6049102 9981", "6a80"),  # unknown algorithm
        ("012281b6049102 2882", "6a88"),  # unknown key
        ("012281b6049102 28a0", "6a80"),  # PKCS#1 v1.5 with the auth key goes through DECIPHER
        ("012241b803830121", "6a88"),
        ("012a9e9a20" + "00" * 32 + "00", "6982"),  # before VERIFY
        ("012a9e9b20" + "00" * 32 + "00", "6a86"),
        ("0184000008", "9000"),
        ("0184010008", "6a86"),
        ("0124000108" + "31" * 8, "6d00"),  # CHANGE REFERENCE DATA: not emulated
    ],
)
def test_strict_answers(card: Card, apdu: str, sw: str) -> None:
    c = card("gp")
    _run(c, SELECT_CHIPDOC)
    answer = _run(c, apdu)[0]
    assert answer.startswith(sw) if sw == "6f" else answer.endswith(sw), answer


def test_pin_counter_verify_and_reselection(card: Card) -> None:
    c = card("gp")
    _run(c, SELECT_CHIPDOC)
    assert _run(c, "01200001", "0120000108" + "31323335ffffffff", "01200001") == ["63c3", "63c2", "63c2"]
    assert _run(c, "0120000108" + "31323334ffffffff", "01200001") == ["9000", "9000"]
    assert c.tries_left == 3
    assert _run(c, SELECT_CHIPDOC, "01200001") == ["9000", "63c3"]  # re-selecting ChipDoc drops the PIN


def test_counter_survives_resets_and_blocks(card: Card) -> None:
    c = card("gp")
    wrong = "0120000108" + "39393939ffffffff"
    _run(c, SELECT_CHIPDOC, wrong)
    c.reset()
    assert _run(c, SELECT_CHIPDOC, "01200001") == ["9000", "63c2"]
    assert _run(c, wrong, wrong, "01200001", "0120000108" + "31323334ffffffff") == ["63c1", "63c0", "6983", "6983"]


def test_profiles_set_the_counter(card: Card) -> None:
    for profile, sw in (("last-try", "63c1"), ("blocked", "6983")):
        c = card(profile)
        assert _run(c, SELECT_CHIPDOC, "01200001")[1] == sw


def test_signature_with_pkcs1_and_pss(card: Card) -> None:
    c = card("gp")
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"message")
    h = digest.finalize()
    _run(c, SELECT_CHIPDOC, "0120000108" + "31323334ffffffff")
    public = c.certs.sign.certificate.public_key()
    for alg, scheme in (
        ("28", padding.PKCS1v15()),
        ("2c", padding.PSS(padding.MGF1(hashes.SHA256()), 32)),
    ):
        mse, sig = _run(c, "012281b6049102" + alg + "81", "012a9e9a20" + h.hex() + "00")
        assert mse == "9000" and sig.endswith("9000") and len(sig) == 2 * 258
        public.verify(bytes.fromhex(sig[:-4]), h, scheme, Prehashed(hashes.SHA256()))  # type: ignore[union-attr]
    assert _run(c, "012a9e9a14" + "00" * 20 + "00")[0] == "6700"  # SHA-256 announced, 20 bytes sent


def test_decipher_is_raw_rsa_with_the_auth_key(card: Card) -> None:
    c = card("gp")
    block = b"\x00\x01" + b"\xff" * 202 + b"\x00" + bytes(51)
    _run(c, SELECT_CHIPDOC)
    assert _run(c, "012a808601" + "00" + "00")[0] == "6982"
    _run(c, "0120000108" + "31323334ffffffff")
    assert _run(c, "012a808601" + "00" + "00")[0] == "6985"  # no MSE yet
    assert _run(c, "012241b803830120")[0] == "9000"
    first, last = _run(c, "112a8086ff" + block[:255].hex(), "012a808601" + block[255:].hex() + "00")
    assert first == "9000" and last.endswith("9000")
    public = c.certs.auth.certificate.public_key()
    numbers = public.public_numbers()  # type: ignore[union-attr]
    assert pow(int(last[:-4], 16), numbers.e, numbers.n) == int.from_bytes(block, "big")
    assert _run(c, "012a808601" + "00" + "00")[0] == "6700"  # a block shorter than the modulus


def test_protected_objects_need_the_pin(card: Card) -> None:
    c = card("gp")
    _run(c, SELECT_CHIPDOC)
    assert _run(c, "01a40800045015701000", "01b0000000")[1] == "6982"
    assert _run(c, "01d6000001" + "41")[0] == "6982"  # a situation is never writable
    _run(c, "0120000108" + "31323334ffffffff")
    assert _run(c, "01b0000000")[0].endswith("9000")


def test_cps_data_is_writable_after_the_pin(card: Card) -> None:
    c = card("gp")
    _run(c, SELECT_CHIPDOC, "01a40800045015700000")
    assert _run(c, "01d600000141")[0] == "6982"
    _run(c, "0120000108" + "31323334ffffffff")
    assert _run(c, "01d600000141", "01b0000001") == ["9000", "419000"]


def test_registered_as_cps4_kind() -> None:
    assert isinstance(make_card("cps4", "gp2"), Cps4Emulator)
