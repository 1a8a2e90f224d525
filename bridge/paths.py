"""Where the bridge keeps its files: per-user data and configuration (XDG on Linux).

`DMP_BRIDGE_HOME` overrides the base folder (tests, sandbox, portable installs).
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

__all__ = [
    "UnsafeFolderError",
    "check_private_dirs",
    "cli_command",
    "config_dir",
    "data_dir",
    "ensure_private_dir",
    "private_dir_problem",
]


class UnsafeFolderError(Exception):
    """A private folder that another user owns or may write: the daemon must not trust what it holds."""

    def __init__(self, path: Path, reason_fr: str, reason_en: str) -> None:
        super().__init__(f"{path}: {reason_fr} / {reason_en}")
        self.path = path
        self.message_fr = f"Dossier non sûr {path} : {reason_fr} ; le pont refuse de démarrer."
        self.message_en = f"Unsafe folder {path}: {reason_en}; the bridge refuses to start."


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


def private_dir_problem(path: Path) -> tuple[str, str] | None:
    """Why an existing `path` cannot hold private files (French, English), or None when it can.

    Raises:
        FileNotFoundError: `path` does not exist.
    """
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        return ("ce n'est pas un dossier (lien ?)", "not a folder (a link?)")
    if info.st_uid != os.getuid():
        # Whoever owns it could have planted approvals or a token there (issue 13).
        return (f"appartient à l'utilisateur {info.st_uid}", f"owned by user {info.st_uid}, not {os.getuid()}")
    if stat.S_IMODE(info.st_mode) & 0o022:
        # Writable by others until now: its content cannot be trusted, and chmod would not undo a plant.
        return ("modifiable par d'autres utilisateurs", "writable by other users")
    return None


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the user only, or check an existing one is; return it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    problem = private_dir_problem(path)
    if problem is not None:
        raise UnsafeFolderError(path, *problem)
    if stat.S_IMODE(os.lstat(path).st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def check_private_dirs() -> None:
    """Create or check the data and configuration folders (the daemon's start-up gate)."""
    ensure_private_dir(data_dir())
    ensure_private_dir(config_dir())


def cli_command() -> str:
    """How to type the CLI in a new shell: `dmp-bridge` when it is on PATH, else its full path (the venv's)."""
    installed = Path(sys.executable).parent / "dmp-bridge"
    found = shutil.which("dmp-bridge")
    if found is not None and (not installed.exists() or Path(found).resolve() == installed.resolve()):
        return "dmp-bridge"
    return str(installed) if installed.exists() else "dmp-bridge"
