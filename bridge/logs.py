"""Logging set-up, with redaction of personal data as a last line of defence.

Code must not log secrets or patient data in the first place; the filter masks what slips through
(NIR/INS-shaped numbers, PIN-like fields) so that a mistake does not end up on disk.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["LogThrottle", "RedactingFilter", "escape_controls", "redact", "setup_logging"]

# Control characters (and Unicode line separators) in a message would let a caller forge log lines.
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")

# NIR/INS: 13 digits (+ 2-digit key), first digit 1-4 or 7-8; also with spaces.
_NIR = re.compile(r"\b[1-478]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b")
_PIN_FIELD = re.compile(r"(?i)(\"?pin\"?\s*[:=]\s*)(\"?)[^\s\",}]+")


def redact(text: str) -> str:
    """Mask NIR/INS-shaped numbers and `pin=...` values in a log line."""
    text = _NIR.sub("[NIR]", text)
    return _PIN_FIELD.sub(r"\1\2***", text)


def escape_controls(text: str) -> str:
    """Write control characters as visible escapes, so one message is always one line."""
    return _CONTROL.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class LogThrottle:
    """One log line per kind per interval; the next line of that kind says how many were left out."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._kinds: dict[str, list[float]] = {}  # kind -> [next allowed time, left out since]

    def log(self, level: int, kind: str, message: str, *args: Any) -> None:
        """Log unless a line of this `kind` (a bounded set: codes, refusal reasons) was logged recently."""
        now = self._clock()
        state = self._kinds.get(kind)
        if state is not None and now < state[0]:
            state[1] += 1
            return
        left_out = int(state[1]) if state is not None else 0
        self._kinds[kind] = [now + self._interval, 0]
        if left_out:
            message, args = message + " (+%d like it not logged)", (*args, left_out)
        self._logger.log(level, message, *args)


class RedactingFilter(logging.Filter):
    """Applies `redact` to every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        redacted = redact(escape_controls(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(verbose: bool = False, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Log to `stream` (stderr by default), redacted, at `level` (DEBUG when verbose)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else level)
    # signxml logs whole canonicalised assertions at DEBUG (INS, names): never let them through.
    logging.getLogger("signxml").setLevel(logging.WARNING)
