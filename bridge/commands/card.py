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
from bridge.commands._errors import EXIT_CARD, EXIT_USAGE, FAMILIES, report_error
from bridge.commands.readers import scan_or_exit_code
from bridge.config import ConfigError
from bridge.dmp import valuesets
from bridge.errors import BridgeError, ErrorCode
from bridge.fr_dates import fr_date
from bridge.service.card_report import PRACTICE_MODE_LABELS_FR, describe_cards
from bridge.service.cps_backend import BACKEND_LABELS_FR, configured_cps_backend

__all__ = ["HELP", "configure", "read_pin", "run"]

HELP = "décrit la carte de chaque lecteur (CPS, Vitale) / describe the card in each reader"

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


def _date(iso: str | None) -> str:
    return fr_date(iso) if iso else "-"


def _coded(system: str, code: str | None) -> str:
    """A nomenclature code as its official label, the code in brackets (the helpdesk quotes codes)."""
    if not code:
        return "non indiquée"
    name = valuesets.label(system, code)
    return f"{name} ({code})" if name else f"code {code}"


def _print_cps(card: dict[str, Any]) -> None:
    cps = card["cps"]
    holder = cps["holder"]
    until = _date(cps["validity"]["notAfter"])
    print(f"  Carte {cps['cardType']} n° {cps['cardNumber']} (série {cps['serial']}), valide jusqu'au {until}")
    backend = BACKEND_LABELS_FR.get(cps["backend"], cps["backend"])
    print(f"  Génération {cps['generation']}, lue par : {backend}")
    print(f"  Titulaire : {holder['civility']} {holder['firstName']} {holder['lastName']} ({holder['nationalId']})")
    profession = _coded(valuesets.PROFESSION, holder["professionCode"])
    print(f"  Profession : {profession} ; spécialité : {_coded(valuesets.SPECIALTY, holder['specialtyCode'])}")
    for cert in cps["certificates"].values():
        state = "EXPIRÉ" if cert["expired"] else f"{cert['daysLeft']} jours restants"
        label = "authentification" if cert["usage"] == "authentication" else "signature"
        print(f"  Certificat {label} : {cert['subject']}")
        valid = f"valide du {_date(cert['notBefore'])} au {_date(cert['notAfter'])}"
        print(f"    émis par {cert['issuer']}, {valid} ({state})")
    pin = cps["pin"]
    blocked = " — BLOQUÉ" if pin["blocked"] else ""
    print(f"  Code porteur : {pin['triesLeft']} essai(s) restant(s) sur {pin['triesMax']}{blocked}")
    if card.get("situations") is not None:
        print(f"  Situations d'exercice : {len(card['situations'])}")
        for sit in card["situations"]:
            print(
                f"    {sit['number']}. {sit['structureName']} ({sit['structureId']}),"
                f" secteur : {_coded(valuesets.FACILITY, sit['activitySector'])},"
                f" mode d'exercice : {_practice_mode(sit['practiceMode'])},"
                f" profession : {_coded(valuesets.PROFESSION, sit['professionCode'])}"
            )


def _practice_mode(code: str | None) -> str:
    if not code:
        return "non indiqué"
    name = PRACTICE_MODE_LABELS_FR.get(code)
    return f"{name} ({code})" if name else f"code {code}"


def _birth(beneficiary: dict[str, Any]) -> str:
    if beneficiary["birthDate"]:
        return _date(beneficiary["birthDate"])
    # Lunar dates (day or month beyond the calendar, e.g. 00 or 31/02) are legitimate on Vitale cards.
    raw = beneficiary["birthDateRaw"] or ""
    return f"{raw[6:8]}/{raw[4:6]}/{raw[:4]} (date lunaire)" if len(raw) == 8 else "non indiquée"


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
                print(f"  {name}, né(e) le {_birth(b)}, {role}, {nir}")
        if "error" in card:
            error = card["error"]
            print(f"  Erreur : {error['message_fr']} [{error['code']}]")
            print(f"    → {error['hint_fr']}")


def _fail(err: BridgeError, as_json: bool) -> int:
    return report_error(err, as_json=as_json, command="card")


def _card_error(cards: list[dict[str, Any]]) -> int:
    """The exit status of the first card that failed (0 when none did)."""
    for card in cards:
        if "error" in card:
            return FAMILIES.get(ErrorCode(card["error"]["code"]), EXIT_CARD)
    return 0


def run(args: argparse.Namespace) -> int:
    """Describe the cards; the exit status says what failed (see bridge.commands._errors)."""
    states = scan_or_exit_code(_fail, args.json)
    if isinstance(states, int):
        return states
    if args.reader is not None and all(s.name != args.reader for s in states):
        present = ", ".join(f"« {s.name} »" for s in states) or "aucun"
        code = _fail(BridgeError(ErrorCode.NO_READER, "unknown-reader", reader=args.reader), args.json)
        print(f"  Lecteurs présents : {present}", file=sys.stderr)
        return code
    readers = [(s.name, s.atr) for s in states if s.atr is not None and args.reader in (None, s.name)]
    cps_readers = [name for name, atr in readers if identify_atr(atr).kind in (CardKind.CPS3, CardKind.CPS4)]
    if args.pin_stdin and not cps_readers:
        # The PIN only ever goes to a CPS: say there is none rather than read nothing and succeed.
        return _fail(BridgeError(ErrorCode.NO_CARD, "no-cps"), args.json)
    if args.pin_stdin and len(cps_readers) > 1:
        # one PIN must not be tried on several cards: each wrong try costs that card one try
        return _fail(BridgeError(ErrorCode.INVALID_PARAMS, "several CPS cards: choose one with --reader"), args.json)
    if args.pin_stdin:
        readers = [(name, atr) for name, atr in readers if name in cps_readers]
    try:
        backend = configured_cps_backend()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except BridgeError as err:  # cps_backend = "pkcs11" without a usable Cryptolib
        return _fail(err, args.json)
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
    return _card_error(cards)
