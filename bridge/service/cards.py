"""The card use cases the API calls, as a Protocol the drivers' service implements, plus per-card locks.

Serialisation: one card operation at a time per reader. A second caller waits at most
`CardLocks.wait` seconds (default `DEFAULT_BUSY_WAIT` = 3 s, config key `card_busy_wait`) and then
gets ``CARD_BUSY``; waiters are served in arrival order (asyncio.Lock is FIFO). APDUs of two callers
can therefore never interleave, and nobody waits behind a long PIN entry for more than the bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol

from bridge.errors import BridgeError, ErrorCode
from bridge.service.cps_login_owner import CpsLoginOwners

__all__ = ["DEFAULT_BUSY_WAIT", "CardKind", "CardLocks", "CardService", "DigestName", "KeyUsage"]

DEFAULT_BUSY_WAIT = 3.0

CardKind = Literal["cps", "vitale"]
DigestName = Literal["SHA-256", "SHA-384", "SHA-512"]
KeyUsage = Literal["signature", "authentication"]


class CardService(Protocol):
    """Card operations; results are JSON-ready dicts without secrets or patient data in logs."""

    async def resolve(self, reader: str | None, kind: CardKind) -> str:
        """The reader to use: `reader` itself, or the only one holding a card of `kind` (NO_CARD otherwise)."""

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder identity, certificates (DER base64), validity, PIN tries."""

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        """Verify the PIN; the service must zero nothing itself: the caller zeroes `pin` afterwards."""

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        """Forget the card's verified state."""

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Sign `data` (or a digest when `prehashed`) with the card key."""

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        """Beneficiaries and card data."""

    async def forget(self, reader: str) -> None:
        """The card left `reader`: drop any session state kept for it."""

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        """Non-secret diagnostics summary or None: optional keys type, certificateNotAfter, pinTriesLeft."""


class CardLocks:
    """One FIFO lock per reader, acquired with a bounded wait."""

    def __init__(self, wait: float = DEFAULT_BUSY_WAIT, *, share_cps_login: bool = False) -> None:
        self.wait = wait
        self._locks: dict[str, asyncio.Lock] = {}
        #: Who entered each card's PIN (checked by cps.sign and the DMP calls that use the card).
        self.login_owners = CpsLoginOwners(shared=share_cps_login)

    @asynccontextmanager
    async def hold(self, reader: str) -> AsyncIterator[None]:
        """Hold `reader` for one operation; CARD_BUSY after `wait` seconds."""
        lock = self._locks.setdefault(reader, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), self.wait)
        except TimeoutError:
            raise BridgeError(ErrorCode.CARD_BUSY, waitSeconds=self.wait) from None
        try:
            yield
        finally:
            lock.release()
