"""HTTP/1.1 client wire format without I/O: request heads out, responses parsed from fed bytes.

`ResponseParser` is a small state machine (h11-style): `feed(bytes)` buffers, `next_response()`
returns a complete `HttpResponse` or None when it needs more bytes; `feed_eof()` finishes a body
delimited by the connection close, or reports truncation. It handles Content-Length, chunked
transfer-encoding (with trailers), bodiless statuses and interim 1xx responses.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorCode

__all__ = ["HttpProtocolError", "HttpResponse", "ResponseParser", "build_request_head"]

_MAX_HEAD = 64 * 1024
_MAX_CHUNK_LINE = 4096


class HttpProtocolError(BridgeError):
    """The server's HTTP response is malformed, truncated or too big."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INVALID_INPUT, f"HTTP: {detail}")


@dataclass(frozen=True)
class HttpResponse:
    """A complete HTTP response (headers keep their order; names are lower-cased)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: False when the server asked to close (or HTTP/1.0 without keep-alive).
    keep_alive: bool

    def header(self, name: str) -> str | None:
        """The first value of header `name` (case-insensitive), or None."""
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)


def _check_token(value: str, what: str) -> str:
    # No CR/LF/NUL in anything we put on the wire (header injection).
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"invalid character in HTTP {what}")
    return value


def build_request_head(
    method: str,
    target: str,
    host: str,
    headers: Sequence[tuple[str, str]] = (),
    content_length: int | None = None,
) -> bytes:
    """The request line and headers, ending with the empty line; Content-Length when given."""
    lines = [f"{_check_token(method, 'method')} {_check_token(target, 'target')} HTTP/1.1", f"Host: {host}"]
    names = {k.lower() for k, _ in headers}
    for name, value in headers:
        lines.append(f"{_check_token(name, 'header name')}: {_check_token(value, 'header value')}")
    if content_length is not None and "content-length" not in names:
        lines.append(f"Content-Length: {content_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _State(enum.Enum):
    #: Reading the status line and headers.
    HEAD = "head"
    #: Reading a body of known length.
    LENGTH = "length"
    #: Reading a chunk-size line.
    CHUNK_SIZE = "chunk-size"
    #: Reading chunk data.
    CHUNK_DATA = "chunk-data"
    #: Reading the CRLF after chunk data.
    CHUNK_END = "chunk-end"
    #: Reading trailers after the last chunk.
    TRAILERS = "trailers"
    #: Reading until the server closes.
    UNTIL_EOF = "until-eof"
    #: Head read, no body follows (HEAD, 204, 304).
    NO_BODY = "no-body"


class ResponseParser:
    """Parse one response at a time from bytes fed in."""

    def __init__(self, max_body: int = 64 * 1024 * 1024, request_method: str = "GET") -> None:
        self._max_body = max_body
        self._method = request_method.upper()
        self._buf = bytearray()
        self._reset()
        #: True once any byte of a response was received (the request reached the server).
        self.started = False

    def _reset(self) -> None:
        self._state = _State.HEAD
        self._status = 0
        self._reason = ""
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()
        self._remaining = 0
        self._keep_alive = True

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        if data:
            self.started = True
            self._buf += data

    def next_response(self) -> HttpResponse | None:
        """The next complete final response, or None if more bytes are needed."""
        while True:
            if self._state is _State.HEAD:
                head = self._take_until(b"\r\n\r\n", _MAX_HEAD, "response head too large")
                if head is None:
                    return None
                self._state = self._parse_head(head)
                if self._state is _State.NO_BODY:
                    return self._finish()
                # HEAD again after an interim 1xx response: loop to read the next head.
            elif self._state is _State.LENGTH:
                if not self._take_body():
                    return None
                return self._finish()
            elif self._state is _State.CHUNK_SIZE:
                line = self._line()
                if line is None:
                    return None
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise HttpProtocolError("bad chunk size") from exc
                if size < 0:
                    raise HttpProtocolError("bad chunk size")
                self._check_size(len(self._body) + size)
                self._remaining = size
                self._state = _State.CHUNK_DATA if size else _State.TRAILERS
            elif self._state is _State.CHUNK_DATA:
                if not self._take_body():
                    return None
                self._state = _State.CHUNK_END
            elif self._state is _State.CHUNK_END:
                if len(self._buf) < 2:
                    return None
                if self._buf[:2] != b"\r\n":
                    raise HttpProtocolError("missing CRLF after chunk")
                del self._buf[:2]
                self._state = _State.CHUNK_SIZE
            elif self._state is _State.TRAILERS:
                line = self._line()
                if line is None:
                    return None
                if not line:
                    return self._finish()
            else:  # UNTIL_EOF (NO_BODY never stays: it is finished right after the head)
                self._body += self._buf
                self._buf.clear()
                self._check_size(len(self._body))
                return None

    def feed_eof(self) -> HttpResponse:
        """The server closed: finish a close-delimited body, or report a truncated response."""
        if self._state is _State.UNTIL_EOF:
            self._keep_alive = False
            return self._finish()
        raise HttpProtocolError("connection closed before the response was complete")

    def _take_body(self) -> bool:
        """Move up to `_remaining` buffered bytes into the body; True once all of them have arrived."""
        take = min(self._remaining, len(self._buf))
        self._body += self._buf[:take]
        del self._buf[:take]
        self._remaining -= take
        return not self._remaining

    def _line(self) -> bytes | None:
        return self._take_until(b"\r\n", _MAX_CHUNK_LINE, "chunk line too long")

    def _take_until(self, delimiter: bytes, limit: int, too_long: str) -> bytes | None:
        """Consume and return the bytes before `delimiter`; None until it arrives; raise past `limit` bytes."""
        end = self._buf.find(delimiter)
        if end < 0:
            if len(self._buf) > limit:
                raise HttpProtocolError(too_long)
            return None
        taken = bytes(self._buf[:end])
        del self._buf[: end + len(delimiter)]
        return taken

    def _check_size(self, size: int) -> None:
        if size > self._max_body:
            raise HttpProtocolError(f"response body larger than {self._max_body} bytes")

    def _parse_head(self, head: bytes) -> _State:
        """Parse status line + headers; the body state (HEAD again after an interim 1xx)."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HttpProtocolError("bad status line")
        version, status = parts[0], int(parts[1])
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpProtocolError("bad header line")
            headers.append((name.lower(), value.strip()))
        if 100 <= status < 200:
            return _State.HEAD
        self._status, self._reason, self._headers = status, parts[2] if len(parts) > 2 else "", headers
        tokens = {t.strip().lower() for k, v in headers if k == "connection" for t in v.split(",")}
        self._keep_alive = "close" not in tokens and (version != "HTTP/1.0" or "keep-alive" in tokens)
        transfer = [v.lower() for k, v in headers if k == "transfer-encoding"]
        lengths = {v for k, v in headers if k == "content-length"}
        if self._method == "HEAD" or status in (204, 304):
            return _State.NO_BODY
        if transfer:
            if transfer[-1].split(",")[-1].strip() == "chunked":
                return _State.CHUNK_SIZE
            self._keep_alive = False
            return _State.UNTIL_EOF
        if lengths:
            if len(lengths) != 1 or not next(iter(lengths)).isdigit():
                raise HttpProtocolError("bad Content-Length")
            self._remaining = int(next(iter(lengths)))
            self._check_size(self._remaining)
            return _State.LENGTH
        self._keep_alive = False
        return _State.UNTIL_EOF

    def _finish(self) -> HttpResponse:
        response = HttpResponse(self._status, self._reason, tuple(self._headers), bytes(self._body), self._keep_alive)
        self._reset()
        self.started = bool(self._buf)
        return response
