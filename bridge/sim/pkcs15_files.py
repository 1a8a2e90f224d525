"""The emulators' own PKCS#15 encoder: directory files (ODF, TokenInfo, AODF, PrKDF, CDF, DODF, EF.DIR).

Written from PKCS#15 v1.1 §6 / ISO/IEC 7816-15, independently of the driver's parser
(`bridge.cards.pkcs15`); the judge of both is the official Cryptolib, which must accept the cards
built with this module (tests/integration/test_cryptolib_cps.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bridge.tlv import encode_tlv

__all__ = [
    "KEY_USAGE_DECRYPT",
    "KEY_USAGE_NON_REPUDIATION",
    "KEY_USAGE_SIGN",
    "PIN_FLAG_INITIALIZED",
    "PIN_FLAG_LOCAL",
    "PIN_FLAG_NEEDS_PADDING",
    "Cert",
    "Data",
    "Key",
    "Pin",
    "aodf",
    "bit_string",
    "cdf",
    "dir_record",
    "dodf",
    "odf",
    "path",
    "prkdf",
    "token_info",
]

# PinFlags (PKCS#15 §6.8.2) and KeyUsageFlags (§6.2.4) bit numbers.
PIN_FLAG_LOCAL, PIN_FLAG_INITIALIZED, PIN_FLAG_NEEDS_PADDING = 1, 4, 5
KEY_USAGE_DECRYPT, KEY_USAGE_SIGN, KEY_USAGE_NON_REPUDIATION = 1, 2, 9
_SEQ = 0x30


def bit_string(bits: Iterable[int]) -> bytes:
    """A DER BIT STRING value (unused-bits byte first) with the named bits set (bit 0 = first bit)."""
    bits = list(bits)
    if not bits:
        return b"\x00"
    length = max(bits) // 8 + 1
    body = bytearray(length)
    for bit in bits:
        body[bit // 8] |= 0x80 >> (bit % 8)
    last = body[-1]
    unused = (last & -last).bit_length() - 1 if last else 0
    return bytes((unused,)) + bytes(body)


def path(fids: bytes, index: int | None = None, length: int | None = None) -> bytes:
    """A Path: ``30 { 04 path [02 index 80 length] }``."""
    body = encode_tlv(0x04, fids)
    if index is not None and length is not None:
        body += encode_tlv(0x02, _int(index)) + encode_tlv(0x80, _int(length))
    return encode_tlv(_SEQ, body)


def _int(value: int) -> bytes:
    """DER INTEGER contents (minimal, positive)."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _common(label: str, *, private: bool = False, modifiable: bool = False, auth_id: bytes = b"") -> bytes:
    flags = [bit for bit, on in ((0, private), (1, modifiable)) if on]
    body = encode_tlv(0x0C, label.encode())
    if flags:
        body += encode_tlv(0x03, bit_string(flags))
    if auth_id:
        body += encode_tlv(0x04, auth_id)
    return encode_tlv(_SEQ, body)


@dataclass(frozen=True)
class Pin:
    """A PIN object: label, authId, flags, type (1 = ascii-numeric), lengths, reference, pad, path."""

    label: str
    auth_id: bytes
    reference: int
    min_length: int
    stored_length: int
    max_length: int
    pin_type: int = 1
    flags: tuple[int, ...] = (PIN_FLAG_LOCAL, PIN_FLAG_INITIALIZED)
    pad_char: int | None = None
    df_path: bytes | None = None


@dataclass(frozen=True)
class Key:
    """An RSA private key: label, id, usage bits, on-card reference, modulus bits, PIN authId, key path."""

    label: str
    key_id: bytes
    usage: tuple[int, ...]
    reference: int
    modulus_bits: int
    auth_id: bytes
    key_path: bytes
    native: bool = True


@dataclass(frozen=True)
class Cert:
    """An X.509 certificate: label, id (the key's), file path."""

    label: str
    cert_id: bytes
    file_path: bytes


@dataclass(frozen=True)
class Data:
    """An opaque data object: label, file path, PIN-protected or not, application name."""

    label: str
    file_path: bytes
    private: bool = False
    modifiable: bool = False
    auth_id: bytes = b""
    application: str = ""


