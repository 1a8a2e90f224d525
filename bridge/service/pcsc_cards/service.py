"""PcscCardService: the daemon's `CardService` on the real stack (pcscd, the CPS backend, the Vitale driver).

Cards are found, identified and followed over PC/SC. A CPS is then driven through its backend's
`CpsToken` (`bridge.service.cps_backend`: the ANS Cryptolib through PKCS#11 when installed, else the
bridge's own PC/SC driver), always the same way: each token call runs on the card session's worker
thread (`bridge.service.pcsc_cards.sessions`), never on the event loop, one at a time per card. Vitale cards
are read over PC/SC directly.

One session per reader: the `CardConnection` (opened on first use), what identification said about the
card, the CPS token, and after `cps.login` the situations d'exercice and the card keys. A
session ends when the ReaderMonitor reports the card gone (`CardRemoved`, `ReaderRemoved`,
`PcscUnavailable`): its connection is closed (a PKCS#11 token logged out) and a re-inserted card starts
afresh. PC/SC operations are functions of a `CardChannel` run on the connection's worker thread inside
one PC/SC transaction, so APDUs of two operations never interleave; the API layer additionally holds
the per-reader `CardLocks` (bounded wait, then CARD_BUSY) around each method.

A card pulled mid-operation: the waiting caller gets CARD_REMOVED as soon as the monitor reports the
removal (or the PC/SC layer fails the exchange), whichever comes first; an operation that never ends
(a wedged reader) fails with TIMEOUT after `operation_timeout` and its session is dropped. No caller
hangs on a card.

Errors are `BridgeError`s, the same whichever CPS backend: UNSUPPORTED_CARD with the card's kind and ATR
(unknown card, Vitale 1, CPS3 through its contactless interface, or a Vitale
where a CPS is expected), PIN_INCORRECT with
`triesLeft`, PIN_LAST_TRY (nothing sent), PIN_BLOCKED, PIN_REQUIRED (signing before login), ...
Nothing here logs holder names, NIR or PIN: only card kinds and counts.

For the DMP service (DIRECTE mode)
----------------------------------
After a successful `cps_login(reader, ...)`, call::

    card = await cards.practitioner(reader)          # reader None: the only logged-in card
    card.practitioner         # bridge.cards.cps_info.Practitioner for the selected situation (VIHF fields)
    card.situation            # the selected Situation (first one, or `select_situation(reader, index)`)
    card.situations           # all situations read at login
    card.info                 # CpsCardInfo: holder, professional info, both certificates
    card.auth_key             # RSAPrivateKey on the card's authentication key: TLS client auth
    card.sign_key             # RSAPrivateKey on the signature key (message only): VIHF and XAdES signatures
    card.auth_chain, card.sign_chain   # (leaf, intermediates...) from the `issuers` callable given here

`practitioner` raises PIN_REQUIRED when the card in `reader` is not logged in (or was logged out or
removed since). The keys block the calling thread on the card's worker: call their `sign` only from a
worker thread (`asyncio.to_thread`), never on the event loop. A DMP operation that signs several times
should hold `Application.locks.hold(reader)` so that no other caller logs the card out in between.

The Application gives the DMP service `CardServiceDirectSource(this service)` (`bridge.service.dmp_card`),
so `dmp.context.set` with DIRECTE uses the card logged in by `cps.login`. The same service without a
monitor backs `dmp-bridge card` (one code path, one JSON form of a CPS: `CpsCardInfo.to_json`).

This module is the facade: which reader to use, and the `CardService` methods, each handed to the
module of its job (`sessions`, `cps`, `vitale`, `status` in this package).
"""

from __future__ import annotations

from typing import Any

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.identify import CardIdentity, identify, identify_atr
from bridge.cards.identify import CardKind as DriverKind
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel
from bridge.service.card_errors import NoCardOfKind
from bridge.service.cards import CardKind, DigestName, KeyUsage
from bridge.service.cps_backend import CpsBackend
from bridge.service.pcsc_cards.card_session import CardSession
from bridge.service.pcsc_cards.cps import CardPractitioner, CpsCards, Issuers
from bridge.service.pcsc_cards.sessions import CardSessions, drivable_cps
from bridge.service.pcsc_cards.status import card_status
from bridge.service.pcsc_cards.vitale import vitale_read
from bridge.service.pin_throttle import DEFAULT_PIN_DELAY_UNIT, PinThrottle
from bridge.service.readers import MonitorLike

__all__ = ["DEFAULT_OPERATION_TIMEOUT", "STATUS_WAIT", "PcscCardService"]


STATUS_WAIT = 5.0  # diagnostics do not queue behind a long card operation for longer than this
DEFAULT_OPERATION_TIMEOUT = 60.0  # a CPS read is ~0.1 s on a real reader; this only bounds a wedged one

_WANTED: dict[CardKind, DriverKind] = {"cps": DriverKind.CPS3, "vitale": DriverKind.VITALE2}


def _family(kind: DriverKind) -> str:
    """The family ("cps", "vitale" or "other") a driver kind belongs to."""
    if kind in (DriverKind.CPS3, DriverKind.CPS3_CONTACTLESS, DriverKind.CPS4):
        return "cps"
    return "vitale" if kind in (DriverKind.VITALE2, DriverKind.VITALE1) else "other"


