"""`dmp-bridge ins search|verify`: the INSi téléservice (INS search and verification) from a shell.

Each action is a JSON-RPC call (`ins.search`, `ins.verify`) to the RUNNING daemon with the local token,
so the card and the INSi connection are the daemon's. `--auth cps` (the logged-in CPS; `--pin-stdin`
logs it in first) or `--auth establishment` (the INSI-AUTO / INSI-MANU certificate of `[insi]`).
`search` takes the traits, or `--vitale N` for beneficiary N of the Vitale card in a reader.
Exit codes: 0 found (or verified), 1 error (message with its code: INS_NOT_FOUND, INS_MULTIPLE_MATCHES,
INS_MISMATCH, INSI_…), 2 no daemon configured, 3 daemon not running.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["HELP", "configure", "run"]

HELP = "INSi : rechercher ou vérifier l'INS d'un patient / search or verify a patient's INS"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `ins`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", type=int, help="port du pont / bridge port (default: config)")
    common.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    common.add_argument("--auth", choices=["cps", "establishment"], help="CPS ou certificat INSI-AUTO/MANU")
    common.add_argument("--pin-stdin", action="store_true", help="lire le code porteur sur l'entrée standard")
    common.add_argument("--reader", help="lecteur de la CPS / CPS reader")
    traits = argparse.ArgumentParser(add_help=False)
    traits.add_argument("--birth-name", help="nom de naissance / birth name")
    traits.add_argument("--first-names", help="prénoms, dans l'ordre de l'état civil / all first names")
    traits.add_argument("--sex", choices=["M", "F"], help="sexe / sex")
    traits.add_argument("--birth-date", help="date de naissance AAAA-MM-JJ / birth date YYYY-MM-DD")
    traits.add_argument("--birth-place", help="lieu de naissance (code INSEE) / birth place COG code")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("search", parents=[common, traits], help="rechercher l'INS / search the INS")
    p.add_argument("--vitale", type=int, metavar="N", help="bénéficiaire N de la carte Vitale / Vitale beneficiary N")
    p.add_argument("--vitale-reader", help="lecteur de la carte Vitale / Vitale reader")
    sub.add_parser("verify", parents=[common, traits], help="vérifier un INS / verify an INS").add_argument(
        "--ins", required=True, help="INS à vérifier (15 caractères) / INS to verify"
    )


def _traits(args: argparse.Namespace) -> dict[str, Any]:
    missing = [name for name in ("birth_name", "first_names", "sex", "birth_date") if not getattr(args, name)]
    if missing:
        options = ", ".join("--" + m.replace("_", "-") for m in missing)
        raise SystemExit(f"traits manquants / missing traits: {options}")
    traits = {
        "birthName": args.birth_name,
        "firstNames": args.first_names,
        "sex": args.sex,
        "birthDate": args.birth_date,
    }
    if args.birth_place:
        traits["birthPlace"] = args.birth_place
    return traits


def _call(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    if args.auth:
        params["auth"] = args.auth
    if args.reader:
        params["reader"] = args.reader
    if args.action == "verify":
        return "ins.verify", {**params, "ins": args.ins, "traits": _traits(args)}
    if args.vitale is not None:
        vitale: dict[str, Any] = {"beneficiary": args.vitale}
        if args.vitale_reader:
            vitale["reader"] = args.vitale_reader
        if args.sex:
            vitale["sex"] = args.sex
        return "ins.search", {**params, "vitale": vitale}
    return "ins.search", {**params, "traits": _traits(args)}


async def _session(args: argparse.Namespace, port: int, token: str, pin: bytearray | None) -> Any:
    from bridge.api.client import LocalClient
    from bridge.commands._daemon import card_context

    method, params = _call(args)
    async with LocalClient(port, token) as client:
        await card_context(client, args, pin)
        return await client.call(method, params)


def _print(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    who = result["identity"]
    place = who.get("birthPlace") or "-"
    print(f"{who['ins']}\t{who['oid']}\t{who['kind']}")
    print(f"{who['birthName']}\t{who['firstNames']}\t{who['sex']}\t{who['birthDate']}\t{place}")
    if args.action == "verify" and not result.get("insIsCurrent", True):
        print("INS fourni = ancien INS ; utilisez le nouveau / the INS given is an earlier one: use the new one")


def run(args: argparse.Namespace) -> int:
    """Run one INSi action through the daemon."""
    from bridge.commands._daemon import through_daemon

    code, result = through_daemon(args, "ins", _session)
    if code:
        return code
    _print(args, result)
    return 0
