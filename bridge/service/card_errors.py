"""Card-service errors that say what is wrong and what to do: no card of the kind asked, a card not answering."""

from __future__ import annotations

from bridge.errors import BridgeError, ErrorCode

__all__ = ["CardTimeout", "NoCardOfKind"]

_NO_CARD: dict[str, tuple[str, str]] = {
    "cps": (
        "Aucune carte CPS insérée : insérez votre carte CPS (ou CPE) dans un lecteur à contact, puis réessayez.",
        "No CPS card inserted: insert your CPS (or CPE) card in a contact reader, then try again.",
    ),
    "vitale": (
        "Aucune carte Vitale insérée : insérez la carte Vitale du patient dans un lecteur, puis réessayez.",
        "No Vitale card inserted: insert the patient's Vitale card in a reader, then try again.",
    ),
}


class NoCardOfKind(BridgeError):
    """NO_CARD when no reader holds a card of the kind asked (other cards may be in other readers)."""

    def __init__(self, kind: str) -> None:
        super().__init__(ErrorCode.NO_CARD, f"no-{kind}-card", expected=kind)
        self.kind = kind

    @property
    def message_fr(self) -> str:
        """The French message: which card is missing and what to do."""
        return _NO_CARD[self.kind][0]

    @property
    def message_en(self) -> str:
        """The English message."""
        return _NO_CARD[self.kind][1]


class CardTimeout(BridgeError):
    """TIMEOUT when a card operation did not end within the configured bound (`card_timeout`)."""

    def __init__(self, operation: str, bound: float) -> None:
        super().__init__(
            ErrorCode.TIMEOUT, f"card: {operation} not done within {bound:g} s", stage="card", operation=operation,
            seconds=bound,
        )  # fmt: skip
        self.operation, self.bound = operation, bound

    @property
    def message_fr(self) -> str:
        """The French message: the card did not answer, and what to do."""
        return (
            f"La carte ne répond pas (opération {self.operation} non terminée en {self.bound:g} s). Réessayez ; "
            "si cela se répète, retirez la carte du lecteur et réinsérez-la."
        )

    @property
    def message_en(self) -> str:
        """The English message."""
        return (
            f"The card does not answer ({self.operation} not done within {self.bound:g} s). Try again; if it "
            "happens again, take the card out of the reader and insert it again."
        )
