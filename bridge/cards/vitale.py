"""What a Carte Vitale 2 holds: the table of the tags read (meaning, source) and the card model.

Every beneficiary's identity and NIR, and the card's validity dates. The card is read by
`bridge.cards.vitale_reader` (PC/SC) and decoded by `bridge.cards.vitale_parse` (pure).

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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

__all__ = [
    "QUALITY_INSURED",
    "TAGS",
    "UNVERIFIED",
    "Beneficiary",
    "VitaleCard",
    "VitaleTag",
    "unverified_fields",
]

QUALITY_INSURED = "00"


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
            # Whether the card holds this person's own NIR: only then may ins.search start from the card.
            # False (a child on a parent's card): cardNir is someone else's and never this person's INS.
            "hasOwnIns": self.nir_valid,
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
