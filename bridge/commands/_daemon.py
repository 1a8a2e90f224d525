"""What the commands that talk to the running daemon share: its port, the local token, printing its errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.api.client import LocalClient
    from bridge.errors import BridgeError

__all__ = ["bridge_down", "card_context", "daemon_port", "local_token", "print_error", "through_daemon"]

#: A command's calls through the daemon: (its options, port, local token, PIN or None) -> the result.
Session = Callable[[argparse.Namespace, int, str, "bytearray | None"], Coroutine[Any, Any, Any]]


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


async def card_context(client: LocalClient, args: argparse.Namespace, pin: bytearray | None) -> None:
    """Log the CPS in with `pin` (when given) and set the DMP context the options name (`--mode`,
    `--situation`, `--access`, `--reader`), as each DMP command does before its own call."""
    if pin is not None:
        login: dict[str, Any] = {"pin": pin.decode("ascii")}
        if args.reader:
            login["reader"] = args.reader
        await client.call("cps.login", login)
    mode, situation, access = (getattr(args, name, None) for name in ("mode", "situation", "access"))
    if mode or situation is not None or access:
        context: dict[str, Any] = {"authMode": mode or "DIRECTE"}
        if situation is not None:
            context["situation"] = situation
        if access:
            context["accessMode"] = access
        if args.reader:
            context["reader"] = args.reader
        await client.call("dmp.context.set", context)


def through_daemon(args: argparse.Namespace, command: str, session: Session) -> tuple[int, Any]:
    """Run `session` against this user's daemon: (0, result), or (exit status, None) once the failure is
    printed. The PIN (`--pin-stdin`) is read from standard input and zeroed afterwards."""
    import asyncio

    from bridge.api.client import DaemonNotRunning
    from bridge.errors import BridgeError

    port = daemon_port(args.port)
    if port is None:
        return 2, None
    pin = bytearray(sys.stdin.readline().strip().encode("ascii")) if args.pin_stdin else None
    try:
        return 0, asyncio.run(session(args, port, local_token(), pin))
    except DaemonNotRunning:
        return bridge_down(port, as_json=args.json, command=command), None
    except BridgeError as exc:
        return print_error(exc, as_json=args.json, command=command), None
    finally:
        if pin is not None:
            pin[:] = b"\x00" * len(pin)
