"""Approvals store (origin bound to keys, migration) and pairing requests (codes, expiry, decisions)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bridge.api.approvals import MAX_KEYS
from bridge.api.pairing import ApprovalStore, PairingManager, PendingPairing
from bridge.errors import BridgeError, ErrorCode
from tests.api_helpers import PageKey

KEY = PageKey().spki


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_store_persists_private_and_revocable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "approved.json"
    store = ApprovalStore(path)
    assert not store.is_approved("https://a.fr", KEY)
    store.approve("https://a.fr", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = ApprovalStore(path)
    assert again.is_approved("https://a.fr", KEY)
    assert not again.is_approved("https://a.fr", PageKey().spki)  # the name alone approves nothing
    assert not again.is_approved("https://a.fr", None)
    assert [o.origin for o in again.list()] == ["https://a.fr"]
    assert again.revoke("https://a.fr")
    assert not again.revoke("https://a.fr")
    # The first store sees the other process's change (mtime re-read).
    assert not store.is_approved("https://a.fr", KEY)


def test_store_damaged_file_approves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "approved.json"
    path.write_text("{oops")
    store = ApprovalStore(path)
    assert store.list() == []
    store.approve("https://b.fr", KEY)
    assert json.loads(path.read_text())["origins"]["https://b.fr"]["keys"][0]["spki"] == KEY


def test_pairing_code_approve_flow(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    clock = Clock()
    manager = PairingManager(store, ttl=60, clock=clock)
    seen: list[PendingPairing] = []
    decisions: list[tuple[str, str, bool]] = []
    manager.add_request_listener(seen.append)
    manager.add_listener(lambda rid, origin, ok: decisions.append((rid, origin, ok)))
    pending = manager.request("https://a.fr", KEY)
    assert len(pending.code) == 6 and pending.code.isdigit()
    assert seen == [pending]
    assert pending.to_json(clock.now)["expiresIn"] == 60
    with pytest.raises(BridgeError) as info:
        manager.approve("000000" if pending.code != "000000" else "111111")
    assert info.value.code is ErrorCode.NOT_FOUND
    manager.approve(pending.code)
    assert store.is_approved("https://a.fr", KEY)
    assert decisions == [(pending.request_id, "https://a.fr", True)]
    with pytest.raises(BridgeError):
        manager.approve(pending.code)  # single use


def test_pairing_deny_and_expiry(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    clock = Clock()
    manager = PairingManager(store, ttl=60, clock=clock)
    decisions: list[tuple[str, str, bool]] = []
    manager.add_listener(lambda rid, origin, ok: decisions.append((rid, origin, ok)))
    first = manager.request("https://a.fr", KEY)
    manager.deny(first.code)
    assert not store.is_approved("https://a.fr", KEY)
    second = manager.request("https://b.fr", KEY)
    clock.now += 61
    assert manager.pending() == []
    with pytest.raises(BridgeError):
        manager.approve(second.code)
    assert decisions == [(first.request_id, "https://a.fr", False), (second.request_id, "https://b.fr", False)]


def test_repeated_request_reuses_the_live_one(tmp_path: Path) -> None:
    manager = PairingManager(ApprovalStore(tmp_path / "a.json"), ttl=60, clock=(clock := Clock()))
    shown: list[PendingPairing] = []
    manager.add_request_listener(shown.append)
    first = manager.request("https://a.fr", KEY)
    again = manager.request("https://a.fr", KEY)
    assert again is first and shown == [first]  # one prompt, however often the page asks
    clock.now += 61
    fresh = manager.request("https://a.fr", KEY)
    assert fresh.request_id != first.request_id and shown == [first, fresh]


def test_pending_requests_are_bounded(tmp_path: Path) -> None:
    manager = PairingManager(ApprovalStore(tmp_path / "a.json"))
    for i in range(16):
        manager.request(f"https://s{i}.fr", KEY)
    with pytest.raises(BridgeError) as info:
        manager.request("https://one-too-many.fr", KEY)
    assert info.value.detail == "too-many-pairing-requests"


def test_version_1_approvals_migrate_to_pairing_needed(tmp_path: Path) -> None:
    path = tmp_path / "approved.json"
    # Approved by name before keys existed: listed, but approves no key until the page pairs again.
    path.write_text(
        json.dumps({"version": 1, "origins": {"https://a.fr": {"approvedAt": "2026-01-01T00:00:00+00:00"}}})
    )
    store = ApprovalStore(path)
    (entry,) = store.list()
    assert entry.status == "pairing-needed" and entry.to_json()["keys"] == []
    assert not store.is_approved("https://a.fr", KEY)
    store.approve("https://a.fr", KEY)
    (entry,) = ApprovalStore(path).list()
    assert entry.status == "approved" and json.loads(path.read_text())["version"] == 2


def test_new_key_added_after_approval_old_keys_kept_up_to_a_bound(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    manager = PairingManager(store, ttl=60, clock=Clock())
    old = PageKey().spki
    store.approve("https://a.fr", old)
    # The browser profile was cleared: a new key asks; the old one keeps working until the new one is approved.
    new = PageKey().spki
    pending = manager.request("https://a.fr", new)
    assert pending.key == new and pending.to_json(0)["keyFingerprint"]
    assert store.is_approved("https://a.fr", old) and not store.is_approved("https://a.fr", new)
    # Another key of the same origin is a distinct request (the person tells them apart by the code).
    assert manager.request("https://a.fr", PageKey().spki).code != pending.code
    manager.approve(pending.code)
    assert store.is_approved("https://a.fr", new) and store.is_approved("https://a.fr", old)
    keys = [PageKey().spki for _ in range(MAX_KEYS)]
    for key in keys:
        store.approve("https://a.fr", key)
    assert not store.is_approved("https://a.fr", old) and all(store.is_approved("https://a.fr", k) for k in keys)
    assert store.revoke("https://a.fr") and not any(store.is_approved("https://a.fr", k) for k in keys)
