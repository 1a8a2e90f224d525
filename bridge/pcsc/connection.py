"""One connected card: a worker thread with its own PC/SC context runs each operation in a transaction.

pcsc-lite wants one SCARDCONTEXT per thread, so a connection owns a single-thread executor and every
PC/SC call for this card (connect, transactions, transmit, disconnect) runs on that thread. An
operation is a plain synchronous function of a `CardChannel` (what the card drivers are); the executor
queues operations so that APDUs of two callers never interleave, and SCardBeginTransaction keeps
other programs (and other connections) out for the operation's whole APDU sequence. An operation whose
caller gave up (`bridge.pcsc.abandon`) sends no further APDU: the card is free for the next one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from smartcard import scard

from bridge.errors import BridgeError
from bridge.pcsc.abandon import WorkAbandoned, WorkFlag, current_flag
from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.errors import (
    CardCommunicationError,
    CardRemovedError,
    CardResetError,
    NoCardError,
    PcscError,
    PcscUnavailableError,
    ResultCode,
    error_from_hresult,
    error_from_transport,
)
from bridge.pcsc.t0 import TransportError, transceive

__all__ = ["REMOVAL_GRACE_SECONDS", "CardConnection"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PROTOCOLS = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
# After a failed exchange the reader may not have noticed the card left yet (pcscd polls some readers,
# vpcd every ~0.4 s): wait this long for pcscd's own notification before calling it a card error.
REMOVAL_GRACE_SECONDS = 1.5


class _PcscChannel:
    """The CardChannel handed to an operation: transmit goes through the transport rules to SCardTransmit."""

    def __init__(self, connection: CardConnection) -> None:
        self._connection = connection

    @property
    def atr(self) -> bytes:
        """The card's answer to reset."""
        return self._connection.atr

    def transmit(self, command: Command) -> Response:
        """Send one logical command (61xx, 6Cxx and chaining handled below)."""
        connection = self._connection
        if connection._operation_thread != threading.get_ident():
            raise RuntimeError("a CardChannel is only valid inside the operation it was given to")
        try:
            return transceive(command, connection._send, extended_length=connection.extended_length)
        except TransportError as exc:
            raise error_from_transport(exc) from exc

    def reset(self) -> None:
        """Warm-reset the card inside the operation (SCardReconnect with SCARD_RESET_CARD)."""
        connection = self._connection
        if connection._operation_thread != threading.get_ident():
            raise RuntimeError("a CardChannel is only valid inside the operation it was given to")
        connection._reconnect(scard.SCARD_RESET_CARD)
        if connection._lost is not None:
            raise connection._lost


