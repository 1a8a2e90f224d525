"""A vpcd client on a thread serving any virtual card, recording APDUs, that can hold or drop one exchange.

`arm(ins)`: the next command with that INS is held unanswered (`held` is set) until `release()` answers
it or `yank()` closes the socket instead (a card pulled out while its reader waits for the answer);
`arm(ins, yank=True)` drops that command's connection at once; `arm(ins, with_data=True)` waits for a
command of that INS carrying data (a VERIFY with the PIN, not the empty VERIFY that reads the counter).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from bridge.sim.vpcd import VirtualCard, handle_message

__all__ = ["GatedVicc"]


class GatedVicc:
    """Serves `card` on the vpcd slot at `port` (inserted while connected)."""

    def __init__(self, card: VirtualCard, port: int, host: str = "127.0.0.1") -> None:
        self.card = card
        self.apdus: list[bytes] = []
        self.held = threading.Event()
        self._armed: int | None = None
        self._with_data = False
        self._release = threading.Event()
        self._yank = False
        self._lock = threading.Lock()
        self._sock = socket.create_connection((host, port), timeout=10)
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._serve, name=f"gated-vicc-{port}", daemon=True)
        self._thread.start()

    def arm(self, ins: int, *, yank: bool = False, with_data: bool = False) -> None:
        """Hold the next command with instruction byte `ins` (and data, with `with_data`); `yank`: drop it at once."""
        with self._lock:
            self.held.clear()
            self._yank = yank
            self._with_data = with_data
            if yank:
                self._release.set()
            else:
                self._release.clear()
            self._armed = ins

    def release(self) -> None:
        """Answer the held command."""
        self._release.set()

    def yank(self) -> None:
        """Drop the connection instead of answering the held command (the card leaves the reader)."""
        self._yank = True
        self._release.set()

    def log(self) -> list[bytes]:
        """The command APDUs received so far."""
        with self._lock:
            return list(self.apdus)

    def clear(self) -> None:
        """Forget the APDUs received so far."""
        with self._lock:
            self.apdus.clear()

    def _recv(self, size: int) -> bytes:
        # Re-arm the one-shot quick ACK before each read, as bridge.sim.vpcd does (else ~40 ms per APDU).
        if hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data = b""
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _serve(self) -> None:
        try:
            while True:
                (length,) = struct.unpack("!H", self._recv(2))
                msg = self._recv(length) if length else b""
                if len(msg) >= 4:
                    with self._lock:
                        self.apdus.append(msg)
                        # a command APDU is CLA INS P1 P2 [Lc data] [Le]: more than 5 bytes means data
                        wanted = msg[1] == self._armed and (len(msg) > 5 or not self._with_data)
                        hold = self._armed is not None and wanted
                        if hold:
                            self._armed = None
                    if hold:
                        self.held.set()
                        self._release.wait(30)
                        if self._yank:
                            return
                answer = handle_message(self.card, msg)
                if answer is not None:
                    self._sock.sendall(struct.pack("!H", len(answer)) + answer)
        except (EOFError, OSError):
            return
        finally:
            self._sock.close()

    def close(self) -> None:
        """Pull the card (if still in) and wait for the thread."""
        self._release.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
