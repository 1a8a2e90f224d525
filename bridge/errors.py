"""The closed set of error codes the bridge reports, with French and English messages.

Every error that leaves the bridge (JSON-RPC, CLI, diagnostics) goes through `to_bridge_error`, so
`data.code` comes from one place and no exception text or secret reaches a caller.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

__all__ = ["BridgeError", "ErrorCode", "to_bridge_error"]

log = logging.getLogger(__name__)


class ErrorCode(enum.Enum):
    """Stable symbolic error codes (design §2); the value is what callers see in `data.code`."""

    NO_READER = "NO_READER"
    NO_CARD = "NO_CARD"
    CARD_REMOVED = "CARD_REMOVED"
    CARD_RESET = "CARD_RESET"
    UNSUPPORTED_CARD = "UNSUPPORTED_CARD"
    CARD_ERROR = "CARD_ERROR"
    PIN_INCORRECT = "PIN_INCORRECT"
    PIN_BLOCKED = "PIN_BLOCKED"
    PIN_LAST_TRY = "PIN_LAST_TRY"
    PIN_REQUIRED = "PIN_REQUIRED"
    CARD_BUSY = "CARD_BUSY"
    SHARING_VIOLATION = "SHARING_VIOLATION"
    PCSC_UNAVAILABLE = "PCSC_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    ORIGIN_NOT_APPROVED = "ORIGIN_NOT_APPROVED"
    UNAUTHORIZED = "UNAUTHORIZED"
    DMP_UNREACHABLE = "DMP_UNREACHABLE"
    DMP_FAULT = "DMP_FAULT"
    DMP_OUTCOME_UNKNOWN = "DMP_OUTCOME_UNKNOWN"
    NOT_PERMITTED_FOR_ACTOR = "NOT_PERMITTED_FOR_ACTOR"
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    CERTIFICATE_NOT_YET_VALID = "CERTIFICATE_NOT_YET_VALID"
    INVALID_PARAMS = "INVALID_PARAMS"
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    INTERNAL = "INTERNAL"
    # INSi (téléservice INS), see bridge.ins.faults.
    INS_NOT_FOUND = "INS_NOT_FOUND"
    INS_MULTIPLE_MATCHES = "INS_MULTIPLE_MATCHES"
    INS_MISMATCH = "INS_MISMATCH"
    INS_NOT_QUALIFIED = "INS_NOT_QUALIFIED"
    INSI_UNAVAILABLE = "INSI_UNAVAILABLE"
    INSI_REFUSED = "INSI_REFUSED"
    INSI_SOFTWARE_NOT_AUTHORISED = "INSI_SOFTWARE_NOT_AUTHORISED"
    # The DMP's refusals a person acts on differently (issue 10; table in bridge/dmp/refusals.py).
    DMP_UNKNOWN = "DMP_UNKNOWN"
    DMP_CLOSED = "DMP_CLOSED"
    DMP_NOT_AUTHORIZED = "DMP_NOT_AUTHORIZED"
    DMP_AUTHORIZATION_EXPIRED = "DMP_AUTHORIZATION_EXPIRED"
    BLOCKED_BY_PATIENT = "BLOCKED_BY_PATIENT"
    DMP_MANAGED_BY_MES = "DMP_MANAGED_BY_MES"
    DOCUMENT_UNKNOWN = "DOCUMENT_UNKNOWN"
    DOCUMENT_ALREADY_EXISTS = "DOCUMENT_ALREADY_EXISTS"
    PATIENT_MISMATCH = "PATIENT_MISMATCH"
    DMP_AUTHENTICATION_REFUSED = "DMP_AUTHENTICATION_REFUSED"
    DMP_REQUEST_REFUSED = "DMP_REQUEST_REFUSED"


# (French, English). French first: the users are French-speaking.
_MESSAGES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.NO_READER: ("Aucun lecteur de carte détecté.", "No card reader found."),
    ErrorCode.NO_CARD: ("Aucune carte dans le lecteur.", "No card in the reader."),
    ErrorCode.CARD_REMOVED: (
        "La carte a été retirée pendant l'opération.",
        "The card was removed during the operation.",
    ),
    ErrorCode.CARD_RESET: (
        "La carte a été réinitialisée par un autre programme.",
        "The card was reset by another program.",
    ),
    ErrorCode.UNSUPPORTED_CARD: ("Carte non prise en charge.", "Unsupported card."),
    ErrorCode.CARD_ERROR: ("La carte a refusé l'opération.", "The card refused the operation."),
    ErrorCode.PIN_INCORRECT: ("Code porteur incorrect.", "Incorrect PIN."),
    ErrorCode.PIN_BLOCKED: ("Carte bloquée : code porteur épuisé.", "Card blocked: no PIN tries left."),
    ErrorCode.PIN_LAST_TRY: (
        "Un seul essai restant : la saisie doit être confirmée explicitement.",
        "One PIN try left: the attempt must be explicitly confirmed.",
    ),
    ErrorCode.PIN_REQUIRED: ("Saisie du code porteur nécessaire.", "PIN entry required."),
    ErrorCode.CARD_BUSY: ("La carte est occupée par une autre opération.", "The card is busy with another operation."),
    ErrorCode.SHARING_VIOLATION: (
        "La carte est utilisée en exclusivité par un autre programme.",
        "The card is held exclusively by another program.",
    ),
    ErrorCode.PCSC_UNAVAILABLE: (
        "Le service carte à puce (PC/SC) ne répond pas.",
        "The smart card service (PC/SC) is not available.",
    ),
    ErrorCode.TIMEOUT: (
        "Délai dépassé : l'opération n'a pas abouti. Réessayez ; si cela se répète, vérifiez le réseau ou la carte.",
        "Timed out: the operation did not complete. Try again; if it happens again, check the network or the card.",
    ),
    ErrorCode.ORIGIN_NOT_APPROVED: (
        "Ce site n'est pas autorisé à utiliser le pont DMP.",
        "This web origin is not approved to use the DMP bridge.",
    ),
    ErrorCode.UNAUTHORIZED: ("Authentification locale refusée.", "Local authentication refused."),
    ErrorCode.DMP_UNREACHABLE: (
        "Le service DMP est injoignable ; la demande n'a pas été prise en compte. Réessayez dans un instant.",
        "The DMP service is unreachable; the request was not taken into account. Try again in a moment.",
    ),
    ErrorCode.DMP_FAULT: ("Le DMP a refusé la demande.", "The DMP refused the request."),
    ErrorCode.DMP_OUTCOME_UNKNOWN: (
        "La demande a été envoyée au DMP mais sa réponse n'est pas arrivée : elle a peut-être été prise en "
        "compte. Vérifiez dans le DMP (identifiant uniqueId fourni) avant de la renvoyer.",
        "The request was sent to the DMP but its answer did not arrive: it may have been applied. Check the "
        "DMP (uniqueId given) before sending it again.",
    ),
    ErrorCode.NOT_PERMITTED_FOR_ACTOR: (
        "Cette opération n'est pas permise au DMP pour ce type d'acteur dans ce mode d'accès (matrice des "
        "droits PDT-INF-526) : faites-la avec une carte ou un mode d'accès qui y a droit.",
        "The DMP does not permit this operation for this kind of actor in this access mode (rights matrix "
        "PDT-INF-526): do it with a card or an access mode entitled to it.",
    ),
    ErrorCode.CERTIFICATE_EXPIRED: (
        "Le certificat d'authentification (carte CPS ou certificat de l'établissement) a expiré : le DMP ne "
        "peut pas l'accepter.",
        "The authentication certificate (CPS card or establishment certificate) has expired: the DMP cannot "
        "accept it.",
    ),
    ErrorCode.CERTIFICATE_NOT_YET_VALID: (
        "Le certificat d'authentification (carte CPS ou certificat de l'établissement) n'est pas encore valide.",
        "The authentication certificate (CPS card or establishment certificate) is not valid yet.",
    ),
    ErrorCode.INVALID_PARAMS: ("Paramètres invalides.", "Invalid parameters."),
    ErrorCode.INVALID_INPUT: ("Données reçues invalides.", "Invalid input data."),
    ErrorCode.NOT_FOUND: ("Élément introuvable.", "Not found."),
    ErrorCode.INTERNAL: ("Erreur interne, voir le journal.", "Internal error, see the logs."),
    ErrorCode.INS_NOT_FOUND: (
        "Aucune identité INS ne correspond à ces traits : vérifiez le nom de naissance, les prénoms, le sexe "
        "et la date de naissance sur une pièce d'identité, puis recommencez.",
        "No INS identity matches these traits: check the birth name, first names, sex and birth date against "
        "an identity document, then try again.",
    ),
    ErrorCode.INS_MULTIPLE_MATCHES: (
        "Plusieurs identités INS correspondent : ajoutez le lieu de naissance (code INSEE) ou tous les prénoms, "
        "puis recommencez.",
        "Several INS identities match: add the birth place (INSEE code) or all the first names, then try again.",
    ),
    ErrorCode.INS_MISMATCH: (
        "L'INS fourni ne correspond pas à l'identité retournée par le téléservice INSi : ne l'utilisez pas, "
        "reprenez l'identité renvoyée.",
        "The INS given does not match the identity the INSi returned: do not use it, take the returned identity.",
    ),
    ErrorCode.INS_NOT_QUALIFIED: (
        "L'INS de ce patient n'est pas qualifié : interrogez le téléservice INSi d'abord, ou indiquez "
        "explicitement que le document peut partir avec un INS non qualifié.",
        "This patient's INS is not qualified: query the INSi first, or state explicitly that the document may "
        "be sent with an unqualified INS.",
    ),
    ErrorCode.INSI_UNAVAILABLE: (
        "Le téléservice INSi est injoignable ou indisponible ; rien n'a été modifié. Réessayez dans un instant.",
        "The INSi service is unreachable or unavailable; nothing was changed. Try again in a moment.",
    ),
    ErrorCode.INSI_REFUSED: (
        "Le téléservice INSi a refusé la demande (authentification ou requête) : vérifiez la carte CPS ou le "
        "certificat d'établissement, puis recommencez.",
        "The INSi service refused the request (authentication or request): check the CPS card or the "
        "establishment certificate, then try again.",
    ),
    ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED: (
        "Ce logiciel n'est pas autorisé à appeler le téléservice INSi (numéro d'autorisation inconnu) : "
        "contactez l'éditeur ou votre responsable informatique.",
        "This software is not authorised to call the INSi service (unknown authorisation number): contact the "
        "vendor or your IT manager.",
    ),
    ErrorCode.DMP_UNKNOWN: (
        "Ce patient n'a pas de DMP pour cet INS : vérifiez l'INS (qualifié par le téléservice INSi) et "
        "son type (NIR ou NIA).",
        "This patient has no DMP for this INS: check the INS (qualified through the INSi service) and its "
        "kind (NIR or NIA).",
    ),
    ErrorCode.DMP_CLOSED: (
        "Le DMP de ce patient est fermé : rien ne peut y être lu ni ajouté. Le patient peut le rouvrir "
        "depuis Mon espace santé.",
        "This patient's DMP is closed: nothing can be read from or added to it. The patient can reopen it "
        "from Mon espace santé.",
    ),
    ErrorCode.DMP_NOT_AUTHORIZED: (
        "Vous n'êtes pas autorisé sur le DMP de ce patient : avec son accord, déclarez-vous autorisé "
        "(dmp.patient.authorize), ou utilisez le mode bris de glace en cas d'urgence.",
        "You are not authorised on this patient's DMP: with the patient's agreement, declare yourself "
        "authorised (dmp.patient.authorize), or use the break-glass mode in an emergency.",
    ),
    ErrorCode.DMP_AUTHORIZATION_EXPIRED: (
        "Votre autorisation sur le DMP de ce patient a expiré : avec son accord, déclarez-vous de nouveau "
        "autorisé (dmp.patient.authorize).",
        "Your authorisation on this patient's DMP has expired: with the patient's agreement, declare "
        "yourself authorised again (dmp.patient.authorize).",
    ),
    ErrorCode.BLOCKED_BY_PATIENT: (
        "Le patient vous a bloqué l'accès à son DMP : seul le patient peut lever ce blocage, depuis Mon "
        "espace santé.",
        "The patient has blocked your access to their DMP: only the patient can lift it, from Mon espace "
        "santé.",
    ),
    ErrorCode.DMP_MANAGED_BY_MES: (
        "Ce DMP est associé à Mon espace santé : ses données administratives ne se modifient et il ne se "
        "ferme que depuis Mon espace santé, par le patient.",
        "This DMP is associated with Mon espace santé: its administrative data are changed, and it is "
        "closed, only from Mon espace santé, by the patient.",
    ),
    ErrorCode.DOCUMENT_UNKNOWN: (
        "Ce document est introuvable dans le DMP (identifiant inconnu, supprimé ou masqué) : relancez une "
        "recherche des documents.",
        "This document is not in the DMP (unknown identifier, deleted or hidden): search the documents "
        "again.",
    ),
    ErrorCode.DOCUMENT_ALREADY_EXISTS: (
        "Un document avec cet identifiant est déjà dans le DMP : il a déjà été envoyé ; ne le renvoyez pas.",
        "A document with this identifier is already in the DMP: it was sent before; do not send it again.",
    ),
    ErrorCode.PATIENT_MISMATCH: (
        "Le patient de la demande n'est pas celui du document ou du contexte : vérifiez l'INS utilisé.",
        "The request's patient is not the one of the document or the context: check the INS used.",
    ),
    ErrorCode.DMP_AUTHENTICATION_REFUSED: (
        "Le DMP a refusé l'authentification (carte, certificat ou jeton VIHF) : vérifiez la carte CPS et "
        "la date du poste, puis réessayez.",
        "The DMP refused the authentication (card, certificate or VIHF token): check the CPS card and the "
        "workstation's clock, then try again.",
    ),
    ErrorCode.DMP_REQUEST_REFUSED: (
        "Le DMP a jugé la demande invalide : signalez-le à l'éditeur du logiciel avec le code DMP indiqué.",
        "The DMP found the request invalid: report it to the software vendor with the DMP code given.",
    ),
}


#: Messages more precise than their code's, for a (code, detail) pair the caller must act on differently.
_DETAIL_MESSAGES: dict[tuple[ErrorCode, str], tuple[str, str]] = {
    (ErrorCode.PIN_LAST_TRY, "confirm-at-workstation"): (
        "Un seul essai restant : une page web ne peut pas l'utiliser seule. La personne doit le confirmer au "
        "poste de travail (menu de l'icône du pont, ou `dmp-bridge card --pin-stdin --force-last-try`), ou "
        "débloquer la carte.",
        "One PIN try left: a web page cannot spend it on its own. The person must confirm it at the workstation "
        "(the bridge's tray menu, or `dmp-bridge card --pin-stdin --force-last-try`), or unblock the card.",
    ),
    (ErrorCode.UNAUTHORIZED, "key-proof-required"): (
        "Ce site n'a pas prouvé sa clé au pont : utilisez la dernière version du SDK, dans une page servie en "
        "HTTPS (la cryptographie du navigateur l'exige), puis relancez l'appairage.",
        "This site has not proved its key to the bridge: use the latest SDK, in a page served over HTTPS "
        "(the browser's cryptography requires it), then pair again.",
    ),
    (ErrorCode.UNAUTHORIZED, "key-proof"): (
        "La preuve de clé de ce site est invalide : rechargez la page ; si cela se répète, appairez-le de nouveau.",
        "This site's key proof is invalid: reload the page; if it happens again, pair it again.",
    ),
    (ErrorCode.PIN_REQUIRED, "login-owned-by-another-caller"): (
        "La carte a été déverrouillée par une autre application : saisissez le code porteur dans celle-ci "
        "pour l'utiliser.",
        "The card was unlocked by another application: enter the PIN in this one to use it.",
    ),
    (ErrorCode.NO_READER, "unknown-reader"): (
        "Ce lecteur n'existe pas : choisissez un des lecteurs présents (« dmp-bridge readers » les liste).",
        "No such reader: choose one of the readers present (`dmp-bridge readers` lists them).",
    ),
    (ErrorCode.NO_CARD, "no-cps"): (
        "Aucune carte CPS dans les lecteurs : le code porteur ne sert qu'à une carte CPS (ou CPE, CPF).",
        "No CPS card in the readers: the PIN is only for a CPS (or CPE, CPF) card.",
    ),
    (ErrorCode.INVALID_PARAMS, "authentication-key: local-programs-only"): (
        "Une page web ne peut pas faire signer par la clé d'authentification de la carte (elle identifie le "
        "professionnel auprès du DMP) : utilisez la clé de signature, ou passez par un programme local (jeton).",
        "A web page cannot have the card's authentication key sign (it identifies the professional to the "
        "DMP): use the signature key, or a local program (token).",
    ),
}


class BridgeError(Exception):
    """An error with a stable code, safe to show to any caller.

    `detail` is a short non-secret precision (e.g. a status word, a DMP fault code); `extra` holds
    structured, non-secret values (e.g. ``{"triesLeft": 2}``).
    """

    def __init__(self, code: ErrorCode, detail: str | None = None, **extra: Any) -> None:
        self.code = code
        self.detail = detail
        self.extra = extra
        super().__init__(f"{code.value}: {detail}" if detail else code.value)

    @property
    def message_fr(self) -> str:
        """The French message."""
        return _DETAIL_MESSAGES.get((self.code, self.detail or ""), _MESSAGES[self.code])[0]

    @property
    def message_en(self) -> str:
        """The English message."""
        return _DETAIL_MESSAGES.get((self.code, self.detail or ""), _MESSAGES[self.code])[1]

    def to_data(self) -> dict[str, Any]:
        """The JSON-RPC `error.data` object: code, messages, the next step (hint), detail and extras."""
        from bridge.error_hints import hint  # the hints table imports ErrorCode from here

        hint_fr, hint_en = hint(self.code, self.extra)
        data: dict[str, Any] = {
            "code": self.code.value,
            "message_fr": self.message_fr,
            "message_en": self.message_en,
            "hint_fr": hint_fr,
            "hint_en": hint_en,
        }
        if self.detail:
            data["detail"] = self.detail
        data.update(self.extra)
        return data


def to_bridge_error(exc: BaseException) -> BridgeError:
    """Map any exception to a BridgeError; unknown ones become INTERNAL and are logged once."""
    if isinstance(exc, BridgeError):
        return exc
    # Subsystems register their own exception types by subclassing BridgeError; anything else is our bug.
    log.error("unexpected error", exc_info=exc)
    return BridgeError(ErrorCode.INTERNAL)
