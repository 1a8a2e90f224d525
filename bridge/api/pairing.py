"""Web-origin approvals: the persisted store and the pending pairing requests with 6-digit codes.

A page calls `pairing.request`; the bridge shows the origin and a 6-digit code to the person at the
workstation (tray, log, `dmp-bridge origins pending`); approving the code (tray button or
`dmp-bridge origins approve CODE`) stores the origin. Only a local, token-holding client or the tray
can approve: a web page never can, so the code is not a secret the page must guess but the
person's confirmation that they see the same origin as the page they are using.

The store is a JSON file rewritten atomically; it is re-read when its mtime changes so that an
edit made while the daemon runs (CLI fallback, tests) is honoured.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "APPROVALS_FILENAME",
    "ApprovalStore",
    "ApprovedOrigin",
    "PairingManager",
    "PendingPairing",
]

log = logging.getLogger(__name__)

APPROVALS_FILENAME = "approved-origins.json"
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


@dataclass(frozen=True, kw_only=True)
class ApprovedOrigin:
    """One approved web origin."""

    origin: str
    approved_at: str

    def to_json(self) -> dict[str, str]:
        """JSON form (CLI --json, diagnostics)."""
        return {"origin": self.origin, "approvedAt": self.approved_at}


class ApprovalStore:
    """Approved origins persisted in a JSON file (0600 inside the private data folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._origins: dict[str, ApprovedOrigin] = {}
        self._mtime: int | None = None

    def _refresh(self) -> None:
        try:
            info = os.stat(self.path)  # every call; os.stat is ~40% cheaper than Path.stat
        except FileNotFoundError:
            self._origins, self._mtime = {}, None
            return
        mtime = info.st_mtime_ns
        if mtime == self._mtime:
            return
        if info.st_uid != os.getuid():
            # Planted by another user: it approves nothing.
            log.warning("approved-origins file not owned by this user; ignored")
            self._origins, self._mtime = {}, mtime
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            entries = raw.get("origins", {}) if isinstance(raw, dict) else {}
            self._origins = {
                str(o): ApprovedOrigin(origin=str(o), approved_at=str(v.get("approvedAt", "")))
                for o, v in entries.items()
                if isinstance(v, dict)
            }
        except (OSError, ValueError, AttributeError):
            # A damaged file approves nothing; it is rewritten on the next approval.
            log.warning("approved-origins file unreadable; treating as empty")
            self._origins = {}
        self._mtime = mtime

    def _save(self) -> None:
        from bridge.paths import ensure_private_dir

        ensure_private_dir(self.path.parent)
        payload = {
            "version": 1,
            "origins": {o: {"approvedAt": a.approved_at} for o, a in sorted(self._origins.items())},
        }
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns

    def is_approved(self, origin: str) -> bool:
        """Whether `origin` is currently approved."""
        self._refresh()
        return origin in self._origins

    def approve(self, origin: str) -> ApprovedOrigin:
        """Approve `origin` (idempotent) and persist."""
        self._refresh()
        entry = self._origins.get(origin)
        if entry is None:
            entry = ApprovedOrigin(origin=origin, approved_at=datetime.now(UTC).isoformat(timespec="seconds"))
            self._origins[origin] = entry
            self._save()
        return entry

    def revoke(self, origin: str) -> bool:
        """Forget `origin`; False when it was not approved."""
        self._refresh()
        if self._origins.pop(origin, None) is None:
            return False
        self._save()
        return True

    def list(self) -> list[ApprovedOrigin]:
        """All approved origins, sorted."""
        self._refresh()
        return [self._origins[o] for o in sorted(self._origins)]


@dataclass(kw_only=True)
class PendingPairing:
    """A pairing request waiting for the person's decision."""

    request_id: str
    origin: str
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

    def request(self, origin: str, owner: object = None) -> PendingPairing:
        """Open a pairing request for `origin`, or return its live one (a reloading page prompts once).

        `owner` (the requesting connection) keeps it alive; without one it lives until it expires.
        """
        self._prune()
        for pending in self._pending.values():
            if pending.origin == origin:
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
            request_id=secrets.token_hex(8), origin=origin, code=code, expires_at=self._clock() + self.ttl
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
        """Approve the request with this code; its origin is stored."""
        pending = self._take(code)
        self.store.approve(pending.origin)
        log.info("origin approved: %s", pending.origin)
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
