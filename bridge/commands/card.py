"""`dmp-bridge card`: what is in each reader: kind, holder, certificates, PIN tries; with the PIN, the situations.

For a CPx card: type, serial, holder, profession and specialty, both certificates (subject, issuer,
validity, days left) and the PIN counter; with `--pin-stdin` (the PIN on the first line of standard
input, never on the command line) the situations d'exercice too. For a Vitale card: the beneficiaries.
The PIN's last try is never spent unless `--force-last-try` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from bridge.cards.identify import CardKind, identify_atr
from bridge.commands.readers import EXIT_PCSC_ERROR, EXIT_PCSC_UNAVAILABLE, scan_or_exit_code
from bridge.config import ConfigError
from bridge.errors import BridgeError, ErrorCode
from bridge.service.card_report import describe_cards
from bridge.service.cps_backend import BACKEND_LABELS_FR, configured_cps_backend

__all__ = [
    "EXIT_CARD_ERROR",
    "EXIT_CONFIG",
    "EXIT_PCSC_ERROR",
    "EXIT_PCSC_UNAVAILABLE",
    "HELP",
    "configure",
    "read_pin",
    "run",
]

HELP = "décrit la carte de chaque lecteur (CPS, Vitale) / describe the card in each reader"

EXIT_CONFIG = 2  # config.toml is invalid
EXIT_CARD_ERROR = 5  # a card could not be read, or the PIN was refused
_MAX_PIN_LINE = 64


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `card`."""
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    parser.add_argument("--reader", metavar="NAME", help="un seul lecteur / only this reader")
    parser.add_argument(
        "--pin-stdin", action="store_true", help="code porteur CPS sur l'entrée standard / CPS PIN on stdin"
    )
    parser.add_argument(
        "--force-last-try",
        action="store_true",
        help="autorise le dernier essai du code porteur / allow the PIN's last try",
    )


def read_pin(stream: Any) -> bytearray:
    """The first line of a binary stream as a PIN buffer (the read buffer is zeroed afterwards)."""
    buffer = bytearray(_MAX_PIN_LINE)
    length = 0
    try:
        while length < _MAX_PIN_LINE:
            got = stream.readinto(memoryview(buffer)[length : length + 1])
            if not got or buffer[length] in (0x0A, 0x0D):
                break
            length += 1
        return bytearray(buffer[:length])
    finally:
        for i in range(len(buffer)):
            buffer[i] = 0


def _pin_from_stdin() -> bytearray:
    """Read the PIN from standard input; on a terminal, prompt on stderr and do not echo it."""
    if not sys.stdin.isatty():
        return read_pin(sys.stdin.buffer)
    try:
        import termios
    except ImportError:  # pragma: no cover - not POSIX: the terminal echoes
        return read_pin(sys.stdin.buffer)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    # Echo off before the prompt: TCSAFLUSH discards pending input, so a PIN typed (or sent) right after
    # the prompt appeared would otherwise be lost and the read would wait forever.
    termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
    print("Code porteur : ", end="", file=sys.stderr, flush=True)
    try:
        return read_pin(sys.stdin.buffer)
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        print(file=sys.stderr)


