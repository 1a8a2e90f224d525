"""BER-TLV (ISO 7816-4 §5.2, ASN.1 BER subset) build and parse helpers, shared by drivers and emulators.

Tags are handled as integers made of their wire bytes (``0x7F21``, ``0x5F37``, ``0xBF8101``), so a tag
reads in code exactly as in a trace. Lengths use the short form or ``81``/``82``/``83`` long forms.
Bytes ``00`` and ``FF`` found where a tag should start are skipped: ISO 7816-4 allows them as padding
before and after data objects, and fixed-size EFs are often padded that way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Tlv",
    "TlvError",
    "encode_length",
    "encode_tag",
    "encode_tlv",
    "find_all",
    "find_first",
    "parse_tlv",
]

_MAX_TAG_BYTES = 4
_MAX_LENGTH_BYTES = 3
_PADDING = (0x00, 0xFF)


class TlvError(ValueError):
    """Malformed BER-TLV data."""


@dataclass(frozen=True, slots=True)
class Tlv:
    """One data object: its tag, raw value, and (for a constructed tag) the parsed children."""

    tag: int
    value: bytes
    children: tuple[Tlv, ...] = ()

    @property
    def constructed(self) -> bool:
        """True when bit 6 of the first tag byte is set (the value is itself a TLV sequence)."""
        return _is_constructed(self.tag)

    def find(self, tag: int) -> Tlv | None:
        """The first direct child with `tag`, or None."""
        return next((c for c in self.children if c.tag == tag), None)

    def to_bytes(self) -> bytes:
        """Re-encode this data object (children are encoded from `value`, which is authoritative)."""
        return encode_tlv(self.tag, self.value)


def _first_tag_byte(tag: int) -> int:
    return tag >> (8 * ((tag.bit_length() - 1) // 8)) if tag else 0


def _is_constructed(tag: int) -> bool:
    return bool(_first_tag_byte(tag) & 0x20)


def encode_tag(tag: int) -> bytes:
    """The wire bytes of `tag` (an int such as 0x84 or 0x7F21), checked for BER consistency."""
    if tag < 0:
        raise TlvError(f"negative tag {tag}")
    raw = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    if len(raw) > _MAX_TAG_BYTES:
        raise TlvError(f"tag {tag:X} longer than {_MAX_TAG_BYTES} bytes")
    multi = (raw[0] & 0x1F) == 0x1F
    if multi != (len(raw) > 1):
        raise TlvError(f"tag {raw.hex().upper()} is not a valid BER tag")
    if multi and (any(b & 0x80 == 0 for b in raw[1:-1]) or raw[-1] & 0x80):
        raise TlvError(f"tag {raw.hex().upper()} has bad continuation bits")
    return raw


def encode_length(length: int) -> bytes:
    """BER definite length: one byte below 128, else 81 xx / 82 xxxx / 83 xxxxxx."""
    if length < 0:
        raise TlvError("negative length")
    if length < 0x80:
        return bytes((length,))
    n = (length.bit_length() + 7) // 8
    if n > _MAX_LENGTH_BYTES:
        raise TlvError(f"length {length} too large")
    return bytes((0x80 | n,)) + length.to_bytes(n, "big")


def encode_tlv(tag: int, value: bytes | Iterable[bytes]) -> bytes:
    """Encode one data object; `value` may be bytes or an iterable of already encoded children."""
    body = value if isinstance(value, bytes | bytearray) else b"".join(value)
    return encode_tag(tag) + encode_length(len(body)) + bytes(body)


def _read_tag(data: bytes, pos: int) -> tuple[int, int]:
    start = pos
    first = data[pos]
    pos += 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                raise TlvError("truncated multi-byte tag")
            b = data[pos]
            pos += 1
            if not b & 0x80:
                break
            if pos - start >= _MAX_TAG_BYTES:
                raise TlvError("tag too long")
    return int.from_bytes(data[start:pos], "big"), pos


def _read_length(data: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(data):
        raise TlvError("missing length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0 or n > _MAX_LENGTH_BYTES:
        raise TlvError(f"unsupported length byte {first:02X}")
    if pos + n > len(data):
        raise TlvError("truncated length")
    return int.from_bytes(data[pos : pos + n], "big"), pos + n


def _iter_tlv(data: bytes, nested: bool, depth: int) -> Iterator[Tlv]:
    if depth > 16:
        raise TlvError("TLV nesting too deep")
    pos = 0
    while pos < len(data):
        if data[pos] in _PADDING:
            pos += 1
            continue
        tag, pos = _read_tag(data, pos)
        length, pos = _read_length(data, pos)
        if pos + length > len(data):
            raise TlvError(f"value of tag {tag:X} truncated ({length} bytes announced)")
        value = bytes(data[pos : pos + length])
        pos += length
        children = tuple(_iter_tlv(value, nested, depth + 1)) if nested and _is_constructed(tag) else ()
        yield Tlv(tag, value, children)


def parse_tlv(data: bytes, *, nested: bool = True) -> list[Tlv]:
    """Parse a sequence of data objects; constructed ones get their children parsed when `nested`.

    Raises:
        TlvError: on truncated or malformed encodings.
    """
    return list(_iter_tlv(bytes(data), nested, 0))


def find_all(tlvs: Sequence[Tlv], tag: int) -> list[Tlv]:
    """Every data object with `tag`, searched depth-first through the children."""
    found: list[Tlv] = []
    for t in tlvs:
        if t.tag == tag:
            found.append(t)
        found.extend(find_all(t.children, tag))
    return found


def find_first(tlvs: Sequence[Tlv], tag: int) -> Tlv | None:
    """The first data object with `tag` (depth-first), or None."""
    found = find_all(tlvs, tag)
    return found[0] if found else None
