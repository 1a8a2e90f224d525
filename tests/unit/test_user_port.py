"""The per-user port window and the port file (bridge.api.user_port)."""

from __future__ import annotations

import stat
from pathlib import Path

from bridge.api.user_port import (
    PORT_WINDOW,
    candidate_ports,
    read_port_file,
    remove_port_file,
    write_port_file,
)


def test_each_uid_starts_at_its_own_offset_within_one_window() -> None:
    root, alice, bob = candidate_ports(0, 28442), candidate_ports(1000, 28442), candidate_ports(1001, 28442)
    assert root[0] == 28442  # the sandbox's documented port for a single user (root)
    assert (alice[0], bob[0]) == (28450, 28451)  # two users' first choices differ
    for ports in (root, alice, bob):
        assert sorted(ports) == list(range(28442, 28442 + PORT_WINDOW))  # the window the SDK tries


def test_port_file_private_and_only_removed_by_its_writer(tmp_path: Path) -> None:
    assert read_port_file(tmp_path) is None
    write_port_file(tmp_path, 28450)
    assert read_port_file(tmp_path) == 28450
    assert stat.S_IMODE((tmp_path / "port").stat().st_mode) == 0o600
    remove_port_file(tmp_path, 28451)  # another (older) daemon's port: a newer daemon's file stays
    assert read_port_file(tmp_path) == 28450
    remove_port_file(tmp_path, 28450)
    assert read_port_file(tmp_path) is None
    (tmp_path / "port").write_text("junk")
    assert read_port_file(tmp_path) is None
