"""CPS data-object parsing on public vectors (real traces, the publicly known situation tags) and edge cases."""

from __future__ import annotations

import datetime as dt

import pytest

from bridge.cards.cps3_apdu import fcp_file_size, parse_pin_status
from bridge.cards.cps_data import (
    CardDataError,
    parse_id_card,
    parse_info_ps,
    parse_name_ps,
    parse_situation,
    parse_sn_icc,
)
from bridge.errors import BridgeError, ErrorCode
from bridge.tlv import encode_tlv


def test_sn_icc_from_the_real_trace() -> None:
    # OpenSC issue #2275: 00 B0 00 00 0C -> 5A 0A 80 25 00 00 01 99 21 38 45 0F
    assert parse_sn_icc(bytes.fromhex("5A0A80250000019921384 50F".replace(" ", ""))) == "99213845"  # last byte dropped


def test_sn_icc_of_another_issuer_is_unsupported() -> None:
    with pytest.raises(BridgeError) as info:
        parse_sn_icc(bytes.fromhex("5A0A8099000001992138450F"))
    assert info.value.code is ErrorCode.UNSUPPORTED_CARD
    with pytest.raises(CardDataError):
        parse_sn_icc(bytes.fromhex("5A0B8025"))


def test_pin_counter_from_the_real_trace() -> None:
    # OpenSC issue #2275: GET DATA on the CHV SDO of a CPx card
    status = parse_pin_status(bytes.fromhex("7016BF810112A0109A01039B0103A1088C06F3000013FF00"))
    assert (status.tries_left, status.tries_max, status.blocked) == (3, 3, False)
    blocked = parse_pin_status(bytes.fromhex("7016BF810112A0109A01039B0100A1088C06F3000013FF00"))
    assert blocked.blocked
    # a usage counter at zero makes the PIN unusable (ANS driver rule)
    used_up = parse_pin_status(bytes.fromhex("701ABF810116A0149A01039B01039D020000A1088C06F3000013FF00"))
    assert used_up.tries_left == 0
    with pytest.raises(CardDataError):
        parse_pin_status(bytes.fromhex("7003BF8100"))


def test_fcp_size_from_the_real_trace() -> None:
    # OpenSC issue #2275: 62 25 80 02 00 0C 82 01 01 83 02 D0 03 88 01 E0 A1 12 ... 8A 01 05 (A1 content elided
    # in the note: filled here with an 18-byte ACL-like TLV)
    fcp = bytes.fromhex("6225 8002000C 820101 8302D003 8801E0 A112 8C10".replace(" ", "")) + bytes(16)
    fcp += bytes.fromhex("8A0105")
    assert len(fcp) == 2 + 0x25
    assert fcp_file_size(fcp) == 12
    assert fcp_file_size(b"\x62\x03\x82\x01\x38") is None
    assert fcp_file_size(b"\x62\x09") is None  # truncated: unknown size, not a crash


def test_situation_with_only_the_publicly_known_tags() -> None:
    # the shape decoded from a real test card (cps-data-and-pki.md §1.3): EE { ..., 84, 85, 86 }
    body = b"\x81\x01L" + encode_tlv(0x84, b"CABINET M DOC0073574") + encode_tlv(0x85, b"499700735741008")
    body += encode_tlv(0x86, b"SA07")
    situation = parse_situation(encode_tlv(0xEE, body), 4)
    assert situation.structure_name == "CABINET M DOC0073574"
    assert situation.structure_id == "499700735741008" and situation.structure_id_type == "4"
    assert situation.activity_sector == "SA07" and situation.vihf_activity_sector == "SA07^1.2.250.1.71.4.2.4"
    assert situation.number == 5 and situation.billing is None


def test_situation_long_form_lengths_and_latin1() -> None:
    name = "CENTRE HOSPITALIER DE SAINT-ÉTIENNE ".encode("latin-1") * 4  # > 127 bytes: 81 xx length
    body = encode_tlv(0x84, name) + encode_tlv(0x85, b"10B0057881") + encode_tlv(0x86, b"SA01")
    data = encode_tlv(0xEE, body)
    assert data[1] == 0x81
    situation = parse_situation(data, 0)
    assert situation.structure_name.startswith("CENTRE HOSPITALIER DE SAINT-ÉTIENNE")
    assert situation.activity_sector == "SA01"


def test_situation_without_structure_is_an_error() -> None:
    with pytest.raises(CardDataError):
        parse_situation(encode_tlv(0xEE, encode_tlv(0x86, b"SA07")), 0)
    with pytest.raises(CardDataError):
        parse_situation(b"\xee\x05\x84", 0)


def test_info_ps_specialty_falls_back_to_the_last_four_characters() -> None:
    # ANS sample code reads the R01 specialty as the last 4 characters of the object
    body = encode_tlv(0x80, b"899900063480") + encode_tlv(0x81, b"LIBRE") + encode_tlv(0x82, b"MAX")
    body += encode_tlv(0x90, b"xxSM26")
    info = parse_info_ps(encode_tlv(0xE3, body))
    assert info.specialty_code == "SM26" and info.national_id == "899900063480"
    no_specialty = parse_info_ps(encode_tlv(0xE3, encode_tlv(0x82, b"ANNE")))
    assert no_specialty.specialty_code == ""


def test_id_card_and_name_ps() -> None:
    ident = encode_tlv(0xE1, encode_tlv(0x80, b"CPS") + encode_tlv(0x81, b"2600301752") + encode_tlv(0x83, b"20291231"))
    card = parse_id_card(b"\x00\x00" + ident + b"\xff\xff")  # padding around data objects is allowed
    assert (card.card_type, card.card_number, card.not_before) == ("CPS", "2600301752", None)
    assert card.not_after == dt.date(2029, 12, 31)
    with pytest.raises(CardDataError):
        parse_id_card(encode_tlv(0xE1, encode_tlv(0x83, b"2029-12-31")))
    with pytest.raises(CardDataError):
        parse_name_ps(ident)  # wrong template
