"""A small scripted virtual card for the PC/SC layer's tests: it speaks T=0 style (61xx, 6Cxx, chaining).

It is not an ISO card OS (that is the card emulator's job); it answers a handful of instructions in the
ways that exercise the transport:
- GET DATA (CA): the answer is only announced (61xx) and served by GET RESPONSE (C0) in 0x40-byte pieces;
- READ BINARY (B0): a wrong Le gets 6Cxx with the right one;
- PUT DATA (DA): accepts command chaining (CLA bit 0x10); the last link answers 6120 and GET RESPONSE
  gives the SHA-256 of the reassembled data;
- MARK (E0): records its data as a marker (to observe the order in which operations reach the card).
`AtrOnlyCard` is the smallest VirtualCard: an ATR, and 6D00 to everything else.
`tests.gated_vicc.GatedVicc` serves a card when a test needs a card pulled out while an exchange is in flight.
"""

from __future__ import annotations

import hashlib
import threading

from bridge.pcsc.apdu import Command

__all__ = ["ATR", "GET_DATA_VALUE", "READ_BINARY_VALUE", "AtrOnlyCard", "ScriptedCard"]

ATR = bytes.fromhex("3B8F800180318065B0850300EF120FFF82900073")
GET_DATA_VALUE = bytes(range(200))  # 200 bytes: GET RESPONSE pieces of 0x40, 0x40, 0x40, 0x08
READ_BINARY_VALUE = b"scripted card file"
_PIECE = 0x40


class ScriptedCard:
    """VirtualCard answering the instructions above; thread-safe log of received APDUs and markers."""

    def __init__(self, atr: bytes = ATR) -> None:
        self._atr = atr
        self._pending = b""  # data waiting for GET RESPONSE
        self._chain = bytearray()
        self._cond = threading.Condition()
        self.apdus: list[bytes] = []
        self.markers: list[bytes] = []

    def atr(self) -> bytes:
        """The ATR."""
        return self._atr

    def power_on(self) -> None:
        """Cold start."""
        self._pending, self._chain = b"", bytearray()

    def power_off(self) -> None:
        """Power removed."""
        self.power_on()

    def reset(self) -> None:
        """Warm reset."""
        self.power_on()

    def wait_marker(self, marker: bytes, timeout: float) -> bool:
        """Block until a MARK with `marker` arrived (True) or `timeout` passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: marker in self.markers, timeout)

    def process(self, apdu: bytes) -> bytes:
        """Execute one command APDU."""
        with self._cond:
            self.apdus.append(apdu)
        command = Command.parse(apdu)
        if command.ins == 0xC0:
            return self._get_response(command)
        self._pending = b""
        if command.ins == 0xCA:
            return self._announce(GET_DATA_VALUE)
        if command.ins == 0xB0:
            wanted = len(READ_BINARY_VALUE)
            if command.le != wanted:
                return bytes((0x6C, wanted))
            return READ_BINARY_VALUE + b"\x90\x00"
        if command.ins == 0xDA:
            self._chain += command.data
            if command.cla & 0x10:
                return b"\x90\x00"
            digest = hashlib.sha256(bytes(self._chain)).digest()
            self._chain = bytearray()
            return self._announce(digest)
        if command.ins == 0xE0:
            with self._cond:
                self.markers.append(command.data)
                self._cond.notify_all()
            return b"\x90\x00"
        return b"\x6d\x00"

    def _announce(self, data: bytes) -> bytes:
        self._pending = data
        return bytes((0x61, min(len(data), _PIECE)))

    def _get_response(self, command: Command) -> bytes:
        if not self._pending:
            return b"\x69\x85"
        size = min(len(self._pending), _PIECE)
        if command.le != size:
            return bytes((0x6C, size))
        piece, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return piece + bytes((0x61, min(len(self._pending), _PIECE)))
        return piece + b"\x90\x00"


class AtrOnlyCard:
    """A card known by its ATR only: answers 6D00 (instruction not supported) to every APDU."""

    def __init__(self, atr_hex: str) -> None:
        self._atr = bytes.fromhex(atr_hex)

    def atr(self) -> bytes:
        """The ATR."""
        return self._atr

    def power_on(self) -> None:
        """Nothing to reset."""

    def power_off(self) -> None:
        """Nothing to forget."""

    def reset(self) -> None:
        """Nothing to reset."""

    def process(self, apdu: bytes) -> bytes:
        """6D00 whatever the command."""
        return b"\x6d\x00"
