"""`dmp-bridge dmp submit|find|get|mask|unmask|unhide|archive|unarchive|delete`: the DMP from a shell.

For legacy software and scripts: every action is a JSON-RPC call to the RUNNING daemon over its
WebSocket with the local token (`bridge.api.client.LocalClient`), so the card, the DMP connections and
the signed VIHFs are the daemon's. `--pin-stdin` reads the CPS PIN from standard input and logs the card
in first (`cps.login`); `--mode`/`--situation` set the DMP context of the call (`dmp.context.set`),
otherwise the daemon's configured default applies. `submit` shows the bytes sent to the DMP on stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["HELP", "configure", "run"]

HELP = "DMP : alimenter, rechercher, lire, masquer, archiver, supprimer / DMP documents from the command line"

_MIME = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".rtf": "text/rtf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".xml": "text/xml",
}
#: action -> (method, fixed params)
_UPDATES: dict[str, tuple[str, dict[str, Any]]] = {
    "mask": ("dmp.documents.setVisibility", {"hiddenFromProfessionals": True}),
    "unmask": ("dmp.documents.setVisibility", {"hiddenFromProfessionals": False}),
    # No "hide": hiding from the patient exists only at submission (--hidden-from-patient); TD3.3b shows.
    "unhide": ("dmp.documents.setVisibility", {"hiddenFromPatient": False}),
    "archive": ("dmp.documents.setStatus", {"status": "archived"}),
    "unarchive": ("dmp.documents.setStatus", {"status": "approved"}),
    "delete": ("dmp.documents.delete", {}),
}


#: find option -> help (values: codes of the value set, repeatable).
_FIND_CODES = {
    "type": "typeCode LOINC (JDV_J07)",
    "class": "classCode (TRE_A03)",
    "format": "formatCode (JDV_J60)",
    "practice": "practiceSettingCode (TRE_A01)",
    "facility": "healthcareFacilityTypeCode (TRE_R02)",
}
_FIND_PARAMS = {
    "type": "typeCodes",
    "class": "classCodes",
    "format": "formatCodes",
    "practice": "practiceSettings",
    "facility": "facilityTypes",
}
#: find option -> (API parameter, help); From inclusive, To exclusive, UTC.
_FIND_DATES = {
    "created-from": ("creationFrom", "créé à partir de / created from"),
    "created-to": ("creationTo", "créé avant / created before"),
    "service-from": ("serviceStartFrom", "acte à partir de / service start from"),
    "service-to": ("serviceStopTo", "acte terminé avant / service stop before"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `dmp`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ins", required=True, help="INS (NIR) du patient / patient INS")
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
    p = sub.add_parser("submit", parents=[common], help="envoyer un document / submit a document (TD2.1)")
    p.add_argument("file", type=Path)
    p.add_argument("--title", help="titre (défaut : celui du CDA, sinon le nom du fichier) / title")
    p.add_argument(
        "--type", help="code LOINC du type de document (défaut : celui du CDA, sinon 11488-4) / LOINC type code"
    )
    p.add_argument("--mime", choices=sorted(set(_MIME.values())), help="type MIME (default: from the extension)")
    p.add_argument("--family", help="nom du patient (CDA)")
    p.add_argument("--given", help="prénom du patient (CDA)")
    p.add_argument("--gender", choices=["M", "F", "U"], help="sexe du patient (CDA)")
    p.add_argument("--birth-date", help="date de naissance AAAAMMJJ (CDA)")
    p.add_argument("--hidden-from-professionals", action="store_true")
    p.add_argument("--hidden-from-patient", action="store_true")
    p.add_argument("--replaces", help="uniqueId du document remplacé")
    p.add_argument(
        "--ins-qualified", action="store_true", help="l'INS a été qualifié par l'INSi / the INS was qualified by INSi"
    )
    p.add_argument(
        "--allow-unqualified-ins",
        action="store_true",
        help="envoyer avec un INS non qualifié / send with an unqualified INS",
    )
    p.add_argument(
        "--queue", action="store_true",
        help="par la file d'envoi : réponse immédiate, envoi par le pont (certificat d'établissement) / via the outbox",
    )  # fmt: skip
    p = sub.add_parser("find", parents=[common], help="rechercher / find documents (TD3.1)")
    p.add_argument("--archived", action="store_true", help="inclure les documents archivés / include archived")
    for option, help_text in _FIND_CODES.items():
        p.add_argument(f"--{option}", action="append", metavar="CODE", help=help_text)
    for option, (_, help_text) in _FIND_DATES.items():
        p.add_argument(f"--{option}", metavar="AAAAMMJJ[hhmm[ss]]", help=help_text)
    p.add_argument("--author", action="append", metavar="ID", help="auteur (identifiant national) / author id")
    p.add_argument("--masked", action="store_true", help="seulement les documents masqués aux PS / masked only")
    p.add_argument(
        "--invisible-to-patient", action="store_true", help="seulement ceux invisibles au patient / hidden from patient"
    )
    p = sub.add_parser("get", parents=[common], help="lire un document / retrieve a document (TD3.2)")
    p.add_argument("unique_id")
    p.add_argument("--out", type=Path, required=True, help="fichier de sortie / output file")
    p.add_argument("--raw", action="store_true", help="écrire le CDA tel que stocké / write the stored CDA")
    for name in _UPDATES:
        p = sub.add_parser(name, parents=[common], help=f"{name} (TD3.3)")
        p.add_argument("unique_id")


def _patient(args: argparse.Namespace) -> dict[str, Any]:
    patient: dict[str, Any] = {"ins": args.ins}
    if args.ins_oid:
        patient["oid"] = args.ins_oid
    for attr, key in (
        ("family", "lastName"),
        ("given", "firstName"),
        ("gender", "gender"),
        ("birth_date", "birthDate"),
    ):
        value = getattr(args, attr, None)
        if value:
            patient[key] = value
    return patient


def _cda_defaults(content: bytes) -> tuple[str | None, str | None]:
    """The title and typeCode of a CDA's header (None, None when it is not a readable CDA)."""
    from bridge.dmp.cda_header import read_cda_metadata
    from bridge.errors import BridgeError

    try:
        header = read_cda_metadata(content)
    except (BridgeError, ValueError):
        return None, None
    return header.title or None, header.type_code.code or None


