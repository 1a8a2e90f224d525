"""What the commands that talk to the running daemon share: its port, the local token, printing its errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.errors import BridgeError

__all__ = ["daemon_port", "local_token", "print_error"]


def daemon_port(option: int | None) -> int | None:
    """The daemon's port: `--port`, else the configuration's, else the one this user's daemon wrote in its
    port file, else this user's first candidate; None (reason printed) if the config is bad."""
    import os

    from bridge.api.user_port import candidate_ports, read_port_file
    from bridge.config import DEFAULT_PORT, ConfigError, load_config
    from bridge.paths import data_dir

    if option is not None:
        return option
    try:
        configured = load_config().port
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    if configured is not None:
        return configured
    return read_port_file(data_dir()) or candidate_ports(os.getuid(), DEFAULT_PORT)[0]


def local_token() -> str:
    """The local token the daemon accepts from this user's processes (created on first use)."""
    from bridge.api.token import client_token
    from bridge.paths import data_dir

    return client_token(data_dir())


def print_error(exc: BridgeError, *, as_json: bool) -> None:
    """Print a daemon's error: its JSON data on stdout with --json, else both languages on stderr."""
    if as_json:
        print(json.dumps({"error": exc.to_data()}, ensure_ascii=False))
    else:
        print(f"{exc.message_fr} / {exc.message_en}" + (f" ({exc.detail})" if exc.detail else ""), file=sys.stderr)
        if "uniqueId" in exc.extra:  # DMP_OUTCOME_UNKNOWN: what to look up before sending again
            print(f"uniqueId: {exc.extra['uniqueId']}", file=sys.stderr)
