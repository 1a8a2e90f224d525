"""PC/SC service, readers and the cards in them: what the helpdesk asks first when « la carte ne marche pas ».

Only the certificates, validity and PIN counter of a CPS are read (no PIN is presented), and nothing
personal goes into a finding: no holder name, no NIR; a card is named by its reader and kind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from bridge.cards.identify import CardKind
from bridge.doctor.findings import RANK, Finding, Section, Status
from bridge.fr_dates import fr_date
from bridge.pcsc.errors import PcscError, PcscUnavailableError
from bridge.pcsc.monitor import ReaderState

__all__ = ["EXPIRY_WARNING_DAYS", "card_findings", "pcsc_findings", "status_findings"]

#: A CPS renewal takes weeks (order, delivery, PIN mail): warn a month ahead.
EXPIRY_WARNING_DAYS = 30

_RESTART_PCSCD = (
    "Redémarrez le service carte à puce : « sudo systemctl restart pcscd.socket pcscd » (Linux) ; "
    "s'il ne démarre pas, réinstallez le paquet pcscd."
)


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


def _validity(label: str, not_before: str, not_after: str, details: dict[str, Any], now: dt.datetime) -> Finding:
    """The validity finding of one certificate (the card's end of validity for people)."""
    days_left = (dt.datetime.fromisoformat(not_after) - now).days
    if dt.datetime.fromisoformat(not_after) <= now:
        return Finding(
            section=Section.READERS,
            check="card.validity",
            status=Status.PROBLEM,
            summary=f"{label} : expirée le {fr_date(not_after)}.",
            advice="Une carte expirée ne permet plus d'accéder au DMP ni de signer : demandez son "
            "renouvellement (commande de carte CPS auprès de l'ANS, ou du gestionnaire de cartes de "
            "l'établissement).",
            details={**details, "notAfter": not_after},
        )
    if dt.datetime.fromisoformat(not_before) > now:
        return Finding(
            section=Section.READERS,
            check="card.validity",
            status=Status.PROBLEM,
            summary=f"{label} : pas encore valide (à partir du {fr_date(not_before)}).",
            advice="Vérifiez la date et l'heure du poste ; si elles sont justes, attendez la date de "
            "début de validité ou utilisez l'ancienne carte.",
            details={**details, "notBefore": not_before},
        )
    if days_left < EXPIRY_WARNING_DAYS:
        return Finding(
            section=Section.READERS,
            check="card.validity",
            status=Status.WARNING,
            summary=f"{label} : expire le {fr_date(not_after)} ({days_left} jours).",
            advice="Demandez dès maintenant le renouvellement de la carte : sans elle, plus d'accès au DMP.",
            details={**details, "notAfter": not_after},
        )
    return Finding(
        section=Section.READERS,
        check="card.validity",
        status=Status.OK,
        summary=f"{label} : valide jusqu'au {fr_date(not_after)}.",
        details={**details, "notAfter": not_after},
    )


def _pin(label: str, tries_left: int, blocked: bool, details: dict[str, Any]) -> Finding | None:
    if blocked:
        return Finding(
            section=Section.READERS,
            check="card.pin",
            status=Status.PROBLEM,
            summary=f"{label} : code porteur bloqué (plus aucun essai).",
            advice="Débloquez la carte avec son code de déblocage (courrier reçu avec la carte) dans "
            "l'outil de gestion de la Cryptolib CPS, ou demandez une nouvelle carte.",
            details=details,
        )
    if tries_left <= 1:
        return Finding(
            section=Section.READERS,
            check="card.pin",
            status=Status.WARNING,
            summary=f"{label} : un seul essai de code porteur restant.",
            advice="Un code faux de plus bloquerait la carte : vérifiez le code avant de le saisir ; "
            "une saisie réussie remet le compteur à son maximum.",
            details=details,
        )
    return None


def _cps_findings(reader: str, card: Mapping[str, Any], now: dt.datetime) -> list[Finding]:
    cps = card["cps"]
    label = f"Carte {cps['cardType']} ({cps['generation']}) du lecteur « {reader} »"
    details = {"reader": reader, "generation": cps["generation"], "backend": cps["backend"]}
    # The certificate that ends (or starts) first decides: either one out of date stops DMP access.
    certs = sorted(cps["certificates"].values(), key=lambda c: c["notAfter"])
    found = [
        min(
            (_validity(label, c["notBefore"], c["notAfter"], details, now) for c in certs),
            key=lambda f: -RANK[f.status],
        )
    ]
    pin = _pin(label, cps["pin"]["triesLeft"], cps["pin"]["blocked"], details)
    return found + ([pin] if pin else [])


def status_findings(reader: str, status: Mapping[str, Any] | None, now: dt.datetime | None = None) -> list[Finding]:
    """Findings for one card as the daemon's `card_status` describes it (the diagnostics page's view)."""
    now = now or dt.datetime.now(dt.UTC)
    if status is None:
        return []
    if "error" in status:
        return card_findings([{"reader": reader, "error": _error_data(status["error"])}], now)
    if "certificateNotAfter" in status:
        label = f"Carte {status.get('cardType', 'CPS')} ({status['generation']})"
        details = {"reader": reader, "generation": status["generation"], "backend": status["backend"]}
        found = [_validity(label, status["certificateNotBefore"], status["certificateNotAfter"], details, now)]
        pin = _pin(label, status["pinTriesLeft"], status.get("pinBlocked", False), details)
        return found + ([pin] if pin else [])
    if status.get("kind") == CardKind.VITALE2.value:
        return card_findings([{"reader": reader, "vitale": {}}], now)
    return card_findings([{"reader": reader, "atr": status.get("atr"), "kind": status.get("kind")}], now)


def _error_data(code: str) -> dict[str, str]:
    from bridge.errors import BridgeError, ErrorCode

    try:
        return {k: str(v) for k, v in BridgeError(ErrorCode(code)).to_data().items()}
    except ValueError:
        return {"code": code, "message_fr": code}


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
                    summary=f"Carte Vitale lue dans le lecteur « {reader} »"
                    + (f" ({count} bénéficiaire(s))." if count else "."),
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
