"""What the commands that talk to the running daemon share: its port, the local token, printing its errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.errors import BridgeError

__all__ = ["daemon_port", "local_token", "print_error"]


def daemon_port(option: int | None) -> int | None:
    """The daemon's port: `--port` when given, else the configuration's; None (reason printed) if the config is bad."""
    from bridge.config import ConfigError, load_config

    if option is not None:
        return option
    try:
        return load_config().port
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


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
