"""One daemon per OS user, each on its own port: the candidate ports, and the port file the CLI reads.

On a multi-user host (terminal server) every user's browser and programs share the loopback
interface. When `port` is not set in config.toml, a daemon listens on the first free port of a small
window, starting at an offset derived from its uid, so users' daemons rarely collide and never share
a port. Finding it:

- the SDK tries every port of the window at once and keeps the one whose `bridge.info` answers (other
  users' daemons reset the connection before any HTTP: bridge.api.peer);
- the CLI reads the port file the daemon writes in the user's private data folder (`data_dir()/port`).

A port set in config.toml or with `--port` is used as is (no window, no fallback).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = [
    "PORT_FILENAME",
    "PORT_WINDOW",
    "candidate_ports",
    "client_port",
    "read_port_file",
    "remove_port_file",
    "write_port_file",
]

#: Ports tried from the base (28442): the SDK tries them all, so the window stays small.
PORT_WINDOW = 16
PORT_FILENAME = "port"


def candidate_ports(uid: int, base: int, window: int = PORT_WINDOW) -> list[int]:
    """The window's ports in the order a daemon of `uid` tries them: its own offset first, then the next ones."""
    start = uid % window
    return [base + (start + i) % window for i in range(window)]


def write_port_file(data_dir: Path, port: int) -> None:
    """Record the port listened on (0600 in the private data folder), replacing any older file atomically."""
    path = data_dir / PORT_FILENAME
    tmp = path.with_name(f"{PORT_FILENAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(f"{port}\n")
    os.replace(tmp, path)


def read_port_file(data_dir: Path) -> int | None:
    """The port a running (or last) daemon of this user wrote, None when absent or unreadable."""
    try:
        text = (data_dir / PORT_FILENAME).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def remove_port_file(data_dir: Path, port: int) -> None:
    """Remove the port file if it still names `port` (a newer daemon's file is left alone)."""
    if read_port_file(data_dir) == port:
        with contextlib.suppress(OSError):
            (data_dir / PORT_FILENAME).unlink()


def client_port(configured: int | None, data_dir: Path, base: int) -> int:
    """Where a local client finds this user's daemon: the configured port, else the one its daemon wrote,
    else this user's first candidate."""
    if configured is not None:
        return configured
    return read_port_file(data_dir) or candidate_ports(os.getuid(), base)[0]
