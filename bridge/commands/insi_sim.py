"""`dmp-bridge insi-sim`: run the INSi simulator alone (HTTPS, mutual TLS with the test IGC-Santé).

For integrators testing their own INSi client: the service is at the printed URL (path `/lps`), trusts
the test PKI's CPS and INSI-AUTO/INSI-MANU certificates, knows the software authorisation numbers given
with `--idam` (default the sandbox's), and answers with the CNDA-style identities of
`bridge/sim/insi/identities.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

__all__ = ["HELP", "configure", "run"]

HELP = "Simulateur INSi (téléservice INS, TLS mutuel IGC-Santé de test) / INSi simulator"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the command."""
    parser.add_argument("--host", default="127.0.0.1", help="adresse d'écoute / listen address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8444, help="port (0 = libre / any free port)")
    parser.add_argument("--data", type=Path, default=None, help="dossier des fichiers TLS / TLS files directory")
    parser.add_argument(
        "--idam", action="append", default=None, help="numéro d'autorisation accepté (répétable) / accepted IDAM"
    )


async def _serve(args: argparse.Namespace) -> int:
    from bridge.commands._daemon_run import stop_on_signals
    from bridge.crypto.pki import TestPki
    from bridge.paths import data_dir
    from bridge.sim.sandbox_insi import SANDBOX_IDAM, SandboxInsi

    pki = await asyncio.to_thread(TestPki.load_or_create)
    idams = frozenset(args.idam or [SANDBOX_IDAM])
    sim = SandboxInsi(args.data or data_dir() / "insi-sim", pki, port=args.port, host=args.host, idams=idams)
    await sim.start()
    stop = stop_on_signals()
    print(f"INSi simulator: {sim.url}", flush=True)
    print(f"CA bundle: {pki.ca_bundle_path()}", flush=True)
    print(f"IDAM: {', '.join(sorted(idams))}", flush=True)
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
        print(f"insi-sim: {exc.strerror or exc}", file=sys.stderr)
        return 1
