"""How a TLS connection fails: `TlsError` (DMP_UNREACHABLE), `TlsTimeout` (TIMEOUT), and the deadline check.

A blocking TLS call takes an absolute `deadline` (time.monotonic()); `time_left` turns it into the
bound of one socket wait, or raises `TlsTimeout` saying which step ran out of time.
"""

from __future__ import annotations

import time
from typing import Any

from bridge.errors import BridgeError, ErrorCode

__all__ = ["TlsError", "TlsTimeout", "time_left"]


class TlsError(BridgeError):
    """A TLS failure that is not the card's: unreachable, refused, untrusted server, host mismatch."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(ErrorCode.DMP_UNREACHABLE, detail, **extra)


class TlsTimeout(TlsError):
    """A deadline ran out; `stage` says during what (connect, tls-handshake, send, receive)."""

    def __init__(self, stage: str, detail: str) -> None:
        BridgeError.__init__(self, ErrorCode.TIMEOUT, detail, stage=stage)
        self.stage = stage


def time_left(limit: float, deadline: float | None, stage: str, where: str) -> float:
    """`limit` seconds, or less if the deadline comes first; TlsTimeout if it has passed."""
    if deadline is None:
        return limit
    left = deadline - time.monotonic()
    if left <= 0:
        raise TlsTimeout(stage, f"deadline reached before {stage} with {where}")
    return min(limit, left)
