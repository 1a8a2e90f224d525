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

__all__ = ["MonitorLike", "Publish", "ReaderFeed", "ReaderStateLike"]

log = logging.getLogger(__name__)


class ReaderStateLike(Protocol):
    """What a snapshot row offers (bridge.pcsc.monitor.ReaderState)."""

    @property
    def name(self) -> str:
        """Reader name."""

    @property
    def card_present(self) -> bool:
        """Whether a card is in the reader."""

    @property
    def atr(self) -> bytes | None:
        """ATR of the card present, if any."""


class MonitorLike(Protocol):
    """The subset of bridge.pcsc.monitor.ReaderMonitor that the feed uses."""

    def subscribe(self) -> asyncio.Queue[Any]:
        """A queue receiving every reader/card event."""

    def snapshot(self) -> list[Any]:
        """Current readers (ReaderStateLike rows)."""


# Called with (method, params) for each notification to fan out.
Publish = Callable[[str, dict[str, Any]], None]


def _reader_json(row: Any) -> dict[str, Any]:
    atr = getattr(row, "atr", None)
    return {"name": str(row.name), "cardPresent": bool(row.card_present), "atr": atr.hex().upper() if atr else None}


class ReaderFeed:
    """Current reader list plus the task that turns monitor events into `readers.changed`/`card.*`."""

    def __init__(self, monitor: MonitorLike | None) -> None:
        self._monitor = monitor
        self._available = monitor is not None
        self._task: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        """Whether PC/SC currently answers."""
        return self._available

    def listing(self) -> dict[str, Any]:
        """The `readers.list` result."""
        rows: list[dict[str, Any]] = []
        if self._monitor is not None and self._available:
            rows = [_reader_json(r) for r in self._monitor.snapshot()]
        return {"pcsc": "available" if self._available else "unavailable", "readers": rows}

    def card_present(self, reader: str) -> bool:
        """Whether `reader` currently holds a card."""
        return any(r["name"] == reader and r["cardPresent"] for r in self.listing()["readers"])

    def start(self, publish: Publish) -> None:
        """Begin forwarding monitor events to `publish`."""
        if self._monitor is not None and self._task is None:
            self._task = asyncio.create_task(self._run(self._monitor.subscribe(), publish), name="reader-feed")

    async def stop(self) -> None:
        """Stop forwarding."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, queue: asyncio.Queue[Any], publish: Publish) -> None:
        while True:
            event = await queue.get()
            try:
                self._forward(event, publish)
            except Exception:  # one odd event must not end the feed
                log.exception("reader event not forwarded")

    def _forward(self, event: Any, publish: Publish) -> None:
        # Matched by class name so the feed does not import pyscard-dependent modules.
        kind = type(event).__name__
        reader = getattr(event, "reader", None) or getattr(event, "name", None)
        if kind == "PcscUnavailable":
            self._available = False
        elif kind == "PcscAvailable":
            self._available = True
        if kind == "CardInserted":
            atr = getattr(event, "atr", None)
            publish("card.inserted", {"reader": reader, "atr": atr.hex().upper() if atr else None})
        elif kind == "CardRemoved":
            publish("card.removed", {"reader": reader})
        if kind in ("ReaderAdded", "ReaderRemoved", "PcscUnavailable", "PcscAvailable", "CardInserted", "CardRemoved"):
            publish("readers.changed", self.listing())
