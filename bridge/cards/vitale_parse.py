"""Decoding a Carte Vitale 2's files into the model (pure): templates, dates, NIRs, pairing of the two lists.

Tag numbers come from `bridge.cards.vitale.TAGS` only.

Pairing and NIRs
----------------
The two lists (steps 2 and 5 of `bridge.cards.vitale_reader`) are paired by position, as Rufus does;
the identity list leads. A shorter NIR list leaves the last beneficiaries without a NIR, a longer one
has its extra templates ignored, and a template without ``93`` gives no NIR: readers in the field
tolerate all three.
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

from bridge.cards.vitale import QUALITY_INSURED, TAGS, Beneficiary, VitaleCard
from bridge.errors import BridgeError, ErrorCode
from bridge.tlv import Tlv, TlvError, parse_tlv

__all__ = [
    "BeneficiaryCoverage",
    "BeneficiaryIdentity",
    "build_card",
    "nir_key",
    "nir_matches_birth",
    "normalise_birth_date",
    "parse_card_template",
    "parse_identity_templates",
    "parse_nir_templates",
    "split_nir",
]

log = logging.getLogger(__name__)


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