def _print_cps(card: dict[str, Any]) -> None:
    cps = card["cps"]
    holder = cps["holder"]
    until = cps["validity"]["notAfter"]
    print(f"  Carte {cps['cardType']} n° {cps['cardNumber']} (série {cps['serial']}), valide jusqu'au {until}")
    backend = BACKEND_LABELS_FR.get(cps["backend"], cps["backend"])
    print(f"  Génération {cps['generation']}, lue par : {backend}")
    print(f"  Titulaire : {holder['civility']} {holder['firstName']} {holder['lastName']} ({holder['nationalId']})")
    print(f"  Profession {holder['professionCode'] or '-'}, spécialité {holder['specialtyCode'] or '-'}")
    for cert in cps["certificates"].values():
        state = "EXPIRÉ" if cert["expired"] else f"{cert['daysLeft']} jours restants"
        label = "authentification" if cert["usage"] == "authentication" else "signature"
        print(f"  Certificat {label} : {cert['subject']}")
        print(f"    émis par {cert['issuer']}, valide du {cert['notBefore'][:10]} au {cert['notAfter'][:10]} ({state})")
    pin = cps["pin"]
    blocked = " — BLOQUÉ" if pin["blocked"] else ""
    print(f"  Code porteur : {pin['triesLeft']} essai(s) restant(s) sur {pin['triesMax']}{blocked}")
    if card.get("situations") is not None:
        print(f"  Situations d'exercice : {len(card['situations'])}")
        for sit in card["situations"]:
            print(
                f"    {sit['number']}. {sit['structureName']} ({sit['structureId']}), secteur {sit['activitySector']},"
                f" mode {sit['practiceMode'] or '-'}, profession {sit['professionCode'] or '-'}"
            )


def _print_human(cards: list[dict[str, Any]]) -> None:
    if not cards:
        print("Aucune carte dans les lecteurs.")
        return
    for card in cards:
        print(f"{card['reader']} : {card.get('label', 'carte')} (ATR {card['atr']})")
        if "cps" in card:
            _print_cps(card)
        elif "vitale" in card:
            for b in card["vitale"]["beneficiaries"]:
                # isInsured is null when the card has no quality tag: say so rather than guess.
                role = {True: "assuré", False: "ayant droit", None: "qualité non indiquée"}[b["isInsured"]]
                name = f"{b['firstName']} {b['lastName']}"
                nir = f"NIR {b['nir']} {b['nirKey']}" if b["nir"] else "pas de NIR propre sur la carte"
                print(f"  {name}, né(e) {b['birthDateRaw']}, {role}, {nir}")
        if "error" in card:
            error = card["error"]
            extra = f", {error['triesLeft']} essai(s) restant(s)" if "triesLeft" in error else ""
            detail = f" ({error['detail']})" if error.get("detail") else ""
            print(f"  Erreur : {error['message_fr']}{detail}{extra}")


def _fail(err: BridgeError, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": err.to_data()}, ensure_ascii=False))
    detail = f" ({err.detail})" if err.detail else ""
    print(f"dmp-bridge card : {err.message_fr}{detail}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Describe the cards; exit 2 on a bad config, 3 without pcscd, 4 on another PC/SC failure, 5 on a card failure."""
    states = scan_or_exit_code(_fail, args.json)
    if isinstance(states, int):
        return states
    if args.reader is not None and all(s.name != args.reader for s in states):
        _fail(BridgeError(ErrorCode.NO_READER, args.reader), args.json)
        return EXIT_PCSC_ERROR
    readers = [(s.name, s.atr) for s in states if s.atr is not None and args.reader in (None, s.name)]
    cps_readers = [name for name, atr in readers if identify_atr(atr).kind in (CardKind.CPS3, CardKind.CPS4)]
    if args.pin_stdin and len(cps_readers) > 1:
        # one PIN must not be tried on several cards: each wrong try costs that card one try
        _fail(BridgeError(ErrorCode.INVALID_PARAMS, "several CPS cards: choose one with --reader"), args.json)
        return EXIT_CARD_ERROR
    try:
        backend = configured_cps_backend()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except BridgeError as err:  # cps_backend = "pkcs11" without a usable Cryptolib
        _fail(err, args.json)
        return EXIT_CARD_ERROR
    pin = _pin_from_stdin() if args.pin_stdin else None
    try:
        cards = asyncio.run(describe_cards(readers, pin, args.force_last_try, backend))
    finally:
        if pin is not None:
            for i in range(len(pin)):
                pin[i] = 0
    if args.json:
        print(json.dumps({"cards": cards}, ensure_ascii=False, indent=2))
    else:
        _print_human(cards)
    return EXIT_CARD_ERROR if any("error" in c for c in cards) else 0
