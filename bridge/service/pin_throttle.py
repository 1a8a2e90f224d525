"""Growing delay between wrong PINs on one card, kept per card serial across every caller (issue 13 point 3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["DEFAULT_PIN_DELAY_UNIT", "PIN_DELAY_CAP", "PinThrottle"]

#: First delay after a wrong PIN, in seconds; it doubles with each further wrong PIN.
DEFAULT_PIN_DELAY_UNIT = 1.0
#: Longest delay: a person who mistyped twice is never kept waiting for long.
PIN_DELAY_CAP = 30.0


@dataclass
class _Failures:
    count: int
    not_before: float


class PinThrottle:
    """Wrong PINs per card serial: the next attempt on that card waits unit, 2 units, 4 units... (capped)."""

    def __init__(
        self,
        unit: float = DEFAULT_PIN_DELAY_UNIT,
        cap: float = PIN_DELAY_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.unit = unit
        self.cap = cap
        self._clock = clock
        self._cards: dict[str, _Failures] = {}

    def delay(self, serial: str) -> float:
        """Seconds the next attempt on `serial` must still wait (0 when none)."""
        failures = self._cards.get(serial)
        return 0.0 if failures is None else max(0.0, failures.not_before - self._clock())

    async def wait(self, serial: str) -> None:
        """Wait until an attempt on `serial` is allowed."""
        # Recomputed after each sleep: a wrong PIN entered meanwhile (another reader) pushes it further.
        while (remaining := self.delay(serial)) > 0:
            await asyncio.sleep(remaining)

    def failed(self, serial: str) -> None:
        """A wrong PIN on `serial`: the next attempt waits twice as long as the previous one."""
        failures = self._cards.setdefault(serial, _Failures(0, 0.0))
        failures.count += 1
        wait = min(self.cap, self.unit * 2 ** (failures.count - 1))
        failures.not_before = self._clock() + wait

    def succeeded(self, serial: str) -> None:
        """A correct PIN on `serial`: no more delay."""
        self._cards.pop(serial, None)
