"""MLLP (HL7 Minimal Lower Layer Protocol) framing without I/O: <VT> message <FS><CR>.

`MllpDecoder.feed(bytes)` buffers and returns the complete messages; bytes outside a frame are dropped
(a DPI may send a stray CR between frames); a frame larger than `max_size` raises `MllpError`, and the
connection must then be closed (nothing of it was accepted).
"""

from __future__ import annotations

__all__ = ["END", "START", "MllpDecoder", "MllpError", "frame"]

START = b"\x0b"
END = b"\x1c\x0d"


class MllpError(ValueError):
    """The peer broke the framing (frame too large)."""


def frame(message: bytes) -> bytes:
    """One HL7 message framed for MLLP."""
    return START + message + END


class MllpDecoder:
    """Incremental MLLP de-framing (see the module docstring)."""

    def __init__(self, max_size: int = 32 * 1024 * 1024) -> None:
        self.max_size = max_size
        self._buffer = bytearray()
        self._in_frame = False

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; the messages completed by them, in order."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            if not self._in_frame:
                start = self._buffer.find(START)
                if start < 0:
                    self._buffer.clear()
                    return out
                del self._buffer[: start + 1]
                self._in_frame = True
            end = self._buffer.find(END)
            if end < 0:
                if len(self._buffer) > self.max_size:
                    raise MllpError(f"MLLP frame over {self.max_size} bytes")
                return out
            if end > self.max_size:
                raise MllpError(f"MLLP frame over {self.max_size} bytes")
            out.append(bytes(self._buffer[:end]))
            del self._buffer[: end + len(END)]
            self._in_frame = False
