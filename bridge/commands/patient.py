"""`dmp-bridge patient status|authorize|admin|close|professionals|webps|authorized|search`: the patient's DMP
from a shell.

Like `dmp-bridge dmp`, every action is a JSON-RPC call to the RUNNING daemon with the local token:
`status` (TD0.2: DMP, authorisation, médecin traitant, Mon espace santé, what the matrix allows),
`authorize` (TD0.3: `--declare --patient-agreed`, `--remove`, `--remove-treating-physician`),
`admin` (TD1.3a; with `--set member=value` … TD1.3b), `close --patient-request` (TD1.4), `professionals`
(TD1.6), `webps` (TD0.9 link), `authorized --since` (TD0.4) and `search --family` (TD0.5; `--ins` then
only fills the VIHF's resource-id). `--json` prints the method's result as is.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["HELP", "configure", "run"]

HELP = "DMP du patient : existence, autorisation, professionnels, Web PS / the patient's DMP access"

_VERDICTS = {"allowed": "oui", "refused": "non", "conditional": "selon le DMP"}


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `patient`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ins", help="INS (NIR) du patient / patient INS")
    common.add_argument("--ins-oid", help="autorité de l'INS / INS authority OID (default: config)")
    common.add_argument("--port", type=int, help="port du pont / bridge port (default: config)")
    common.add_argument("--json", action="store_true", help="sortie JSON / JSON output")
    common.add_argument(
        "--mode", choices=["DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE"], help="mode d'authentification"
    )
    common.add_argument("--situation", type=int, help="situation d'exercice de la CPS (index)")
    common.add_argument("--access", choices=["normal", "bris_de_glace", "centre_15"], help="mode d'accès")
    common.add_argument("--pin-stdin", action="store_true", help="lire le code porteur sur l'entrée standard")
    common.add_argument("--reader", help="lecteur de la CPS / CPS reader")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("status", parents=[common], help="DMP et autorisation / DMP and authorisation (TD0.2)")
    p = sub.add_parser("authorize", parents=[common], help="mise à jour de l'autorisation (TD0.3)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--declare", action="store_true", help="se déclarer autorisé / declare oneself authorised")
    which.add_argument("--remove", action="store_true", help="supprimer son autorisation / remove it")
    which.add_argument(
        "--remove-treating-physician", action="store_true", help="se supprimer médecin traitant / stop being MT"
    )
    p.add_argument(
        "--patient-agreed", action="store_true", help="le patient a donné son accord / the patient agreed (declare)"
    )
    p = sub.add_parser("admin", parents=[common], help="données administratives / administrative data (TD1.3a/b)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MEMBRE=VALEUR",
        help="modifier (TD1.3b) : lastName, firstName, city, postalCode, country, oppositionBrisDeGlace=true…",
    )
    p = sub.add_parser("close", parents=[common], help="fermer le DMP à la demande du patient (TD1.4)")
    p.add_argument("--patient-request", action="store_true", required=True, help="le patient l'a demandé")
    p = sub.add_parser("professionals", parents=[common], help="PS autorisés ou bloqués (TD1.6)")
    p.add_argument("--list", choices=["authorized", "blocked", "all"], default="all", dest="list_mode")
    p = sub.add_parser("authorized", parents=[common], help="DMP sur lesquels je suis autorisé (TD0.4)")
    p.add_argument("--since", required=True, help="AAAAMMJJ[hhmmss]")
    p.add_argument("--by", choices=["authorization", "document"], default="authorization", dest="date_type")
    p.add_argument("--ps-owner", help="PS de la structure (CPE) / professional of the structure (CPE)")
    p = sub.add_parser("search", parents=[common], help="rechercher un patient sans INS (TD0.5, régulation)")
    p.add_argument("--family", required=True, help="nom / family name")
    p.add_argument("--given", help="prénom / given name")
    p.add_argument("--gender", choices=["M", "F", "U"])
    p.add_argument("--birth-date", help="AAAAMMJJ")
    p = sub.add_parser("webps", parents=[common], help="lien Web PS / Web PS link (TD0.9)")
    p.add_argument(
        "--page",
        default="patient",
        choices=["dashboard", "patient", "management", "documents", "carePathway", "accessHistory", "settings",
                 "wishesAndRights", "vaccination"],
    )  # fmt: skip


def _call(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    patient: dict[str, Any] = {"ins": args.ins} if args.ins else {}
    if args.ins and args.ins_oid:
        patient["oid"] = args.ins_oid
    if args.action == "webps":
        return "dmp.webps.url", {"page": args.page, **({"patient": patient} if patient else {})}
    if not patient:
        raise SystemExit("--ins est obligatoire / --ins is required")
    if args.action == "authorized":
        since = args.since.ljust(14, "0")
        params: dict[str, Any] = {"contextPatient": patient, "since": since, "dateType": args.date_type}
        if args.ps_owner:
            params["psOwnerId"] = args.ps_owner
        return "dmp.patients.authorized", params
    if args.action == "search":
        traits = {"lastName": args.family, "firstName": args.given, "gender": args.gender, "birthDate": args.birth_date}
        return "dmp.patients.search", {"contextPatient": patient, **{k: v for k, v in traits.items() if v}}
    if args.action == "status":
        return "dmp.patient.status", {"patient": patient}
    if args.action == "admin":
        if not args.set:
            return "dmp.patient.admin.get", {"patient": patient}
        return "dmp.patient.admin.update", {"patient": patient, "changes": _changes(args.set)}
    if args.action == "close":
        return "dmp.patient.close", {"patient": patient, "patientRequest": True}
    if args.action == "professionals":
        return "dmp.patient.professionals", {"patient": patient, "mode": args.list_mode}
    action = "declare" if args.declare else "remove" if args.remove else "removeTreatingPhysician"
    return "dmp.patient.authorize", {"patient": patient, "action": action, "patientAgreement": args.patient_agreed}


def _changes(items: list[str]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for item in items:
        member, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set {item!r} : MEMBRE=VALEUR attendu / MEMBER=VALUE expected")
        changes[member] = {"true": True, "false": False}.get(value, value) if member.startswith("opposition") else value
    return changes


async def _session(args: argparse.Namespace, port: int, token: str, pin: bytearray | None) -> Any:
    from bridge.api.client import LocalClient
    from bridge.commands._daemon import card_context

    method, params = _call(args)
    async with LocalClient(port, token) as client:
        await card_context(client, args, pin)
        return await client.call(method, params)


def _print_status(result: dict[str, Any]) -> None:
    dmp = {"exists": "ouvert", "closed": "fermé", "unknown": "inexistant"}[result["dmp"]]
    print(f"DMP : {dmp}")
    if result["dmp"] == "unknown":
        return
    authorization = {"valid": "valide", "expired": "expirée", "blocked": "bloqué par le patient", "none": "aucune"}
    print(f"Autorisation : {authorization.get(result['authorization'] or 'none', '?')}")
    print(f"Médecin traitant : {'oui' if result['treatingPhysician'] else 'non'}")
    mes = result["mes"]
    print(f"Mon espace santé : {'associé' if mes else 'non associé' if mes is False else 'non précisé'}")
    print(f"Acteur : {result['actor']} ({result['accessMode']})")
    for right in result["rights"]:
        print(f"  {right['transaction']:7} {right['operation']} : {_VERDICTS.get(right['verdict'], right['verdict'])}")


def _print(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.action == "status":
        _print_status(result)
    elif args.action == "authorize":
        print(f"{result['action']}: {result['context'] or 'ok'}")
    elif args.action == "admin":
        print(f"{result['lastName']} {result['firstName']} ({result['gender']}, {result['birthDate']})")
        print(" ".join([*result["street"], result["postalCode"], result["city"]]).strip())
        print(f"Opposition bris de glace : {'oui' if result['oppositionBrisDeGlace'] else 'non'}")
        print(f"Opposition accès en urgence : {'oui' if result['oppositionAccesUrgence'] else 'non'}")
    elif args.action == "close":
        print("DMP fermé / DMP closed")
    elif args.action == "authorized":
        for dmp in result["dmps"]:
            ins = dmp["identifiers"][-1]["value"] if dmp["identifiers"] else "?"
            mt = " (MT)" if dmp["treatingPhysician"] else ""
            print(f"{ins}\t{dmp['lastName']} {dmp['firstName']}{mt}\t{dmp['lastAdd']}")
    elif args.action == "search":
        for c in result["candidates"]:
            print(f"{c['ins']}\t{c['lastName']} {c['firstName']}\t{c['gender']}\t{c['birthDate']}")
        if result["remaining"]:
            print(f"… et {result['remaining']} autres : précisez la recherche / {result['remaining']} more: refine")
    elif args.action == "professionals":
        for pro in result["professionals"]:
            state = "bloqué" if pro["blocked"] else "autorisé"
            print(f"{pro['nationalId']}\t{state}\t{pro['lastName']} {pro['firstName']}\t{pro['since']}")
    else:
        print(result["url"])


def run(args: argparse.Namespace) -> int:
    """Run one patient action through the daemon."""
    from bridge.commands._daemon import through_daemon

    code, result = through_daemon(args, "patient", _session)
    if code:
        return code
    _print(args, result)
    return 0
