"""Carte Vitale 2 driver: every beneficiary's identity and NIR, and the card's validity dates.

Synchronous code over a `CardChannel` (T=0 61xx/6Cxx handled below it); APDU builders and parsers are
pure functions. The read follows the public traces (cardpeek ``vitale_2.lua``, Rufus
``lecteurvitale.cpp``), with no PIN and no CPS:

1. ``00 A4 00 00 02 3F00`` select the MF (a card without it is not a Vitale);
2. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary with ``80`` last name,
   ``81`` first name, ``82`` birth date (ASCII ``YYYYMMDD``);
3. ``00 A4 02 0C 02 2F02`` then READ BINARY: EF "PAN" (optional, see below);
4. ``00 A4 04 00 0B D250000002 "VITALE"`` select the VITALE application;
5. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary, same order as in 2,
   with ``93`` NIR (15 ASCII characters: 13 + key).

A file longer than 256 bytes is read on with ``00 B0 hh ll 00`` from offset 256 until a short read.

Assumptions (verified on the virtual card only)
-----------------------------------------------
Public sources give the tags above and nothing on the beneficiary's quality, rank or the card's
validity; the bridge's emulator (``bridge/sim/vitale.py``) encodes them as follows and this driver
reads them the same way:

- ``65/84``: rang de naissance, ASCII digit(s) (``"1"``; twins get ``"2"``...). Absent -> None.
- ``65/85``: code qualité SESAM-Vitale, 2 ASCII digits: ``"00"`` assuré; ``"01"`` ascendant,
  descendant, collatéral; ``"02"`` conjoint; ``"06"`` enfant; others are ayants droit too. Absent on
  every template -> the first beneficiary is taken as the insured (the card opener), the others as
  ayants droit.
- ``66`` (card template, after the ``65`` templates of step 5): ``80`` start and ``81`` end of
  validity, ASCII ``YYYYMMDD`` (cardpeek names ``66/80`` "date de début de validité"; ``81`` is ours).
- EF ``2F02`` ("PAN" in cardpeek) holds ``5A`` with the card serial number, BCD, ``F``-padded.
- ``93`` is the NIR under which the beneficiary is covered: for a child on a parent's card it is the
  parent's NIR, so the NIR does not identify the beneficiary; ``is_insured`` comes from the quality.
- The two lists of step 2 and 5 must have the same length; a mismatch is refused (pairing names with
  the wrong NIR would be worse than no reading).

Birth dates: the raw card value is kept. "Lunar" dates (day or month 00 or out of range, used when
the civil-status date is unknown) are flagged, and normalised best-effort by clamping the month to
1..12 and the day to 1..last day of that month (``19650000`` -> 1965-01-01, ``19810231`` -> 1981-02-28).
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.channel import CardChannel, StatusWordError, check
from bridge.tlv import Tlv, TlvError, parse_tlv

__all__ = [
    "AID_VITALE",
    "AID_VITALE_MF",
    "QUALITY_INSURED",
    "Beneficiary",
    "BeneficiaryCoverage",
    "BeneficiaryIdentity",
    "VitaleCard",
    "build_card",
    "nir_key",
    "normalise_birth_date",
    "parse_card_template",
    "parse_identity_templates",
    "parse_nir_templates",
    "read_binary",
    "read_binary_sfi",
    "read_vitale",
    "select_aid",
    "select_fid",
    "select_mf",
    "split_nir",
]

log = logging.getLogger(__name__)

AID_VITALE = bytes.fromhex("D250000002") + b"VITALE"
AID_VITALE_MF = bytes.fromhex("D250000002") + b"MF_VITALE"
SFI_BENEFICIARIES = 2
FID_PAN = 0x2F02
QUALITY_INSURED = "00"
_MAX_EF_SIZE = 16 * 1024  # a Vitale 2 chip holds 32 KB in all; no single EF comes close


# ---- model ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One person on the card. Personal fields are left out of repr() so they never reach a log by accident."""

    last_name: str = field(repr=False)
    first_name: str = field(repr=False)
    birth_date_raw: str = field(repr=False)
    birth_date: date | None = field(repr=False)
    lunar: bool
    nir: str = field(repr=False)
    nir_key: str = field(repr=False)
    nir_valid: bool
    is_insured: bool
    rank: int | None
    quality: str | None = None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (dates ISO 8601; ``birthDateRaw`` as on the card)."""
        return {
            "lastName": self.last_name,
            "firstName": self.first_name,
            "birthDateRaw": self.birth_date_raw,
            "birthDate": self.birth_date.isoformat() if self.birth_date else None,
            "lunar": self.lunar,
            "nir": self.nir,
            "nirKey": self.nir_key,
            "nirValid": self.nir_valid,
            "isInsured": self.is_insured,
            "rank": self.rank,
            "quality": self.quality,
        }


@dataclass(frozen=True, slots=True)
class VitaleCard:
    """What a Vitale 2 card says, beneficiaries in card order."""

    serial: str | None
    validity_start: date | None
    validity_end: date | None
    beneficiaries: tuple[Beneficiary, ...]

    @property
    def insured(self) -> Beneficiary | None:
        """The insured person (assuré), if the card names one."""
        return next((b for b in self.beneficiaries if b.is_insured), None)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "serial": self.serial,
            "validityStart": self.validity_start.isoformat() if self.validity_start else None,
            "validityEnd": self.validity_end.isoformat() if self.validity_end else None,
            "beneficiaries": [b.to_json() for b in self.beneficiaries],
        }


# ---- APDU builders ------------------------------------------------------------------------------------


def select_mf() -> Command:
    """SELECT MF by FID, asking for the FCI (as the public traces do)."""
    return Command(0x00, 0xA4, 0x00, 0x00, b"\x3f\x00")


def select_aid(aid: bytes) -> Command:
    """SELECT an application by AID, FCI requested (cardpeek/Rufus form)."""
    return Command(0x00, 0xA4, 0x04, 0x00, aid)


def select_fid(fid: int) -> Command:
    """SELECT an EF of the current DF by FID, no answer data."""
    return Command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def read_binary_sfi(sfi: int) -> Command:
    """READ BINARY from offset 0 of the EF with short identifier `sfi` (which becomes current)."""
    if not 1 <= sfi <= 30:
        raise ValueError("SFI must be within 1..30")
    return Command(0x00, 0xB0, 0x80 | sfi, 0x00, le=256)


def read_binary(offset: int) -> Command:
    """READ BINARY of the current EF at `offset` (15 bits), up to 256 bytes."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset must fit in 15 bits")
    return Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=256)


