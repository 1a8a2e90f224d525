"""ReaderFeed: which notifications each monitor event produces, and the state when PC/SC is away."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.pcsc.monitor import CardInserted, CardRemoved, MonitorState, PcscUnavailable, ReaderAdded
from bridge.service.readers import ReaderFeed
from tests.api_helpers import FakeMonitor, Row


async def _collect(monitor: FakeMonitor, events: list[Any], expected: int) -> list[tuple[str, dict[str, Any]]]:
    feed = ReaderFeed(monitor)
    seen: list[tuple[str, dict[str, Any]]] = []
    done = asyncio.Event()

    def publish(method: str, params: dict[str, Any]) -> None:
        seen.append((method, params))
        if len(seen) == expected:
            done.set()

    feed.start(publish)
    for event in events:
        for queue in monitor.queues:
            queue.put_nowait(event)
    await asyncio.wait_for(done.wait(), 5)
    await feed.stop()
    assert monitor.queues == []  # unsubscribed
    return seen


async def test_card_events_then_list() -> None:
    monitor = FakeMonitor([Row("R", True, bytes.fromhex("3B751300004309EA9000"))])
    seen = await _collect(monitor, [CardInserted("R", bytes.fromhex("3B751300004309EA9000")), CardRemoved("R")], 4)
    assert [m for m, _ in seen] == ["card.inserted", "readers.changed", "card.removed", "readers.changed"]
    assert seen[0][1] == {"reader": "R", "atr": "3B751300004309EA9000"}
    assert seen[1][1]["readers"] == [
        {"name": "R", "cardPresent": True, "atr": "3B751300004309EA9000", "kind": "VITALE2"}
    ]


async def test_reader_added_and_pcsc_loss() -> None:
    monitor = FakeMonitor([Row("R", False, None)])
    monitor.state = MonitorState.PCSC_UNAVAILABLE
    seen = await _collect(monitor, [ReaderAdded("R"), PcscUnavailable()], 2)
    assert seen == [("readers.changed", {"pcsc": "unavailable", "readers": []})] * 2


def test_without_monitor() -> None:
    feed = ReaderFeed(None)
    assert feed.listing() == {"pcsc": "unavailable", "readers": []}
    assert not feed.available


def test_listing_follows_the_snapshot_and_returns_fresh_rows() -> None:
    monitor = FakeMonitor([Row("R", False, None)])
    feed = ReaderFeed(monitor)
    first = feed.listing()
    first["readers"][0]["card"] = None  # what diagnostics.report does to its copy
    assert feed.listing()["readers"] == [{"name": "R", "cardPresent": False, "atr": None, "kind": None}]
    monitor.emit(CardInserted("R", bytes.fromhex("3B751300004309EA9000")))
    assert feed.listing()["readers"] == [
        {"name": "R", "cardPresent": True, "atr": "3B751300004309EA9000", "kind": "VITALE2"}
    ]
    monitor.emit(CardRemoved("R"))
    assert feed.listing()["readers"][0]["cardPresent"] is False
