"""The contract every CPS backend meets: the ANS Cryptolib through PKCS#11, or the bridge's own PC/SC driver.

Methods block (card I/O): the card service calls them off the event loop, one at a time per card.
The service chooses the backend (`bridge.service`), so nothing above it knows which one answered,
except through `CpsCardInfo.backend` and `.generation`, shown to people for diagnosis.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus

__all__ = ["CpsToken"]


class CpsToken(Protocol):
    """One CPS in one reader, as a backend reaches it."""

    #: "pkcs11" or "pcsc".
    backend: str

    def read_public(self) -> CpsCardInfo:
        """Serial, card, holder, professional data, both certificates and the PIN counter (no PIN needed)."""

    def pin_status(self) -> PinStatus:
        """The PIN's try counter as the card (or the token flags) tells it."""

    def login(self, pin: bytearray, *, force: bool = False) -> PinStatus:
        """Verify the PIN (zeroed in every case); PIN_LAST_TRY without sending when one try is left and not `force`."""

    def logout(self) -> None:
        """Drop the PIN's verified status."""

    def read_situations(self) -> tuple[Situation, ...]:
        """The situations d'exercice (PIN needed; gaps in their numbering allowed)."""

    def keys(self) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
        """The (authentication, signature) keys as `cryptography` objects; their `sign` blocks on the card."""
