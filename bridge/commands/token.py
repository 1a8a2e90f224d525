"""`dmp-bridge token`: print the local token (for configuring a legacy DPI) and where it is stored.

`--rotate` asks the running daemon for a new token (it alone writes it, so it never keeps serving an old
one); with no daemon running, the file is replaced directly and the next start reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import json

__all__ = ["HELP", "configure", "run"]

HELP = "affiche (ou renouvelle) le jeton local et son fichier / print (or rotate) the local token and its file"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `token`."""
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    parser.add_argument(
        "--rotate", action="store_true", help="nouveau jeton, l'ancien est refusé aussitôt / new token, old one refused"
    )
    parser.add_argument("--port", type=int, help="port du pont / bridge port")


def _rotate(port: int) -> str:
    from bridge.api.client import DaemonNotRunning, call_daemon
    from bridge.api.token import rotate_token
    from bridge.commands._daemon import local_token
    from bridge.paths import data_dir

    try:
        result = asyncio.run(call_daemon(port, local_token(), "token.rotate"))
    except DaemonNotRunning:
        return rotate_token(data_dir())  # nobody holds the old one in memory
    return str(result["token"])


def run(args: argparse.Namespace) -> int:
    """Print token and file (the file is created 0600 on first use); rotate it first with --rotate."""
    from bridge.api.token import token_path
    from bridge.commands._daemon import daemon_port, local_token, print_error
    from bridge.errors import BridgeError
    from bridge.paths import data_dir

    try:
        if args.rotate:
            port = daemon_port(args.port)
            if port is None:
                return 2
            token = _rotate(port)
        else:
            token = local_token()
    except BridgeError as exc:
        return print_error(exc, as_json=args.json, command="token")
    path = token_path(data_dir())
    if args.json:
        print(json.dumps({"token": token, "file": str(path)}))
    else:
        print(token)
        print(f"# {path}")
    return 0
