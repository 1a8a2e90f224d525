"""Where each DMP transaction goes and how its request is put on the wire (service path, Action, MTOM).

`encode_request` turns a body element into the HTTP Content-Type and bytes of the request: a SOAP 1.2
envelope with WS-Addressing and the VIHF, as a multipart MTOM message when documents travel with it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dmp.codes import WsaAction
from bridge.dmp.mtom import MtomPart, build_mtom
from bridge.dmp.soap import build_envelope, envelope_bytes

__all__ = ["Endpoint", "Transaction", "encode_request"]


@dataclass(frozen=True)
class Endpoint:
    """Service path suffix (appended to the DMP base URL), WS-Addressing Action, MTOM request or not."""

    path: str
    action: str
    mtom: bool
    #: True only for reads: applying the request twice changes nothing, so it may be sent again
    #: automatically. Writes (TD2.1, ITI-57, and TD0.3, TD1.3b, TD1.4 when added) stay False: at most once.
    idempotent: bool = False


class Transaction(enum.Enum):
    """The DMP document transactions built by this package, valued by their TD code."""

    #: Provide and register (ITI-41), documents as MTOM parts.
    TD2_1 = "TD2.1"
    #: Registry stored query (ITI-18).
    TD3_1 = "TD3.1"
    #: Retrieve document set (ITI-43); the answer is MTOM.
    TD3_2 = "TD3.2"
    #: Metadata update (ITI-57): visibility, archive/unarchive, delete.
    TD3_3 = "TD3.3"
    #: Test d'existence et vérification d'autorisation (HL7v3 GDP, patients service).
    TD0_2 = "TD0.2"
    #: Mise à jour de l'autorisation (habilitations service).
    TD0_3 = "TD0.3"
    #: Liste des PS autorisés / bloqués (habilitations service).
    TD1_6 = "TD1.6"
    #: Consultation / modification des données administratives, fermeture (GDP, patients service).
    TD1_3A = "TD1.3a"
    TD1_3B = "TD1.3b"
    TD1_4 = "TD1.4"
    #: Liste des DMP autorisés (patientsSpecific service).
    TD0_4 = "TD0.4"
    #: Recherche d'un patient sans INS (PDQv3, patientsPDQ service).
    TD0_5 = "TD0.5"

    @property
    def endpoint(self) -> Endpoint:
        """Service path, Action and MTOM use of the transaction (official samples and kit)."""
        return {
            "TD2.1": Endpoint("repository", WsaAction.PROVIDE_AND_REGISTER.value, True),
            "TD3.1": Endpoint("registry", WsaAction.REGISTRY_STORED_QUERY.value, False, idempotent=True),
            "TD3.2": Endpoint("repository", WsaAction.RETRIEVE_DOCUMENT_SET.value, False, idempotent=True),
            "TD3.3": Endpoint("registry", WsaAction.UPDATE_DOCUMENT_SET.value, False),
            "TD0.2": Endpoint("patients", WsaAction.PRPA_IN201307UV02.value, False, idempotent=True),
            "TD0.3": Endpoint("habilitations", WsaAction.SET_AUTHORIZATION.value, False),
            "TD1.6": Endpoint("habilitations", WsaAction.LIST_AUTHORIZATIONS.value, False, idempotent=True),
            "TD1.3a": Endpoint("patients", WsaAction.PRPA_IN201307UV02.value, False, idempotent=True),
            "TD1.3b": Endpoint("patients", WsaAction.PRPA_IN201314UV02.value, False),
            "TD1.4": Endpoint("patients", WsaAction.PRPA_IN201314UV02.value, False),
            "TD0.4": Endpoint("patientsSpecific", WsaAction.PATIENT_LIST.value, False, idempotent=True),
            "TD0.5": Endpoint("patientsPDQ", WsaAction.PRPA_IN201305UV02.value, False, idempotent=True),
        }[self.value]


def encode_request(
    body: Any,
    *,
    transaction: Transaction,
    message_id: str,
    vihf: Any,
    to: str | None = None,
    parts: Sequence[MtomPart] = (),
    boundary: str | None = None,
    root_id: str = "root.message@dmp-bridge",
) -> tuple[str, bytes]:
    """HTTP Content-Type and body of a request; MTOM (needs `boundary`) when the transaction carries parts."""
    endpoint = transaction.endpoint
    envelope = envelope_bytes(build_envelope(body, action=endpoint.action, message_id=message_id, vihf=vihf, to=to))
    if endpoint.mtom or parts:
        if boundary is None:
            raise ValueError("an MTOM request needs a boundary")
        return build_mtom(envelope, parts, boundary=boundary, root_id=root_id, action=endpoint.action)
    return f'application/soap+xml; charset=UTF-8; action="{endpoint.action}"', envelope