class PcscCardService:
    """The daemon's card service (implements `bridge.service.cards.CardService`).

    Args:
        monitor: the ReaderMonitor (reader snapshot and removal events); None for one-shot use (CLI),
            where readers are scanned and sessions end with `close()`.
        issuers: intermediates for a card certificate, for `CardPractitioner` chains (default: none).
        operation_timeout: bound on one card operation, in seconds.
        status_wait: how long `card_status` (diagnostics) waits behind another operation before CARD_BUSY.
        cps_backend: what drives a CPS (`bridge.service.cps_backend.select_cps_backend`); default: the
            bridge's PC/SC driver.
        pin_delay_unit: wait after a first wrong PIN on a card, doubled after each further one (tests
            shorten it).
    """

    def __init__(
        self,
        monitor: MonitorLike | None = None,
        *,
        issuers: Issuers | None = None,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
        status_wait: float = STATUS_WAIT,
        cps_backend: CpsBackend | None = None,
        pin_delay_unit: float = DEFAULT_PIN_DELAY_UNIT,
    ) -> None:
        self._sessions = CardSessions(monitor, operation_timeout, cps_backend or CpsBackend())
        self._cps = CpsCards(self._sessions, issuers, PinThrottle(pin_delay_unit))
        self._status_wait = status_wait

    @property
    def cps_backend(self) -> CpsBackend:
        """What drives a CPS in this service."""
        return self._sessions.cps_backend

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the monitor's events (called on first use anyway; needs a running loop)."""
        self._sessions.start()

    async def close(self) -> None:
        """Stop following the monitor and close every card connection."""
        await self._sessions.close()

    async def forget(self, reader: str) -> None:
        """The card left `reader` (or its handle died): wake its waiters and close its connection."""
        await self._sessions.forget(reader)

    # -- CardService --------------------------------------------------------------------------------

    async def resolve(self, reader: str | None, kind: CardKind) -> str:
        """`reader` if it holds a card; else the only reader whose card's ATR says `kind`."""
        self.start()
        rows = await self._sessions.rows()
        if not rows:
            raise BridgeError(ErrorCode.NO_READER)
        if reader is not None:
            return str((await self._sessions.row(reader)).name)
        present = [(r, identify_atr(bytes(r.atr))) for r in rows if r.card_present and r.atr]
        matching = [r for r, identity in present if self._matches(identity, kind)]
        if len(matching) == 1:
            return str(matching[0].name)
        if len(matching) > 1:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "reader: several-cards", readers=[r.name for r in matching])
        # A card whose ATR surely says another family (a Vitale when a CPS is asked) is not a candidate: the
        # caller is told the card it wants is missing, not that the other one is unsupported.
        candidates = [r for r, identity in present if not (identity.certain and _family(identity.kind) != kind)]
        if len(candidates) == 1:
            return str(candidates[0].name)  # ATR not conclusive: the operation probes, and says what it found
        raise NoCardOfKind(kind)

    def _matches(self, identity: CardIdentity, kind: CardKind) -> bool:
        if kind == "cps" and identity.kind is DriverKind.CPS4:
            return drivable_cps(identity)
        return identity.kind is _WANTED[kind]

    async def identify(self, reader: str) -> CardIdentity:
        """What the card in `reader` is (ATR, then a probe when the ATR is not conclusive); cached per card."""

        def op(session: CardSession, ch: CardChannel) -> CardIdentity:
            if session.identity is None:
                session.identity = identify(ch)
            return session.identity

        return await self._sessions.run(reader, op, "identify")

    def is_cps(self, identity: CardIdentity) -> bool:
        """True when `identity` is a CPS this service drives with its backend."""
        return drivable_cps(identity)

    async def cps_info(self, reader: str) -> CpsCardInfo:
        """Everything a CPS shows without the PIN, and which backend and generation (`cps_read` is its JSON form)."""
        return await self._cps.cps_info(reader)

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder, card validity, both certificates (DER and summary), PIN counter, backend and generation."""
        return await self._cps.cps_read(reader)

    async def login(
        self, reader: str, pin: bytearray, *, allow_last_try: bool
    ) -> tuple[PinStatus, tuple[Situation, ...]]:
        """Verify the PIN (refusing the last try unless allowed), then read the situations; `pin` is zeroed."""
        return await self._cps.login(reader, pin, allow_last_try=allow_last_try)

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        """`login`, as the cps.login result: tries and the situations d'exercice (the first one selected)."""
        return await self._cps.cps_login(reader, pin, allow_last_try=allow_last_try)

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        """Reset the card's verified state and forget the situations and keys."""
        return await self._cps.cps_logout(reader)

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Authentication key: a DigestInfo signature (any digest); signature key: the message only (SHA-256)."""
        return await self._cps.cps_sign(reader, data, digest=digest, prehashed=prehashed, key=key)

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        """Beneficiaries and validity of a Vitale 2 card (logged as a count only)."""
        return await vitale_read(self._sessions, reader)

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        """Kind, label, support; for a CPS its backend, generation, certificate end and PIN tries; nothing personal."""
        return await card_status(self._sessions, reader, self._status_wait)

    # -- for the DMP service ------------------------------------------------------------------------

    def select_situation(self, reader: str | None, index: int) -> Situation:
        """Choose the situation d'exercice (by its `index`) that `practitioner` reports."""
        return self._cps.select_situation(reader, index)

    async def practitioner(self, reader: str | None = None) -> CardPractitioner:
        """The logged-in CPS of `reader` (None: the only one): holder, selected situation, keys and chains."""
        return await self._cps.practitioner(reader)
