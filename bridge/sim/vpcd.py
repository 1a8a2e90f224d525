"""Client side of the vpcd socket protocol: a virtual card plugged into a vpcd virtual reader.

vpcd (the IFD handler of vsmartcard, loaded by pcscd) listens on one TCP port per slot. A virtual
card *is inserted* while its socket is connected and *removed* when it closes. vpcd always speaks
first; each message is a 2-byte big-endian length and a payload: one control byte (0 power off,
1 power on, 2 reset, 4 get ATR) or a command APDU, answered by the response APDU.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from typing import Protocol

__all__ = [
    "VPCD_BASE_PORT",
    "VirtualCard",
    "VirtualSlot",
    "handle_message",
    "serve_card",
]

log = logging.getLogger(__name__)

VPCD_BASE_PORT = 35963  # 0x8C7B, Debian's /etc/reader.conf.d/vpcd; slot n listens on base + n.

_CTRL_OFF, _CTRL_ON, _CTRL_RESET, _CTRL_ATR = 0, 1, 2, 4


class VirtualCard(Protocol):
    """What a card emulator offers to a vpcd slot."""

    def atr(self) -> bytes:
        """The answer to reset."""

    def power_on(self) -> None:
        """Cold start: reset volatile state."""

    def power_off(self) -> None:
        """Power removed: forget volatile state."""

    def reset(self) -> None:
        """Warm reset."""

    def process(self, apdu: bytes) -> bytes:
        """Execute one command APDU and return response data followed by SW1 SW2."""


def handle_message(card: VirtualCard, msg: bytes) -> bytes | None:
    """Apply one vpcd message to `card`; return the payload to send back, or None when none is due."""
    if len(msg) == 1:
        ctrl = msg[0]
        if ctrl == _CTRL_ATR:
            return card.atr()
        if ctrl == _CTRL_ON:
            card.power_on()
        elif ctrl == _CTRL_OFF:
            card.power_off()
        elif ctrl == _CTRL_RESET:
            card.reset()
        else:
            log.warning("unknown vpcd control byte %#x", ctrl)
        return None
    try:
        return card.process(msg)
    except Exception:  # an emulator bug must look like a card error, not kill the slot
        log.exception("virtual card failed on an APDU")
        return b"\x6f\x00"


async def serve_card(card: VirtualCard, host: str, port: int, talked: asyncio.Event | None = None) -> None:
    """Connect `card` to the vpcd slot at host:port and serve it until the socket closes or the task is cancelled.

    `talked` is set when vpcd sends its first message: vpcd serves one card per slot, and a second
    card's connection waits unanswered in the listen queue until the first one leaves.
    """
    reader, writer = await asyncio.open_connection(host, port)
    await _serve_stream(card, reader, writer, talked)


def _quick_ack(writer: asyncio.StreamWriter) -> None:
    """Ask Linux to ACK the next segment at once.

    vpcd writes an APDU as a length and a payload in two sends; with delayed ACKs its second send
    waits ~40 ms for our ACK, which made every APDU cost ~49 ms. The flag is one-shot, so it is
    re-armed before each read.
    """
    sock = writer.get_extra_info("socket")
    if sock is not None and hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


async def _serve_stream(
    card: VirtualCard, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, talked: asyncio.Event | None = None
) -> None:
    try:
        while True:
            _quick_ack(writer)
            try:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                msg = await reader.readexactly(length) if length else b""
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # vpcd went away (pcscd stopped)
            if talked is not None:
                talked.set()
            answer = handle_message(card, msg)
            if answer is not None:
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()


class VirtualSlot:
    """One vpcd slot driven from any thread: `insert(card)` connects the card, `remove()` pulls it.

    The card is served by an event loop on a private thread, so a test or a CLI can block on PC/SC
    calls while the card answers.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"vpcd-slot-{port}", daemon=True)
        self._thread.start()
        self._task: asyncio.Task[None] | None = None
        self.card: VirtualCard | None = None

    def insert(self, card: VirtualCard, timeout: float = 5.0) -> None:
        """Connect `card` to the slot; returns once the TCP connection to vpcd is established."""
        self.remove()
        fut = asyncio.run_coroutine_threadsafe(self._open(card), self._loop)
        try:
            self._task = fut.result(timeout)
        except Exception as exc:
            raise ConnectionError(f"vpcd slot {self.host}:{self.port} unreachable: {exc}") from exc
        self.card = card

    async def _open(self, card: VirtualCard) -> asyncio.Task[None]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return asyncio.get_running_loop().create_task(_serve_stream(card, reader, writer))

    def remove(self) -> None:
        """Pull the card out (close the socket); a no-op when the slot is empty."""
        task, self._task, self.card = self._task, None, None
        if task is None:
            return

        async def cancel() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        asyncio.run_coroutine_threadsafe(cancel(), self._loop).result(5)

    def close(self) -> None:
        """Remove the card and stop the slot's thread."""
        self.remove()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
