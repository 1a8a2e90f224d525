"""`dmp-bridge token`: print the local token (for configuring a legacy DPI) and where it is stored."""

from __future__ import annotations

import argparse
import json

__all__ = ["HELP", "configure", "run"]

HELP = "affiche le jeton local et son fichier / print the local token and its file"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `token`."""
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")


def run(args: argparse.Namespace) -> int:
    """Print token and file (the file is created 0600 on first use)."""
    from bridge.api.token import load_or_create_token, token_path
    from bridge.paths import data_dir

    token = load_or_create_token(data_dir())
    path = token_path(data_dir())
    if args.json:
        print(json.dumps({"token": token, "file": str(path)}))
    else:
        print(token)
        print(f"# {path}")
    return 0
