"""ISO 7816-4 APDUs as values: command building and response parsing, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SW_OK", "Command", "Response", "StatusWord"]

SW_OK = 0x9000


@dataclass(frozen=True, slots=True)
class StatusWord:
    """SW1-SW2 as one integer, with helpers for the families the drivers care about."""

    value: int

    @property
    def sw1(self) -> int:
        """First status byte."""
        return self.value >> 8

    @property
    def sw2(self) -> int:
        """Second status byte."""
        return self.value & 0xFF

    @property
    def ok(self) -> bool:
        """True for 9000."""
        return self.value == SW_OK

    def __str__(self) -> str:
        return f"{self.value:04X}"


@dataclass(frozen=True, slots=True)
class Command:
    """A command APDU. `le` is None for no Le, 0 for 'up to 256' (or 65536 extended)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFF:
                raise ValueError(f"{name} must be a byte, got {v!r}")
        max_lc = 65535 if self.extended else 255
        if len(self.data) > max_lc:
            raise ValueError(f"data of {len(self.data)} bytes exceeds {max_lc}; use command chaining")
        max_le = 65536 if self.extended else 256
        if self.le is not None and not 0 <= self.le <= max_le:
            raise ValueError(f"le must be within 0..{max_le}")

    def to_bytes(self) -> bytes:
        """Encode as short or extended APDU (ISO 7816-4 §5.1)."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not self.extended:
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le & 0xFF,))
            return header + body
        body = b""
        if self.data:
            body += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            le = (self.le & 0xFFFF).to_bytes(2, "big")
            body += le if self.data else b"\x00" + le
        return header + body

    def with_le(self, le: int) -> Command:
        """The same command with another Le (used for 6Cxx re-sends)."""
        return Command(self.cla, self.ins, self.p1, self.p2, self.data, le, self.extended)

    def with_cla(self, cla: int) -> Command:
        """The same command with another class byte (used for chaining)."""
        return Command(cla, self.ins, self.p1, self.p2, self.data, self.le, self.extended)

    @classmethod
    def parse(cls, apdu: bytes) -> Command:
        """Decode a command APDU (used by the virtual cards)."""
        if len(apdu) < 4:
            raise ValueError("APDU shorter than 4 bytes")
        cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
        body = apdu[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        lc = body[0]
        if lc and len(body) in (1 + lc, 2 + lc):
            le = body[1 + lc] or 256 if len(body) == 2 + lc else None
            return cls(cla, ins, p1, p2, body[1 : 1 + lc], le)
        if lc != 0 or len(body) < 3:
            raise ValueError("malformed APDU body")
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536, extended=True)
        lc = int.from_bytes(body[1:3], "big")
        data, rest = body[3 : 3 + lc], body[3 + lc :]
        if len(data) != lc or len(rest) not in (0, 2):
            raise ValueError("malformed extended APDU")
        le_ext = (int.from_bytes(rest, "big") or 65536) if rest else None
        return cls(cla, ins, p1, p2, data, le_ext, extended=True)


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU: data and status word."""

    data: bytes
    sw: StatusWord

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        """Split raw response bytes into data and SW."""
        if len(raw) < 2:
            raise ValueError("response shorter than a status word")
        return cls(raw[:-2], StatusWord(int.from_bytes(raw[-2:], "big")))

    def to_bytes(self) -> bytes:
        """Encode data followed by SW1 SW2."""
        return self.data + self.sw.value.to_bytes(2, "big")
