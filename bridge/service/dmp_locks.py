"""Per-card locks shared by the card methods and the DMP calls that use the card (DIRECTE mode).

A `cps.*` or `vitale.*` method holds its reader exclusively, as `CardLocks` always did. A DMP call made
with a card (VIHF, XAdES and TLS signed by it) holds the reader *shared* for the whole call: several
DMP calls on one card run side by side (the card's worker thread still runs one APDU exchange at a
time), but no other caller's `cps.logout`, `cps.login` or `cps.read` runs in the middle of one — they
wait at most `wait` seconds, then get CARD_BUSY, exactly as behind another card method. A waiting
exclusive holder keeps new shared holders out, so a stream of DMP calls cannot starve it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bridge.errors import BridgeError, ErrorCode
from bridge.service.cards import DEFAULT_BUSY_WAIT, CardLocks

__all__ = ["SharedCardLocks"]


@dataclass(eq=False)
class _Reader:
    #: Held by an exclusive holder, and by one waiting for the shared holders to leave (FIFO).
    exclusive: asyncio.Lock = field(default_factory=asyncio.Lock)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    shared: int = 0


class SharedCardLocks(CardLocks):
    """`CardLocks` (exclusive `hold`) plus `hold_shared` for DMP calls that use the card."""

    def __init__(self, wait: float = DEFAULT_BUSY_WAIT, *, share_cps_login: bool = False) -> None:
        super().__init__(wait, share_cps_login=share_cps_login)
        self._readers: dict[str, _Reader] = {}

    def _reader(self, reader: str) -> _Reader:
        return self._readers.setdefault(reader, _Reader())

    def _busy(self) -> BridgeError:
        return BridgeError(ErrorCode.CARD_BUSY, waitSeconds=self.wait)

    @asynccontextmanager
    async def hold(self, reader: str) -> AsyncIterator[None]:
        """Hold `reader` alone (card methods); CARD_BUSY after `wait` seconds."""
        state = self._reader(reader)
        deadline = time.monotonic() + self.wait
        try:
            await asyncio.wait_for(state.exclusive.acquire(), self.wait)
        except TimeoutError:
            raise self._busy() from None
        try:
            async with state.changed:
                await asyncio.wait_for(
                    state.changed.wait_for(lambda: state.shared == 0), max(0.0, deadline - time.monotonic())
                )
        except TimeoutError:
            state.exclusive.release()
            await self._notify(state)
            raise self._busy() from None
        try:
            yield
        finally:
            state.exclusive.release()
            await self._notify(state)

    @asynccontextmanager
    async def hold_shared(self, reader: str) -> AsyncIterator[None]:
        """Hold `reader` with other DMP calls (not with a card method); CARD_BUSY after `wait` seconds.

        The call acts with the card's login: PIN_REQUIRED when another caller entered its PIN.
        """
        self.login_owners.check(reader)
        state = self._reader(reader)
        try:
            async with state.changed:
                await asyncio.wait_for(state.changed.wait_for(lambda: not state.exclusive.locked()), self.wait)
                state.shared += 1
        except TimeoutError:
            raise self._busy() from None
        try:
            yield
        finally:
            state.shared -= 1
            await self._notify(state)

    @staticmethod
    async def _notify(state: _Reader) -> None:
        async with state.changed:
            state.changed.notify_all()
