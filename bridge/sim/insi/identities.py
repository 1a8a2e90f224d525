"""The INSi simulator's reference identities, CNDA style: one match, none, several, diacritics and hyphens.

The CNAM's qualification platform answers with test identities whose cases the CNDA validation walks
through (one identity found; none; several; a birth name with hyphens; several first names where only
the first one, or the whole list, matches: `padoa/tlsi-ins` `insi-fetch-ins-special-cases.models.ts`).
These are the simulator's own identities playing the same cases; only PATB-QUATRE LAURENCE comes from an
official document (the sample answer `WS_INS2_rechercherInsAvecTraitsIdentite_response.xml`, INS-NIR OID
1.2.250.1.213.1.4.8). The family of the virtual Vitale card "famille" is here too, with the DMP
simulator's test OID (1.2.250.1.213.1.4.10) so that the INS found opens their DMP in the sandbox; the
daughter LEA, carried on her father's card, has her own INS, different from the NIR on the card.

Matching (the simulator's rule; the real service's is not published): birth name, sex and birth date
equal, the birth place equal when given, and `Prenom` equal to the first first name or to the whole
list. Names are compared in the referential's alphabet (capitals, no diacritics).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IDENTITIES", "SimIdentity", "match"]

_NIR = "1.2.250.1.213.1.4.8"
_NIA = "1.2.250.1.213.1.4.9"
_NIR_TEST = "1.2.250.1.213.1.4.10"


@dataclass(frozen=True)
class SimIdentity:
    """One person of the reference: INS (13 + key), OID, traits (ListePrenom in civil order)."""

    number: str
    key: str
    oid: str
    birth_name: str
    first_names: str
    sex: str
    birth_date: str
    birth_place: str
    #: Earlier INS of the person (INSHISTO), (13 + key, OID).
    history: tuple[tuple[str, str, str], ...] = ()

    @property
    def ins(self) -> str:
        """13 characters and the key."""
        return self.number + self.key


IDENTITIES: tuple[SimIdentity, ...] = (
    # The official sample's identity (one match).
    SimIdentity("2070585756270", "97", _NIR, "PATB-QUATRE", "LAURENCE", "F", "1907-05-25", "85756"),
    # The Vitale card "famille" (bridge/sim/profiles/vitale-famille.json): the insured, his spouse (lunar
    # birth date), their daughter (own INS; her card carries her father's NIR).
    SimIdentity("1780375115012", "01", _NIR_TEST, "MARTIN", "JEAN", "M", "1978-03-14", "75115"),
    SimIdentity("2812099352014", "76", _NIR_TEST, "MARTIN", "AICHA", "F", "1981-00-00", "99352"),
    SimIdentity("2120975115043", "49", _NIR_TEST, "MARTIN", "LEA", "F", "2012-09-03", "75115"),
    # Several identities for the same traits (CR 02).
    SimIdentity("2900175056123", "20", _NIR_TEST, "DUPONT", "MARIE", "F", "1990-01-01", "75056"),
    SimIdentity("2900175056124", "19", _NIR_TEST, "DUPONT", "MARIE", "F", "1990-01-01", "75056"),
    # Diacritics, apostrophe and hyphens in the civil identity: "Hélène-Françoise Marie d'Orléans-Bragance".
    SimIdentity(
        "2850313055087", "97", _NIR_TEST, "D'ORLEANS-BRAGANCE", "HELENE-FRANCOISE MARIE", "F", "1985-03-13", "13055"
    ),
    # Several first names: found with the first one or the whole list, not with "PAUL" alone.
    SimIdentity(
        "1650269123456",
        "03",
        _NIR_TEST,
        "LEGRAND",
        "PIERRE PAUL JACQUES",
        "M",
        "1965-02-10",
        "69123",
        history=(("1650269123455", "04", _NIR_TEST),),
    ),
    # A temporary number (INS-NIA).
    SimIdentity("7950712345678", "51", _NIA, "OKAFOR", "CHIDI", "M", "1995-07-12", "99134"),
)


def match(
    identities: tuple[SimIdentity, ...],
    *,
    birth_name: str,
    first_names: str,
    sex: str,
    birth_date: str,
    birth_place: str | None,
) -> list[SimIdentity]:
    """The identities the traits designate (see the module docstring)."""
    found = []
    for person in identities:
        if (person.birth_name, person.sex, person.birth_date) != (birth_name, sex, birth_date):
            continue
        if birth_place and birth_place != person.birth_place:
            continue
        if first_names not in (person.first_names.split(" ")[0], person.first_names):
            continue
        found.append(person)
    return found
