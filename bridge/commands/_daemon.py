"""What the commands that talk to the running daemon share: its port, the local token, printing its errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.errors import BridgeError

__all__ = ["bridge_down", "daemon_port", "local_token", "print_error"]


def daemon_port(option: int | None) -> int | None:
    """The daemon's port: `--port`, else the configuration's, else the one this user's daemon wrote in its
    port file, else this user's first candidate; None (reason printed) if the config is bad."""
    from bridge.api.user_port import client_port
    from bridge.config import DEFAULT_PORT, ConfigError, load_config
    from bridge.paths import data_dir

    if option is not None:
        return option
    try:
        configured = load_config().port
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    return client_port(configured, data_dir(), DEFAULT_PORT)


def local_token() -> str:
    """The local token the daemon accepts from this user's processes (created on first use)."""
    from bridge.api.token import client_token
    from bridge.paths import data_dir

    return client_token(data_dir())


def print_error(exc: BridgeError, *, as_json: bool, command: str = "") -> int:
    """Print a daemon's error (see `_errors.report_error`) and return its exit status."""
    from bridge.commands._errors import report_error

    return report_error(exc, as_json=as_json, command=command)


def bridge_down(port: int, *, as_json: bool, command: str = "") -> int:
    """Say that no bridge answers on `port`, and how to start it; the exit status for it."""
    from bridge.commands._errors import EXIT_BRIDGE

    message_fr = f"Le pont n'est pas démarré (rien n'écoute sur le port {port})."
    if as_json:
        print(json.dumps({"error": {"code": "BRIDGE_NOT_RUNNING", "message_fr": message_fr, "port": port}}))
    prefix = f"dmp-bridge {command} : " if command else ""
    print(
        f"{prefix}{message_fr}\n  → Démarrez-le : « dmp-bridge run » (ou depuis le menu des applications).",
        file=sys.stderr,
    )
    return EXIT_BRIDGE
