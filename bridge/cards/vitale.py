"""Carte Vitale 2 driver: every beneficiary's identity and NIR, and the card's validity dates.

Synchronous code over a `CardChannel` (T=0 61xx/6Cxx handled below it); APDU builders and parsers are
pure functions. The read follows the public traces (cardpeek ``vitale_2.lua``, Rufus
``lecteurvitale.cpp``), with no PIN and no CPS:

1. ``00 A4 00 00 02 3F00`` select the MF (a card without it is not a Vitale);
2. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary (identity);
3. ``00 A4 02 0C 02 2F02`` then READ BINARY: EF "PAN" (optional);
4. ``00 A4 04 00 0B D250000002 "VITALE"`` select the VITALE application;
5. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary (NIR), then ``66``.

A file longer than 256 bytes is read on with ``00 B0 hh ll 00`` from offset 256 until a short read.
Every tag read, its meaning and its source are in `TAGS`, the one table the parsers take their tags
from; a tag marked `UNVERIFIED` has no public source and was checked against the bridge's own
emulator only (``bridge/sim/vitale.py``). `VitaleCard.to_json` lists the fields that rest on them.

Assumptions (public sources are silent; the emulator encodes them this way)
---------------------------------------------------------------------------
- ``65/84`` rang de naissance: ASCII digits. Anything else -> None.
- ``65/85`` code qualité SESAM-Vitale, ASCII: ``"00"`` is the insured (assuré); any other value an
  ayant droit. Absent -> nobody is known to be the insured (``isInsured: null``): the order of the
  templates says nothing about it, so it is never guessed from position.
- ``66/81`` end of validity, ASCII ``YYYYMMDD`` like ``66/80``.
- EF ``2F02`` holds ``5A`` with the card serial number, BCD, ``F``-padded.

Pairing and NIRs
----------------
The two lists of step 2 and 5 are paired by position, as Rufus does; the identity list leads. A
shorter NIR list leaves the last beneficiaries without a NIR, a longer one has its extra templates
ignored, and a template without ``93`` gives no NIR: readers in the field tolerate all three.
``93`` may be the NIR of the person who opens the rights (a child on a parent's card), so the
driver keeps it as ``card_nir`` and presents it as the beneficiary's own ``nir`` only when nothing
contradicts that: its birth year and month (NIR characters 2-5, public INSEE structure) must agree
with the card's birth date, and when several beneficiaries carry the same NIR and fit, only the one
whose quality is ``00`` owns it (without qualities, none of them is said to).

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
    "TAGS",
    "UNVERIFIED",
    "Beneficiary",
    "BeneficiaryCoverage",
    "BeneficiaryIdentity",
    "VitaleCard",
    "VitaleTag",
    "build_card",
    "nir_key",
    "nir_matches_birth",
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
    "unverified_fields",
]

log = logging.getLogger(__name__)

AID_VITALE = bytes.fromhex("D250000002") + b"VITALE"
AID_VITALE_MF = bytes.fromhex("D250000002") + b"MF_VITALE"
SFI_BENEFICIARIES = 2
FID_PAN = 0x2F02
QUALITY_INSURED = "00"
_MAX_EF_SIZE = 16 * 1024  # a Vitale 2 chip holds 32 KB in all; no single EF comes close


# ---- the tags, their meaning and their source ---------------------------------------------------------

UNVERIFIED = "unverified"
_CARDPEEK = "cardpeek vitale_2.lua"
_RUFUS = "Rufus lecteurvitale.cpp"


@dataclass(frozen=True, slots=True)
class VitaleTag:
    """One data object the driver reads: where it sits, what it means, who says so, which JSON fields show it."""

    template: int  # the enclosing template; 0 for a tag at the top level of its EF
    tag: int
    meaning: str
    source: str
    fields: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """True when a public source names this tag with this meaning."""
        return self.source != UNVERIFIED


# The only place tag numbers are written: the parsers below look them up here by name.
TAGS: dict[str, VitaleTag] = {
    "last_name": VitaleTag(0x65, 0x80, "nom (MF, SFI 2)", f"{_CARDPEEK}; {_RUFUS}", ("lastName",)),
    "first_name": VitaleTag(0x65, 0x81, "prénom (MF, SFI 2)", f"{_CARDPEEK}; {_RUFUS}", ("firstName",)),
    "birth_date": VitaleTag(
        0x65, 0x82, "date de naissance, ASCII YYYYMMDD (MF, SFI 2)", f"{_CARDPEEK}; {_RUFUS}", ("birthDateRaw",)
    ),
    "nir": VitaleTag(
        0x65, 0x93, "NIR, 15 ASCII characters (VITALE, SFI 2)", f"{_CARDPEEK}; {_RUFUS}", ("cardNir", "cardNirKey")
    ),
    "rank": VitaleTag(0x65, 0x84, "rang de naissance, ASCII digits (VITALE, SFI 2)", UNVERIFIED, ("rank",)),
    "quality": VitaleTag(
        0x65, 0x85, "code qualité, ASCII, 00 = assuré (VITALE, SFI 2)", UNVERIFIED, ("quality", "isInsured")
    ),
    "validity_start": VitaleTag(
        0x66, 0x80, "date de début de validité, ASCII YYYYMMDD (VITALE, SFI 2)", _CARDPEEK, ("validityStart",)
    ),
    "validity_end": VitaleTag(
        0x66, 0x81, "date de fin de validité, ASCII YYYYMMDD (VITALE, SFI 2)", UNVERIFIED, ("validityEnd",)
    ),
    "serial": VitaleTag(0, 0x5A, "numéro de série, BCD F-padded (MF, EF 2F02)", UNVERIFIED, ("serial",)),
}


def unverified_fields() -> list[str]:
    """The JSON fields whose value comes from a tag no public source confirms."""
    return [f for t in TAGS.values() if not t.verified for f in t.fields]


# ---- model ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beneficiary:
    """One person on the card. Personal fields are left out of repr() so they never reach a log by accident."""

    last_name: str = field(repr=False)
    first_name: str = field(repr=False)
    birth_date_raw: str = field(repr=False)
    birth_date: date | None = field(repr=False)
    lunar: bool
    card_nir: str | None = field(repr=False)
    card_nir_key: str | None = field(repr=False)
    card_nir_valid: bool
    own_nir: bool | None
    is_insured: bool | None
    rank: int | None
    quality: str | None = None

    @property
    def nir(self) -> str | None:
        """The beneficiary's own NIR (13 characters), None when the card shows none that is surely theirs."""
        return self.card_nir if self.own_nir else None

    @property
    def nir_key(self) -> str | None:
        """The key of `nir`, None with it."""
        return self.card_nir_key if self.own_nir else None

    @property
    def nir_valid(self) -> bool:
        """True when the beneficiary has an own NIR and its key is right."""
        return bool(self.own_nir) and self.card_nir_valid

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
            "cardNir": self.card_nir,
            "cardNirKey": self.card_nir_key,
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
        """The insured person (assuré) when a quality tag names one; None when the card does not say."""
        return next((b for b in self.beneficiaries if b.is_insured), None)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "serial": self.serial,
            "validityStart": self.validity_start.isoformat() if self.validity_start else None,
            "validityEnd": self.validity_end.isoformat() if self.validity_end else None,
            "beneficiaries": [b.to_json() for b in self.beneficiaries],
            "unverified": unverified_fields(),
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


