"""BER-TLV helpers: exact bytes for multi-byte tags, long lengths, nesting and malformed input."""

from __future__ import annotations

import pytest

from bridge.tlv import Tlv, TlvError, encode_length, encode_tag, encode_tlv, find_all, find_first, parse_tlv


@pytest.mark.parametrize(
    ("length", "wire"),
    [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"), (0x10000, "83010000")],
)
def test_length_forms(length: int, wire: str) -> None:
    assert encode_length(length).hex().upper() == wire
    tlv = parse_tlv(encode_tlv(0x04, bytes(length)))[0]
    assert len(tlv.value) == length


@pytest.mark.parametrize("tag", [0x80, 0x5F37, 0x7F21, 0xBF8101, 0x9F7F])
def test_multi_byte_tags_round_trip(tag: int) -> None:
    value = b"\x80\x01\x02"  # a valid child, in case the tag is constructed
    raw = encode_tlv(tag, value)
    assert raw[: len(encode_tag(tag))] == tag.to_bytes(len(encode_tag(tag)), "big")
    (tlv,) = parse_tlv(raw)
    assert (tlv.tag, tlv.value) == (tag, value)
    assert tlv.children == ((Tlv(0x80, b"\x02"),) if tlv.constructed else ())


def test_nested_children_parsed_and_searchable() -> None:
    raw = bytes.fromhex("7F210A 5F3703 AABBCC 8002 0102".replace(" ", "")) + bytes.fromhex("65038001FF")
    tlvs = parse_tlv(raw)
    assert [t.tag for t in tlvs] == [0x7F21, 0x65]
    assert tlvs[0].constructed and [c.tag for c in tlvs[0].children] == [0x5F37, 0x80]
    assert tlvs[0].find(0x5F37) == Tlv(0x5F37, b"\xaa\xbb\xcc")
    assert [t.value for t in find_all(tlvs, 0x80)] == [b"\x01\x02", b"\xff"]
    assert find_first(tlvs, 0x99) is None
    assert tlvs[0].to_bytes() == raw[:13]


def test_real_cps3_get_data_answer() -> None:
    raw = bytes.fromhex("7016BF810112A0109A01039B0103A1088C06F3000013FF00")
    (top,) = parse_tlv(raw)
    sdo = top.find(0xBF8101)
    assert sdo is not None
    assert find_first([sdo], 0x9B) == Tlv(0x9B, b"\x03")
    assert find_first([sdo], 0x8C) == Tlv(0x8C, bytes.fromhex("F3000013FF00"))


def test_encode_children_iterable_and_padding_skipped() -> None:
    raw = encode_tlv(0x65, [encode_tlv(0x80, b"DUPONT"), encode_tlv(0x81, b"JEAN")])
    assert parse_tlv(b"\x00" + raw + b"\xff\xff") == parse_tlv(raw)


@pytest.mark.parametrize("bad", ["8005AABB", "5F", "7F2181", "8184", "8201"])
def test_malformed_input_raises(bad: str) -> None:
    with pytest.raises(TlvError):
        parse_tlv(bytes.fromhex(bad))


@pytest.mark.parametrize("tag", [0x1F, 0x5F80, 0x7F2180, 0x8181])
def test_invalid_tags_refused(tag: int) -> None:
    with pytest.raises(TlvError):
        encode_tag(tag)
