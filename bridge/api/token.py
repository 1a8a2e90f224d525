"""The per-user local token that non-browser clients (legacy DPI, the CLI) present to the bridge.

The file lives in the private data folder (0700), is created 0600 with O_EXCL on first use, and
holds 32 random bytes in URL-safe base64. A file with looser permissions is rewritten: another
local user may have read it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

__all__ = ["TOKEN_FILENAME", "client_token", "load_or_create_token", "rotate_token", "token_path"]

TOKEN_FILENAME = "local-token"


def token_path(data_dir: Path) -> Path:
    """Where the token lives inside the data folder."""
    return data_dir / TOKEN_FILENAME


def _write_new(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


def load_or_create_token(data_dir: Path) -> str:
    """Read the token, creating it (0600) when missing, empty, or readable by others."""
    from bridge.paths import ensure_private_dir

    ensure_private_dir(data_dir)
    path = token_path(data_dir)
    try:
        info = path.stat()
    except FileNotFoundError:
        return _write_new(path)
    if stat.S_IMODE(info.st_mode) & 0o077 or info.st_uid != os.getuid():
        path.unlink()
        return _write_new(path)
    token = path.read_text(encoding="ascii").strip()
    return token if token else _write_new(path)


def rotate_token(data_dir: Path) -> str:
    """Replace the token with a new one (the daemon does this; the CLI asks it)."""
    from bridge.paths import ensure_private_dir

    ensure_private_dir(data_dir)
    return _write_new(token_path(data_dir))


def client_token(data_dir: Path) -> str:
    """The token as a client reads it: never replaced here, since the running daemon would keep the old one."""
    path = token_path(data_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = ""
    return token if token else load_or_create_token(data_dir)
