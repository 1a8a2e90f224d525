"""Approvals store and pairing requests (codes, expiry, decisions)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bridge.api.pairing import ApprovalStore, PairingManager, PendingPairing
from bridge.errors import BridgeError, ErrorCode


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_store_persists_private_and_revocable(tmp_path: Path) -> None:
    path = tmp_path / "data" / "approved.json"
    store = ApprovalStore(path)
    assert not store.is_approved("https://a.fr")
    store.approve("https://a.fr")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = ApprovalStore(path)
    assert again.is_approved("https://a.fr")
    assert [o.origin for o in again.list()] == ["https://a.fr"]
    assert again.revoke("https://a.fr")
    assert not again.revoke("https://a.fr")
    # The first store sees the other process's change (mtime re-read).
    assert not store.is_approved("https://a.fr")


def test_store_damaged_file_approves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "approved.json"
    path.write_text("{oops")
    store = ApprovalStore(path)
    assert store.list() == []
    store.approve("https://b.fr")
    assert json.loads(path.read_text())["origins"]["https://b.fr"]["approvedAt"]


def test_pairing_code_approve_flow(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    clock = Clock()
    manager = PairingManager(store, ttl=60, clock=clock)
    seen: list[PendingPairing] = []
    decisions: list[tuple[str, str, bool]] = []
    manager.add_request_listener(seen.append)
    manager.add_listener(lambda rid, origin, ok: decisions.append((rid, origin, ok)))
    pending = manager.request("https://a.fr")
    assert len(pending.code) == 6 and pending.code.isdigit()
    assert seen == [pending]
    assert pending.to_json(clock.now)["expiresIn"] == 60
    with pytest.raises(BridgeError) as info:
        manager.approve("000000" if pending.code != "000000" else "111111")
    assert info.value.code is ErrorCode.NOT_FOUND
    manager.approve(pending.code)
    assert store.is_approved("https://a.fr")
    assert decisions == [(pending.request_id, "https://a.fr", True)]
    with pytest.raises(BridgeError):
        manager.approve(pending.code)  # single use


def test_pairing_deny_and_expiry(tmp_path: Path) -> None:
    store = ApprovalStore(tmp_path / "a.json")
    clock = Clock()
    manager = PairingManager(store, ttl=60, clock=clock)
    decisions: list[tuple[str, str, bool]] = []
    manager.add_listener(lambda rid, origin, ok: decisions.append((rid, origin, ok)))
    first = manager.request("https://a.fr")
    manager.deny(first.code)
    assert not store.is_approved("https://a.fr")
    second = manager.request("https://b.fr")
    clock.now += 61
    assert manager.pending() == []
    with pytest.raises(BridgeError):
        manager.approve(second.code)
    assert decisions == [(first.request_id, "https://a.fr", False), (second.request_id, "https://b.fr", False)]


def test_repeated_request_reuses_the_live_one(tmp_path: Path) -> None:
    manager = PairingManager(ApprovalStore(tmp_path / "a.json"), ttl=60, clock=(clock := Clock()))
    shown: list[PendingPairing] = []
    manager.add_request_listener(shown.append)
    first = manager.request("https://a.fr")
    again = manager.request("https://a.fr")
    assert again is first and shown == [first]  # one prompt, however often the page asks
    clock.now += 61
    fresh = manager.request("https://a.fr")
    assert fresh.request_id != first.request_id and shown == [first, fresh]


def test_pending_requests_are_bounded(tmp_path: Path) -> None:
    manager = PairingManager(ApprovalStore(tmp_path / "a.json"))
    for i in range(16):
        manager.request(f"https://s{i}.fr")
    with pytest.raises(BridgeError) as info:
        manager.request("https://one-too-many.fr")
    assert info.value.detail == "too-many-pairing-requests"
