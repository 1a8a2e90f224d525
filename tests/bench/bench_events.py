"""Event latency of ReaderMonitor, side by side with pcscd's own notification.

For each of N insert/remove cycles of a virtual card, three timestamps (time.perf_counter):
- connect: the vpcd socket of the virtual card is connected (insert) or closed (remove);
- raw: a bare SCardGetStatusChange waiter thread (own context) wakes up with the new state, i.e. pcscd's
  notification;
- monitor: an asyncio consumer of ReaderMonitor receives CardInserted / CardRemoved.
Printed: median and p95 of (monitor - raw), the monitor's own cost (target: within 50 ms), and of
(raw - connect), which is pcscd's detection delay (it polls vpcd, ~0.4-0.5 s), not ours.

Run as root from the repository root: `python -m tests.bench.bench_events [cycles]` (or the file path).
It enters a private mount namespace and starts its own pcscd, like tests/conftest.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file path: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import asyncio
import queue
import statistics
import tempfile
import threading
import time

from smartcard import scard

from bridge.pcsc.monitor import CardInserted, CardRemoved, ReaderEvent, ReaderMonitor
from bridge.sim.pcscd import PrivatePcscd, enter_private_namespace, free_port_pair
from bridge.sim.vpcd import VirtualSlot
from tests.scripted_card import ScriptedCard

READER = "Virtual PCD 00 00"


class RawWaiter:
    """pcscd's notification, as bare as it gets: one thread blocked in SCardGetStatusChange on one reader."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self.changes: queue.Queue[tuple[bool, float]] = queue.Queue()
        hr, self._context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="raw-waiter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        state = scard.SCARD_STATE_UNAWARE
        present: bool | None = None
        while not self._stop:
            hr, states = scard.SCardGetStatusChange(self._context, scard.INFINITE, [(self.reader, state)])
            now = time.perf_counter()
            if hr != scard.SCARD_S_SUCCESS:
                continue
            _, event_state, _ = states[0]
            state = event_state & ~scard.SCARD_STATE_CHANGED
            is_present = bool(event_state & scard.SCARD_STATE_PRESENT)
            if present is not None and is_present != present:
                self.changes.put((is_present, now))
            present = is_present

    def close(self) -> None:
        self._stop = True
        while self._thread.is_alive():
            scard.SCardCancel(self._context)
            self._thread.join(0.2)
        scard.SCardReleaseContext(self._context)


def _stats(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"median {statistics.median(ms):8.2f} ms   p95 {p95:8.2f} ms   max {ms[-1]:8.2f} ms   (n={len(ms)})"


async def measure(cycles: int, slot: VirtualSlot) -> dict[str, list[float]]:
    """Insert and remove a card `cycles` times; return the latencies by kind."""
    monitor = ReaderMonitor()
    await monitor.start()
    events: asyncio.Queue[ReaderEvent] = monitor.subscribe()
    stamped: asyncio.Queue[tuple[ReaderEvent, float]] = asyncio.Queue()

    async def consumer() -> None:
        while True:
            event = await events.get()
            await stamped.put((event, time.perf_counter()))

    consumer_task = asyncio.create_task(consumer())
    raw = RawWaiter(READER)
    results: dict[str, list[float]] = {
        "insert: monitor - raw": [],
        "remove: monitor - raw": [],
        "insert: raw - connect": [],
        "remove: raw - close": [],
    }
    try:
        for _ in range(cycles):
            for inserting in (True, False):
                if inserting:
                    await asyncio.to_thread(slot.insert, ScriptedCard())
                else:
                    await asyncio.to_thread(slot.remove)
                t_socket = time.perf_counter()
                present, t_raw = await asyncio.to_thread(raw.changes.get, True, 10)
                assert present is inserting
                event, t_monitor = await asyncio.wait_for(stamped.get(), 10)
                expected = CardInserted if inserting else CardRemoved
                assert isinstance(event, expected) and event.reader == READER, event
                kind = "insert" if inserting else "remove"
                results[f"{kind}: monitor - raw"].append(t_monitor - t_raw)
                results["insert: raw - connect" if inserting else "remove: raw - close"].append(t_raw - t_socket)
    finally:
        raw.close()
        consumer_task.cancel()
        await monitor.stop()
    return results


def main() -> int:
    """Start a private pcscd, run the cycles, print the figures."""
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    if not os.environ.get("_DMP_BRIDGE_IN_PRIVATE_NS"):
        enter_private_namespace()  # first thing: the process must still be single-threaded
        os.environ["_DMP_BRIDGE_IN_PRIVATE_NS"] = "1"
    daemon = PrivatePcscd(Path(tempfile.mkdtemp(prefix="bench-events-")), free_port_pair())
    daemon.start()
    slot = VirtualSlot(daemon.slot_ports[0])
    try:
        results = asyncio.run(measure(cycles, slot))
    finally:
        slot.close()
        daemon.stop()
    print(f"ReaderMonitor event latency, {cycles} insert/remove cycles of a vpcd virtual card")
    for name, values in results.items():
        print(f"  {name:24s} {_stats(values)}")
    worst = max(max(results["insert: monitor - raw"]), max(results["remove: monitor - raw"]))
    verdict = "OK" if worst < 0.050 else "OVER"
    print(f"  monitor overhead vs pcscd notification, worst case: {worst * 1000:.2f} ms (target < 50 ms: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
