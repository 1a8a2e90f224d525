"""The bridge's own PC/SC CPS drivers (CPS3, CPS4) behind the `CpsToken` contract: the "pcsc" backend.

`Cps3Card` / `Cps4Card` run their APDUs on a `CardChannel`; this adapter hands each call to a `Runner` (the card's
`CardConnection` worker, one PC/SC transaction per call) and blocks the calling thread for the
result, exactly as the PKCS#11 backend blocks in the module. So the card service calls both
backends the same way, from a worker thread, never from the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards import cps3, cps4
from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_session import CardState, Runner
from bridge.cards.cps_token import CpsToken
from bridge.pcsc.channel import CardChannel

__all__ = ["PcscCpsToken"]


class _Driver(Protocol):
    """What `Cps3Card` and `Cps4Card` both offer on a channel."""

    state: CardState

    def identify(self, ch: CardChannel) -> str: ...
    def read_public(self, ch: CardChannel) -> CpsCardInfo: ...
    def pin_status(self, ch: CardChannel) -> PinStatus: ...
    def verify_pin(self, ch: CardChannel, pin: bytearray, *, force: bool = False) -> PinStatus: ...
    def logout(self, ch: CardChannel) -> None: ...
    def read_situations(self, ch: CardChannel) -> tuple[Situation, ...]: ...


class PcscCpsToken:
    """One CPS3 or CPS4 on one PC/SC connection (`bridge.cards.cps_token.CpsToken`, backend "pcsc")."""

    backend = "pcsc"

    def __init__(self, runner: Runner, *, generation: str = "CPS3") -> None:
        self._runner = runner
        self._card: _Driver
        self._keys: Callable[[Runner], tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]]
        if generation == "CPS4":
            card4 = cps4.Cps4Card()
            self._card, self._keys = card4, lambda run: cps4.card_keys(run, card4)
        else:
            card3 = cps3.Cps3Card()
            self._card, self._keys = card3, lambda run: cps3.card_keys(run, card3)

    def __repr__(self) -> str:
        return f"PcscCpsToken({self._card!r})"

    def _ready(self, ch: CardChannel) -> None:
        # The driver allows PIN operations only once EF.SN.ICC said the card is a CPS of its generation.
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
        return self._keys(self._runner)


def _meets_the_contract(token: PcscCpsToken) -> CpsToken:
    return token  # mypy checks PcscCpsToken against the CpsToken protocol here
