"""The card service's cost, side by side in one run: driver on a CardConnection, PcscCardService, JSON-RPC.

Run as root: `python -m tests.bench.bench_card_service` (starts its own pcscd in a private mount
namespace, stopped by PID at the end; a virtual CPS and a Vitale card on vpcd). Prints the median ms of
cps.read, cps.sign (both keys), vitale.read at each layer and the ratios, then 4 clients reading the
same card at once (serialised by the per-card lock) against the same number of reads in a row.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bridge.api.client import LocalClient
from bridge.cards.cps3 import Cps3Card
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.monitor import CardInserted, ReaderMonitor
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.pcscd import PrivatePcscd, enter_private_namespace, free_port_pair
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import running_bridge

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
RUNS = 15


async def median_ms(fn: Callable[[], Awaitable[Any]], runs: int = RUNS) -> float:
    """Median milliseconds of `runs` awaited calls (after one warm-up call)."""
    await fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def run(slots: list[VirtualSlot], pki: TestPki) -> None:
    monitor = ReaderMonitor()
    cards = PcscCardService(monitor)
    async with running_bridge(BridgeConfig(port=0, card_busy_wait=60), monitor=monitor, cards=cards) as app:
        events = monitor.subscribe()
        slots[0].insert(create_card("gp", pki))
        slots[1].insert(make_card("vitale", "famille"))
        seen: set[str] = set()
        while seen != set(READERS):
            event = await events.get()
            if isinstance(event, CardInserted):
                seen.add(event.reader)

        connection = await CardConnection.open(READERS[0])
        try:
            raw = await median_ms(lambda: connection.run(Cps3Card().read_public))
        finally:
            await connection.close()
        service = await median_ms(lambda: cards.cps_read(READERS[0]))
        data = base64.b64encode(os.urandom(2000)).decode()
        async with LocalClient(app.port, app.token) as client:
            api = await median_ms(lambda: client.call("cps.read"))
            await client.call("cps.login", {"pin": "1234"})
            auth = await median_ms(lambda: client.call("cps.sign", {"data": data, "key": "authentication"}))
            sign = await median_ms(lambda: client.call("cps.sign", {"data": data, "key": "signature"}))
            vitale = await median_ms(lambda: client.call("vitale.read"))
            await client.call("cps.logout")
        print(
            f"cps.read   driver on CardConnection {raw:6.1f} ms | PcscCardService {service:6.1f} ms | "
            f"JSON-RPC {api:6.1f} ms  (API/driver {api / raw:.2f}x)"
        )
        print(f"cps.sign   2000 bytes over JSON-RPC: authentication key {auth:6.1f} ms, signature key {sign:6.1f} ms")
        print(f"vitale.read over JSON-RPC {vitale:6.1f} ms")

        clients = [LocalClient(app.port, app.token) for _ in range(4)]
        for c in clients:
            await c.__aenter__()
        try:
            start = time.perf_counter()
            for c in clients:
                await c.call("cps.read")
            sequential = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            await asyncio.gather(*(c.call("cps.read") for c in clients))
            concurrent = (time.perf_counter() - start) * 1000
        finally:
            for c in clients:
                await c.__aexit__(None, None, None)
        print(
            f"4 x cps.read: in a row {sequential:6.1f} ms, from 4 clients at once {concurrent:6.1f} ms "
            f"(ratio {concurrent / sequential:.2f}: one card serves one operation at a time)"
        )
    await cards.close()


def main() -> None:
    """Print the figures."""
    enter_private_namespace()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DMP_BRIDGE_HOME"] = str(Path(tmp) / "home")
        daemon = PrivatePcscd(Path(tmp), free_port_pair())
        daemon.start()
        slots = [VirtualSlot(port) for port in daemon.slot_ports]
        try:
            pki = TestPki.load_or_create(Path(tmp) / "pki")
            asyncio.run(run(slots, pki))
        finally:
            for slot in slots:
                slot.close()
            daemon.stop()


if __name__ == "__main__":
    main()