def dir_record(aid: bytes, label: str, df_path: bytes) -> bytes:
    """An EF.DIR application template ``61 { 4F AID, 50 label, 51 path }``."""
    return encode_tlv(0x61, encode_tlv(0x4F, aid) + encode_tlv(0x50, label.encode()) + encode_tlv(0x51, df_path))


def odf(entries: Iterable[tuple[int, bytes]]) -> bytes:
    """EF.ODF from (choice tag A0..A8, directory file path) pairs."""
    return b"".join(encode_tlv(tag, path(fids)) for tag, fids in entries)


def token_info(serial: bytes, manufacturer: str, label: str, flags: Iterable[int] = ()) -> bytes:
    """EF.TokenInfo: version 0, serialNumber, manufacturerID, label [0], tokenflags."""
    body = (
        encode_tlv(0x02, b"\x00")
        + encode_tlv(0x04, serial)
        + encode_tlv(0x0C, manufacturer.encode())
        + encode_tlv(0x80, label.encode())
        + encode_tlv(0x03, bit_string(flags))
    )
    return encode_tlv(_SEQ, body)


def aodf(pins: Iterable[Pin]) -> bytes:
    """EF.AODF with one PinAttributes entry per PIN."""
    out = b""
    for pin in pins:
        attrs = (
            encode_tlv(0x03, bit_string(pin.flags))
            + encode_tlv(0x0A, bytes((pin.pin_type,)))
            + encode_tlv(0x02, _int(pin.min_length))
            + encode_tlv(0x02, _int(pin.stored_length))
            + encode_tlv(0x02, _int(pin.max_length))
            + encode_tlv(0x80, bytes((pin.reference,)))
        )
        if pin.pad_char is not None:
            attrs += encode_tlv(0x04, bytes((pin.pad_char,)))
        if pin.df_path is not None:
            attrs += path(pin.df_path)
        entry = (
            _common(pin.label, private=True)
            + encode_tlv(_SEQ, encode_tlv(0x04, pin.auth_id))
            + encode_tlv(0xA1, encode_tlv(_SEQ, attrs))
        )
        out += encode_tlv(_SEQ, entry)
    return out


def prkdf(keys: Iterable[Key]) -> bytes:
    """EF.PrKDF with one RSA private key entry per key."""
    out = b""
    for key in keys:
        key_attrs = encode_tlv(0x04, key.key_id) + encode_tlv(0x03, bit_string(key.usage))
        if key.native:
            key_attrs += encode_tlv(0x01, b"\xff")
        key_attrs += encode_tlv(0x02, _int(key.reference))
        rsa = encode_tlv(_SEQ, path(key.key_path) + encode_tlv(0x02, _int(key.modulus_bits)))
        entry = (
            _common(key.label, private=True, auth_id=key.auth_id) + encode_tlv(_SEQ, key_attrs) + encode_tlv(0xA1, rsa)
        )
        out += encode_tlv(_SEQ, entry)
    return out


def cdf(certs: Iterable[Cert]) -> bytes:
    """EF.CDF with one X.509 certificate entry per certificate."""
    out = b""
    for cert in certs:
        entry = (
            _common(cert.label)
            + encode_tlv(_SEQ, encode_tlv(0x04, cert.cert_id))
            + encode_tlv(0xA1, encode_tlv(_SEQ, path(cert.file_path)))
        )
        out += encode_tlv(_SEQ, entry)
    return out


def dodf(objects: Iterable[Data]) -> bytes:
    """EF.DODF with one opaque data object entry per object."""
    out = b""
    for obj in objects:
        data_attrs = encode_tlv(0x0C, obj.application.encode()) if obj.application else b""
        entry = (
            _common(obj.label, private=obj.private, modifiable=obj.modifiable, auth_id=obj.auth_id)
            + encode_tlv(_SEQ, data_attrs)
            + encode_tlv(0xA1, path(obj.file_path))
        )
        out += encode_tlv(_SEQ, entry)
    return out
