"""`dmp-bridge dmp-sim`: run the DMP simulator alone (HTTPS, mutual TLS with the test IGC-Santé)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

__all__ = ["HELP", "configure", "run"]

#: A long-running process: its INFO log is its activity record.
LOG_LEVEL = logging.INFO

HELP = "Simulateur DMP (HTTPS, TLS mutuel IGC-Santé de test) / DMP web services simulator"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--host", default="127.0.0.1", help="adresse d'écoute / listen address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="port (0 = libre / any free port)")
    parser.add_argument("--data", type=Path, default=None, help="dossier des données / data directory")
    parser.add_argument("--dump", type=Path, default=None, help="écrire chaque requête/réponse brute dans ce dossier")
    parser.add_argument("--cert", type=Path, default=None, help="certificat serveur PEM (avec la chaîne)")
    parser.add_argument("--key", type=Path, default=None, help="clé privée du serveur PEM")
    parser.add_argument("--cafile", type=Path, default=None, help="AC de confiance des clients (PEM)")
    parser.add_argument(
        "--faults", type=Path, default=None,
        help="fichier JSON de pannes simulées (latence, 5xx, délais, réponses perdues) / fault knobs file",
    )  # fmt: skip


def _tls_files(args: argparse.Namespace, data: Path) -> tuple[Path, Path, Path]:
    given = (args.cert, args.key, args.cafile)
    if all(given):
        return args.cert, args.key, args.cafile
    if any(given):
        raise SystemExit("--cert, --key et --cafile vont ensemble / must be given together")
    from bridge.crypto.pki import TestPki

    pki = TestPki.load_or_create()
    server = pki.server("localhost")
    tls = data / "tls"
    tls.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert, key = tls / "server-fullchain.pem", tls / "server.key.pem"
    cert.write_bytes(server.fullchain_pem())
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(server.key_pem())
    return cert, key, pki.ca_bundle_path()


async def _serve(args: argparse.Namespace) -> int:
    from bridge.commands._daemon_run import stop_on_signals
    from bridge.paths import data_dir
    from bridge.sim.dmp import DmpSimulator, SimConfig

    data = args.data or data_dir() / "dmp-sim"
    cert, key, cafile = _tls_files(args, data)
    sim = DmpSimulator(
        SimConfig(data_dir=data, cert_file=cert, key_file=key, ca_file=cafile, host=args.host, port=args.port,
                  dump_dir=args.dump, faults_file=args.faults)
    )  # fmt: skip
    await sim.start()
    stop = stop_on_signals()
    print(f"DMP simulator: {sim.url}", flush=True)
    print(f"CA bundle: {cafile}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM."""
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"dmp-sim: {exc.strerror or exc}", file=sys.stderr)
        return 1
