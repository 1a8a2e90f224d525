"""Per-APDU latency through pcscd + vpcd, with the virtual card's socket as today and with TCP options set.

Run as root: `python -m tests.bench.bench_vpcd_latency` (starts its own pcscd in a private mount namespace,
stopped by PID at the end). Prints ms per APDU and for a CPS read_public, side by side, and the ratios.
The variants wrap `bridge.sim.vpcd._serve_stream` in this process only; the module itself is not changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bridge.cards.cps3 import Cps3Card
from bridge.crypto.pki import TestPki
from bridge.pcsc.apdu import Command
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.sim import vpcd
from bridge.sim.cps3 import create_card
from bridge.sim.pcscd import PrivatePcscd, enter_private_namespace, free_port_pair

READER = "Virtual PCD 00 00"
ROUNDS = 40


def _variant(nodelay: bool, quickack: bool) -> Callable[..., Any]:
    original = vpcd._serve_stream

    async def serve(card: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if quickack:
            # TCP_QUICKACK is not sticky: re-arm it before every read
            read = reader.readexactly

            async def readexactly(n: int) -> bytes:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                return await read(n)

            reader.readexactly = readexactly  # type: ignore[method-assign]
        await original(card, reader, writer)

    return serve


@contextlib.contextmanager
def patched(fn: Callable[..., Any]) -> Iterator[None]:
    original = vpcd._serve_stream
    vpcd._serve_stream = fn  # type: ignore[assignment]
    try:
        yield
    finally:
        vpcd._serve_stream = original  # type: ignore[assignment]


def _wait_present(present: bool) -> None:
    from smartcard import scard

    _, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        state = scard.SCARD_STATE_UNAWARE
        while True:
            hr, states = scard.SCardGetStatusChange(ctx, 10000, [(READER, state)])
            if hr != scard.SCARD_S_SUCCESS:
                raise TimeoutError(READER)
            _, event, _ = states[0]
            if bool(event & scard.SCARD_STATE_PRESENT) == present:
                return
            state = event & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(ctx)


def measure(slot: vpcd.VirtualSlot, pki: TestPki) -> tuple[float, float]:
    """(ms per APDU, ms per CPS read_public) with the current `_serve_stream`."""
    slot.remove()
    _wait_present(False)
    slot.insert(create_card("gp", pki))
    _wait_present(True)

    async def run() -> tuple[float, float]:
        conn = await CardConnection.open(READER)
        try:

            def apdus(ch: CardChannel) -> float:
                start = time.perf_counter()
                for _ in range(ROUNDS):
                    ch.transmit(Command(0x00, 0x20, 0x00, 0x01))
                return (time.perf_counter() - start) / ROUNDS * 1000

            def read(ch: CardChannel) -> float:
                start = time.perf_counter()
                Cps3Card().read_public(ch)
                return (time.perf_counter() - start) * 1000

            return await conn.run(apdus), await conn.run(read)
        finally:
            await conn.close()

    return asyncio.run(run())


def main() -> None:
    """Print the figures."""
    enter_private_namespace()
    with tempfile.TemporaryDirectory() as tmp:
        daemon = PrivatePcscd(Path(tmp), free_port_pair())
        daemon.start()
        slot = vpcd.VirtualSlot(daemon.slot_ports[0])
        try:
            pki = TestPki.load_or_create(Path(tmp) / "pki")
            base_apdu, base_read = measure(slot, pki)
            print(f"vpcd client as is:        {base_apdu:7.2f} ms/APDU, CPS read_public {base_read:7.1f} ms")
            for label, nodelay, quickack in (
                ("TCP_NODELAY", True, False),
                ("TCP_QUICKACK", False, True),
                ("NODELAY + QUICKACK", True, True),
            ):
                with patched(_variant(nodelay, quickack)):
                    apdu, read = measure(slot, pki)
                print(
                    f"{label + ':':<26}{apdu:7.2f} ms/APDU, CPS read_public {read:7.1f} ms"
                    f"  ({base_apdu / apdu:.0f}x faster per APDU)"
                )
        finally:
            slot.close()
            daemon.stop()


if __name__ == "__main__":
    main()
