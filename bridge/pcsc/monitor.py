"""Reader and card events from pcscd, delivered to any number of asyncio consumers.

One watcher thread, with its own PC/SC context, blocks in SCardGetStatusChange (no timeout) over every
reader plus the PnP pseudo-reader, so it wakes exactly when pcscd reports a change. Each change is
diffed against the last known state (a pure function, `diff_states`) and the resulting events are
handed to the event loop with `call_soon_threadsafe`; the loop thread updates the snapshot and fans
the events out to subscriber queues. Nothing a consumer does runs on the watcher thread.

When pcscd goes away the watcher reports `PcscUnavailable`, re-establishes its context with a bounded
exponential backoff, then reports `PcscAvailable` and whatever changed in the meantime. Connections
opened before the outage are dead after `PcscUnavailable` (their handles belonged to the old daemon),
so every card seen before the outage is reported `CardRemoved` and, if it is there again,
`CardInserted` — even the same card back in the same reader before the re-listing: its session and
login were lost with the old daemon, and consumers must know.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from smartcard import scard

from bridge.pcsc.errors import ResultCode, error_from_hresult, is_service_lost

__all__ = [
    "PNP_NOTIFICATION",
    "CardInserted",
    "CardRemoved",
    "MonitorState",
    "PcscAvailable",
    "PcscUnavailable",
    "ReaderAdded",
    "ReaderEvent",
    "ReaderMonitor",
    "ReaderRemoved",
    "ReaderState",
    "diff_states",
    "scan_readers",
]

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0
_STOP_CANCEL_EVERY = 0.2  # SCardCancel is lost if it lands between two waits: repeat it until the thread ends


@dataclass(frozen=True, slots=True)
class ReaderAdded:
    """A reader appeared."""

    reader: str


@dataclass(frozen=True, slots=True)
class ReaderRemoved:
    """A reader disappeared (after its card, if any, was reported removed)."""

    reader: str


@dataclass(frozen=True, slots=True)
class CardInserted:
    """A card is now in `reader`."""

    reader: str
    atr: bytes


@dataclass(frozen=True, slots=True)
class CardRemoved:
    """The card left `reader`."""

    reader: str


@dataclass(frozen=True, slots=True)
class PcscUnavailable:
    """pcscd went away (or is not running): the snapshot is stale and card connections are dead."""


@dataclass(frozen=True, slots=True)
class PcscAvailable:
    """pcscd is back; the events that follow bring the snapshot up to date."""


ReaderEvent = ReaderAdded | ReaderRemoved | CardInserted | CardRemoved | PcscUnavailable | PcscAvailable


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One reader as last reported by pcscd."""

    name: str
    card_present: bool
    atr: bytes | None


class MonitorState(enum.Enum):
    """Where the monitor stands."""

    #: not started, or stopped
    STOPPED = "stopped"
    #: following pcscd's events
    RUNNING = "running"
    #: pcscd is not reachable; retrying
    PCSC_UNAVAILABLE = "pcsc_unavailable"


def diff_states(
    old: Mapping[str, ReaderState], new: Mapping[str, ReaderState], cycled: frozenset[str] = frozenset()
) -> list[ReaderEvent]:
    """The events that turn `old` into `new`; `cycled` names readers whose card left and came back unseen.

    Order: per reader, a card leaves before its reader does, and a reader arrives before its card.
    """
    events: list[ReaderEvent] = []
    for name, before in old.items():
        if name not in new:
            if before.card_present:
                events.append(CardRemoved(name))
            events.append(ReaderRemoved(name))
    for name, after in new.items():
        before_state = old.get(name)
        if before_state is None:
            events.append(ReaderAdded(name))
            if after.card_present:
                events.append(CardInserted(name, after.atr or b""))
            continue
        changed = before_state.card_present and (
            not after.card_present or before_state.atr != after.atr or name in cycled
        )
        if changed:
            events.append(CardRemoved(name))
        if after.card_present and (changed or not before_state.card_present):
            events.append(CardInserted(name, after.atr or b""))
    return events