# ---- parsers -----------------------------------------------------------------------------------------


def _text(value: bytes) -> str:
    # Names are upper-case Latin-1 on the card; fixed-width fields may be space or NUL padded.
    return value.decode("latin-1").strip(" \x00")


def _templates(data: bytes, tag: int) -> list[Tlv]:
    try:
        return [t for t in parse_tlv(data) if t.tag == tag]
    except TlvError as exc:
        raise BridgeError(ErrorCode.CARD_ERROR, f"vitale: malformed TLV ({exc})") from exc


def _child(t: Tlv, tag: int) -> bytes | None:
    c = t.find(tag)
    return c.value if c is not None else None


@dataclass(frozen=True, slots=True)
class BeneficiaryIdentity:
    """One ``65`` template of the MF's file (step 2)."""

    last_name: str = field(repr=False)
    first_name: str = field(repr=False)
    birth_raw: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BeneficiaryCoverage:
    """One ``65`` template of the VITALE application's file (step 5)."""

    nir15: str = field(repr=False)
    rank: int | None
    quality: str | None


def _raw_date(value: bytes) -> str:
    # ASCII digits on every card seen; fall back to hex so a BCD date still reads YYYYMMDD.
    return value.decode("ascii") if value.isascii() and value.decode("ascii").isdigit() else value.hex().upper()


def parse_identity_templates(data: bytes) -> list[BeneficiaryIdentity]:
    """The MF's SFI-2 file: ``65`` templates with ``80`` last name, ``81`` first name, ``82`` birth date."""
    return [
        BeneficiaryIdentity(
            _text(_child(t, 0x80) or b""), _text(_child(t, 0x81) or b""), _raw_date(_child(t, 0x82) or b"")
        )
        for t in _templates(data, 0x65)
    ]


def parse_nir_templates(data: bytes) -> list[BeneficiaryCoverage]:
    """The VITALE application's SFI-2 file: ``65`` templates with ``93`` NIR, ``84`` rank, ``85`` quality."""
    out: list[BeneficiaryCoverage] = []
    for t in _templates(data, 0x65):
        rank_raw = _text(_child(t, 0x84) or b"")
        quality = _child(t, 0x85)
        out.append(
            BeneficiaryCoverage(
                _text(_child(t, 0x93) or b"").replace(" ", ""),
                int(rank_raw) if rank_raw.isdigit() else None,
                _text(quality) if quality is not None else None,
            )
        )
    return out


def parse_card_template(data: bytes) -> tuple[date | None, date | None]:
    """Validity (start, end) from the ``66`` template (``80``/``81``), None where absent or invalid."""
    card = next(iter(_templates(data, 0x66)), None)
    if card is None:
        return None, None

    def as_date(tag: int) -> date | None:
        value = _child(card, tag)
        if value is None:
            return None
        parsed, lunar = normalise_birth_date(_raw_date(value))
        return None if lunar else parsed

    return as_date(0x80), as_date(0x81)


