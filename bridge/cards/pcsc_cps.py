"""The bridge's own PC/SC CPS3 driver behind the `CpsToken` contract: the "pcsc" backend.

`Cps3Card` runs its APDUs on a `CardChannel`; this adapter hands each call to a `Runner` (the card's
`CardConnection` worker, one PC/SC transaction per call) and blocks the calling thread for the
result, exactly as the PKCS#11 backend blocks in the module. So the card service calls both
backends the same way, from a worker thread, never from the event loop.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards.cps3 import CardState, Cps3Card, Runner, card_keys
from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_token import CpsToken
from bridge.pcsc.channel import CardChannel

__all__ = ["PcscCpsToken"]


class PcscCpsToken:
    """One CPS3 on one PC/SC connection (`bridge.cards.cps_token.CpsToken`, backend "pcsc")."""

    backend = "pcsc"

    def __init__(self, runner: Runner, card: Cps3Card | None = None) -> None:
        self._runner = runner
        self._card = card if card is not None else Cps3Card()

    def __repr__(self) -> str:
        return f"PcscCpsToken({self._card!r})"

    def _ready(self, ch: CardChannel) -> None:
        # The driver allows PIN operations only once EF.SN.ICC said the card is a CPS3.
        if self._card.state is CardState.NEW:
            self._card.identify(ch)

    def read_public(self) -> CpsCardInfo:
        """Serial, card, holder, professional data, both certificates and the PIN counter (no PIN needed)."""
        return self._runner(self._card.read_public)

    def pin_status(self) -> PinStatus:
        """The PIN counter (GET DATA on the CHV)."""

        def status(ch: CardChannel) -> PinStatus:
            self._ready(ch)
            return self._card.pin_status(ch)

        return self._runner(status)

    def login(self, pin: bytearray, *, force: bool = False) -> PinStatus:
        """VERIFY the PIN (zeroed in every case), refusing the last try unless `force`."""

        def verify(ch: CardChannel) -> PinStatus:
            self._ready(ch)
            return self._card.verify_pin(ch, pin, force=force)

        try:
            return self._runner(verify)
        finally:
            pin[:] = bytes(len(pin))  # the driver zeroes it too; this covers a failure before VERIFY

    def logout(self) -> None:
        """Reset the PIN's verified status (nothing to do on a blocked PIN: it is not verified)."""

        def logout(ch: CardChannel) -> None:
            self._ready(ch)
            if self._card.state is not CardState.BLOCKED:
                self._card.logout(ch)

        self._runner(logout)

    def read_situations(self) -> tuple[Situation, ...]:
        """The situations d'exercice (PIN needed)."""

        def read(ch: CardChannel) -> tuple[Situation, ...]:
            self._ready(ch)
            return self._card.read_situations(ch)

        return self._runner(read)

    def keys(self) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
        """The (authentication, signature) keys; each signature runs on the card's worker."""
        return card_keys(self._runner, self._card)


def _meets_the_contract(token: PcscCpsToken) -> CpsToken:
    return token  # mypy checks PcscCpsToken against the CpsToken protocol here
