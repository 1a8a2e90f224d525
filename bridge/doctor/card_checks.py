"""PC/SC service, readers and the cards in them: what the helpdesk asks first when « la carte ne marche pas ».

Only the certificates, validity and PIN counter of a CPS are read (no PIN is presented), and nothing
personal goes into a finding: no holder name, no NIR; a card is named by its reader and kind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.cards.identify import CardKind
from bridge.doctor.findings import Finding, Section, Status
from bridge.pcsc.errors import PcscError, PcscUnavailableError
from bridge.pcsc.monitor import ReaderState

__all__ = ["EXPIRY_WARNING_DAYS", "card_findings", "fr_date", "pcsc_findings"]

#: A CPS renewal takes weeks (order, delivery, PIN mail): warn a month ahead.
EXPIRY_WARNING_DAYS = 30

_RESTART_PCSCD = (
    "Redémarrez le service carte à puce : « sudo systemctl restart pcscd.socket pcscd » (Linux) ; "
    "s'il ne démarre pas, réinstallez le paquet pcscd."
)


def fr_date(iso: str) -> str:
    """An ISO date or timestamp as people write it in France (31/12/2027)."""
    return dt.datetime.fromisoformat(iso).strftime("%d/%m/%Y")


def pcsc_findings(scan: Sequence[ReaderState] | BaseException) -> list[Finding]:
    """The PC/SC service and reader findings from one `scan_readers()` result (or the error it raised)."""
    if isinstance(scan, PcscUnavailableError):
        return [
            Finding(
                section=Section.PCSC,
                check="pcsc.service",
                status=Status.PROBLEM,
                summary="Le service carte à puce (pcscd) ne répond pas : aucune carte ne peut être lue.",
                advice=_RESTART_PCSCD,
            )
        ]
    if isinstance(scan, PcscError):
        return [
            Finding(
                section=Section.PCSC,
                check="pcsc.service",
                status=Status.PROBLEM,
                summary=f"Le service carte à puce a répondu par une erreur ({scan.detail or scan.code.value}).",
                advice=_RESTART_PCSCD,
            )
        ]
    if isinstance(scan, BaseException):
        raise scan
    found = [
        Finding(section=Section.PCSC, check="pcsc.service", status=Status.OK, summary="Le service carte à puce répond.")
    ]
    if not scan:
        found.append(
            Finding(
                section=Section.READERS,
                check="readers.present",
                status=Status.PROBLEM,
                summary="Aucun lecteur de carte n'est détecté.",
                advice="Branchez le lecteur (ou un autre port USB) ; s'il est branché, installez son pilote "
                "(paquet libccid pour la plupart des lecteurs USB) puis redémarrez pcscd.",
            )
        )
    else:
        with_card = sum(1 for s in scan if s.card_present)
        found.append(
            Finding(
                section=Section.READERS,
                check="readers.present",
                status=Status.OK,
                summary=f"{len(scan)} lecteur(s) détecté(s), {with_card} avec une carte.",
                details={"readers": [s.name for s in scan]},
            )
        )
    return found


def _cps_findings(reader: str, card: Mapping[str, Any], now: dt.datetime) -> list[Finding]:
    cps = card["cps"]
    label = f"Carte {cps['cardType']} ({cps['generation']}) du lecteur « {reader} »"
    found: list[Finding] = []
    details = {"reader": reader, "generation": cps["generation"], "backend": cps["backend"]}
    worst: Finding | None = None
    for cert in cps["certificates"].values():
        usage = "d'authentification" if cert["usage"] == "authentication" else "de signature"
        not_before = dt.datetime.fromisoformat(cert["notBefore"])
        if cert["expired"]:
            worst = Finding(
                section=Section.READERS,
                check="card.validity",
                status=Status.PROBLEM,
                summary=f"{label} : expirée le {fr_date(cert['notAfter'])} (certificat {usage}).",
                advice="Une carte expirée ne permet plus d'accéder au DMP ni de signer : demandez son "
                "renouvellement (commande de carte CPS auprès de l'ANS, ou du gestionnaire de cartes de "
                "l'établissement).",
                details={**details, "notAfter": cert["notAfter"]},
            )
            break
        if not_before > now:
            worst = Finding(
                section=Section.READERS,
                check="card.validity",
                status=Status.PROBLEM,
                summary=f"{label} : pas encore valide (à partir du {fr_date(cert['notBefore'])}).",
                advice="Vérifiez la date et l'heure du poste ; si elles sont justes, attendez la date de "
                "début de validité ou utilisez l'ancienne carte.",
                details={**details, "notBefore": cert["notBefore"]},
            )
            break
        if cert["daysLeft"] < EXPIRY_WARNING_DAYS and worst is None:
            worst = Finding(
                section=Section.READERS,
                check="card.validity",
                status=Status.WARNING,
                summary=f"{label} : expire le {fr_date(cert['notAfter'])} ({cert['daysLeft']} jours).",
                advice="Demandez dès maintenant le renouvellement de la carte : sans elle, plus d'accès au DMP.",
                details={**details, "notAfter": cert["notAfter"]},
            )
    if worst is None:
        until = min(fr_date(c["notAfter"]) for c in cps["certificates"].values())
        worst = Finding(
            section=Section.READERS,
            check="card.validity",
            status=Status.OK,
            summary=f"{label} : valide jusqu'au {until}.",
            details=details,
        )
    found.append(worst)
    pin = cps["pin"]
    if pin["blocked"]:
        found.append(
            Finding(
                section=Section.READERS,
                check="card.pin",
                status=Status.PROBLEM,
                summary=f"{label} : code porteur bloqué (plus aucun essai).",
                advice="Débloquez la carte avec son code de déblocage (courrier reçu avec la carte) dans "
                "l'outil de gestion de la Cryptolib CPS, ou demandez une nouvelle carte.",
                details=details,
            )
        )
    elif pin["triesLeft"] <= 1:
        found.append(
            Finding(
                section=Section.READERS,
                check="card.pin",
                status=Status.WARNING,
                summary=f"{label} : un seul essai de code porteur restant.",
                advice="Un code faux de plus bloquerait la carte : vérifiez le code avant de le saisir ; "
                "une saisie réussie remet le compteur à son maximum.",
                details=details,
            )
        )
    return found


def card_findings(cards: Sequence[Mapping[str, Any]], now: dt.datetime | None = None) -> list[Finding]:
    """One or two findings per card described by `bridge.service.card_report.describe_cards`."""
    now = now or dt.datetime.now(dt.UTC)
    found: list[Finding] = []
    for card in cards:
        reader = card["reader"]
        if "cps" in card:
            found.extend(_cps_findings(reader, card, now))
        elif "vitale" in card:
            count = len(card["vitale"].get("beneficiaries", []))
            found.append(
                Finding(
                    section=Section.READERS,
                    check="card.vitale",
                    status=Status.OK,
                    summary=f"Carte Vitale lue dans le lecteur « {reader} » ({count} bénéficiaire(s)).",
                    details={"reader": reader},
                )
            )
        elif "error" in card:
            error = card["error"]
            found.append(
                Finding(
                    section=Section.READERS,
                    check="card.read",
                    status=Status.PROBLEM,
                    summary=f"La carte du lecteur « {reader} » n'a pas pu être lue : {error['message_fr']}",
                    advice="Retirez la carte, vérifiez son sens et sa propreté, réinsérez-la ; si l'erreur "
                    "persiste, essayez un autre lecteur.",
                    details={"reader": reader, "code": error["code"]},
                )
            )
        elif card.get("kind") == CardKind.VITALE1.value:
            found.append(
                Finding(
                    section=Section.READERS,
                    check="card.kind",
                    status=Status.WARNING,
                    summary=f"Carte Vitale 1 dans le lecteur « {reader} » : elle ne peut pas être lue.",
                    advice="Utilisez l'application carte Vitale ou une carte Vitale 2 ; l'assuré peut "
                    "demander le remplacement de sa carte.",
                    details={"reader": reader},
                )
            )
        else:
            found.append(
                Finding(
                    section=Section.READERS,
                    check="card.kind",
                    status=Status.WARNING,
                    summary=f"Carte non reconnue dans le lecteur « {reader} » (ATR {card['atr']}).",
                    advice="Vérifiez qu'il s'agit d'une carte CPS, CPE ou Vitale et qu'elle est insérée puce "
                    "vers le haut, vers le lecteur.",
                    details={"reader": reader, "atr": card["atr"], "kind": card.get("kind")},
                )
            )
    return found
