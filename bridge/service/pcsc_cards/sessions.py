"""The card service's sessions: one per reader, opened on first use, closed when the card leaves; and the
one way to run an operation on a card (PC/SC channel or CPS token) without any caller hanging on it.

Follows the ReaderMonitor (`CardRemoved`, `ReaderRemoved`, `PcscUnavailable` end a session). Every
operation is guarded: CARD_REMOVED as soon as the card leaves, TIMEOUT (`CardTimeout`) after the
operation timeout, CARD_BUSY after a diagnostics wait; an abandoned operation sends no further APDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from smartcard import scard

from bridge.cards.cps_token import CpsToken
from bridge.cards.identify import CardIdentity, identify, require_supported
from bridge.cards.identify import CardKind as DriverKind
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.abandon import WorkAbandoned, WorkFlag, current_flag, in_context
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import CardRemoved, PcscUnavailable, ReaderRemoved, scan_readers
from bridge.service.card_errors import CardTimeout
from bridge.service.cps_backend import CpsBackend
from bridge.service.pcsc_cards.card_session import CardSession
from bridge.service.readers import MonitorLike

__all__ = ["CardSessions", "card_left", "discard_result", "drivable_cps"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_REMOVAL_WAIT = 2.0  # after a card error: how long pcscd may take to report the card gone (it polls)
_RELEASE_WAIT = 5.0  # how long closing a session waits for the token's logout (the card may be wedged)


def drivable_cps(identity: CardIdentity) -> bool:
    """A CPS this service can drive: a CPS3 or a CPS4 (both backends know both)."""
    if identity.kind is DriverKind.CPS4:
        return identity.certain
    return identity.kind is DriverKind.CPS3 and identity.supported


class CardSessions:
    """The open card sessions, by reader, and the guarded running of operations on them.

    Args:
        monitor: the ReaderMonitor (reader snapshot and removal events); None for one-shot use (CLI),
            where readers are scanned and sessions end with `close()`.
        operation_timeout: bound on one card operation, in seconds.
        cps_backend: what drives a CPS (`bridge.service.cps_backend.select_cps_backend`).
    """

    def __init__(self, monitor: MonitorLike | None, operation_timeout: float, cps_backend: CpsBackend) -> None:
        self._monitor = monitor
        self._timeout = operation_timeout
        self.cps_backend = cps_backend
        self._sessions: dict[str, CardSession] = {}
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
        task = asyncio.create_task(self._close_quietly(reader, session))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, reader: str, session: CardSession) -> None:
        token = session.token
        if self.cps_backend.releases_tokens:
            if token is not None:
                release = asyncio.wrap_future(session.worker.submit(self.cps_backend.release, token))
                with contextlib.suppress(Exception):  # the card is gone or wedged: the session ends anyway
                    await asyncio.wait_for(release, _RELEASE_WAIT)
            notice = asyncio.wrap_future(session.worker.submit(self.cps_backend.card_left, reader))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(notice, _RELEASE_WAIT)
        session.worker.shutdown(wait=False)
        try:
            await session.connection.close()
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

    def get(self, reader: str) -> CardSession | None:
        """The open session of `reader`, if any (nothing is opened)."""
        return self._sessions.get(reader)

    def all(self) -> list[CardSession]:
        """Every open session."""
        return list(self._sessions.values())

    # -- sessions and operations ------------------------------------------------------------------

    async def rows(self) -> list[Any]:
        """The readers and their cards: the monitor's snapshot, or a scan without a monitor."""
        if self._monitor is not None:
            return list(self._monitor.snapshot())
        return await asyncio.to_thread(scan_readers)

    async def row(self, reader: str) -> Any:
        """The row of `reader`; NO_READER when there is none, NO_CARD when it holds no card."""
        row = next((r for r in await self.rows() if r.name == reader), None)
        if row is None:
            raise BridgeError(ErrorCode.NO_READER, "reader")
        if not row.card_present or not row.atr:
            raise BridgeError(ErrorCode.NO_CARD)
        return row

    async def session(self, reader: str, operation: str) -> CardSession:
        """The session of the card in `reader`, opened on first use; CardTimeout when opening does not end in time."""
        self.start()
        try:
            # pcscd answers SCardConnect only once the reader is free: a card wedged in an exchange holds it.
            async with asyncio.timeout(self._timeout):
                return await self._open_session(reader)
        except TimeoutError:
            log.warning("card: %s could not connect within %g s", operation, self._timeout)
            raise CardTimeout(operation, self._timeout) from None

    async def _open_session(self, reader: str) -> CardSession:
        async with self._opening.setdefault(reader, asyncio.Lock()):
            row = await self.row(reader)
            session = self._sessions.get(reader)
            if session is not None and session.atr == bytes(row.atr):
                return session
            await self.forget(reader)
            connection = await CardConnection.open(reader)
            session = CardSession(reader, connection, bytes(row.atr))
            self._sessions[reader] = session
            return session

    async def _guard(
        self,
        session: CardSession,
        job: asyncio.Future[T],
        flag: WorkFlag,
        operation: str,
        *,
        status_wait: float | None = None,
    ) -> T:
        """Await `job`, but give up with CARD_REMOVED as soon as the card leaves, or CardTimeout (TIMEOUT).

        With `status_wait` (a diagnostics read), give up after that many seconds with CARD_BUSY instead,
        leaving the card and its session alone: the wait was most likely behind another operation.
        Whenever this stops waiting early (cancelled caller included), `flag` is set: the job sends no
        further APDU and, still queued, never starts, so the card is free for the next caller.
        """
        gone = asyncio.create_task(session.gone.wait())
        bound = self._timeout if status_wait is None else status_wait
        try:
            waited: set[asyncio.Future[Any]] = {job, gone}
            done, _ = await asyncio.wait(waited, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            flag.set()
            job.cancel()  # still queued: it will not run; already running: it stops at its current APDU
            job.add_done_callback(discard_result)
            log.info("card: %s abandoned by its caller", operation)
            raise
        finally:
            gone.cancel()
        if job in done:
            try:
                return job.result()
            except PcscError:
                await self.forget(session.reader)  # the handle is dead (card pulled, reset, pcscd gone)
                raise
            except BridgeError as error:
                if session.gone.is_set():  # failed because the connection was closed under it
                    raise BridgeError(ErrorCode.CARD_REMOVED) from None
                if error.code is ErrorCode.CARD_REMOVED:  # the PKCS#11 module saw it before the monitor
                    await self.forget(session.reader)
                raise
        # Nobody waits for the job any more: it sends no further APDU (a wedged one ends when the card answers).
        flag.set()
        job.cancel()
        job.add_done_callback(discard_result)
        if session.gone.is_set():
            raise BridgeError(ErrorCode.CARD_REMOVED)
        if status_wait is not None:
            raise BridgeError(ErrorCode.CARD_BUSY, waitSeconds=status_wait)
        await self.forget(session.reader)
        log.warning("card: %s not done within %g s", operation, bound)
        raise CardTimeout(operation, bound)

    async def run(
        self,
        reader: str,
        fn: Callable[[CardSession, CardChannel], T],
        operation: str,
        *,
        status_wait: float | None = None,
    ) -> T:
        """Run `fn(session, channel)` as one PC/SC operation on the card in `reader`, guarded by `_guard`."""
        return await self._on_channel(await self.session(reader, operation), fn, operation, status_wait=status_wait)

    async def _on_channel(
        self,
        session: CardSession,
        fn: Callable[[CardSession, CardChannel], T],
        operation: str,
        *,
        status_wait: float | None = None,
    ) -> T:
        flag = WorkFlag(current_flag())
        job = asyncio.wrap_future(session.connection.submit(lambda ch: fn(session, ch), abandoned=flag))
        return await self._guard(session, job, flag, operation, status_wait=status_wait)

    async def cps(
        self,
        reader: str,
        fn: Callable[[CardSession, CpsToken], T],
        operation: str,
        *,
        status_wait: float | None = None,
    ) -> T:
        """Run `fn(session, token)` on the card's worker thread, after checking over PC/SC that it is a CPS.

        The one path to a CPS, whichever backend: token calls block, so they never run on the event loop,
        and the session's single worker keeps them one at a time per card.
        """
        session = await self.session(reader, operation)

        def check(s: CardSession, ch: CardChannel) -> CardIdentity:
            if s.identity is None:
                s.identity = identify(ch)
            if not drivable_cps(s.identity):
                require_supported(s.identity, DriverKind.CPS3)
            return s.identity

        if session.identity is None:  # identified once per card: later calls send nothing over PC/SC
            await self._on_channel(session, check, operation)
        elif not drivable_cps(session.identity):
            require_supported(session.identity, DriverKind.CPS3)
        timeout = self._timeout

        def runner(op: Callable[[CardChannel], Any]) -> Any:
            # The guard below reports TIMEOUT at `timeout`; this longer bound only frees the thread of a
            # wedged card, and must not win the race with the guard.
            return session.connection.submit(op).result(2 * timeout)

        def call() -> T:
            if session.token is None:
                session.token = self.cps_backend.token(session.reader, session.atr, runner)
            return fn(session, session.token)

        # The token's PC/SC operations are submitted from the worker thread: they see this operation's flag there.
        flag = WorkFlag(current_flag())
        context = in_context(flag)

        def flagged() -> T:
            if flag.is_set():
                raise WorkAbandoned()  # its caller left while it was queued
            return context.run(call)

        try:
            job = asyncio.wrap_future(session.worker.submit(flagged))
            return await self._guard(session, job, flag, operation, status_wait=status_wait)
        except BridgeError as error:
            # A backend may report a pulled card as a plain card error (the Cryptolib's CKR_GENERAL_ERROR):
            # ask pcscd, so that callers get CARD_REMOVED whichever backend.
            if error.code is ErrorCode.CARD_ERROR and await asyncio.to_thread(card_left, reader, _REMOVAL_WAIT):
                await self.forget(reader)
                raise BridgeError(ErrorCode.CARD_REMOVED) from None
            raise


def discard_result(job: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned job's outcome so asyncio does not report it as never retrieved."""
    if not job.cancelled():
        job.exception()


def card_left(reader: str, timeout: float) -> bool:
    """Block until pcscd reports `reader` without a card (True), or `timeout` seconds pass (False).

    For a failure whose cause a backend does not tell: the Cryptolib answers CKR_GENERAL_ERROR when the
    card is pulled during C_Login, and pcscd notices the removal at its next poll, a moment later. This
    waits on pcscd's own notification (SCardGetStatusChange), not on a timer.
    """
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return False
    try:
        state = scard.SCARD_STATE_UNAWARE
        remaining = int(timeout * 1000)
        while True:
            hr, states = scard.SCardGetStatusChange(context, remaining, [(reader, state)])
            if hr != scard.SCARD_S_SUCCESS:
                return bool(hr == scard.SCARD_E_UNKNOWN_READER)  # the reader itself went away
            event = states[0][1]
            if not event & scard.SCARD_STATE_PRESENT:
                return True
            if state != scard.SCARD_STATE_UNAWARE and event & scard.SCARD_STATE_CHANGED == 0:
                return False
            state = event & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(context)
