"""`dmp-bridge readers`: the card readers pcscd knows, whether a card is in each, its ATR and its kind."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from bridge.cards.identify import identify_atr
from bridge.commands._errors import report_error
from bridge.errors import BridgeError
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import ReaderState, scan_readers

__all__ = ["HELP", "card_kind", "configure", "run", "scan_or_exit_code"]

HELP = "liste les lecteurs de carte et les cartes présentes / list card readers and cards"


def card_kind(atr: bytes) -> str:
    """The kind of card for an ATR, as `bridge.cards.identify` names it ("UNKNOWN" when not recognised).

    The single place where this command plugs in card identification (ATR alone: listing readers must
    not send APDUs to cards that other programs may be using).
    """
    return identify_atr(atr).kind.value


def _card_label(atr: bytes) -> str:
    return identify_atr(atr).label_fr


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `readers`."""
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")


def _as_dict(state: ReaderState) -> dict[str, Any]:
    return {
        "name": state.name,
        "state": "present" if state.card_present else "empty",
        "atr": state.atr.hex().upper() if state.atr is not None else None,
        "kind": card_kind(state.atr) if state.atr is not None else None,
    }


def _human_line(state: ReaderState) -> str:
    if state.atr is None:
        return f"  {state.name} : vide"
    return f"  {state.name} : {_card_label(state.atr)} ({card_kind(state.atr)}), ATR {state.atr.hex().upper()}"


def _print_human(states: list[ReaderState]) -> None:
    if not states:
        print("Aucun lecteur de carte détecté.")
        return
    print(f"Lecteurs de carte : {len(states)}")
    for state in states:
        print(_human_line(state))


def _fail(err: BridgeError, as_json: bool) -> int:
    return report_error(err, as_json=as_json, command="readers")


def scan_or_exit_code(fail: Callable[[BridgeError, bool], int], as_json: bool) -> list[ReaderState] | int:
    """The readers and their cards, or the exit status that `fail` gives once it has said why not."""
    try:
        return scan_readers()
    except PcscError as err:
        return fail(err, as_json)


def run(args: argparse.Namespace) -> int:
    """List the readers; exit 3 when pcscd is not running (see bridge.commands._errors for the others)."""
    states = scan_or_exit_code(_fail, args.json)
    if isinstance(states, int):
        return states
    if args.json:
        print(json.dumps({"readers": [_as_dict(state) for state in states]}, ensure_ascii=False, indent=2))
    else:
        _print_human(states)
    return 0
