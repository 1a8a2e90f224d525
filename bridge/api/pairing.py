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
        self._pending: dict[str, PendingPairing] = {}  # by code
        self._listeners: list[DecisionListener] = []
        self._request_listeners: list[RequestListener] = []

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

    def _emit(self, request_id: str, origin: str, approved: bool) -> None:
        for listener in list(self._listeners):
            listener(request_id, origin, approved)

    def request(self, origin: str) -> PendingPairing:
        """Open a pairing request for `origin`, or return its live one (a reloading page prompts once)."""
        self._prune()
        for pending in self._pending.values():
            if pending.origin == origin:
                return pending
        if len(self._pending) >= MAX_PENDING:
            raise BridgeError(ErrorCode.INVALID_INPUT, "too-many-pairing-requests")
        code = f"{secrets.randbelow(1_000_000):06d}"
        while code in self._pending:
            code = f"{secrets.randbelow(1_000_000):06d}"
        pending = PendingPairing(
            request_id=secrets.token_hex(8), origin=origin, code=code, expires_at=self._clock() + self.ttl
        )
        self._pending[code] = pending
        for listener in list(self._request_listeners):
            listener(pending)
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
        return pending

    def deny(self, code: str) -> PendingPairing:
        """Deny the request with this code."""
        pending = self._take(code)
        log.info("pairing denied: %s", pending.origin)
        self._emit(pending.request_id, pending.origin, False)
        return pending
