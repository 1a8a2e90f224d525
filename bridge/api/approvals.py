"""Approved web origins, each bound to the public keys its pages proved: the persisted store.

An approval is for (origin, key), not for a name: a page proves the key on every connection
(bridge.api.key_proof), so a program forging the `Origin` header gets nothing. An origin may hold a
few keys (one per browser profile that was paired: two browsers on one workstation must not evict
each other); pairing a new key adds it once the person approves, the oldest beyond `MAX_KEYS` going.

The store is a JSON file (version 2) rewritten atomically; it is re-read when its mtime changes so that
an edit made while the daemon runs (CLI fallback, tests) is honoured. A version-1 file (origins
approved by name, before keys) is read as "pairing needed": those origins are listed but approve
nothing until their page pairs again. A file not owned by this user approves nothing.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.api.key_proof import fingerprint

__all__ = ["APPROVALS_FILENAME", "MAX_KEYS", "ApprovalStore", "ApprovedKey", "ApprovedOrigin"]

log = logging.getLogger(__name__)

APPROVALS_FILENAME = "approved-origins.json"
#: Keys kept per origin (browser profiles paired on this workstation).
MAX_KEYS = 4
_VERSION = 2


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class ApprovedKey:
    """One public key (base64 DER SPKI) approved for an origin."""

    spki: str
    approved_at: str

    def to_json(self) -> dict[str, str]:
        """JSON form (CLI --json): the fingerprint, never needed to be secret."""
        return {"fingerprint": fingerprint(self.spki), "approvedAt": self.approved_at}


@dataclass(frozen=True, kw_only=True)
class ApprovedOrigin:
    """One origin known to the store, with its approved keys (none: approved before keys, pairing needed)."""

    origin: str
    approved_at: str
    keys: tuple[ApprovedKey, ...] = ()

    @property
    def status(self) -> str:
        """`approved`, or `pairing-needed` for an approval migrated from version 1 (no key)."""
        return "approved" if self.keys else "pairing-needed"

    def to_json(self) -> dict[str, Any]:
        """JSON form (CLI --json, diagnostics)."""
        return {
            "origin": self.origin,
            "approvedAt": self.approved_at,
            "status": self.status,
            "keys": [k.to_json() for k in self.keys],
        }


def _parse(raw: Any) -> dict[str, ApprovedOrigin]:
    entries = raw.get("origins", {}) if isinstance(raw, dict) else {}
    out: dict[str, ApprovedOrigin] = {}
    for origin, value in entries.items():
        if not isinstance(value, dict):
            continue
        keys = value.get("keys", []) if raw.get("version") == _VERSION else []  # v1: pairing needed
        parsed = tuple(
            ApprovedKey(spki=str(k["spki"]), approved_at=str(k.get("approvedAt", "")))
            for k in keys
            if isinstance(k, dict) and isinstance(k.get("spki"), str)
        )
        out[str(origin)] = ApprovedOrigin(
            origin=str(origin), approved_at=str(value.get("approvedAt", "")), keys=parsed[-MAX_KEYS:]
        )
    return out


class ApprovalStore:
    """Approved (origin, key) pairs persisted in a JSON file (0600 inside the private data folder)."""

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
            self._origins = _parse(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            # A damaged file approves nothing; it is rewritten on the next approval.
            log.warning("approved-origins file unreadable; treating as empty")
            self._origins = {}
        self._mtime = mtime

    def _save(self) -> None:
        from bridge.paths import ensure_private_dir

        ensure_private_dir(self.path.parent)
        payload = {
            "version": _VERSION,
            "origins": {
                o: {
                    "approvedAt": a.approved_at,
                    "keys": [{"spki": k.spki, "approvedAt": k.approved_at} for k in a.keys],
                }
                for o, a in sorted(self._origins.items())
            },
        }
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns

    def is_approved(self, origin: str, key: str | None) -> bool:
        """Whether `key` (base64 SPKI) is approved for `origin`."""
        if key is None:
            return False
        self._refresh()
        entry = self._origins.get(origin)
        return entry is not None and any(k.spki == key for k in entry.keys)

    def approve(self, origin: str, key: str) -> ApprovedOrigin:
        """Approve `key` for `origin` (idempotent; the oldest key beyond MAX_KEYS goes) and persist."""
        self._refresh()
        entry = self._origins.get(origin)
        if entry is not None and any(k.spki == key for k in entry.keys):
            return entry
        now = _now()
        keys = ((entry.keys if entry else ()) + (ApprovedKey(spki=key, approved_at=now),))[-MAX_KEYS:]
        entry = ApprovedOrigin(origin=origin, approved_at=entry.approved_at if entry and entry.keys else now, keys=keys)
        self._origins[origin] = entry
        self._save()
        return entry

    def revoke(self, origin: str) -> bool:
        """Forget `origin` and all its keys; False when it was not known."""
        self._refresh()
        if self._origins.pop(origin, None) is None:
            return False
        self._save()
        return True

    def list(self) -> list[ApprovedOrigin]:
        """All known origins (approved or pairing needed), sorted."""
        self._refresh()
        return [self._origins[o] for o in sorted(self._origins)]
