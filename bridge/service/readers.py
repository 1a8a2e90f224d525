"""Reader state for the API: wraps the PC/SC ReaderMonitor and turns its events into notifications.

The feed works without a monitor (pyscard missing, pcscd absent): the state is then "unavailable"
and `readers.list` answers an empty list with that state rather than failing, so the daemon and the
diagnostics page stay useful on a machine without smart-card service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

from bridge.cards.identify import identify_atr
from bridge.pcsc.monitor import CardInserted, CardRemoved, MonitorState, ReaderEvent, ReaderState

__all__ = ["MonitorLike", "Publish", "ReaderFeed"]

log = logging.getLogger(__name__)


class MonitorLike(Protocol):
    """The subset of bridge.pcsc.monitor.ReaderMonitor that the feed uses."""

    @property
    def state(self) -> MonitorState:
        """RUNNING, PCSC_UNAVAILABLE or STOPPED."""

    def subscribe(self, maxsize: int = 0) -> asyncio.Queue[ReaderEvent]:
        """A queue receiving every reader/card event."""

    def unsubscribe(self, queue: asyncio.Queue[ReaderEvent]) -> None:
        """Stop delivering to `queue`."""

    def snapshot(self) -> list[ReaderState]:
        """Current readers."""


# Called with (method, params) for each notification to fan out.
Publish = Callable[[str, dict[str, Any]], None]


def _reader_json(row: ReaderState) -> dict[str, Any]:
    atr = row.atr if row.card_present else None
    return {
        "name": row.name,
        "cardPresent": row.card_present,
        "atr": atr.hex().upper() if atr else None,
        # From the ATR alone (no card access): CPS3, VITALE2, UNKNOWN... ; None without a card.
        "kind": identify_atr(atr).kind.value if atr else None,
    }


class ReaderFeed:
    """Current reader list plus the task that turns monitor events into `readers.changed`/`card.*`."""

    def __init__(self, monitor: MonitorLike | None) -> None:
        self._monitor = monitor
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[ReaderEvent] | None = None
        # The rows last listed and their JSON: a status poll re-identifies no ATR while nothing changed.
        self._listed: list[ReaderState] = []
        self._listed_json: list[dict[str, Any]] = []

    @property
    def available(self) -> bool:
        """Whether PC/SC currently answers (the monitor's state, consistent with the events delivered)."""
        return self._monitor is not None and self._monitor.state is MonitorState.RUNNING

    def listing(self) -> dict[str, Any]:
        """The `readers.list` result: the snapshot, or an empty list while PC/SC is unavailable."""
        available = self.available
        rows: list[dict[str, Any]] = []
        if self._monitor is not None and available:
            snapshot = self._monitor.snapshot()
            if snapshot != self._listed:
                self._listed, self._listed_json = snapshot, [_reader_json(r) for r in snapshot]
            rows = [dict(r) for r in self._listed_json]  # fresh dicts: callers may add members (diagnostics)
        return {"pcsc": "available" if available else "unavailable", "readers": rows}

    def start(self, publish: Publish) -> None:
        """Begin forwarding monitor events to `publish`."""
        if self._monitor is not None and self._task is None:
            self._queue = self._monitor.subscribe()
            self._task = asyncio.create_task(self._run(self._queue, publish), name="reader-feed")

    async def stop(self) -> None:
        """Stop forwarding."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._monitor is not None and self._queue is not None:
            self._monitor.unsubscribe(self._queue)
            self._queue = None

    async def _run(self, queue: asyncio.Queue[ReaderEvent], publish: Publish) -> None:
        while True:
            event = await queue.get()
            try:
                self._forward(event, publish)
            except Exception:  # one odd event must not end the feed
                log.exception("reader event not forwarded")

    def _forward(self, event: ReaderEvent, publish: Publish) -> None:
        if isinstance(event, CardInserted):
            publish("card.inserted", {"reader": event.reader, "atr": event.atr.hex().upper() if event.atr else None})
        elif isinstance(event, CardRemoved):
            publish("card.removed", {"reader": event.reader})
        # Every event changes the list (or its availability): one readers.changed after the specific one.
        publish("readers.changed", self.listing())
