"""Which DMP faults are worth another attempt, and when: pure functions, no I/O.

Transient (sent again later, with exponential backoff and jitter): the network (DMP_UNREACHABLE), a
deadline (TIMEOUT), an answer that never came (DMP_OUTCOME_UNKNOWN), an HTTP 5xx or a DMP that says it
is unavailable or failed internally. Permanent (never sent again by itself): rights
(NOT_PERMITTED_FOR_ACTOR), invalid metadata or content (INVALID_PARAMS, INVALID_INPUT, a DMP refusal of
the request), an unknown patient or document (NOT_FOUND, a DMP refusal naming the patient).

`may_have_landed` says whether the failed attempt may nevertheless have been applied: then the worker
asks the DMP whether the uniqueId is registered before it sends again.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorCode

__all__ = ["RetryPolicy", "Verdict", "already_there", "classify", "may_have_landed"]

#: The registry's refusal of a uniqueId it already holds (IHE XDS): the document is there.
DUPLICATE_UNIQUE_ID = "XDSDuplicateUniqueIdInRegistry"

#: DMP fault codes that say "not now" rather than "not this": HTTP 5xx and internal/unavailable faults.
_TRANSIENT_DMP_CODES = ("HTTP_5", "DMPInternalError", "DMPUnavailable", "DMPServiceUnavailable", "DMPBusy")
_TRANSIENT = frozenset(
    {ErrorCode.DMP_UNREACHABLE, ErrorCode.TIMEOUT, ErrorCode.DMP_OUTCOME_UNKNOWN, ErrorCode.INTERNAL}
)


class Verdict(enum.Enum):
    """What to do after a failed attempt."""

    #: Try again later.
    TRANSIENT = "transient"
    #: Stop: a person must act.
    PERMANENT = "permanent"


def classify(error: BridgeError) -> Verdict:
    """Transient or permanent (see the module docstring)."""
    if error.code in _TRANSIENT:
        return Verdict.TRANSIENT
    if error.code is ErrorCode.DMP_FAULT:
        dmp_code = str(error.extra.get("dmpCode") or error.detail or "")
        if dmp_code.startswith(_TRANSIENT_DMP_CODES):
            return Verdict.TRANSIENT
    return Verdict.PERMANENT


def already_there(error: BridgeError) -> bool:
    """True when the DMP refused a submission because it already holds its uniqueId (an earlier attempt)."""
    return error.code is ErrorCode.DOCUMENT_ALREADY_EXISTS or (
        error.code is ErrorCode.DMP_FAULT and error.extra.get("dmpCode") == DUPLICATE_UNIQUE_ID
    )


def may_have_landed(error: BridgeError) -> bool:
    """False only when the bridge knows the DMP did not apply the request (it never got it whole)."""
    return error.code is not ErrorCode.DMP_UNREACHABLE


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: attempt n waits a random time in [base·2ⁿ/2, base·2ⁿ], capped."""

    base: float = 2.0
    cap: float = 300.0
    #: After this many attempts a transient fault becomes permanent (0: never).
    max_attempts: int = 0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds before attempt `attempt + 1` (`attempt` ≥ 1 is the one that just failed)."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return float(ceiling / 2 + rng.random() * ceiling / 2)

    def gives_up(self, attempt: int) -> bool:
        """True when no more attempts are allowed."""
        return self.max_attempts > 0 and attempt >= self.max_attempts