def scan_readers() -> list[ReaderState]:
    """Blocking one-shot look at the readers and their cards (for the CLI; the daemon uses ReaderMonitor).

    Raises:
        PcscUnavailableError: pcscd is not running; other PcscError subclasses for other failures.
    """
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        raise error_from_hresult(hr, "SCardEstablishContext")
    try:
        hr, names = scard.SCardListReaders(context, [])
        if hr & 0xFFFFFFFF == ResultCode.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hr != scard.SCARD_S_SUCCESS:
            raise error_from_hresult(hr, "SCardListReaders")
        hr, results = scard.SCardGetStatusChange(context, 0, [(n, scard.SCARD_STATE_UNAWARE) for n in names])
        if hr != scard.SCARD_S_SUCCESS:
            raise error_from_hresult(hr, "SCardGetStatusChange")
        states = []
        for name, event_state, atr in results:
            if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE):
                continue  # left between the listing and the look
            present = bool(event_state & scard.SCARD_STATE_PRESENT)
            states.append(ReaderState(name, present, bytes(atr) if present else None))
        return states
    finally:
        scard.SCardReleaseContext(context)


class ReaderMonitor:
    """Follows pcscd from a dedicated thread; `subscribe()` gives each consumer its own queue of events."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._ctx_lock = threading.Lock()  # guards _context between the watcher (release) and stop() (cancel)
        self._context: int | None = None
        self._queues: list[asyncio.Queue[ReaderEvent]] = []
        self._snapshot: tuple[ReaderState, ...] = ()
        self._state = MonitorState.STOPPED
        self._first_report: asyncio.Event | None = None

    # --- loop side ----------------------------------------------------------------------------------

    @property
    def state(self) -> MonitorState:
        """RUNNING, PCSC_UNAVAILABLE or STOPPED, consistent with the events delivered so far."""
        return self._state

    def snapshot(self) -> list[ReaderState]:
        """The readers as of the events delivered so far (the last known ones while PCSC_UNAVAILABLE)."""
        return list(self._snapshot)

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[ReaderEvent]:
        """A new queue receiving every event from now on (unbounded by default)."""
        queue: asyncio.Queue[ReaderEvent] = asyncio.Queue(maxsize)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ReaderEvent]) -> None:
        """Stop delivering to `queue` (no error if it was not subscribed)."""
        with contextlib.suppress(ValueError):
            self._queues.remove(queue)

    async def events(self) -> AsyncIterator[ReaderEvent]:
        """Iterate over events from now on (subscribed from the first iteration until the generator closes).

        A consumer that may leave the loop early should use `contextlib.aclosing(monitor.events())` so the
        queue is unsubscribed at once rather than when the generator is garbage-collected.
        """
        queue = self.subscribe()
        try:
            while True:
                yield await queue.get()
        finally:
            self.unsubscribe(queue)

    async def start(self) -> None:
        """Start the watcher; returns once the first state is known (readers listed, or pcscd found missing)."""
        if self._thread is not None:
            raise RuntimeError("ReaderMonitor already started")
        self._loop = asyncio.get_running_loop()
        self._first_report = asyncio.Event()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._watch, name="pcsc-monitor", daemon=True)
        self._thread.start()
        try:
            await asyncio.wait_for(self._first_report.wait(), 10)
        except TimeoutError:
            log.warning("pcsc monitor: no first state after 10 s; continuing")

    async def stop(self) -> None:
        """Stop the watcher: SCardCancel on its context (from this thread, as pcsc-lite allows) and join."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        while thread.is_alive():
            self._cancel()
            await asyncio.to_thread(thread.join, _STOP_CANCEL_EVERY)
        self._state = MonitorState.STOPPED

    def _cancel(self) -> None:
        with self._ctx_lock:
            if self._context is not None:
                scard.SCardCancel(self._context)

    def _publish(self, events: list[ReaderEvent], snapshot: tuple[ReaderState, ...], state: MonitorState) -> None:
        """On the loop thread: update the snapshot, then fan the events out (a full queue loses only its own)."""
        if self._stopping.is_set():
            return
        self._snapshot, self._state = snapshot, state
        for event in events:
            for queue in list(self._queues):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    log.warning(
                        "pcsc monitor: a consumer's queue is full; event %s dropped for it", type(event).__name__
                    )
        if self._first_report is not None:
            self._first_report.set()

    # --- watcher thread -----------------------------------------------------------------------------

    def _report(self, events: list[ReaderEvent], known: Mapping[str, ReaderState], state: MonitorState) -> None:
        snapshot = tuple(known[name] for name in sorted(known))
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._publish, events, snapshot, state)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stopping.set()

    def _watch(self) -> None:
        known: dict[str, ReaderState] = {}
        available: bool | None = None  # None until the first attempt
        backoff = _BACKOFF_FIRST
        while not self._stopping.is_set():
            hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr != scard.SCARD_S_SUCCESS:
                if available is not False:
                    log.warning("pcsc monitor: PC/SC service unavailable (%#010x); retrying", hr & 0xFFFFFFFF)
                    self._report([PcscUnavailable()], known, MonitorState.PCSC_UNAVAILABLE)
                    available = False
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            with self._ctx_lock:
                self._context = context
            try:
                lost = self._follow(context, known, announce=available is False)
                available = True
                backoff = _BACKOFF_FIRST
            except Exception:  # our bug or a pyscard surprise: log it, never let the watcher die
                log.exception("pcsc monitor: unexpected failure; restarting the watch")
                lost = False
                self._stopping.wait(_BACKOFF_MAX)
            finally:
                with self._ctx_lock:
                    self._context = None
                scard.SCardReleaseContext(context)
            if lost and not self._stopping.is_set():
                log.warning("pcsc monitor: lost the PC/SC service; reconnecting")
                self._report([PcscUnavailable()], known, MonitorState.PCSC_UNAVAILABLE)
                available = False

    def _follow(self, context: int, known: dict[str, ReaderState], *, announce: bool) -> bool:
        """Wait for changes on `context` until stopped (False) or the service is lost (True); updates `known`."""
        current: dict[str, int] = {}  # reader -> state we told pcscd we know
        counters: dict[str, int] = {}
        pnp_state = scard.SCARD_STATE_UNAWARE
        names: list[str] | None = None
        pending: list[ReaderEvent] = [PcscAvailable()] if announce else []
        # After an outage every card session of the old daemon is gone: the first report re-announces them.
        sessions_lost = announce
        first = True
        while not self._stopping.is_set():
            if names is None:
                hr, listed = scard.SCardListReaders(context, [])
                hr &= 0xFFFFFFFF
                if hr == ResultCode.SCARD_E_NO_READERS_AVAILABLE:
                    listed = []
                elif hr != scard.SCARD_S_SUCCESS:
                    return self._lost(hr, "SCardListReaders")
                names = list(listed)
            # New readers go in as UNAWARE, so pcscd answers at once with their state.
            query = [(PNP_NOTIFICATION, pnp_state)] + [(n, current.get(n, scard.SCARD_STATE_UNAWARE)) for n in names]
            timeout = 0 if first else scard.INFINITE
            hr, results = scard.SCardGetStatusChange(context, timeout, query)
            hr &= 0xFFFFFFFF
            if hr in (ResultCode.SCARD_E_TIMEOUT, ResultCode.SCARD_E_CANCELLED):
                if hr == ResultCode.SCARD_E_TIMEOUT and first:
                    results = [(n, s, []) for n, s in query]
                else:
                    continue  # a cancel is only ever for stopping; the loop condition decides
            elif hr == ResultCode.SCARD_E_UNKNOWN_READER:
                names = None  # a reader left between listing and waiting
                continue
            elif hr != scard.SCARD_S_SUCCESS:
                return self._lost(hr, "SCardGetStatusChange")
            first = False
            new: dict[str, ReaderState] = {}
            cycled: set[str] = set()
            for name, event_state, atr in results:
                if name == PNP_NOTIFICATION:
                    pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                    continue
                if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE):
                    current.pop(name, None)
                    counters.pop(name, None)
                    continue
                present = bool(event_state & scard.SCARD_STATE_PRESENT)
                new[name] = ReaderState(name, present, bytes(atr) if present else None)
                current[name] = event_state & ~scard.SCARD_STATE_CHANGED
                # The high word counts card insertions and removals: a jump of two or more while the card
                # looks the same means it was swapped between two of our wakes.
                counter = event_state >> 16
                if present and name in counters and counter - counters[name] >= 2:
                    cycled.add(name)
                counters[name] = counter
            if sessions_lost:
                cycled.update(n for n, before in known.items() if before.card_present and n in new)
                sessions_lost = False
            events = pending + diff_states(known, new, frozenset(cycled))
            pending = []
            known.clear()
            known.update(new)
            self._report(events, known, MonitorState.RUNNING)
            # List again after every wake, not only when the PnP entry fires: pcsc-lite 1.9 compares the
            # reader count with the one at the start of each wait, so a reader arriving between two waits
            # would otherwise go unseen until the next PnP change.
            names = None
        return False

    def _lost(self, hr: int, what: str) -> bool:
        if is_service_lost(hr):
            return True
        raise RuntimeError(f"{what} failed: {hr & 0xFFFFFFFF:#010x}")
