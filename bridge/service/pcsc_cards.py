"""PcscCardService: the daemon's `CardService` on the real stack (pcscd, the CPS backend, the Vitale driver).

Cards are found, identified and followed over PC/SC. A CPS is then driven through its backend's
`CpsToken` (`bridge.service.cps_backend`: the ANS Cryptolib through PKCS#11 when installed, else the
bridge's own PC/SC driver), always the same way: each token call runs on the card session's worker
thread (`bridge.service.card_session`), never on the event loop, one at a time per card. Vitale cards
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
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_token import CpsToken
from bridge.cards.identify import CardIdentity, identify, identify_atr, require_supported
from bridge.cards.identify import CardKind as DriverKind
from bridge.cards.vitale import read_vitale
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.abandon import WorkAbandoned, WorkFlag, current_flag, in_context
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import CardRemoved, PcscUnavailable, ReaderRemoved, scan_readers
from bridge.service.card_errors import CardTimeout, NoCardOfKind
from bridge.service.card_session import CardPractitioner, CardSession, Issuers, card_left, discard_result
from bridge.service.cards import CardKind, DigestName, KeyUsage
from bridge.service.cps_backend import CpsBackend
from bridge.service.readers import MonitorLike

__all__ = ["DEFAULT_OPERATION_TIMEOUT", "STATUS_WAIT", "CardPractitioner", "Issuers", "PcscCardService"]

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_WAIT = 5.0  # diagnostics do not queue behind a long card operation for longer than this
DEFAULT_OPERATION_TIMEOUT = 60.0  # a CPS read is ~0.1 s on a real reader; this only bounds a wedged one
_REMOVAL_WAIT = 2.0  # after a card error: how long pcscd may take to report the card gone (it polls)
_RELEASE_WAIT = 5.0  # how long closing a session waits for the token's logout (the card may be wedged)

_WANTED: dict[CardKind, DriverKind] = {"cps": DriverKind.CPS3, "vitale": DriverKind.VITALE2}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


def _family(kind: DriverKind) -> str:
    """The family ("cps", "vitale" or "other") a driver kind belongs to."""
    if kind in (DriverKind.CPS3, DriverKind.CPS3_CONTACTLESS, DriverKind.CPS4):
        return "cps"
    return "vitale" if kind in (DriverKind.VITALE2, DriverKind.VITALE1) else "other"


def _cps_json(info: CpsCardInfo, identity: CardIdentity | None) -> dict[str, Any]:
    """The cps.read result: the one JSON form of a CPS (`CpsCardInfo.to_json`, as the CLI prints) and its kind."""
    return {"kind": identity.kind.value if identity else info.generation, **info.to_json()}


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
    """

    def __init__(
        self,
        monitor: MonitorLike | None = None,
        *,
        issuers: Issuers | None = None,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
        status_wait: float = STATUS_WAIT,
        cps_backend: CpsBackend | None = None,
    ) -> None:
        self._monitor = monitor
        self._issuers = issuers
        self._timeout = operation_timeout
        self._status_wait = status_wait
        self.cps_backend = cps_backend or CpsBackend()
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

    async def _session(self, reader: str, operation: str) -> CardSession:
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
            row = await self._row(reader)
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

    async def _run(
        self,
        reader: str,
        fn: Callable[[CardSession, CardChannel], T],
        operation: str,
        *,
        status_wait: float | None = None,
    ) -> T:
        """Run `fn(session, channel)` as one PC/SC operation on the card in `reader`, guarded by `_guard`."""
        return await self._on_channel(await self._session(reader, operation), fn, operation, status_wait=status_wait)

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

    @staticmethod
    def _identified(session: CardSession, ch: CardChannel, wanted: DriverKind | None) -> CardIdentity:
        """Identify once per session (ATR, then a probe when needed); UNSUPPORTED_CARD unless usable as `wanted`."""
        if session.identity is None:
            session.identity = identify(ch)
        require_supported(session.identity, wanted)
        return session.identity

    def _is_cps(self, identity: CardIdentity) -> bool:
        """A CPS this service can drive: a CPS3 or a CPS4 (both backends know both)."""
        if identity.kind is DriverKind.CPS4:
            return identity.certain
        return identity.kind is DriverKind.CPS3 and identity.supported

    async def _cps(
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
        session = await self._session(reader, operation)

        def check(s: CardSession, ch: CardChannel) -> CardIdentity:
            if s.identity is None:
                s.identity = identify(ch)
            if not self._is_cps(s.identity):
                require_supported(s.identity, DriverKind.CPS3)
            return s.identity

        if session.identity is None:  # identified once per card: later calls send nothing over PC/SC
            await self._on_channel(session, check, operation)
        elif not self._is_cps(session.identity):
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

    # -- CardService --------------------------------------------------------------------------------

    async def resolve(self, reader: str | None, kind: CardKind) -> str:
        """`reader` if it holds a card; else the only reader whose card's ATR says `kind`."""
        self.start()
        rows = await self._rows()
        if not rows:
            raise BridgeError(ErrorCode.NO_READER)
        if reader is not None:
            return str((await self._row(reader)).name)
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
            return self._is_cps(identity)
        return identity.kind is _WANTED[kind]

    async def identify(self, reader: str) -> CardIdentity:
        """What the card in `reader` is (ATR, then a probe when the ATR is not conclusive); cached per card."""

        def op(session: CardSession, ch: CardChannel) -> CardIdentity:
            if session.identity is None:
                session.identity = identify(ch)
            return session.identity

        return await self._run(reader, op, "identify")

    def is_cps(self, identity: CardIdentity) -> bool:
        """True when `identity` is a CPS this service drives with its backend."""
        return self._is_cps(identity)

    async def cps_info(self, reader: str) -> CpsCardInfo:
        """Everything a CPS shows without the PIN, and which backend and generation (`cps_read` is its JSON form)."""

        def op(session: CardSession, token: CpsToken) -> CpsCardInfo:
            session.info = token.read_public()
            return session.info

        return await self._cps(reader, op, "cps.read")

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder, card validity, both certificates (DER and summary), PIN counter, backend and generation."""
        info = await self.cps_info(reader)
        session = self._sessions.get(reader)
        return _cps_json(info, session.identity if session else None)

    async def login(
        self, reader: str, pin: bytearray, *, allow_last_try: bool
    ) -> tuple[PinStatus, tuple[Situation, ...]]:
        """Verify the PIN (refusing the last try unless allowed), then read the situations.

        `pin` is zeroed in every case. Raises PIN_INCORRECT (with triesLeft), PIN_LAST_TRY, PIN_BLOCKED.
        """

        def op(session: CardSession, token: CpsToken) -> tuple[PinStatus, tuple[Situation, ...]]:
            session.logged_out()  # a failed login resets the card's verified state too
            if session.info is None:
                session.info = token.read_public()
            status = token.login(pin, force=allow_last_try)
            return status, token.read_situations()

        try:
            status, situations = await self._cps(reader, op, "cps.login")
        finally:
            pin[:] = b"\x00" * len(pin)  # the backends zero it too; this covers failures before the login
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

        def op(session: CardSession, token: CpsToken) -> None:
            session.logged_out()
            token.logout()

        await self._cps(reader, op, "cps.logout")
        return {"authenticated": False}

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Authentication key: a DigestInfo signature (any digest); signature key: the message only (SHA-256)."""
        algorithm = _HASHES[digest]()
        session = await self._session(reader, "cps.sign")
        auth_key, sign_key = await self._keys(session, "cps.sign")
        card_key = auth_key if key == "authentication" else sign_key
        mode: Prehashed | hashes.HashAlgorithm = Prehashed(algorithm) if prehashed else algorithm

        def sign(_: CardSession, __: CpsToken) -> bytes:
            return card_key.sign(data, PKCS1v15(), mode)

        try:
            signature = await self._cps(reader, sign, "cps.sign")
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

    async def _keys(self, session: CardSession, operation: str) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
        """The card keys of `session` (built once; their `sign` blocks on the card: call it off the loop)."""
        if session.keys is not None and session.info is not None:
            return session.keys

        def op(s: CardSession, token: CpsToken) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
            if s.info is None:
                s.info = token.read_public()
            return token.keys()

        keys = await self._cps(session.reader, op, operation)
        session.keys = keys
        return keys

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        """Beneficiaries and validity of a Vitale 2 card (logged as a count only)."""

        def op(session: CardSession, ch: CardChannel) -> dict[str, Any]:
            self._identified(session, ch, DriverKind.VITALE2)
            return read_vitale(ch).to_json()

        return await self._run(reader, op, "vitale.read")

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        """Kind, label, support; for a CPS its backend, generation, certificate end and PIN tries; nothing personal."""

        def op(session: CardSession, ch: CardChannel) -> dict[str, Any]:
            if session.identity is None:
                session.identity = identify(ch)
            identity = session.identity
            status: dict[str, Any] = {
                "type": identity.label_fr,
                "kind": identity.kind.value,
                "supported": identity.supported or self._is_cps(identity),
                "atr": identity.atr_hex,
            }
            if identity.kind is DriverKind.VITALE2:
                end = read_vitale(ch).validity_end
                status["validityEnd"] = end.isoformat() if end else None
            return status

        status = await self._run(reader, op, "diagnostics", status_wait=self._status_wait)
        session = self._sessions.get(reader)
        if session is None or session.identity is None or not self._is_cps(session.identity):
            return status

        def cps(s: CardSession, token: CpsToken) -> dict[str, Any]:
            if s.info is None:
                s.info = token.read_public()
            return {
                "backend": token.backend,
                "generation": s.info.generation,
                "certificateNotAfter": s.info.auth_certificate.not_valid_after_utc.date().isoformat(),
                "pinTriesLeft": token.pin_status().tries_left,
                "loggedIn": s.situations is not None,
            }

        status.update(await self._cps(reader, cps, "diagnostics", status_wait=self._status_wait))
        return status

    # -- for the DMP service ------------------------------------------------------------------------

    def _logged_in(self, reader: str | None) -> CardSession:
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
        auth_key, sign_key = await self._keys(session, "dmp.card-keys")
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
