"""`dmp-bridge origins pending|list|approve CODE|deny CODE|revoke ORIGIN [--json]`.

The command talks to the running daemon over its WebSocket with the local token (so open
connections see the change at once and pairing notifications are sent). When no daemon answers,
`list` and `revoke` edit the approvals file directly (the daemon re-reads it when it changes);
`pending`, `approve` and `deny` need the daemon, because pairing requests live only in its memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

__all__ = ["HELP", "configure", "run"]

HELP = "sites web autorisés : demandes, liste, approbation, révocation / web origins: pending, list, approve, revoke"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `origins` (--json/--port accepted before or after the action)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="sortie JSON / JSON output")
    common.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port du pont / bridge port")
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    parser.add_argument("--port", type=int, help="port du pont / bridge port (default: config)")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("pending", parents=[common], help="demandes d'appairage en attente / pending pairing requests")
    sub.add_parser("list", parents=[common], help="origines autorisées / approved origins")
    for name, verb in (("approve", "autoriser"), ("deny", "refuser")):
        p = sub.add_parser(
            name, parents=[common], help=f"{verb} une demande par son code / {name} a request by its code"
        )
        p.add_argument("code", help="code à 6 chiffres / 6-digit code")
    p = sub.add_parser("revoke", parents=[common], help="retirer une autorisation / revoke an approved origin")
    p.add_argument("origin")


def _params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.action in ("approve", "deny"):
        return f"origins.{args.action}", {"code": args.code}
    if args.action == "revoke":
        return "origins.revoke", {"origin": args.origin}
    return f"origins.{args.action}", {}


def _offline(args: argparse.Namespace) -> Any:
    from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore
    from bridge.api.security import normalise_origin
    from bridge.errors import BridgeError, ErrorCode
    from bridge.paths import data_dir

    store = ApprovalStore(data_dir() / APPROVALS_FILENAME)
    if args.action == "list":
        return {"origins": [o.to_json() for o in store.list()]}
    if args.action == "revoke":
        origin = normalise_origin(args.origin)
        if origin is None or not store.revoke(origin):
            raise BridgeError(ErrorCode.NOT_FOUND, "origin")
        return {"origin": origin, "revoked": True}
    return None


def _print(action: str, result: Any) -> None:
    if action == "pending":
        if not result["pending"]:
            print("Aucune demande en attente / no pending request")
        for p in result["pending"]:
            key = p.get("keyFingerprint", "?")
            print(f"{p['code']}  {p['origin']}  clé/key {key}  (expire dans {p['expiresIn']} s)")
    elif action == "list":
        if not result["origins"]:
            print("Aucune origine autorisée / no approved origin")
        for o in result["origins"]:
            # "pairing-needed": approved by name before key proofs; its page must pair again.
            keys = ", ".join(k["fingerprint"] for k in o.get("keys", [])) or "appairage requis / pairing needed"
            print(f"{o['origin']}  ({o['approvedAt']})  {keys}")
    elif action in ("approve", "deny"):
        verb = "autorisée / approved" if action == "approve" else "refusée / denied"
        print(f"{result['origin']} {verb}")
    else:
        print(f"{result['origin']} révoquée / revoked")


def run(args: argparse.Namespace) -> int:
    """Run the action against the daemon, or offline where that makes sense."""
    from bridge.api.client import DaemonNotRunning, call_daemon
    from bridge.commands._daemon import bridge_down, daemon_port, local_token, print_error
    from bridge.errors import BridgeError

    port = daemon_port(args.port)
    if port is None:
        return 2
    method, params = _params(args)
    try:
        try:
            result = asyncio.run(call_daemon(port, local_token(), method, params))
        except DaemonNotRunning:
            result = _offline(args)
            if result is None:
                return bridge_down(port, as_json=args.json, command="origins")
    except BridgeError as exc:
        return print_error(exc, as_json=args.json, command="origins")
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        _print(args.action, result)
    return 0
