"""pcscd killed and restarted under a running ReaderMonitor and an open CardConnection."""

from __future__ import annotations

import asyncio

import pytest

from bridge.pcsc.apdu import Command
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import PcscUnavailableError
from bridge.pcsc.monitor import (
    CardInserted,
    CardRemoved,
    MonitorState,
    PcscAvailable,
    PcscUnavailable,
    ReaderAdded,
    ReaderEvent,
    ReaderMonitor,
    ReaderState,
)
from bridge.sim.pcscd import PrivatePcscd
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.pcsc_fixtures import restartable_pcscd
from tests.scripted_card import ATR, GET_DATA_VALUE, ScriptedCard

pytestmark = pytest.mark.pcsc
__all__ = ["restartable_pcscd"]  # a fixture used by name

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


async def next_event(queue: asyncio.Queue[ReaderEvent], timeout: float = 10.0) -> ReaderEvent:
    return await asyncio.wait_for(queue.get(), timeout)


def read(connection: CardConnection) -> asyncio.Future[bytes]:
    return asyncio.wrap_future(connection.submit(lambda ch: ch.transmit(Command(0x00, 0xCA, 1, 0, le=0)).data))


async def test_monitor_survives_pcscd_restart(restartable_pcscd: PrivatePcscd, slots: list[VirtualSlot]) -> None:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    await monitor.start()
    try:
        queue = monitor.subscribe()
        slots[0].insert(ScriptedCard())
        assert await next_event(queue) == CardInserted(READERS[0], ATR)
        connection = await CardConnection.open(READERS[0])
        assert await read(connection) == GET_DATA_VALUE

        await asyncio.to_thread(restartable_pcscd.stop)
        assert await next_event(queue) == PcscUnavailable()
        assert monitor.state is MonitorState.PCSC_UNAVAILABLE
        with pytest.raises(PcscUnavailableError):
            await asyncio.wait_for(read(connection), 10)
        await connection.close()

        await asyncio.to_thread(restartable_pcscd.start)
        assert await next_event(queue) == PcscAvailable()
        # the virtual card's socket died with the old pcscd: the monitor reports it gone by itself
        assert await next_event(queue) == CardRemoved(READERS[0])
        assert monitor.state is MonitorState.RUNNING
        assert monitor.snapshot() == [ReaderState(name, False, None) for name in READERS]

        slots[0].insert(ScriptedCard())
        assert await next_event(queue) == CardInserted(READERS[0], ATR)
        connection = await CardConnection.open(READERS[0])
        assert await read(connection) == GET_DATA_VALUE
        await connection.close()
    finally:
        await monitor.stop()


async def test_monitor_started_before_pcscd(restartable_pcscd: PrivatePcscd, slots: list[VirtualSlot]) -> None:
    """The daemon may start before the smart card service: it waits for it, then reports the readers."""
    await asyncio.to_thread(restartable_pcscd.stop)
    monitor = ReaderMonitor()
    queue = monitor.subscribe()
    await monitor.start()
    try:
        assert await next_event(queue) == PcscUnavailable()
        assert monitor.state is MonitorState.PCSC_UNAVAILABLE
        assert monitor.snapshot() == []
        with pytest.raises(PcscUnavailableError):
            await CardConnection.open(READERS[0])

        await asyncio.to_thread(restartable_pcscd.start)
        assert await next_event(queue) == PcscAvailable()
        assert await next_event(queue) == ReaderAdded(READERS[0])
        assert await next_event(queue) == ReaderAdded(READERS[1])
        assert monitor.state is MonitorState.RUNNING
        slots[1].insert(ScriptedCard())
        assert await next_event(queue) == CardInserted(READERS[1], ATR)
    finally:
        await monitor.stop()


async def test_a_card_back_before_the_relisting_is_reported_removed_and_inserted(
    restartable_pcscd: PrivatePcscd, slots: list[VirtualSlot], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The card is in its reader again when the monitor reconnects: its session died with the old pcscd."""
    import bridge.pcsc.monitor as monitor_module

    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    # The monitor waits this long before reconnecting, time enough for pcscd and the card to come back.
    monkeypatch.setattr(monitor_module, "_BACKOFF_FIRST", 3.0)
    monkeypatch.setattr(monitor_module, "_BACKOFF_MAX", 3.0)
    monitor = ReaderMonitor()
    await monitor.start()
    try:
        queue = monitor.subscribe()
        slots[0].insert(ScriptedCard())
        assert await next_event(queue) == CardInserted(READERS[0], ATR)
        await asyncio.to_thread(restartable_pcscd.stop)
        assert await next_event(queue) == PcscUnavailable()
        await asyncio.to_thread(restartable_pcscd.start)
        slots[0].insert(ScriptedCard())
        await asyncio.to_thread(wait_card_state, READERS[0], True)
        assert monitor.state is MonitorState.PCSC_UNAVAILABLE  # the monitor has not looked yet
        assert await next_event(queue) == PcscAvailable()
        assert await next_event(queue) == CardRemoved(READERS[0])
        assert await next_event(queue) == CardInserted(READERS[0], ATR)
    finally:
        await monitor.stop()
