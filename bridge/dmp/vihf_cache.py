"""A cache of signed VIHFs so that the card signs once per (practitioner, patient, mode) context."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.dmp.codes import AuthMode

__all__ = ["VihfCache", "VihfKey"]


@dataclass(frozen=True)
class VihfKey:
    """What a signed VIHF is valid for: one practitioner, one patient (or none), one auth mode."""

    practitioner_id: str
    patient_ins: str | None
    mode: AuthMode


class VihfCache:
    """Signed assertions kept for `lifetime` seconds of the injected monotonic clock.

    The stored element is never handed out: callers get a deep copy, because putting an element into a
    SOAP envelope moves it. `get_or_sign` calls `sign()` (which may prompt for the card) only on a miss.
    """

    def __init__(self, lifetime: float = 3600.0, clock: Callable[[], float] = time.monotonic, max_entries: int = 64):
        if lifetime <= 0:
            raise ValueError("lifetime must be positive")
        self._lifetime = lifetime
        self._clock = clock
        self._max = max_entries
        self._entries: dict[VihfKey, tuple[float, Any]] = {}

    def get(self, key: VihfKey) -> Any | None:
        """A copy of the cached assertion, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, element = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return copy.deepcopy(element)

    def put(self, key: VihfKey, assertion: Any) -> None:
        """Store a signed assertion; the oldest entry goes when the cache is full."""
        if key not in self._entries and len(self._entries) >= self._max:
            oldest = min(self._entries, key=lambda k: self._entries[k][0])
            del self._entries[oldest]
        self._entries[key] = (self._clock() + self._lifetime, copy.deepcopy(assertion))

    def get_or_sign(self, key: VihfKey, sign: Callable[[], Any]) -> Any:
        """The cached assertion for `key`, or a freshly signed one (then cached)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        signed = sign()
        self.put(key, signed)
        return copy.deepcopy(signed)

    def invalidate(self, practitioner_id: str | None = None) -> None:
        """Forget every entry (card removed, logout), or those of one practitioner."""
        if practitioner_id is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k.practitioner_id == practitioner_id]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
