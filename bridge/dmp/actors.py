"""Which actor of the rights matrix (PDT-INF-526) a DMP caller is, from what the VIHF carries.

One derivation for the client (refuse early) and the simulator (refuse as the DMP does):
- an indirect authentication (INDIRECTE, INDIRECTE_RENFORCEE) is the establishment's certificate,
  « Certificat ES », whoever the person named in the VIHF is;
- in DIRECTE mode, profession code 10 (TRE_G15, médecin) is « Médecin », or « Médecin Traitant » when
  the DMP knows this doctor as the patient's médecin traitant (a fact the DMP holds, not the client);
- a card without a profession (CPE: a non-PS holder, e.g. a medical secretary) is « CPE non PS »;
- any other profession is « PS non médecin ».
The médecin du travail column needs a fact no card carries (occupational medicine); it is not derived.
"""

from __future__ import annotations

from bridge.dmp.rights import AccessMode, Actor

__all__ = ["MEDECIN_PROFESSION", "access_mode_for", "actor_for"]

#: TRE_G15 profession code of a médecin.
MEDECIN_PROFESSION = "10"


def actor_for(*, auth_mode: str, profession_code: str, treating_physician: bool = False) -> Actor:
    """The matrix's actor for a VIHF's authentication mode and profession (see the module docstring)."""
    if auth_mode != "DIRECTE":
        return Actor.CERTIFICAT_ES
    if not profession_code:
        return Actor.CPE
    if profession_code == MEDECIN_PROFESSION:
        return Actor.MEDECIN_TRAITANT if treating_physician else Actor.MEDECIN
    return Actor.PS_NON_MEDECIN


def access_mode_for(purpose: str) -> AccessMode:
    """The matrix's access mode for a VIHF purpose of use (TRE_R248 code: normal, bris_de_glace, centre_15)."""
    return AccessMode(purpose)
