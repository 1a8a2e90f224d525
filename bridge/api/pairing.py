"""Pending pairing requests with 6-digit codes; approving one stores (origin, key) in the ApprovalStore.

A page proves a key (`pairing.prove`, bridge.api.key_proof) and calls `pairing.request`; the bridge
shows the origin and a 6-digit code to the person at the workstation (tray, log, `dmp-bridge origins
pending`); approving the code (tray button or `dmp-bridge origins approve CODE`) stores the origin with
the key the requesting page proved. Only a local, token-holding client or the tray can approve: a web
page never can, so the code is not a secret the page must guess but the person's confirmation that
they see the same origin as the page they are using.

A request is for (origin, key): a page whose browser profile was cleared has a new key and asks
again; its origin's other keys keep working meanwhile (the new one is added only once approved).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bridge.api.approvals import APPROVALS_FILENAME, ApprovalStore, ApprovedOrigin
from bridge.api.key_proof import fingerprint
from bridge.errors import BridgeError, ErrorCode

# The store lives in bridge.api.approvals; re-exported for the modules that import it from here.
__all__ = [
    "APPROVALS_FILENAME",
    "ApprovalStore",
    "ApprovedOrigin",
    "PairingManager",
    "PendingPairing",
]

log = logging.getLogger(__name__)

PAIRING_TTL = 300.0  # seconds a code stays valid: long enough to walk to the tray, short enough to forget
MAX_PENDING = 16  # a page flooding requests cannot bury the person in prompts
# New requests per origin: a burst of 3 (reloads, tabs closing), then one per 10 s.
ORIGIN_BURST, ORIGIN_REFILL = 3.0, 0.1
# New requests overall: a burst of 20, then 10 per second; a flood that stops is forgotten within a second.
OVERALL_BURST, OVERALL_REFILL = 20.0, 10.0


class _Bucket:
    """A token bucket: `burst` at once, then `refill` per second."""

    def __init__(self, burst: float, refill: float, now: float) -> None:
        self.burst, self.refill = burst, refill
        self.tokens, self.at = burst, now

    def _update(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.refill)
        self.at = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when one is)."""
        self._update(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.refill

    def spend(self) -> None:
        """Take one token (after `wait` said 0)."""
        self.tokens -= 1

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled completely (it can then be forgotten)."""
        self._update(now)
        return self.tokens >= self.burst


@dataclass(kw_only=True)
class PendingPairing:
    """A pairing request waiting for the person's decision."""

    request_id: str
    origin: str
    #: The public key (base64 SPKI) the requesting page proved; approval binds the origin to it.
    key: str
    code: str
    expires_at: float  # monotonic clock
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: The connections waiting for it; it is dropped when the last one closes.
    owners: set[object] = field(default_factory=set, repr=False, compare=False)

    def to_json(self, now: float) -> dict[str, Any]:
        """JSON form for `origins pending --json`."""
        return {
            "requestId": self.request_id,
            "origin": self.origin,
            "keyFingerprint": fingerprint(self.key),
            "code": self.code,
            "createdAt": self.created_at,
            "expiresIn": max(0, round(self.expires_at - now)),
        }


# Called with (request_id, origin, approved) when a request is decided.
DecisionListener = Callable[[str, str, bool], None]
# Called with each new request (to show it to the person).
RequestListener = Callable[["PendingPairing"], None]


class PairingManager:
    """Pending pairing requests; decisions go to the store and to the listener (the server)."""

    def __init__(
        self,
        store: ApprovalStore,
        *,
        ttl: float = PAIRING_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self._clock = clock
        self._pending: dict[str, PendingPairing] = {}  # by code, oldest first
        self._listeners: list[DecisionListener] = []
        self._request_listeners: list[RequestListener] = []
        self._shown: str | None = None  # the code shown to the person: one request at a time
        self._overall = _Bucket(OVERALL_BURST, OVERALL_REFILL, clock())
        self._per_origin: dict[str, _Bucket] = {}

    def add_listener(self, listener: DecisionListener) -> None:
        """Be told of every approval/denial."""
        self._listeners.append(listener)

    def add_request_listener(self, listener: RequestListener) -> None:
        """Be told of every new request."""
        self._request_listeners.append(listener)

    def _prune(self) -> None:
        now = self._clock()
        for code in [c for c, p in self._pending.items() if p.expires_at <= now]:
            expired = self._pending.pop(code)
            self._emit(expired.request_id, expired.origin, False)
        self._show_next()

    def _show_next(self) -> None:
        # The person sees the oldest live request; the next one only once it is decided, expired or dropped.
        if self._shown in self._pending:
            return
        self._shown = next(iter(self._pending), None)
        if self._shown is not None:
            pending = self._pending[self._shown]
            for listener in list(self._request_listeners):
                listener(pending)

    def _rate_limit(self, origin: str) -> None:
        now = self._clock()
        for key in [o for o, b in self._per_origin.items() if b.full(now)]:
            del self._per_origin[key]  # bounded memory: only origins seen recently are remembered
        bucket = self._per_origin.get(origin) or _Bucket(ORIGIN_BURST, ORIGIN_REFILL, now)
        wait = max(bucket.wait(now), self._overall.wait(now))
        if wait > 0:
            raise BridgeError(ErrorCode.INVALID_INPUT, "pairing-rate-limited", retryAfter=round(wait + 0.5))
        bucket.spend()
        self._overall.spend()
        self._per_origin[origin] = bucket

    def release(self, owner: object) -> None:
        """A connection closed: its requests that nobody else waits for are dropped."""
        for code in [c for c, p in self._pending.items() if owner in p.owners]:
            pending = self._pending[code]
            pending.owners.discard(owner)
            if not pending.owners:
                del self._pending[code]
                log.info("pairing request dropped: its page went away")
        self._prune()

    def _emit(self, request_id: str, origin: str, approved: bool) -> None:
        for listener in list(self._listeners):
            listener(request_id, origin, approved)

    def request(self, origin: str, key: str, owner: object = None) -> PendingPairing:
        """Open a pairing request for (`origin`, `key`), or return its live one (a reloading page prompts once).

        `owner` (the requesting connection) keeps it alive; without one it lives until it expires.
        """
        self._prune()
        for pending in self._pending.values():
            if pending.origin == origin and pending.key == key:
                if owner is not None:
                    pending.owners.add(owner)
                return pending
        if len(self._pending) >= MAX_PENDING:
            raise BridgeError(ErrorCode.INVALID_INPUT, "too-many-pairing-requests")
        self._rate_limit(origin)
        code = f"{secrets.randbelow(1_000_000):06d}"
        while code in self._pending:
            code = f"{secrets.randbelow(1_000_000):06d}"
        pending = PendingPairing(
            request_id=secrets.token_hex(8), origin=origin, key=key, code=code, expires_at=self._clock() + self.ttl
        )
        if owner is not None:
            pending.owners.add(owner)
        self._pending[code] = pending
        self._show_next()
        return pending

    def pending(self) -> list[PendingPairing]:
        """Live requests, oldest first."""
        self._prune()
        return sorted(self._pending.values(), key=lambda p: p.expires_at)

    def now(self) -> float:
        """The manager's clock (for `PendingPairing.to_json`)."""
        return self._clock()

    def _take(self, code: str) -> PendingPairing:
        self._prune()
        pending = self._pending.pop(code.strip(), None)
        if pending is None:
            raise BridgeError(ErrorCode.NOT_FOUND, "pairing-code")
        return pending

    def approve(self, code: str) -> PendingPairing:
        """Approve the request with this code; its origin is stored with its key."""
        pending = self._take(code)
        self.store.approve(pending.origin, pending.key)
        log.info("origin approved: %s (key %s)", pending.origin, fingerprint(pending.key))
        self._emit(pending.request_id, pending.origin, True)
        self._show_next()
        return pending

    def deny(self, code: str) -> PendingPairing:
        """Deny the request with this code."""
        pending = self._take(code)
        log.info("pairing denied: %s", pending.origin)
        self._emit(pending.request_id, pending.origin, False)
        self._show_next()
        return pending