def _child(t: Tlv, name: str) -> bytes | None:
    c = t.find(TAGS[name].tag)
    return c.value if c is not None else None


@dataclass(frozen=True, slots=True)
class BeneficiaryIdentity:
    """One ``65`` template of the MF's file (step 2)."""

    last_name: str = field(repr=False)
    first_name: str = field(repr=False)
    birth_raw: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BeneficiaryCoverage:
    """One ``65`` template of the VITALE application's file (step 5); None where a tag is absent."""

    nir15: str | None = field(repr=False)
    rank: int | None = None
    quality: str | None = None


def _raw_date(value: bytes) -> str:
    # ASCII digits on every card seen; fall back to hex so a BCD date still reads YYYYMMDD.
    return value.decode("ascii") if value.isascii() and value.decode("ascii").isdigit() else value.hex().upper()


def parse_identity_templates(data: bytes) -> list[BeneficiaryIdentity]:
    """The MF's SFI-2 file: one identity per ``65`` template, a missing tag read as empty."""
    return [
        BeneficiaryIdentity(
            _text(_child(t, "last_name") or b""),
            _text(_child(t, "first_name") or b""),
            _raw_date(_child(t, "birth_date") or b""),
        )
        for t in _templates(data, TAGS["last_name"].template)
    ]


def parse_nir_templates(data: bytes) -> list[BeneficiaryCoverage]:
    """The VITALE application's SFI-2 file: one coverage per ``65`` template, a missing tag read as None."""
    out: list[BeneficiaryCoverage] = []
    for t in _templates(data, TAGS["nir"].template):
        nir = _child(t, "nir")
        rank = _text(_child(t, "rank") or b"")
        quality = _child(t, "quality")
        out.append(
            BeneficiaryCoverage(
                (_text(nir).replace(" ", "") or None) if nir is not None else None,
                int(rank) if rank.isdigit() else None,
                _text(quality) if quality is not None else None,
            )
        )
    return out


