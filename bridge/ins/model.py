"""What the INSi téléservice is asked and answers: identity traits, the qualified INS identity, the outcome.

Sources (facts only): the official sample `WS_INS2_rechercherInsAvecTraitsIdentite_{request,response}.xml`
of the DMP message package; the CNAM schemas `INSi_RECSANS_INS.xsd`, `INSi_RECVITALE_INS.xsd`,
`INSi_RESULTAT_INS.xsd` (DESIR_ICIR_EXP 1.5.0, as published in `padoa/tlsi-ins`); `padoa/tlsi-ins`
(`insi-person.class.ts`: the accepted name alphabet, one call per first name then all of them;
`insi-fetch-ins.models.ts`: compte-rendu codes 00/01/02 and their labels).

Traits go on the wire in the referential's alphabet: capitals A-Z, words joined by a space, a hyphen,
two hyphens or an apostrophe. `normalise_name` turns what a person types ("Hélène-Françoise d'Orléans")
into that form; anything it cannot map is refused before a call is made.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass, field

from bridge.dmp.codes import InsOid
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "CrCode",
    "InsIdentity",
    "InsiOutcome",
    "Traits",
    "normalise_name",
]

# padoa/tlsi-ins insi-person.class.ts `_isValidName`: the referential's name alphabet.
_NAME = re.compile(r"^[A-Z]+(?:(?:--?|[' ])[A-Z]+)*$")
_LIGATURES = {"Œ": "OE", "œ": "OE", "Æ": "AE", "æ": "AE", "ß": "SS"}
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
# Code officiel géographique: department (2 digits, 2A/2B) or 99 (abroad), then 3 digits.
_COG = re.compile(r"^(?:[0-9]{2}|2A|2B)[0-9]{3}$")


class CrCode(enum.Enum):
    """`CR/CodeCR` of a RESULTAT: how many identities the traits designate."""

    #: One identity: the INS and its traits come back.
    FOUND = "00"
    #: No identity.
    NOT_FOUND = "01"
    #: Several identities: the traits do not designate one person.
    MULTIPLE = "02"

    @property
    def label(self) -> str:
        """`LibelleCR` as the service spells it."""
        return {"00": "OK", "01": "Aucune identite trouvee", "02": "Plusieurs identites trouvees"}[self.value]


def normalise_name(text: str, field_name: str) -> str:
    """A name in the referential's alphabet (capitals, no diacritics); INVALID_PARAMS when impossible."""
    spelled = "".join(_LIGATURES.get(c, c) for c in text)
    decomposed = unicodedata.normalize("NFKD", spelled)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    bare = bare.replace("\u2019", "'").replace("\u2010", "-").replace("\u2011", "-")
    bare = re.sub(r"\s+", " ", bare).strip()
    if not _NAME.match(bare):
        raise BridgeError(ErrorCode.INVALID_PARAMS, f"{field_name}: letters, space, hyphen or apostrophe only")
    return bare


@dataclass(frozen=True, kw_only=True)
class Traits:
    """The identity traits a search or a verification sends (already in the referential's alphabet)."""

    birth_name: str = field(repr=False)
    #: First names in civil order; the first one is the usual first name.
    first_names: tuple[str, ...] = field(repr=False)
    #: "M" or "F".
    sex: str
    #: YYYY-MM-DD (a lunar date keeps its 00 day or month).
    birth_date: str = field(repr=False)
    #: Code officiel géographique of the birth place (5 characters), when known.
    birth_place: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.first_names:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "firstNames: at least one")
        if self.sex not in ("M", "F"):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "sex: M or F")
        if not _DATE.match(self.birth_date):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "birthDate: YYYY-MM-DD")
        if self.birth_place is not None and not _COG.match(self.birth_place):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "birthPlace: 5-character COG code")

    @classmethod
    def from_input(
        cls, *, birth_name: str, first_names: str, sex: str, birth_date: str, birth_place: str | None = None
    ) -> Traits:
        """Traits from what a person typed: names normalised, first names split on spaces."""
        given = normalise_name(first_names, "firstNames")
        return cls(
            birth_name=normalise_name(birth_name, "birthName"),
            first_names=tuple(given.split(" ")),
            sex=sex,
            birth_date=birth_date,
            birth_place=birth_place,
        )

    def attempts(self) -> list[str]:
        """The `Prenom` of each call, in order: each first name alone, then all of them (padoa/tlsi-ins)."""
        if len(self.first_names) == 1:
            return [self.first_names[0]]
        return [*self.first_names, " ".join(self.first_names)]


@dataclass(frozen=True, kw_only=True)
class InsIdentity:
    """The qualified identity the INSi returns: the INS (NIR or NIA) and the reference traits."""

    #: NumIdentifiant: 13 characters.
    number: str = field(repr=False)
    #: Cle: 2 digits.
    key: str = field(repr=False)
    oid: InsOid
    birth_name: str = field(repr=False)
    #: ListePrenom (or Prenom), space-separated, civil order.
    first_names: str = field(repr=False)
    sex: str
    birth_date: str = field(repr=False)
    birth_place: str | None = field(default=None, repr=False)
    #: Earlier INS of the same person (INSHISTO): (15 characters, OID).
    history: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def ins(self) -> str:
        """The 15-character INS (number and key)."""
        return self.number + self.key

    @property
    def kind(self) -> str:
        """ "INS-NIA" for a temporary number, else "INS-NIR"."""
        return "INS-NIA" if self.oid is InsOid.NIA else "INS-NIR"

    @property
    def first_name(self) -> str:
        """The first of the first names."""
        return self.first_names.split(" ")[0] if self.first_names else ""

    def patient(self) -> PatientIns:
        """The INS as the DMP calls take it."""
        return PatientIns(value=self.ins, oid=self.oid)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (the API's `identity`)."""
        return {
            "ins": self.ins,
            "oid": self.oid.value,
            "kind": self.kind,
            "birthName": self.birth_name,
            "firstName": self.first_name,
            "firstNames": self.first_names,
            "sex": self.sex,
            "birthDate": self.birth_date,
            "birthPlace": self.birth_place,
            "history": [{"ins": value, "oid": oid} for value, oid in self.history],
        }


@dataclass(frozen=True)
class InsiOutcome:
    """One RESULTAT: the compte-rendu and, for 00, the identity."""

    code: CrCode
    label: str
    identity: InsIdentity | None = None
