"""The CPx card types and how they are named to people."""

from __future__ import annotations

__all__ = ["CARD_TYPE_LABELS_FR", "cps_label"]

#: What each CPx card type is (TRE_R87 codes as the card's CPS_ID_CARD holds them; names from the
#: esante.gouv.fr e-CPS FAQ « CPS, CPF, CPE, CPA, CDE », see shared/reference/notes/cards.md §1).
CARD_TYPE_LABELS_FR = {
    "CPS": "carte de professionnel de santé",
    "CPF": "carte de professionnel de santé en formation",
    "CPE": "carte de personnel d'établissement",
    "CPA": "carte de personne autorisée",
    "CDE": "carte de directeur d'établissement",
}


def cps_label(card_type: str, generation: str) -> str:
    """How a CPx card is named to people: its type first (a CPE is not a CPS), then its generation."""
    what = CARD_TYPE_LABELS_FR.get(card_type, "carte de la famille CPS")
    return f"Carte {card_type} ({what}, {generation})"