class CardConnection:
    """A card in one reader, reached through a dedicated worker thread; build it with `await CardConnection.open()`."""

    def __init__(
        self,
        reader: str,
        executor: concurrent.futures.ThreadPoolExecutor,
        handles: tuple[int, int, int, bytes],
        share: int,
        extended_length: bool,
    ) -> None:
        self._reader = reader
        self._executor = executor
        self._context, self._card, self._protocol, self._atr = handles
        self._share = share
        self.extended_length = extended_length
        self._closed = False  # set on the caller's side: no new operation accepted
        self._released = False  # set on the worker once the PC/SC handles are gone
        self._lost: PcscError | None = None  # why the handle is dead (card pulled, pcscd gone)
        self._operation_thread: int | None = None  # the worker's thread id while an operation runs
        self._abandoned: WorkFlag | None = None  # the running operation's caller flag
        self._channel = _PcscChannel(self)

    @classmethod
    async def open(cls, reader: str, *, exclusive: bool = False, extended_length: bool = False) -> CardConnection:
        """Connect to the card in `reader` (shared, or exclusive to this process).

        Raises:
            NoReaderError, NoCardError, SharingViolationError, PcscUnavailableError, ...: PC/SC refused.
        """
        share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pcsc[{reader}]")
        connecting = executor.submit(_connect, reader, share)
        try:
            handles = await asyncio.wrap_future(connecting)
        except BaseException:
            # Cancelled while SCardConnect was still running (it can wait on another client's transaction):
            # release the handles whenever it finishes instead of leaking them.
            connecting.add_done_callback(_release_abandoned)
            executor.shutdown(wait=False)
            raise
        return cls(reader, executor, handles, share, extended_length)

    @property
    def reader(self) -> str:
        """The reader's PC/SC name."""
        return self._reader

    @property
    def atr(self) -> bytes:
        """The card's answer to reset (as of the last connect or reconnect)."""
        return self._atr

    @property
    def protocol(self) -> int:
        """The negotiated protocol (SCARD_PROTOCOL_T0 or _T1)."""
        return self._protocol

    def submit(
        self, fn: Callable[[CardChannel], T], *, abandoned: WorkFlag | None = None
    ) -> concurrent.futures.Future[T]:
        """Queue `fn(channel)` on the card's worker thread, inside a PC/SC transaction; callable from any thread.

        The future fails with a PcscError subclass when PC/SC does (e.g. CardRemovedError when the card
        is pulled mid-operation), or with whatever `fn` raised. Once `abandoned` (default: the submitting
        context's flag, `bridge.pcsc.abandon`) is set, no further APDU of `fn` is sent (WorkAbandoned).
        """
        if self._operation_thread == threading.get_ident():
            # The single worker would wait for itself: a nested operation must use the channel it was given.
            raise RuntimeError("submit() called from inside an operation on the same connection")
        flag = abandoned if abandoned is not None else current_flag()
        failed: concurrent.futures.Future[T] = concurrent.futures.Future()
        if flag is not None and flag.is_set():
            failed.set_exception(WorkAbandoned())
            return failed
        if not self._closed:
            try:
                return self._executor.submit(self._run, fn, flag)
            except RuntimeError:
                pass  # the executor was shut down by close() in between
        failed.set_exception(NoCardError(f"{self._reader}: connection closed"))
        return failed

    async def run(self, fn: Callable[[CardChannel], T]) -> T:
        """Await `fn(channel)` run like `submit` does, without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn))

    async def close(self) -> None:
        """Wait for queued operations, disconnect (leaving the card as it is) and stop the worker."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wrap_future(self._executor.submit(self._release))
        finally:
            self._executor.shutdown(wait=False)

    # --- worker thread side -------------------------------------------------------------------------

    def _run(self, fn: Callable[[CardChannel], T], abandoned: WorkFlag | None) -> T:
        if abandoned is not None and abandoned.is_set():
            raise WorkAbandoned()  # its caller left while it was queued: the card is not even touched
        if self._released:
            raise NoCardError(f"{self._reader}: connection closed")
        if self._lost is not None:
            raise type(self._lost)(f"{self._reader}: connection lost earlier ({self._lost.detail})")
        hr = scard.SCardBeginTransaction(self._card)
        if hr != scard.SCARD_S_SUCCESS:
            err = self._failure(hr, "SCardBeginTransaction")
            if isinstance(err, CardResetError):
                self._reconnect()  # the next operation can start afresh; this one must know the state is gone
            raise err
        self._operation_thread, self._abandoned = threading.get_ident(), abandoned
        try:
            return fn(self._channel)
        finally:
            self._operation_thread, self._abandoned = None, None
            # Fails harmlessly when the card is gone; the transaction dies with the handle then.
            scard.SCardEndTransaction(self._card, scard.SCARD_LEAVE_CARD)

    def _send(self, apdu: bytes) -> bytes:
        if self._abandoned is not None and self._abandoned.is_set():
            # Checked before each raw APDU (GET RESPONSE and chained parts too): not one more for a gone caller.
            raise WorkAbandoned()
        hr, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if hr != scard.SCARD_S_SUCCESS:
            raise self._failure(hr, "SCardTransmit")
        if len(response) < 2:
            # vpcd (and some drivers) report success with no status word when the card vanished mid-exchange.
            raise self._failure(ResultCode.SCARD_E_NOT_TRANSACTED, "SCardTransmit (no status word)")
        return bytes(response)

    def _failure(self, hr: int, what: str) -> PcscError:
        """Type a failed call; a failed exchange with a card that then leaves the reader is CardRemovedError."""
        err = error_from_hresult(hr, f"{what} {self._reader}")
        if isinstance(err, CardCommunicationError) and self._card_left():
            err = CardRemovedError(err.detail, hresult=err.hresult)
        if isinstance(err, CardRemovedError | PcscUnavailableError | NoCardError):
            self._lost = err
        return err

    def _card_left(self) -> bool:
        """Wait (bounded, on pcscd's notification) to learn whether the card left the reader."""
        deadline = time.monotonic() + REMOVAL_GRACE_SECONDS
        state = scard.SCARD_STATE_UNAWARE
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms < 0:
                return False
            hr, states = scard.SCardGetStatusChange(self._context, remaining_ms, [(self._reader, state)])
            if hr != scard.SCARD_S_SUCCESS:
                return False  # timeout (card still there) or pcscd trouble: keep the original error
            _, event_state, _ = states[0]
            if not event_state & scard.SCARD_STATE_PRESENT:
                return True
            state = event_state & ~scard.SCARD_STATE_CHANGED

    def _reconnect(self, disposition: int = scard.SCARD_LEAVE_CARD) -> None:
        hr, protocol = scard.SCardReconnect(self._card, self._share, _PROTOCOLS, disposition)
        if hr != scard.SCARD_S_SUCCESS:
            self._lost = error_from_hresult(hr, f"SCardReconnect {self._reader}")
            return
        self._protocol = protocol
        hr, _, _, _, atr = scard.SCardStatus(self._card)
        if hr == scard.SCARD_S_SUCCESS:
            self._atr = bytes(atr)

    def _release(self) -> None:
        self._released = True
        scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self._context)


def _connect(reader: str, share: int) -> tuple[int, int, int, bytes]:
    """On the worker thread: its own context, the card handle, the protocol and the ATR."""
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        raise error_from_hresult(hr, "SCardEstablishContext")
    try:
        hr, card, protocol = scard.SCardConnect(context, reader, share, _PROTOCOLS)
        if hr != scard.SCARD_S_SUCCESS:
            raise error_from_hresult(hr, f"SCardConnect {reader}")
        hr, _, _, _, atr = scard.SCardStatus(card)
        if hr != scard.SCARD_S_SUCCESS:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
            raise error_from_hresult(hr, f"SCardStatus {reader}")
    except BridgeError:
        scard.SCardReleaseContext(context)
        raise
    log.debug("connected to %s, protocol %d", reader, protocol)
    return context, card, protocol, bytes(atr)


def _release_abandoned(connecting: concurrent.futures.Future[tuple[int, int, int, bytes]]) -> None:
    """Disconnect a connection whose opener gave up before it was established."""
    if connecting.cancelled() or connecting.exception() is not None:
        return
    context, card, _, _ = connecting.result()
    scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
    scard.SCardReleaseContext(context)
