"""ReaderMonitor on the real private pcscd + vpcd: snapshot, insertion/removal events, fan-out, stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bridge.pcsc.apdu import Command
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.monitor import (
    CardInserted,
    CardRemoved,
    MonitorState,
    ReaderEvent,
    ReaderMonitor,
    ReaderState,
)
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.scripted_card import ATR, ScriptedCard

pytestmark = pytest.mark.pcsc

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
OTHER_ATR = bytes.fromhex("3B8800800000000000000000")


async def next_event(queue: asyncio.Queue[ReaderEvent], timeout: float = 10.0) -> ReaderEvent:
    return await asyncio.wait_for(queue.get(), timeout)


@pytest.fixture
async def monitor(slots: list[VirtualSlot]) -> AsyncIterator[ReaderMonitor]:
    for reader in READERS:  # a card from a previous test may not be noticed gone yet
        await asyncio.to_thread(wait_card_state, reader, False)
    watcher = ReaderMonitor()
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.stop()


async def test_snapshot_lists_the_virtual_readers(monitor: ReaderMonitor) -> None:
    assert monitor.state is MonitorState.RUNNING
    assert monitor.snapshot() == [ReaderState(name, False, None) for name in READERS]


async def test_insert_and_remove_events(monitor: ReaderMonitor, slots: list[VirtualSlot]) -> None:
    queue = monitor.subscribe()
    slots[1].insert(ScriptedCard(OTHER_ATR))
    assert await next_event(queue) == CardInserted(READERS[1], OTHER_ATR)
    assert monitor.snapshot()[1] == ReaderState(READERS[1], True, OTHER_ATR)
    slots[0].insert(ScriptedCard())
    assert await next_event(queue) == CardInserted(READERS[0], ATR)
    slots[1].remove()
    assert await next_event(queue) == CardRemoved(READERS[1])
    assert monitor.snapshot() == [ReaderState(READERS[0], True, ATR), ReaderState(READERS[1], False, None)]


async def test_every_subscriber_gets_every_event_and_a_failing_consumer_harms_nobody(
    monitor: ReaderMonitor, slots: list[VirtualSlot]
) -> None:
    async def failing_consumer() -> None:
        async for _event in monitor.events():
            raise ValueError("consumer bug")

    failing = asyncio.create_task(failing_consumer())
    q1, q2 = monitor.subscribe(), monitor.subscribe()
    # The consumer task's first step (which subscribes) is queued on the loop before the insertion below
    # can possibly queue the event's delivery, and the loop runs its callbacks in order.
    slots[0].insert(ScriptedCard())
    assert await next_event(q1) == await next_event(q2) == CardInserted(READERS[0], ATR)
    with pytest.raises(ValueError, match="consumer bug"):
        await asyncio.wait_for(failing, 10)
    monitor.unsubscribe(q2)
    slots[0].remove()
    assert await next_event(q1) == CardRemoved(READERS[0])
    assert q2.empty()
    late = monitor.subscribe()  # the watcher is alive and still serving new consumers
    slots[0].insert(ScriptedCard())
    assert await next_event(late) == CardInserted(READERS[0], ATR)
    assert await next_event(q1) == CardInserted(READERS[0], ATR)


async def test_card_activity_causes_no_spurious_events(monitor: ReaderMonitor, slots: list[VirtualSlot]) -> None:
    queue = monitor.subscribe()
    slots[0].insert(ScriptedCard())
    assert await next_event(queue) == CardInserted(READERS[0], ATR)
    connection = await CardConnection.open(READERS[0], exclusive=True)  # changes pcscd's in-use flags
    await connection.run(lambda ch: ch.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0)))
    await connection.close()
    slots[1].insert(ScriptedCard(OTHER_ATR))
    # the next event is this insertion: nothing was reported for the connection's activity
    assert await next_event(queue) == CardInserted(READERS[1], OTHER_ATR)


async def test_stop_is_prompt_although_the_wait_has_no_timeout(slots: list[VirtualSlot]) -> None:
    watcher = ReaderMonitor()
    await watcher.start()
    started = time.monotonic()
    await asyncio.wait_for(watcher.stop(), 5)
    assert time.monotonic() - started < 1.0
    assert watcher.state is MonitorState.STOPPED
    await watcher.stop()  # idempotent
