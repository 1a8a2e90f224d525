"""Fault knobs of the DMP simulator, for fault tests and demos: latency, 5xx, timeouts, lost answers.

The knobs live in a small JSON file (`dmp-bridge dmp-sim --faults FILE`) read again whenever it changes,
so a test can make a running simulator misbehave "for a while" and then heal it, without a restart::

    {"latency": 0.05, "error_rate": 0.2, "timeout_rate": 0.1, "timeout_seconds": 5, "drop_rate": 0.1, "seed": 1}

- ``latency``: seconds added before every answer;
- ``error_rate``: share of requests answered HTTP 503 with a SOAP fault, not processed (DMP unavailable);
- ``timeout_rate``: share of requests held ``timeout_seconds``, then answered 504, not processed;
- ``drop_rate``: share of requests processed (a TD2.1 is stored) whose connection is then closed with no
  answer: the client cannot know the outcome.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FaultKnobs", "SimFaults"]


@dataclass(frozen=True)
class FaultKnobs:
    """One reading of the knobs (all off by default)."""

    latency: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 5.0
    drop_rate: float = 0.0


class SimFaults:
    """The knobs file and the random draws (see the module docstring)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._knobs = FaultKnobs()
        self._rng = random.Random()

    def current(self) -> FaultKnobs:
        """The knobs now (the file is read again when its modification time changed)."""
        if self.path is None:
            return self._knobs
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._knobs, self._mtime = FaultKnobs(), None
            return self._knobs
        if mtime != self._mtime:
            try:
                raw = json.loads(self.path.read_text("utf-8"))
            except (OSError, ValueError):
                return self._knobs  # half-written: keep the previous knobs
            seed = raw.pop("seed", None)
            if seed is not None:
                self._rng.seed(seed)
            self._knobs = FaultKnobs(**{k: float(v) for k, v in raw.items() if k in FaultKnobs.__dataclass_fields__})
            self._mtime = mtime
        return self._knobs

    def draw(self, rate: float) -> bool:
        """True with probability `rate`."""
        return rate > 0 and self._rng.random() < rate
