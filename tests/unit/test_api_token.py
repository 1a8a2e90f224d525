"""The local token file: created private, reused, replaced when others could read it."""

from __future__ import annotations

import stat
from pathlib import Path

from bridge.api.token import load_or_create_token, token_path


def test_created_0600_and_reused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    token = load_or_create_token(data)
    path = token_path(data)
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert load_or_create_token(data) == token


def test_loose_permissions_replace_the_token(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    token_path(tmp_path).chmod(0o644)
    fresh = load_or_create_token(tmp_path)
    assert fresh != token
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600
