"""Where the bridge keeps its files: per-user data and configuration (XDG on Linux).

`DMP_BRIDGE_HOME` overrides the base folder (tests, sandbox, portable installs).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["config_dir", "data_dir", "ensure_private_dir"]


def _home_override() -> Path | None:
    value = os.environ.get("DMP_BRIDGE_HOME")
    return Path(value) if value else None


def data_dir() -> Path:
    """Per-user data: approvals, local token, test PKI, outbox, simulator store."""
    base = _home_override()
    if base is not None:
        return base / "data"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "dmp-bridge"


def config_dir() -> Path:
    """Per-user configuration (config.toml)."""
    base = _home_override()
    if base is not None:
        return base / "config"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "dmp-bridge"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the user only, and return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path