def _call(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    patient = _patient(args)
    if args.action == "submit":
        mime = args.mime or _MIME.get(args.file.suffix.lower())
        if mime is None:
            raise SystemExit("type de fichier inconnu, précisez --mime / unknown file type, give --mime")
        content = args.file.read_bytes()
        title, type_code = _cda_defaults(content) if mime == "text/xml" else (None, None)
        params: dict[str, Any] = {
            "patient": patient,
            "content": base64.b64encode(content).decode("ascii"),
            "mimeType": mime,
            # A CDA names itself: its header's title and type, unless the caller says otherwise (the bridge
            # refuses metadata that contradicts the header).
            "title": args.title or title or args.file.stem,
            "typeCode": args.type or type_code or "11488-4",
            "progressId": "cli",
        }
        if args.hidden_from_professionals:
            params["hiddenFromProfessionals"] = True
        if args.hidden_from_patient:
            params["hiddenFromPatient"] = True
        if args.replaces:
            params["replaces"] = args.replaces
        if args.ins_qualified:
            params["insQualified"] = True
        if args.allow_unqualified_ins:
            params["allowUnqualifiedIns"] = True
        if args.queue:
            params["queue"] = True
        return "dmp.documents.submit", params
    if args.action == "find":
        statuses = ["approved", "archived"] if args.archived else ["approved"]
        query: dict[str, Any] = {"patient": patient, "statuses": statuses}
        for option in _FIND_CODES:
            values = getattr(args, option.replace("-", "_"))
            if values:
                query[_FIND_PARAMS[option]] = values
        for option, (param, _) in _FIND_DATES.items():
            value = getattr(args, option.replace("-", "_"))
            if value:
                query[param] = value
        if args.author:
            query["authors"] = args.author
        visibility = [
            v
            for v, on in (("hiddenFromProfessionals", args.masked), ("hiddenFromPatient", args.invisible_to_patient))
            if on
        ]
        if visibility:
            query["visibility"] = visibility
        return "dmp.documents.find", query
    if args.action == "get":
        return "dmp.documents.get", {"patient": patient, "uniqueId": args.unique_id}
    method, fixed = _UPDATES[args.action]
    return method, {"patient": patient, "uniqueId": args.unique_id, **fixed}


class _ProgressLine(list[dict[str, Any]]):
    """LocalClient keeps notifications in a list: this one also draws the upload progress on stderr."""

    def append(self, message: dict[str, Any]) -> None:
        if message.get("method") == "dmp.progress":
            p = message.get("params", {})
            end = "\n" if p.get("sent") == p.get("total") else ""
            print(
                f"\rDMP : {p.get('sent', 0)} / {p.get('total', 0)} octets envoyés / bytes sent",
                end=end,
                file=sys.stderr,
            )
            return
        super().append(message)


async def _session(args: argparse.Namespace, port: int, token: str, pin: bytearray | None) -> Any:
    from bridge.api.client import LocalClient
    from bridge.commands._daemon import card_context

    method, params = _call(args)
    async with LocalClient(port, token) as client:
        client.notifications = _ProgressLine()
        await card_context(client, args, pin)
        return await client.call(method, params)


def _print(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    elif args.action == "submit":
        print(result["uniqueId"] + (f"\t(tâche {result['jobId']}, {result['state']})" if "jobId" in result else ""))
    elif args.action == "find":
        for doc in result["documents"]:
            flags = ("M" if doc["hiddenFromProfessionals"] else "-") + ("P" if doc["hiddenFromPatient"] else "-")
            print(f"{doc['uniqueId']}\t{doc['status']}\t{flags}\t{doc['typeCode']}\t{doc['title']}")
    elif args.action == "get":
        print(str(args.out))
    else:
        print(f"{args.unique_id} {args.action}: ok")


def run(args: argparse.Namespace) -> int:
    """Run one DMP action through the daemon."""
    from bridge.commands._daemon import through_daemon

    code, result = through_daemon(args, "dmp", _session)
    if code:
        return code
    if args.action == "get":
        data = result.get("body") if not args.raw and "body" in result else result["content"]
        args.out.write_bytes(base64.b64decode(data))
    _print(args, result)
    return 0
