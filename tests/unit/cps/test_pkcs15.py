"""PKCS#15 directory files decoded from DER written by hand from PKCS#15 v1.1 §6 (no card, no emulator)."""

from __future__ import annotations

import pytest

from bridge.cards.pkcs15 import (
    DirectoryError,
    bit_string_flags,
    parse_aodf,
    parse_cdf,
    parse_dir_records,
    parse_dodf,
    parse_odf,
    parse_prkdf,
    parse_token_info,
)
from bridge.tlv import encode_tlv as t


def path(fids: str) -> bytes:
    return t(0x30, t(0x04, bytes.fromhex(fids)))


def common(label: str, flags: bytes = b"", auth_id: bytes = b"") -> bytes:
    body = t(0x0C, label.encode())
    if flags:
        body += t(0x03, flags)
    if auth_id:
        body += t(0x04, auth_id)
    return t(0x30, body)


def test_bit_string_flags_numbers_bits_from_the_first_one() -> None:
    assert bit_string_flags(bytes.fromhex("0780")) == 1  # private
    assert bit_string_flags(bytes.fromhex("0640")) == 2  # modifiable
    assert bit_string_flags(bytes.fromhex("07 0080".replace(" ", ""))) == 1 << 8
    assert bit_string_flags(b"") == 0


def test_odf_lists_each_kind_with_its_path() -> None:
    odf = (
        t(0xA0, path("3F0050154401")) + t(0xA4, path("4402")) + t(0xA7, path("4403")) + t(0xA8, path("4404")) + b"\0\0"
    )
    parsed = parse_odf(odf)
    assert [p.path.hex() for p in parsed.of("prkdf")] == ["3f0050154401"]
    assert parsed.of("prkdf")[0].absolute and not parsed.of("cdf")[0].absolute
    assert parsed.of("aodf")[0].path == bytes.fromhex("4404")
    assert parsed.of("pukdf") == ()


def test_token_info_serial_label_and_flags() -> None:
    info = t(
        0x30,
        t(0x02, b"\0") + t(0x04, bytes.fromhex("0102AB")) + t(0x0C, b"ANS") + t(0x80, b"CPS") + t(0x03, b"\x06\x40"),
    )
    parsed = parse_token_info(info)
    assert (parsed.serial, parsed.manufacturer, parsed.label, parsed.flags) == ("0102AB", "ANS", "CPS", 2)


def test_aodf_pin_with_padding_and_reference() -> None:
    pin_attrs = (
        t(0x03, bytes.fromhex("0244"))  # bits 1 (local) and 5 (needs-padding)
        + t(0x0A, b"\x01")  # ascii-numeric
        + t(0x02, b"\x04")
        + t(0x02, b"\x08")
        + t(0x02, b"\x08")
        + t(0x80, b"\x01")
        + t(0x04, b"\xff")
        + path("3F00")
    )
    entry = t(0x30, common("PIN", bytes.fromhex("0780")) + t(0x30, t(0x04, b"\x01")) + t(0xA1, t(0x30, pin_attrs)))
    (pin,) = parse_aodf(entry)
    assert (pin.label, pin.auth_id, pin.pin_type, pin.min_length, pin.stored_length, pin.max_length) == (
        "PIN",
        b"\x01",
        1,
        4,
        8,
        8,
    )
    assert (pin.reference, pin.pad_char) == (1, 0xFF)
    assert pin.needs_padding and pin.local


def test_prkdf_cdf_and_dodf_entries() -> None:
    key = t(
        0x30,
        common("CPS_PRIV_SIG", auth_id=b"\x01")
        + t(0x30, t(0x04, b"\x02") + t(0x03, bytes.fromhex("0600 40".replace(" ", ""))) + t(0x02, b"\x81"))
        + t(0xA1, t(0x30, path("3F00") + t(0x02, b"\x08\x00"))),
    )
    (parsed_key,) = parse_prkdf(key)
    assert (parsed_key.label, parsed_key.key_id, parsed_key.reference, parsed_key.modulus_bits) == (
        "CPS_PRIV_SIG",
        b"\x02",
        0x81,
        2048,
    )
    assert parsed_key.non_repudiation and parsed_key.auth_id == b"\x01"
    cert = t(0x30, common("Certificat de signature") + t(0x30, t(0x04, b"\x02")) + t(0xA1, t(0x30, path("3F00C001"))))
    (parsed_cert,) = parse_cdf(cert)
    assert (parsed_cert.cert_id, parsed_cert.path.path.hex()) == (b"\x02", "3f00c001")
    data = t(
        0x30,
        common("CPS_ACTIVITY_01_PS", bytes.fromhex("0780"), b"\x01") + t(0x30, t(0x0C, b"CPS")) + t(0xA1, path("D120")),
    )
    (parsed_data,) = parse_dodf(data)
    assert (parsed_data.label, parsed_data.private, parsed_data.auth_id, parsed_data.application) == (
        "CPS_ACTIVITY_01_PS",
        True,
        b"\x01",
        "CPS",
    )


def test_dir_records_and_refusals() -> None:
    record = t(
        0x61, t(0x4F, bytes.fromhex("E828BD080F8025000001FF0010")) + t(0x50, b"CPS") + t(0x51, bytes.fromhex("3F00"))
    )
    assert parse_dir_records(record) == [(bytes.fromhex("E828BD080F8025000001FF0010"), "CPS", b"\x3f\x00")]
    with pytest.raises(DirectoryError):
        parse_token_info(t(0x30, t(0x02, b"\0")))
    with pytest.raises(DirectoryError):
        parse_dodf(t(0x30, common("X") + t(0x30, b"")))  # no [1] type attributes
    with pytest.raises(DirectoryError):
        parse_odf(b"\xa0\x05\x30")  # truncated
