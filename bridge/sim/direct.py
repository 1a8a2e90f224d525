"""A CardChannel wired straight to a virtual card object, with no pcscd in between.

Drivers are tested byte for byte against the emulators this way, through the same transport rules
(`transceive`) that the PC/SC layer applies.
"""

from __future__ import annotations

from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.t0 import transceive
from bridge.sim.vpcd import VirtualCard

__all__ = ["DirectChannel"]


class DirectChannel:
    """CardChannel over an in-process VirtualCard; records the raw exchanges for assertions."""

    def __init__(self, card: VirtualCard, *, extended_length: bool = False) -> None:
        self.card = card
        self.extended_length = extended_length
        self.trace: list[tuple[bytes, bytes]] = []
        card.power_on()

    @property
    def atr(self) -> bytes:
        """The card's ATR."""
        return self.card.atr()

    def _send(self, apdu: bytes) -> bytes:
        response = self.card.process(apdu)
        self.trace.append((apdu, response))
        return response

    def reset(self) -> None:
        """Warm reset of the virtual card."""
        self.card.reset()

    def transmit(self, command: Command) -> Response:
        """Send a command through the transport rules to the card."""
        return transceive(command, self._send, extended_length=self.extended_length)