def parse_card_template(data: bytes) -> tuple[date | None, date | None]:
    """Validity (start, end) from the ``66`` template, None where absent or invalid."""
    card = next(iter(_templates(data, TAGS["validity_start"].template)), None)
    if card is None:
        return None, None

    def as_date(name: str) -> date | None:
        value = _child(card, name)
        if value is None:
            return None
        parsed, lunar = normalise_birth_date(_raw_date(value))
        return None if lunar else parsed

    return as_date("validity_start"), as_date("validity_end")


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


def nir_matches_birth(nir13: str, birth_raw: str) -> bool | None:
    """Whether the NIR's birth year and month (characters 2-5) agree with a raw birth date; None if unknown."""
    if len(nir13) < 5 or not nir13[1:5].isdigit() or len(birth_raw) != 8 or not birth_raw.isdigit():
        return None
    if nir13[1:3] != birth_raw[2:4]:
        return False
    # NIR months 20-42 and 50-99 stand for an unknown or fictitious month, and a lunar 00 says nothing.
    nir_month, card_month = int(nir13[3:5]), int(birth_raw[4:6])
    return not (1 <= nir_month <= 12 and 1 <= card_month <= 12 and nir_month != card_month)


def _is_insured(quality: str | None) -> bool | None:
    # Only the quality tag says who the insured is; without it the card does not tell.
    return None if quality is None else quality == QUALITY_INSURED


def _ownership(pairs: Sequence[tuple[BeneficiaryIdentity, BeneficiaryCoverage | None]]) -> list[bool | None]:
    """For each beneficiary, whether the template's NIR is their own (see "Pairing and NIRs")."""
    nirs = [c.nir15 if c is not None else None for _, c in pairs]
    qualities = [c.quality if c is not None else None for _, c in pairs]
    # A NIR whose structure cannot be checked (None) is not contradicted by it.
    fits = [
        n is not None and nir_matches_birth(n[:13], i.birth_raw) is not False
        for n, (i, _) in zip(nirs, pairs, strict=True)
    ]
    out: list[bool | None] = []
    for n, nir in enumerate(nirs):
        if nir is None:
            out.append(None)
            continue
        rivals = [m for m in range(len(nirs)) if m != n and fits[m] and nirs[m] == nir]
        if not fits[n]:
            out.append(False)
        elif not rivals or qualities[n] == QUALITY_INSURED:
            out.append(True)
        elif any(qualities[m] == QUALITY_INSURED for m in rivals):
            out.append(False)
        else:
            out.append(None)  # several plausible owners and no quality to choose: nobody is said to own it
    return out


def _beneficiary(ident: BeneficiaryIdentity, cov: BeneficiaryCoverage | None, own: bool | None) -> Beneficiary:
    birth, lunar = normalise_birth_date(ident.birth_raw)
    nir, key = split_nir(cov.nir15) if cov is not None and cov.nir15 else (None, None)
    expected = nir_key(nir) if nir is not None else None
    return Beneficiary(
        last_name=ident.last_name,
        first_name=ident.first_name,
        birth_date_raw=ident.birth_raw,
        birth_date=birth,
        lunar=lunar,
        card_nir=nir,
        card_nir_key=key,
        card_nir_valid=expected is not None and key is not None and key.isdigit() and int(key) == expected,
        own_nir=own,
        is_insured=_is_insured(cov.quality if cov is not None else None),
        rank=cov.rank if cov is not None else None,
        quality=cov.quality if cov is not None else None,
    )


def build_card(
    identities: Sequence[BeneficiaryIdentity],
    coverages: Sequence[BeneficiaryCoverage],
    serial: str | None,
    validity: tuple[date | None, date | None],
) -> VitaleCard:
    """Pair the two beneficiary lists by position, the identity list leading, into the model."""
    if len(identities) != len(coverages):
        # Tolerated as Rufus does; only the counts are logged, never who is on the card.
        log.warning("Vitale card: %d identities but %d NIR templates", len(identities), len(coverages))
    pairs = [(ident, coverages[n] if n < len(coverages) else None) for n, ident in enumerate(identities)]
    own = _ownership(pairs)
    beneficiaries = tuple(_beneficiary(i, c, o) for (i, c), o in zip(pairs, own, strict=True))
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
        value = next((t.value for t in parse_tlv(pan) if t.tag == TAGS["serial"].tag), None)
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
