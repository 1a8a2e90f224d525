"""Logging set-up, with redaction of personal data as a last line of defence.

Code must not log secrets or patient data in the first place; the filter masks what slips through
(NIR/INS-shaped numbers, PIN-like fields) so that a mistake does not end up on disk.
"""

from __future__ import annotations

import logging
import re
from typing import TextIO

__all__ = ["RedactingFilter", "redact", "setup_logging"]

# NIR/INS: 13 digits (+ 2-digit key), first digit 1-4 or 7-8; also with spaces.
_NIR = re.compile(r"\b[1-478]\s?\d{2}\s?\d{2}\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}(?:\s?\d{2})?\b")
_PIN_FIELD = re.compile(r"(?i)(\"?pin\"?\s*[:=]\s*)(\"?)[^\s\",}]+")


def redact(text: str) -> str:
    """Mask NIR/INS-shaped numbers and `pin=...` values in a log line."""
    text = _NIR.sub("[NIR]", text)
    return _PIN_FIELD.sub(r"\1\2***", text)


class RedactingFilter(logging.Filter):
    """Applies `redact` to every record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Log to `stream` (stderr by default), redacted, at INFO (or DEBUG when verbose)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # signxml logs whole canonicalised assertions at DEBUG (INS, names): never let them through.
    logging.getLogger("signxml").setLevel(logging.WARNING)
