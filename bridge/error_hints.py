"""What a person does next, for each error code: the `hint_fr`/`hint_en` every error carries.

The message (`bridge.errors`) says what happened; the hint says what to do about it, in words for the
person at the workstation. The CLI prints it under the message, the SDK exposes it as `error.hint`,
the diagnostics page and the tray show it. Values in braces come from the error's structured extras
(e.g. {triesLeft}); a hint whose value is missing falls back to its general form.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from bridge.errors import ErrorCode

__all__ = ["HINTS", "hint"]

_DOCTOR = "« dmp-bridge doctor »"

#: Code -> (French, English); optionally a more precise pair when the extras give the values it names.
HINTS: Mapping[ErrorCode, tuple[str, str]] = MappingProxyType(
    {
        ErrorCode.NO_READER: (
            f"Branchez un lecteur de cartes (ou essayez un autre port USB) puis réessayez ; {_DOCTOR} vérifie son "
            "pilote.",
            "Plug in a card reader (or try another USB port), then try again; `dmp-bridge doctor` checks its driver.",
        ),
        ErrorCode.NO_CARD: (
            "Insérez la carte, puce vers le haut et vers le lecteur, puis réessayez.",
            "Insert the card, chip up and towards the reader, then try again.",
        ),
        ErrorCode.CARD_REMOVED: (
            "Réinsérez la carte et recommencez l'opération.",
            "Insert the card again and restart the operation.",
        ),
        ErrorCode.CARD_RESET: (
            "Recommencez l'opération ; si cela se répète, fermez les autres logiciels qui utilisent la carte.",
            "Restart the operation; if it happens again, close the other programs that use the card.",
        ),
        ErrorCode.UNSUPPORTED_CARD: (
            "Utilisez une carte CPS, CPE ou Vitale 2, et vérifiez son sens d'insertion.",
            "Use a CPS, CPE or Vitale 2 card, and check which way it is inserted.",
        ),
        ErrorCode.CARD_ERROR: (
            f"Retirez et réinsérez la carte ; si l'erreur persiste, lancez {_DOCTOR}.",
            "Remove and insert the card again; if the error persists, run `dmp-bridge doctor`.",
        ),
        ErrorCode.PIN_INCORRECT: (
            "Vérifiez le code porteur avant de le ressaisir : {triesLeft} essai(s) restant(s).",
            "Check the PIN before typing it again: {triesLeft} try(ies) left.",
        ),
        ErrorCode.PIN_BLOCKED: (
            "Débloquez la carte avec son code de déblocage (outil de gestion de la Cryptolib CPS), ou demandez une "
            "nouvelle carte.",
            "Unblock the card with its unblocking code (the Cryptolib CPS management tool), or order a new card.",
        ),
        ErrorCode.PIN_LAST_TRY: (
            "Vérifiez le code avant de le saisir, puis confirmez ce dernier essai au poste de travail "
            "(« dmp-bridge card --pin-stdin --force-last-try »).",
            "Check the PIN before typing it, then confirm this last try at the workstation "
            "(`dmp-bridge card --pin-stdin --force-last-try`).",
        ),
        ErrorCode.PIN_REQUIRED: (
            "Saisissez le code porteur de la carte CPS pour vous identifier.",
            "Enter the CPS card's PIN to identify yourself.",
        ),
        ErrorCode.CARD_BUSY: (
            "Attendez la fin de l'opération en cours sur la carte, puis réessayez.",
            "Wait for the operation in progress on the card to end, then try again.",
        ),
        ErrorCode.SHARING_VIOLATION: (
            "Fermez le logiciel qui garde la carte (autre logiciel de santé, outil de la Cryptolib), puis réessayez.",
            "Close the program holding the card (another health program, a Cryptolib tool), then try again.",
        ),
        ErrorCode.PCSC_UNAVAILABLE: (
            f"Redémarrez le service carte à puce (« sudo systemctl restart pcscd ») ; {_DOCTOR} vérifie le reste.",
            "Restart the smart card service (`sudo systemctl restart pcscd`); `dmp-bridge doctor` checks the rest.",
        ),
        ErrorCode.TIMEOUT: (
            f"Réessayez ; si cela se répète, lancez {_DOCTOR} (réseau, carte).",
            "Try again; if it happens again, run `dmp-bridge doctor` (network, card).",
        ),
        ErrorCode.ORIGIN_NOT_APPROVED: (
            "Approuvez ce site dans le menu de l'icône du pont (ou « dmp-bridge origins approve CODE »).",
            "Approve this site in the bridge icon's menu (or `dmp-bridge origins approve CODE`).",
        ),
        ErrorCode.UNAUTHORIZED: (
            "Le jeton local a changé : redonnez au logiciel le jeton courant, ou redémarrez-le ; si cela persiste, "
            "redémarrez le pont.",
            "The local token changed: give the program the current token, or restart it; if it persists, restart "
            "the bridge.",
        ),
        ErrorCode.DMP_UNREACHABLE: (
            f"Vérifiez la connexion réseau du poste ; {_DOCTOR} teste l'accès au DMP.",
            "Check the workstation's network connection; `dmp-bridge doctor` tests access to the DMP.",
        ),
        ErrorCode.DMP_FAULT: (
            "Corrigez la demande si le détail l'explique ; sinon contactez le support DMP en donnant le code du DMP.",
            "Fix the request if the detail explains it; otherwise contact DMP support with the DMP's code.",
        ),
        ErrorCode.DMP_OUTCOME_UNKNOWN: (
            "Cherchez le document {uniqueId} dans le DMP avant de le renvoyer.",
            "Look for document {uniqueId} in the DMP before sending it again.",
        ),
        ErrorCode.NOT_PERMITTED_FOR_ACTOR: (
            "Demandez à un professionnel qui y a droit (l'auteur du document, le médecin traitant), ou utilisez le "
            "mode d'accès prévu pour cette situation.",
            "Ask a professional entitled to it (the document's author, the médecin traitant), or use the access "
            "mode meant for this situation.",
        ),
        ErrorCode.CERTIFICATE_EXPIRED: (
            "Expiré le {expiredOn} : demandez son renouvellement (carte CPS : commande auprès de l'ANS ou du "
            "gestionnaire de cartes ; certificat d'établissement : auprès de l'IGC-Santé).",
            "Expired on {expiredOn}: have it renewed (CPS card: order from the ANS or the card manager; "
            "establishment certificate: from the IGC-Santé).",
        ),
        ErrorCode.CERTIFICATE_NOT_YET_VALID: (
            "Valide à partir du {validFrom} : vérifiez la date et l'heure du poste ; si elles sont justes, utilisez "
            "l'ancienne carte jusque-là.",
            "Valid from {validFrom}: check the workstation's date and time; if they are right, use the old card "
            "until then.",
        ),
        ErrorCode.INS_NOT_FOUND: (
            "Vérifiez les traits sur une pièce d'identité (nom de naissance, prénoms, sexe, date de naissance).",
            "Check the traits against an identity document (birth name, first names, sex, birth date).",
        ),
        ErrorCode.INS_MULTIPLE_MATCHES: (
            "Ajoutez le lieu de naissance (code INSEE) ou tous les prénoms, puis recommencez.",
            "Add the birth place (INSEE code) or all the first names, then try again.",
        ),
        ErrorCode.INS_MISMATCH: (
            "N'utilisez pas cet INS : reprenez l'identité renvoyée par le téléservice INSi.",
            "Do not use this INS: take the identity the INSi returned.",
        ),
        ErrorCode.INS_NOT_QUALIFIED: (
            "Qualifiez l'INS avec le téléservice INSi (ins.search), ou dites explicitement que le document peut "
            "partir avec un INS non qualifié.",
            "Qualify the INS with the INSi (ins.search), or state explicitly that the document may go with an "
            "unqualified INS.",
        ),
        ErrorCode.INSI_UNAVAILABLE: (
            f"Réessayez dans un instant ; si cela dure, {_DOCTOR} vérifie le réseau.",
            "Try again in a moment; if it lasts, `dmp-bridge doctor` checks the network.",
        ),
        ErrorCode.INSI_REFUSED: (
            "Vérifiez la carte CPS (connectée, valide) ou le certificat d'établissement, puis recommencez.",
            "Check the CPS card (logged in, valid) or the establishment certificate, then try again.",
        ),
        ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED: (
            "Contactez l'éditeur ou votre responsable informatique : le numéro d'autorisation INSi est à revoir.",
            "Contact the vendor or your IT manager: the INSi authorisation number must be checked.",
        ),
        ErrorCode.DMP_UNKNOWN: (
            "Vérifiez l'INS (qualifié par le téléservice INSi) ; le DMP est créé automatiquement pour tout assuré, "
            "sauf opposition du patient.",
            "Check the INS (qualified through the INSi); a DMP is created automatically for every insured person "
            "unless they opposed it.",
        ),
        ErrorCode.DMP_CLOSED: (
            "Rien ne peut y être lu ni ajouté : le patient peut le rouvrir depuis Mon espace santé.",
            "Nothing can be read or added: the patient can reopen it from Mon espace santé.",
        ),
        ErrorCode.DMP_NOT_AUTHORIZED: (
            "Avec l'accord du patient, déclarez-vous autorisé (dmp.patient.authorize) ; en urgence, utilisez le "
            "mode bris de glace.",
            "With the patient's agreement, declare yourself authorised (dmp.patient.authorize); in an emergency, "
            "use break-glass access.",
        ),
        ErrorCode.DMP_AUTHORIZATION_EXPIRED: (
            "Avec l'accord du patient, déclarez-vous de nouveau autorisé (dmp.patient.authorize).",
            "With the patient's agreement, declare yourself authorised again (dmp.patient.authorize).",
        ),
        ErrorCode.BLOCKED_BY_PATIENT: (
            "Seul le patient peut lever ce blocage, depuis Mon espace santé.",
            "Only the patient can lift this block, from Mon espace santé.",
        ),
        ErrorCode.DMP_MANAGED_BY_MES: (
            "Invitez le patient à faire ce changement lui-même dans Mon espace santé.",
            "Ask the patient to make this change in Mon espace santé.",
        ),
        ErrorCode.DOCUMENT_UNKNOWN: (
            "Relancez une recherche des documents du patient, puis choisissez le document dans la liste.",
            "Search the patient's documents again, then pick the document from the list.",
        ),
        ErrorCode.DOCUMENT_ALREADY_EXISTS: (
            "Ne renvoyez pas ce document : il est déjà dans le DMP (cherchez-le par son identifiant).",
            "Do not send this document again: it is already in the DMP (look it up by its identifier).",
        ),
        ErrorCode.PATIENT_MISMATCH: (
            "Vérifiez que l'INS utilisé est bien celui du patient du document.",
            "Check that the INS used is the document's patient's.",
        ),
        ErrorCode.DMP_AUTHENTICATION_REFUSED: (
            f"Vérifiez la carte CPS (connectée, valide) et l'heure du poste ; {_DOCTOR} aide à trouver la cause.",
            "Check the CPS card (logged in, valid) and the workstation's clock; `dmp-bridge doctor` helps find the "
            "cause.",
        ),
        ErrorCode.DMP_REQUEST_REFUSED: (
            "Signalez-le à l'éditeur du logiciel avec le code du DMP indiqué.",
            "Report it to the software vendor with the DMP code given.",
        ),
        ErrorCode.INVALID_PARAMS: (
            "Corrigez la valeur nommée dans le détail, puis recommencez.",
            "Fix the value named in the detail, then try again.",
        ),
        ErrorCode.INVALID_INPUT: (
            "Vérifiez le fichier fourni ; s'il s'agit d'une réponse du DMP, réessayez plus tard.",
            "Check the file given; if it is an answer from the DMP, try again later.",
        ),
        ErrorCode.NOT_FOUND: (
            "Vérifiez l'identifiant demandé.",
            "Check the identifier asked for.",
        ),
        ErrorCode.INTERNAL: (
            "Redémarrez le pont ; si cela se répète, envoyez au support le fichier produit par "
            "« dmp-bridge doctor --bundle support.zip ».",
            "Restart the bridge; if it happens again, send support the file made by "
            "`dmp-bridge doctor --bundle support.zip`.",
        ),
    }
)


#: The form of a hint with values, for an error that lacks them.
_WITHOUT_VALUES: Mapping[ErrorCode, tuple[str, str]] = MappingProxyType(
    {
        ErrorCode.PIN_INCORRECT: (
            "Vérifiez le code porteur avant de le ressaisir.",
            "Check the PIN before typing it again.",
        ),
        ErrorCode.CERTIFICATE_EXPIRED: (
            "Demandez son renouvellement (carte CPS : auprès de l'ANS ; certificat d'établissement : IGC-Santé).",
            "Have it renewed (CPS card: from the ANS; establishment certificate: from the IGC-Santé).",
        ),
        ErrorCode.CERTIFICATE_NOT_YET_VALID: (
            "Vérifiez la date et l'heure du poste.",
            "Check the workstation's date and time.",
        ),
        ErrorCode.DMP_OUTCOME_UNKNOWN: (
            "Cherchez le document dans le DMP avant de le renvoyer.",
            "Look for the document in the DMP before sending it again.",
        ),
    }
)


def hint(code: ErrorCode, extra: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """The (French, English) next step for `code`, filled from `extra`; generic when a value is missing."""
    french, english = HINTS.get(code, HINTS[ErrorCode.INTERNAL])
    try:
        return french.format_map(dict(extra or {})), english.format_map(dict(extra or {}))
    except (KeyError, ValueError, IndexError):
        return _WITHOUT_VALUES[code]
