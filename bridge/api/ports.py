"""Who holds a TCP port: a best-effort answer from /proc for the "port already in use" error (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PortInUseError", "port_holder"]

_LISTEN = "0A"


class PortInUseError(OSError):
    """The bridge's port is taken; the message names the holder when /proc tells us."""

    def __init__(self, port: int, holder: str | None) -> None:
        self.port = port
        self.holder = holder
        who = f" par {holder}" if holder else ""
        super().__init__(
            f"Le port {port} est déjà utilisé{who}. Arrêtez ce programme ou choisissez un autre port "
            f"(--port, ou port = N dans config.toml). / Port {port} is already in use"
            f"{' by ' + holder if holder else ''}."
        )


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """'name (PID n)' of a process listening on `port`, 'an unknown process' if hidden, None if free."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    targets = {f"socket:[{i}]" for i in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    name = (entry / "comm").read_text().strip()
                    return f"{name} (PID {entry.name})"
        except OSError:
            continue  # other users' processes: not ours to see
    return "un autre programme / another program"