def normalise_birth_date(raw: str) -> tuple[date | None, bool]:
    """(best-effort date, lunar) for a raw ``YYYYMMDD`` card date; (None, False) if it is not one."""
    if len(raw) != 8 or not raw.isdigit():
        return None, False
    year, month, day = int(raw[:4]), int(raw[4:6]), int(raw[6:])
    if year < 1:
        return None, False
    m = min(max(month, 1), 12)
    last = calendar.monthrange(year, m)[1]
    d = min(max(day, 1), last)
    return date(year, m, d), (m, d) != (month, day)


def split_nir(nir15: str) -> tuple[str, str]:
    """(13-character NIR, 2-digit key) from the card's 15 characters."""
    return nir15[:13], nir15[13:15]


def nir_key(nir13: str) -> int | None:
    """The control key 97 - (NIR mod 97), Corsica 2A/2B counted as 19/18; None if `nir13` is malformed."""
    if len(nir13) != 13:
        return None
    dept = nir13[5:7].upper()
    digits = nir13[:5] + {"2A": "19", "2B": "18"}.get(dept, dept) + nir13[7:]
    if not digits.isdigit():
        return None
    return 97 - int(digits) % 97


def _beneficiary(ident: BeneficiaryIdentity, cov: BeneficiaryCoverage, insured: bool) -> Beneficiary:
    nir, key = split_nir(cov.nir15)
    expected = nir_key(nir)
    birth, lunar = normalise_birth_date(ident.birth_raw)
    return Beneficiary(
        last_name=ident.last_name,
        first_name=ident.first_name,
        birth_date_raw=ident.birth_raw,
        birth_date=birth,
        lunar=lunar,
        nir=nir,
        nir_key=key,
        nir_valid=expected is not None and key.isdigit() and int(key) == expected,
        is_insured=insured,
        rank=cov.rank,
        quality=cov.quality,
    )


def build_card(
    identities: Sequence[BeneficiaryIdentity],
    coverages: Sequence[BeneficiaryCoverage],
    serial: str | None,
    validity: tuple[date | None, date | None],
) -> VitaleCard:
    """Pair the two beneficiary lists (same order on the card) into the model."""
    if len(identities) != len(coverages):
        raise BridgeError(ErrorCode.CARD_ERROR, "vitale: identity and NIR lists differ in length")
    qualities_known = any(c.quality is not None for c in coverages)
    beneficiaries = tuple(
        _beneficiary(i, c, c.quality == QUALITY_INSURED if qualities_known else n == 0)
        for n, (i, c) in enumerate(zip(identities, coverages, strict=True))
    )
    return VitaleCard(serial, validity[0], validity[1], beneficiaries)


# ---- I/O edge ----------------------------------------------------------------------------------------


def _read_ef(channel: CardChannel, first: Command, what: str) -> bytes:
    """Read a whole transparent EF: `first` (offset 0), then 256-byte chunks until a short read."""
    data = bytearray(check(channel.transmit(first), what))
    chunk = len(data)
    while chunk == 256 and len(data) < _MAX_EF_SIZE:
        response: Response = channel.transmit(read_binary(len(data)))
        if response.sw.value == 0x6B00:  # the EF ends exactly on a 256-byte boundary
            break
        part = check(response, what)
        data += part
        chunk = len(part)
    return bytes(data)


def _read_serial(channel: CardChannel) -> str | None:
    if not channel.transmit(select_fid(FID_PAN)).sw.ok:
        return None
    try:
        pan = _read_ef(channel, read_binary(0), "vitale: read PAN")
        value = next((t.value for t in parse_tlv(pan) if t.tag == 0x5A), None)
    except (StatusWordError, TlvError):
        return None
    return value.hex().upper().rstrip("F") if value else None


def read_vitale(channel: CardChannel) -> VitaleCard:
    """Read every beneficiary of the Vitale 2 card on `channel`.

    Raises:
        BridgeError: UNSUPPORTED_CARD when the card has no Vitale MF/application; CARD_ERROR (a
            `StatusWordError`) when a read is refused or the data is inconsistent.
    """
    if not channel.transmit(select_mf()).sw.ok:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no MF)")
    try:
        identity_file = _read_ef(channel, read_binary_sfi(SFI_BENEFICIARIES), "vitale: identity")
    except StatusWordError as exc:
        if exc.sw.value in (0x6A82, 0x6981):  # an MF without the Vitale identity EF: another card
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no identity file)") from exc
        raise
    identities = parse_identity_templates(identity_file)
    serial = _read_serial(channel)
    if not channel.transmit(select_aid(AID_VITALE)).sw.ok:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no VITALE application)")
    nir_file = _read_ef(channel, read_binary_sfi(SFI_BENEFICIARIES), "vitale: NIR")
    card = build_card(identities, parse_nir_templates(nir_file), serial, parse_card_template(nir_file))
    log.info("Vitale card read: %d beneficiaries", len(card.beneficiaries))
    return card
