"""The `dmp-bridge` command line.

Each sub-command is a module of `bridge.commands` with `HELP` (one line), `configure(parser)`,
`run(args) -> int` and, when it logs more than warnings by default, `LOG_LEVEL`; it is found by its
module name (no registration), and imported only when its command runs, so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from bridge import __version__

__all__ = ["SUBCOMMANDS", "main"]


def _discover() -> dict[str, str]:
    """Command name -> module name, for every module of bridge.commands (dmp_sim -> dmp-sim)."""
    import bridge.commands

    names = (m.name for m in pkgutil.iter_modules(bridge.commands.__path__) if not m.name.startswith("_"))
    return {name.replace("_", "-"): name for name in sorted(names)}


SUBCOMMANDS: dict[str, str] = _discover()


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"bridge.commands.{SUBCOMMANDS[name]}")


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The parser; only the chosen sub-command's module is imported to configure its options."""
    parser = argparse.ArgumentParser(
        prog="dmp-bridge",
        description="Pont local carte CPS/Vitale et DMP (Mon espace santé) / local card and DMP bridge.",
    )
    parser.add_argument("--version", action="version", version=f"dmp-bridge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="journal détaillé / verbose log")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    for name in SUBCOMMANDS:
        if name == chosen:
            module = _load(name)
            sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
            module.configure(sub)
        elif chosen is None:  # top-level help lists every command with its one-line help
            subparsers.add_parser(name, help=_load(name).HELP)
        else:
            subparsers.add_parser(name, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `dmp-bridge` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    import logging

    from bridge.logs import setup_logging

    command = _load(args.command)
    # A one-shot command speaks through its output: its log shows warnings only, unless -v.
    # Long-running ones (daemon, sandbox, simulator) declare LOG_LEVEL = logging.INFO.
    setup_logging(verbose=args.verbose, level=getattr(command, "LOG_LEVEL", logging.WARNING))
    result: int = command.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
