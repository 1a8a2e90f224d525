"""The contract between the PC/SC layer and the card drivers.

A driver is plain synchronous code that receives a `CardChannel` and calls `transmit`. The PC/SC layer
runs the driver on the card's own worker thread, inside an exclusive transaction, so APDUs of two
callers never interleave; tests run the same driver on a channel wired straight to a virtual card.
"""

from __future__ import annotations

from typing import Protocol

from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response, StatusWord

__all__ = ["CardChannel", "StatusWordError", "check"]


class CardChannel(Protocol):
    """A logical connection to one card."""

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""

    def transmit(self, command: Command) -> Response:
        """Send one command; T=0 61xx/6Cxx and command chaining are already handled below this call."""

    def reset(self) -> None:
        """Warm-reset the card: every security status (verified PIN) and selection is lost."""


class StatusWordError(BridgeError):
    """The card answered a status word other than the one expected (a remote error, not our bug)."""

    def __init__(self, sw: StatusWord, what: str = "", code: ErrorCode = ErrorCode.CARD_ERROR) -> None:
        super().__init__(code, f"{what} SW={sw}".strip(), sw=str(sw))
        self.sw = sw


def check(response: Response, what: str = "") -> bytes:
    """Return the response data if SW is 9000, else raise StatusWordError naming the step."""
    if not response.sw.ok:
        raise StatusWordError(response.sw, what)
    return response.data
