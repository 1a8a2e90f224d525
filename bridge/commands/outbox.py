"""`dmp-bridge outbox list|show|retry|cancel [--json]`: the feeding queue of the running daemon.

The daemon holds the outbox (`[feed] enabled`); this command asks it over the local API
(`dmp.outbox.*`), so what it shows is what the worker sees.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from typing import Any

__all__ = ["HELP", "configure", "run"]

HELP = "file d'envoi au DMP : lister, détailler, relancer, annuler / the DMP feeding queue"

_STATES = ("queued", "sending", "sent", "waiting", "unqualified", "failed", "cancelled")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `outbox`."""
    parser.add_argument("action", choices=("list", "show", "retry", "cancel"), help="list | show | retry | cancel")
    parser.add_argument("id", nargs="?", type=int, help="numéro de la tâche / job id (show, retry, cancel)")
    parser.add_argument("--state", action="append", choices=_STATES, help="filtre d'état (list) / state filter")
    parser.add_argument("--limit", type=int, default=50, help="nombre de tâches (list) / how many jobs")
    parser.add_argument(
        "--ins-qualified", action="store_true",
        help="l'identité du patient est désormais qualifiée (retry) / the INS was qualified since",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    parser.add_argument("--port", type=int, help="port du pont / bridge port")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _line(job: dict[str, Any]) -> str:
    why = f"  {job['message_fr']}" if job.get("message_fr") else ""
    then = f"  (prochain essai {_when(job['nextAt'])})" if job.get("nextAt") else ""
    return (
        f"{job['id']:>6}  {job['state']:<11}  {job['kind']:<7}  {job['origin']:<9}  {job['attempts']:>2} essai(s)  "
        f"{job['uniqueId']}{then}{why}"
    )


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.action == "list":
        params: dict[str, Any] = {"limit": max(1, min(500, args.limit))}
        if args.state:
            params["states"] = sorted(set(args.state))
        return "dmp.outbox.list", params
    if args.id is None:
        raise SystemExit("dmp-bridge outbox: numéro de tâche attendu / job id expected")
    if args.action == "retry":
        return "dmp.outbox.retry", {"id": args.id, "insQualified": bool(args.ins_qualified)}
    return {"show": "dmp.outbox.get", "cancel": "dmp.outbox.cancel"}[args.action], {"id": args.id}


def run(args: argparse.Namespace) -> int:
    """Ask the daemon and print (a table, or the JSON result with --json)."""
    from bridge.api.client import DaemonNotRunning, call_daemon
    from bridge.commands._daemon import daemon_port, local_token, print_error
    from bridge.errors import BridgeError

    port = daemon_port(args.port)
    if port is None:
        return 2
    method, params = _request(args)
    try:
        result = asyncio.run(call_daemon(port, local_token(), method, params))
    except DaemonNotRunning:
        print("Le pont n'est pas lancé (dmp-bridge run) / the bridge is not running")
        return 3
    except BridgeError as exc:
        print_error(exc, as_json=args.json)
        return 1
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif method == "dmp.outbox.list":
        counts = result["summary"]["counts"]
        print("  ".join(f"{state}: {counts.get(state, 0)}" for state in _STATES))
        for job in result["jobs"]:
            print(_line(job))
    else:
        print(_line(result))
        if result.get("result"):
            print(f"        réponse du DMP : {json.dumps(result['result'], ensure_ascii=False)}")
    return 0
