"""`dmp-bridge doctor`: check PC/SC, readers, cards, Cryptolib, DMP, daemon and browsers; say what to do.

Exit status: 0 nothing to do, 1 warnings only, 2 at least one problem; 6 when the bundle cannot be written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["EXIT_BUNDLE", "HELP", "configure", "run"]

HELP = "vérifie le poste et propose les corrections / check this workstation and suggest fixes"

EXIT_BUNDLE = 6


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `doctor`."""
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    parser.add_argument(
        "--bundle", type=Path, metavar="FICHIER", help="écrit un dossier de support sans données personnelles (.zip)"
    )
    parser.add_argument(
        "--offline", action="store_true", help="sans tester la connexion au DMP / skip the DMP network checks"
    )


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the report, write the bundle if asked; exit 0, 1 or 2 as the worst finding."""
    from bridge.config import config_path
    from bridge.doctor.bundle import write_bundle
    from bridge.doctor.findings import exit_code, render_text, to_json
    from bridge.doctor.run import run_checks

    findings = run_checks(network=not args.offline)
    if args.json:
        print(json.dumps(to_json(findings), ensure_ascii=False, indent=2))
    else:
        print(render_text(findings), end="")
    if args.bundle is not None:
        try:
            names = write_bundle(args.bundle, findings, config_path())
        except OSError as exc:
            print(f"dmp-bridge doctor : impossible d'écrire {args.bundle} ({exc.strerror}).", file=sys.stderr)
            return EXIT_BUNDLE
        print(f"Dossier de support écrit : {args.bundle} ({', '.join(names)})", file=sys.stderr)
    return exit_code(findings)
