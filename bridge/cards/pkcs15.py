"""PKCS#15 (ISO/IEC 7816-15) directory files, parsed without I/O: how a CPS tells where its objects are.

A CPS3 (IAS-ECC) and a CPS4 (ChipDoc) are PKCS#15 cards: their data objects, certificates, keys and
PIN are found through the object directory file (ODF) and the directory files it points to, by
label — not at fixed file identifiers. This module turns those files' DER into plain values; the
card drivers do the SELECT/READ BINARY and the emulators build the files (their own encoder).

Structures (PKCS#15 v1.1 §6, ISO/IEC 7816-15 §8), as the ANS Cryptolib's OpenSC-derived parser reads
them (`pkcs15.c`, `pkcs15-pin.c`, `pkcs15-prkey.c`, `pkcs15-cert.c`, `pkcs15-data.c`):

* ODF: a sequence of ``[A0 private keys | A1 public keys | A4 certificates | A7 data objects |
  A8 authentication objects …] { Path }``.
* TokenInfo: ``30 { 02 version, 04 serialNumber, [0C manufacturerID], [80 label], 03 tokenflags … }``.
* Every directory entry: ``30 { 30 CommonObjectAttributes { [0C label], [03 flags], [04 authId] … },
  30 class attributes, [A0 subclass attributes], A1 { type attributes } }``.
* Path: ``30 { 04 path, [02 index, 80 length] }``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from bridge.tlv import Tlv, TlvError, parse_tlv

__all__ = [
    "ODF_KIND",
    "AuthObject",
    "CertObject",
    "DataObject",
    "DirectoryError",
    "Odf",
    "Pkcs15Path",
    "PrivateKeyObject",
    "TokenInfo",
    "parse_aodf",
    "parse_cdf",
    "parse_dir_records",
    "parse_dodf",
    "parse_odf",
    "parse_prkdf",
    "parse_token_info",
    "pin_block",
]

#: ODF choice tag -> the kind of directory file it points to.
ODF_KIND = {
    0xA0: "prkdf",
    0xA1: "pukdf",
    0xA2: "pukdf_trusted",
    0xA3: "skdf",
    0xA4: "cdf",
    0xA5: "cdf_trusted",
    0xA6: "cdf_useful",
    0xA7: "dodf",
    0xA8: "aodf",
}

# ASN.1 universal tags as they appear on the wire.
_SEQUENCE, _INTEGER, _BIT_STRING, _OCTET_STRING, _BOOLEAN = 0x30, 0x02, 0x03, 0x04, 0x01
_UTF8, _ENUMERATED, _OID = 0x0C, 0x0A, 0x06


class DirectoryError(ValueError):
    """A PKCS#15 file that cannot be decoded (the card's content, not our bug)."""


@dataclass(frozen=True)
class Pkcs15Path:
    """A PKCS#15 Path: file identifiers from the MF (absolute, ``3F00…``) or from the application DF."""

    path: bytes
    index: int | None = None
    length: int | None = None

    @property
    def absolute(self) -> bool:
        """True when the path starts at the MF."""
        return self.path[:2] == b"\x3f\x00"


@dataclass(frozen=True)
class Odf:
    """The object directory: where each kind of directory file is (several per kind allowed)."""

    paths: dict[str, tuple[Pkcs15Path, ...]]

    def of(self, kind: str) -> tuple[Pkcs15Path, ...]:
        """The directory files of `kind` (see `ODF_KIND`), possibly none."""
        return self.paths.get(kind, ())


@dataclass(frozen=True)
class TokenInfo:
    """EF.TokenInfo: the token's serial, manufacturer, label and flags."""

    version: int
    serial: str
    manufacturer: str
    label: str
    flags: int


@dataclass(frozen=True)
class _Common:
    label: str
    private: bool
    modifiable: bool
    auth_id: bytes


@dataclass(frozen=True)
class AuthObject:
    """A PIN (AODF entry): how VERIFY must carry it, and which objects it protects (`auth_id`)."""

    label: str
    auth_id: bytes
    flags: int
    pin_type: int
    min_length: int
    stored_length: int
    max_length: int | None
    reference: int
    pad_char: int | None
    path: Pkcs15Path | None

    # pinFlags bits (PKCS#15 §6.8.2), numbered from the first bit of the BIT STRING.
    @property
    def needs_padding(self) -> bool:
        """pinFlags needs-padding: the PIN is padded with `pad_char` to `stored_length`."""
        return bool(self.flags & (1 << 5))

    @property
    def local(self) -> bool:
        """pinFlags local: the reference is local to the application DF (select it first)."""
        return bool(self.flags & (1 << 1))


@dataclass(frozen=True)
class PrivateKeyObject:
    """An RSA private key (PrKDF entry): id, usage bits, on-card reference, modulus size."""

    label: str
    key_id: bytes
    usage: int
    reference: int | None
    modulus_bits: int | None
    auth_id: bytes
    path: Pkcs15Path | None

    # KeyUsageFlags bits (PKCS#15 §6.2.4).
    @property
    def non_repudiation(self) -> bool:
        """The key signs with non-repudiation (the CPS signature key)."""
        return bool(self.usage & (1 << 9))


