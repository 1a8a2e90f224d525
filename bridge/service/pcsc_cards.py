"""PcscCardService: the daemon's `CardService` on the real stack (pcscd -> CardConnection -> CPS3/Vitale drivers).

One session per reader: the `CardConnection` (opened on first use), what identification said about the
card, the CPS3 session state, and after `cps.login` the situations d'exercice and the card keys. A
session ends when the ReaderMonitor reports the card gone (`CardRemoved`, `ReaderRemoved`,
`PcscUnavailable`): its connection is closed and a re-inserted card starts afresh. Every card
operation is one function of a `CardChannel` run on the connection's worker thread inside one PC/SC
transaction, so APDUs of two operations never interleave; the API layer additionally holds the
per-reader `CardLocks` (bounded wait, then CARD_BUSY) around each method.

A card pulled mid-operation: the waiting caller gets CARD_REMOVED as soon as the monitor reports the
removal (or the PC/SC layer fails the exchange), whichever comes first; an operation that never ends
(a wedged reader) fails with TIMEOUT after `operation_timeout` and its session is dropped. No caller
hangs on a card.

Errors are `BridgeError`s: UNSUPPORTED_CARD with the card's kind and ATR (unknown card, Vitale 1, CPS4,
CPS3 through its contactless interface, or a Vitale where a CPS is expected), PIN_INCORRECT with
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
    card.auth_key             # CardRsaPrivateKey (0x82, INTERNAL AUTHENTICATE): TLS client auth
    card.sign_key             # CardRsaMessageKey (0x81, PSO HASH/CDS): VIHF and XAdES signatures
    card.auth_chain, card.sign_chain   # (leaf, intermediates...) from the `issuers` callable given here

`practitioner` raises PIN_REQUIRED when the card in `reader` is not logged in (or was logged out or
removed since). The keys block the calling thread on the card's worker: call their `sign` only from a
worker thread (`asyncio.to_thread`), never on the event loop. A DMP operation that signs several times
should hold `Application.locks.hold(reader)` so that no other caller logs the card out in between.

The Application gives the DMP service `CardServiceDirectSource(this service)` (`bridge.service.dmp_card`),
so `dmp.context.set` with DIRECTE uses the card logged in by `cps.login`. The same service without a
monitor backs `dmp-bridge card` (one code path, one JSON form of a CPS: `CpsCardInfo.to_json`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding

from bridge.cards.cps3 import CardState, Cps3Card, card_keys
from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus, Practitioner
from bridge.cards.identify import CardIdentity, identify, identify_atr, require_supported
from bridge.cards.identify import CardKind as DriverKind
from bridge.cards.vitale import read_vitale
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import CardRemoved, PcscUnavailable, ReaderRemoved, scan_readers
from bridge.service.cards import CardKind, DigestName, KeyUsage
from bridge.service.readers import MonitorLike

__all__ = ["DEFAULT_OPERATION_TIMEOUT", "STATUS_WAIT", "CardPractitioner", "Issuers", "PcscCardService"]

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_WAIT = 5.0  # diagnostics do not queue behind a long card operation for longer than this
DEFAULT_OPERATION_TIMEOUT = 60.0  # a CPS read is ~0.1 s on a real reader; this only bounds a wedged one
Issuers = Callable[[x509.Certificate], Sequence[x509.Certificate]]
"""Intermediate CA certificates for a card certificate (leaf excluded), nearest first."""

_WANTED: dict[CardKind, DriverKind] = {"cps": DriverKind.CPS3, "vitale": DriverKind.VITALE2}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


@dataclass(frozen=True)
class CardPractitioner:
    """A logged-in CPS as the DMP service needs it: who, in which situation, and the card keys."""

    reader: str
    info: CpsCardInfo
    situations: tuple[Situation, ...]
    situation: Situation
    practitioner: Practitioner
    auth_key: CardRsaPrivateKey
    sign_key: CardRsaMessageKey
    auth_chain: tuple[x509.Certificate, ...]
    sign_chain: tuple[x509.Certificate, ...]

    def __repr__(self) -> str:  # names and identifiers stay out of logs
        return f"CardPractitioner(reader={self.reader!r}, situation={self.situation.index})"


@dataclass(eq=False)
class _Session:
    """An open card and what the drivers learnt about it."""

    reader: str
    connection: CardConnection
    atr: bytes
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # set when the monitor reports the card left
    identity: CardIdentity | None = None
    cps: Cps3Card = field(default_factory=Cps3Card)
    info: CpsCardInfo | None = None
    situations: tuple[Situation, ...] | None = None  # set by a successful login, cleared by logout
    selected: int | None = None  # index of the chosen situation
    keys: tuple[CardRsaPrivateKey, CardRsaMessageKey] | None = None
    cert_not_after: str | None = None  # diagnostics cache

    def logged_out(self) -> None:
        """Forget what only a verified PIN gave."""
        self.situations, self.selected, self.keys = None, None, None


def _cps_json(info: CpsCardInfo, identity: CardIdentity | None) -> dict[str, Any]:
    """The cps.read result: the one JSON form of a CPS (`CpsCardInfo.to_json`, as the CLI prints) and its kind."""
    return {"kind": identity.kind.value if identity else DriverKind.CPS3.value, **info.to_json()}


class PcscCardService:
    """The daemon's card service (implements `bridge.service.cards.CardService`).

    Args:
        monitor: the ReaderMonitor (reader snapshot and removal events); None for one-shot use (CLI),
            where readers are scanned and sessions end with `close()`.
        issuers: intermediates for a card certificate, for `CardPractitioner` chains (default: none).
        operation_timeout: bound on one card operation, in seconds.
        status_wait: how long `card_status` (diagnostics) waits behind another operation before CARD_BUSY.
    """

    def __init__(
        self,
        monitor: MonitorLike | None = None,
        *,
        issuers: Issuers | None = None,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
        status_wait: float = STATUS_WAIT,
    ) -> None:
        self._monitor = monitor
        self._issuers = issuers
        self._timeout = operation_timeout
        self._status_wait = status_wait
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._watch: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Any] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the monitor's events (called on first use anyway; needs a running loop)."""
        if self._monitor is None or self._watch is not None:
            return
        self._queue = self._monitor.subscribe()
        self._watch = asyncio.create_task(self._follow(self._queue), name="card-sessions")

    async def close(self) -> None:
        """Stop following the monitor and close every card connection."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._queue is not None and self._monitor is not None:
            unsubscribe = getattr(self._monitor, "unsubscribe", None)
            if unsubscribe is not None:
                unsubscribe(self._queue)
            self._queue = None
        for reader in list(self._sessions):
            await self.forget(reader)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def forget(self, reader: str) -> None:
        """The card left `reader` (or its handle died): wake its waiters and close its connection."""
        session = self._sessions.pop(reader, None)
        if session is None:
            return
        session.gone.set()
        session.logged_out()
        # Closing waits for the operation in flight; callers were already released by `gone`.
        task = asyncio.create_task(self._close_quietly(session.connection))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close_quietly(connection: CardConnection) -> None:
        try:
            await connection.close()
        except Exception:  # the card is gone: a failing disconnect changes nothing
            log.debug("card connection close failed", exc_info=True)

    async def _follow(self, queue: asyncio.Queue[Any]) -> None:
        while True:
            event = await queue.get()
            if isinstance(event, CardRemoved | ReaderRemoved):
                await self.forget(event.reader)
            elif isinstance(event, PcscUnavailable):
                for reader in list(self._sessions):
                    await self.forget(reader)

    # -- sessions and operations ------------------------------------------------------------------

    async def _rows(self) -> list[Any]:
        if self._monitor is not None:
            return list(self._monitor.snapshot())
        return await asyncio.to_thread(scan_readers)

    async def _row(self, reader: str) -> Any:
        row = next((r for r in await self._rows() if r.name == reader), None)
        if row is None:
            raise BridgeError(ErrorCode.NO_READER, "reader")
        if not row.card_present or not row.atr:
            raise BridgeError(ErrorCode.NO_CARD)
        return row

    async def _session(self, reader: str) -> _Session:
        self.start()
        async with self._opening.setdefault(reader, asyncio.Lock()):
            row = await self._row(reader)
            session = self._sessions.get(reader)
            if session is not None and session.atr == bytes(row.atr):
                return session
            await self.forget(reader)
            connection = await CardConnection.open(reader)
            session = _Session(reader, connection, bytes(row.atr))
            self._sessions[reader] = session
            return session

    async def _guard(self, session: _Session, work: Awaitable[T], *, status_wait: float | None = None) -> T:
        """Await `work`, but give up with CARD_REMOVED as soon as the card leaves, or TIMEOUT.

        With `status_wait` (a diagnostics read), give up after that many seconds with CARD_BUSY instead,
        leaving the card and its session alone: the wait was most likely behind another operation.
        """
        job = asyncio.ensure_future(work)
        gone = asyncio.create_task(session.gone.wait())
        bound = self._timeout if status_wait is None else status_wait
        try:
            done, _ = await asyncio.wait({job, gone}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if job in done:
            try:
                return job.result()
            except PcscError:
                await self.forget(session.reader)  # the handle is dead (card pulled, reset, pcscd gone)
                raise
            except BridgeError:
                if session.gone.is_set():  # failed because the connection was closed under it
                    raise BridgeError(ErrorCode.CARD_REMOVED) from None
                raise
        job.add_done_callback(_discard_result)  # the worker ends on its own; nobody waits for it
        if session.gone.is_set():
            raise BridgeError(ErrorCode.CARD_REMOVED)
        if status_wait is not None:
            job.cancel()  # still queued: it will not run; already running: it ends on its own
            raise BridgeError(ErrorCode.CARD_BUSY, waitSeconds=status_wait)
        await self.forget(session.reader)
        raise BridgeError(ErrorCode.TIMEOUT, "card-operation")

    async def _run(
        self, reader: str, fn: Callable[[_Session, CardChannel], T], *, status_wait: float | None = None
    ) -> T:
        session = await self._session(reader)
        job = asyncio.wrap_future(session.connection.submit(lambda ch: fn(session, ch)))
        return await self._guard(session, job, status_wait=status_wait)

    @staticmethod
    def _identified(session: _Session, ch: CardChannel, wanted: DriverKind | None) -> CardIdentity:
        """Identify once per session (ATR, then a probe when needed); UNSUPPORTED_CARD unless usable as `wanted`."""
        if session.identity is None:
            session.identity = identify(ch)
        require_supported(session.identity, wanted)
        return session.identity

    def _cps_ready(self, session: _Session, ch: CardChannel) -> None:
        self._identified(session, ch, DriverKind.CPS3)
        if session.cps.state is CardState.NEW:
            session.cps.identify(ch)

    # -- CardService --------------------------------------------------------------------------------

    async def resolve(self, reader: str | None, kind: CardKind) -> str:
        """`reader` if it holds a card; else the only reader whose card's ATR says `kind`."""
        self.start()
        rows = await self._rows()
        if not rows:
            raise BridgeError(ErrorCode.NO_READER)
        if reader is not None:
            return str((await self._row(reader)).name)
        present = [r for r in rows if r.card_present and r.atr]
        matching = [r for r in present if identify_atr(bytes(r.atr)).kind is _WANTED[kind]]
        if len(matching) == 1:
            return str(matching[0].name)
        if len(matching) > 1:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "reader: several-cards", readers=[r.name for r in matching])
        if len(present) == 1:
            return str(present[0].name)  # ATR not conclusive: the operation probes, and says what it found
        raise BridgeError(ErrorCode.NO_CARD)

    async def identify(self, reader: str) -> CardIdentity:
        """What the card in `reader` is (ATR, then a probe when the ATR is not conclusive); cached per card."""

        def op(session: _Session, ch: CardChannel) -> CardIdentity:
            if session.identity is None:
                session.identity = identify(ch)
            return session.identity

        return await self._run(reader, op)

    async def cps_info(self, reader: str) -> CpsCardInfo:
        """Everything a CPS3 shows without the PIN (the driver's model; `cps_read` is its JSON form)."""

        def op(session: _Session, ch: CardChannel) -> CpsCardInfo:
            self._identified(session, ch, DriverKind.CPS3)
            session.info = session.cps.read_public(ch)
            return session.info

        return await self._run(reader, op)

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder, card validity, both certificates (DER and summary), PIN counter."""
        info = await self.cps_info(reader)
        session = self._sessions.get(reader)
        return _cps_json(info, session.identity if session else None)

    async def login(
        self, reader: str, pin: bytearray, *, allow_last_try: bool
    ) -> tuple[PinStatus, tuple[Situation, ...]]:
        """VERIFY (refusing the last try unless allowed), then read the situations, in one transaction.

        `pin` is zeroed in every case. Raises PIN_INCORRECT (with triesLeft), PIN_LAST_TRY, PIN_BLOCKED.
        """

        def op(session: _Session, ch: CardChannel) -> tuple[PinStatus, tuple[Situation, ...]]:
            session.logged_out()  # a failed VERIFY resets the card's verified state too
            self._identified(session, ch, DriverKind.CPS3)
            if session.info is None:
                session.info = session.cps.read_public(ch)
            status = session.cps.verify_pin(ch, pin, force=allow_last_try)
            return status, session.cps.read_situations(ch)

        try:
            status, situations = await self._run(reader, op)
        finally:
            pin[:] = b"\x00" * len(pin)  # the driver zeroes it too; this covers failures before VERIFY
        session = self._sessions.get(reader)
        if session is not None:
            session.situations = situations
            session.selected = situations[0].index if situations else None
        log.info("CPS login: %d situation(s)", len(situations))
        return status, situations

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        """`login`, as the cps.login result: tries and the situations d'exercice (the first one selected)."""
        status, situations = await self.login(reader, pin, allow_last_try=allow_last_try)
        return {
            "authenticated": True,
            "triesLeft": status.tries_left,
            "triesMax": status.tries_max,
            "situations": [s.to_json() for s in situations],
            "situation": situations[0].index if situations else None,
        }

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        """Reset the card's verified state and forget the situations and keys."""

        def op(session: _Session, ch: CardChannel) -> None:
            session.logged_out()
            self._cps_ready(session, ch)
            if session.cps.state is not CardState.BLOCKED:  # a blocked PIN is not verified anyway
                session.cps.logout(ch)

        await self._run(reader, op)
        return {"authenticated": False}

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Authentication key: INTERNAL AUTHENTICATE over a DigestInfo; signature key: PSO HASH + CDS (message only)."""
        algorithm = _HASHES[digest]()
        session = await self._session(reader)
        auth_key, sign_key = await self._keys(session)
        card_key = auth_key if key == "authentication" else sign_key
        mode: Prehashed | hashes.HashAlgorithm = Prehashed(algorithm) if prehashed else algorithm

        def sign() -> bytes:
            return card_key.sign(data, PKCS1v15(), mode)

        try:
            signature = await self._guard(session, asyncio.to_thread(sign))
        except UnsupportedAlgorithm:
            detail = "prehashed: signature-key-needs-message" if prehashed else "digestAlgorithm: unsupported-by-key"
            raise BridgeError(ErrorCode.INVALID_PARAMS, detail) from None
        info = session.info
        assert info is not None  # read by _keys
        cert = info.auth_certificate if key == "authentication" else info.sign_certificate
        return {
            "signature": base64.b64encode(signature).decode("ascii"),
            "key": key,
            "digestAlgorithm": digest,
            "certificate": base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
        }

    async def _keys(self, session: _Session) -> tuple[CardRsaPrivateKey, CardRsaMessageKey]:
        """The card keys of `session` (built once; their operations run on the card's worker thread)."""
        if session.keys is not None and session.info is not None:
            return session.keys

        def prepare(s: _Session, ch: CardChannel) -> None:
            self._cps_ready(s, ch)
            if s.info is None:
                s.info = s.cps.read_public(ch)

        await self._guard(session, asyncio.wrap_future(session.connection.submit(lambda ch: prepare(session, ch))))
        timeout = self._timeout

        def runner(fn: Callable[[CardChannel], Any]) -> Any:
            return session.connection.submit(fn).result(timeout)

        # card_keys reads the certificates through the runner, which blocks: off the event loop.
        keys = await self._guard(session, asyncio.to_thread(card_keys, runner, session.cps))
        session.keys = keys
        return keys

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        """Beneficiaries and validity of a Vitale 2 card (logged as a count only)."""

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            self._identified(session, ch, DriverKind.VITALE2)
            return read_vitale(ch).to_json()

        return await self._run(reader, op)

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        """Kind, label, support, and for a CPS the certificate end date and PIN tries; no personal data."""

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            if session.identity is None:
                session.identity = identify(ch)
            identity = session.identity
            status: dict[str, Any] = {
                "type": identity.label_fr,
                "kind": identity.kind.value,
                "supported": identity.supported,
                "atr": identity.atr_hex,
            }
            if identity.kind is DriverKind.CPS3 and identity.supported:
                self._cps_ready(session, ch)
                if session.cert_not_after is None:
                    auth, _ = session.cps.read_certificates(ch)
                    session.cert_not_after = auth.not_valid_after_utc.date().isoformat()
                status["certificateNotAfter"] = session.cert_not_after
                status["pinTriesLeft"] = session.cps.pin_status(ch).tries_left
                status["loggedIn"] = session.situations is not None
            elif identity.kind is DriverKind.VITALE2:
                end = read_vitale(ch).validity_end
                status["validityEnd"] = end.isoformat() if end else None
            return status

        return await self._run(reader, op, status_wait=self._status_wait)

    # -- for the DMP service ------------------------------------------------------------------------

    def _logged_in(self, reader: str | None) -> _Session:
        if reader is not None:
            session = self._sessions.get(reader)
        else:
            candidates = [s for s in self._sessions.values() if s.situations is not None]
            session = candidates[0] if len(candidates) == 1 else None
            if len(candidates) > 1:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "reader: several-cards")
        if session is None or session.situations is None or session.info is None:
            raise BridgeError(ErrorCode.PIN_REQUIRED, "cps-login-required")
        return session

    def select_situation(self, reader: str | None, index: int) -> Situation:
        """Choose the situation d'exercice (by its `index`) that `practitioner` reports."""
        session = self._logged_in(reader)
        assert session.situations is not None
        chosen = next((s for s in session.situations if s.index == index), None)
        if chosen is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "situation: not on this card")
        session.selected = index
        return chosen

    async def practitioner(self, reader: str | None = None) -> CardPractitioner:
        """The logged-in CPS of `reader` (None: the only one): holder, selected situation, keys and chains.

        Raises:
            BridgeError: PIN_REQUIRED when not logged in; INVALID_PARAMS when the card has no situation
                or `reader` is None and several cards are logged in; card errors from reading the keys.
        """
        session = self._logged_in(reader)
        situations, info = session.situations, session.info
        assert situations is not None and info is not None
        situation = next((s for s in situations if s.index == session.selected), None)
        if situation is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "no-situation-on-card")
        auth_key, sign_key = await self._keys(session)
        return CardPractitioner(
            reader=session.reader,
            info=info,
            situations=situations,
            situation=situation,
            practitioner=info.practitioner(situation),
            auth_key=auth_key,
            sign_key=sign_key,
            auth_chain=self._chain(info.auth_certificate),
            sign_chain=self._chain(info.sign_certificate),
        )

    def _chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]:
        return (leaf, *(self._issuers(leaf) if self._issuers is not None else ()))


def _discard_result(job: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned job's outcome so asyncio does not report it as never retrieved."""
    if not job.cancelled():
        job.exception()