@dataclass(frozen=True)
class CertObject:
    """An X.509 certificate (CDF entry): its id (matching a key's) and where it is."""

    label: str
    cert_id: bytes
    path: Pkcs15Path
    authority: bool = False


@dataclass(frozen=True)
class DataObject:
    """An opaque data object (DODF entry): label, whether the PIN protects it, where it is."""

    label: str
    private: bool
    modifiable: bool
    auth_id: bytes
    path: Pkcs15Path
    application: str = field(default="")


def _parse(data: bytes, what: str) -> list[Tlv]:
    try:
        return parse_tlv(data)
    except TlvError as exc:
        raise DirectoryError(f"{what}: {exc}") from None


def _int(tlv: Tlv | None, default: int = 0) -> int:
    return int.from_bytes(tlv.value, "big") if tlv is not None and tlv.value else default


def bit_string_flags(value: bytes) -> int:
    """A DER BIT STRING as flags where bit i is the i-th bit of the string (first bit = bit 0)."""
    if not value:
        return 0
    flags = 0
    for byte_index, byte in enumerate(value[1:]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                flags |= 1 << (byte_index * 8 + bit)
    return flags


def _text(tlv: Tlv | None) -> str:
    return tlv.value.decode("utf-8", "replace") if tlv is not None else ""


def _path(tlv: Tlv | None, what: str) -> Pkcs15Path:
    if tlv is None or tlv.tag != _SEQUENCE:
        raise DirectoryError(f"{what}: Path missing")
    raw = tlv.find(_OCTET_STRING)
    if raw is None:
        raise DirectoryError(f"{what}: Path without an octet string")
    index, length = tlv.find(_INTEGER), tlv.find(0x80)
    return Pkcs15Path(raw.value, _int(index) if index else None, _int(length) if length else None)


def _common(entry: Tlv, what: str) -> _Common:
    if len(entry.children) < 2 or entry.children[0].tag != _SEQUENCE:
        raise DirectoryError(f"{what}: CommonObjectAttributes missing")
    common = entry.children[0]
    flags = common.find(_BIT_STRING)
    bits = bit_string_flags(flags.value) if flags else 0
    auth_id = common.find(_OCTET_STRING)
    return _Common(_text(common.find(_UTF8)), bool(bits & 1), bool(bits & 2), auth_id.value if auth_id else b"")


def _type_attributes(entry: Tlv, what: str) -> Tlv:
    typed = entry.find(0xA1)
    if typed is None or not typed.children:
        raise DirectoryError(f"{what}: type attributes [1] missing")
    return typed.children[0]


def _entries(data: bytes, what: str) -> Iterator[Tlv]:
    for entry in _parse(data, what):
        if entry.constructed and entry.children:
            yield entry


def parse_dir_records(data: bytes) -> list[tuple[bytes, str, bytes]]:
    """EF.DIR application templates ``61 { 4F AID, 50 label, 51 path }`` -> (aid, label, path)."""
    apps = []
    for tlv in _parse(data, "EF.DIR"):
        if tlv.tag == 0x61:
            aid, label, path = tlv.find(0x4F), tlv.find(0x50), tlv.find(0x51)
            apps.append((aid.value if aid else b"", _text(label), path.value if path else b""))
    return apps


def parse_odf(data: bytes) -> Odf:
    """EF.ODF -> where each directory file is."""
    paths: dict[str, list[Pkcs15Path]] = {}
    for tlv in _parse(data, "EF.ODF"):
        kind = ODF_KIND.get(tlv.tag)
        if kind is None:
            continue
        paths.setdefault(kind, []).append(_path(tlv.find(_SEQUENCE), f"ODF {kind}"))
    return Odf({kind: tuple(found) for kind, found in paths.items()})


def parse_token_info(data: bytes) -> TokenInfo:
    """EF.TokenInfo -> serial (hex of the octet string, upper case), manufacturer, label, flags."""
    tlvs = _parse(data, "EF.TokenInfo")
    if not tlvs or tlvs[0].tag != _SEQUENCE:
        raise DirectoryError("EF.TokenInfo: not a SEQUENCE")
    info = tlvs[0]
    serial, flags = info.find(_OCTET_STRING), info.find(_BIT_STRING)
    if serial is None:
        raise DirectoryError("EF.TokenInfo: serialNumber missing")
    return TokenInfo(
        version=_int(info.find(_INTEGER)),
        serial=serial.value.hex().upper(),
        manufacturer=_text(info.find(_UTF8)),
        label=_text(info.find(0x80)),
        flags=bit_string_flags(flags.value) if flags else 0,
    )


def parse_aodf(data: bytes) -> list[AuthObject]:
    """EF.AODF -> the PIN objects (other authentication object types are skipped)."""
    pins = []
    for entry in _entries(data, "AODF"):
        common = _common(entry, "AODF")
        auth_attrs = entry.children[1]
        auth_id = auth_attrs.find(_OCTET_STRING)
        pin = _type_attributes(entry, "AODF")
        if pin.tag != _SEQUENCE:
            continue  # biometric or other: not a PIN
        flags, pad = pin.find(_BIT_STRING), pin.find(_OCTET_STRING)
        integers = [c for c in pin.children if c.tag == _INTEGER]
        if len(integers) < 2:
            raise DirectoryError(f"AODF {common.label}: minLength/storedLength missing")
        max_length = integers[2] if len(integers) > 2 else None
        path = pin.find(_SEQUENCE)
        pins.append(
            AuthObject(
                label=common.label,
                auth_id=auth_id.value if auth_id else b"",
                flags=bit_string_flags(flags.value) if flags else 0,
                pin_type=_int(pin.find(_ENUMERATED)),
                min_length=_int(integers[0]),
                stored_length=_int(integers[1]),
                max_length=_int(max_length) if max_length is not None else None,
                reference=_int(pin.find(0x80)),
                pad_char=pad.value[0] if pad is not None and pad.value else None,
                path=_path(path, "AODF") if path is not None else None,
            )
        )
    return pins


def parse_prkdf(data: bytes) -> list[PrivateKeyObject]:
    """EF.PrKDF -> the RSA private keys (``A0``-tagged other key types are skipped)."""
    keys = []
    for entry in _entries(data, "PrKDF"):
        if entry.tag != _SEQUENCE:
            continue  # [0] EC keys, etc.
        common = _common(entry, "PrKDF")
        key_attrs = entry.children[1]
        key_id, usage, ref = key_attrs.find(_OCTET_STRING), key_attrs.find(_BIT_STRING), key_attrs.find(_INTEGER)
        rsa = _type_attributes(entry, "PrKDF")
        path = rsa.find(_SEQUENCE)
        keys.append(
            PrivateKeyObject(
                label=common.label,
                key_id=key_id.value if key_id else b"",
                usage=bit_string_flags(usage.value) if usage else 0,
                reference=_int(ref) if ref is not None else None,
                modulus_bits=_int(rsa.find(_INTEGER)) if rsa.find(_INTEGER) else None,
                auth_id=common.auth_id,
                path=_path(path, "PrKDF") if path is not None else None,
            )
        )
    return keys


def parse_cdf(data: bytes) -> list[CertObject]:
    """EF.CDF -> the X.509 certificates."""
    certs = []
    for entry in _entries(data, "CDF"):
        if entry.tag != _SEQUENCE:
            continue
        common = _common(entry, "CDF")
        cert_attrs = entry.children[1]
        cert_id, authority = cert_attrs.find(_OCTET_STRING), cert_attrs.find(_BOOLEAN)
        x509 = _type_attributes(entry, "CDF")
        certs.append(
            CertObject(
                label=common.label,
                cert_id=cert_id.value if cert_id else b"",
                path=_path(x509.find(_SEQUENCE) if x509.tag == _SEQUENCE else None, f"CDF {common.label}"),
                authority=bool(authority and authority.value and authority.value[0]),
            )
        )
    return certs


def parse_dodf(data: bytes) -> list[DataObject]:
    """EF.DODF -> the opaque data objects (label, PIN-protected or not, path)."""
    objects = []
    for entry in _entries(data, "DODF"):
        if entry.tag != _SEQUENCE:
            continue
        common = _common(entry, "DODF")
        data_attrs = entry.children[1]
        typed = _type_attributes(entry, "DODF")
        path = typed if typed.tag == _SEQUENCE else None
        objects.append(
            DataObject(
                label=common.label,
                private=common.private,
                modifiable=common.modifiable,
                auth_id=common.auth_id,
                path=_path(path, f"DODF {common.label}"),
                application=_text(data_attrs.find(_UTF8)),
            )
        )
    return objects


def pin_block(pin: bytes | bytearray, obj: AuthObject) -> bytearray:
    """The PIN block the AODF entry asks for (pkcs15-pin.c + sec.c:sc_build_pin), or ValueError.

    pinType 0 (bcd): packed nibbles, an odd length ends with the low nibble of padChar; any other
    type: the ASCII digits. With the needs-padding flag the block is padded with padChar (00 when
    absent) to storedLength bytes (bcd: storedLength/2). The length must be within min/maxLength
    (maxLength defaults to storedLength, twice that in bcd).
    """
    bcd = obj.pin_type == 0
    max_length = obj.max_length or (2 * obj.stored_length if bcd else obj.stored_length) or 8
    if not obj.min_length <= len(pin) <= max_length:
        raise ValueError(f"the PIN must have {obj.min_length} to {max_length} digits")
    pad = obj.pad_char if obj.pad_char is not None else 0x00
    block = bytearray()
    if bcd:
        for i in range(0, len(pin), 2):
            low = pin[i + 1] & 0x0F if i + 1 < len(pin) else pad & 0x0F
            block.append(((pin[i] & 0x0F) << 4) | low)
    else:
        block += pin
    if obj.needs_padding:
        target = obj.stored_length // 2 if bcd else obj.stored_length
        block += bytes((pad,)) * max(0, target - len(block))
    return block
