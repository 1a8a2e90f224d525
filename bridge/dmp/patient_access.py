"""TD0.2 (test d'existence + vérification d'autorisation) and TD0.3 (mise à jour de l'autorisation), sans I/O.

TD0.2 is HL7v3 GDP `PRPA_IN201307UV02` (reasonCode TEST_EXST) answered by `PRPA_IN201308UV02`; TD0.3 is
`setAuthorization{action AJOUT|SUPPRESSION, role MEDECIN_TRAITANT?}` of the habilitations service,
answered by `setAuthorizationResponse/output{status, context}`. Shapes from the official samples
(`../shared/reference/dmp/messages/TD0.2_*`, `TD0.3_*`), the XSDs (HL7V3 NE2009 multicacheschemas) and
`Habilitations.wsdl`; codes from notes/dmp-webservices.md §2:
- AUTORISATION (`1.2.250.1.213.4.1.2.6.1`) value in `1.2.250.1.213.4.1.2.6.2`: VALIDE (sample), NON_EXISTE,
  INTERDIT (blocked by the patient), EXPIRE (MagicDMP; unconfirmed against the specification);
- STATUT_MT (`1.2.250.1.213.4.1.2.6.3`, BL): this professional is the DMP's médecin traitant;
- RATTACHEMENT_ENS (`1.2.250.1.213.4.1.2.3`, BL): the DMP is attached to the patient's ENS, i.e. Mon espace
  santé (PDT-INF-526 note 10 turns on it); COMPTE_INTERNET_OUVERT (`1.2.250.1.213.4.1.2.9`, BL);
- queryResponseCode OK (a DMP exists, active or closed by its statusCode) or NF (no DMP).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.failures import DmpFault, DmpInputError
from bridge.dmp.ns import HL7, XSI, q
from bridge.dmp.vihf import PatientIns

__all__ = [
    "AUTHORIZATIONS_NS",
    "AuthorizationAction",
    "AuthorizationState",
    "DmpState",
    "DmpStatus",
    "build_hl7_header",
    "build_patient_query",
    "build_set_authorization",
    "build_status_query",
    "parse_set_authorization",
    "parse_status",
]

AUTHORIZATIONS_NS = "urn:si-dmp-habilitations"
#: The DMP's device id (receiver of every GDP message).
DMP_DEVICE = "1.2.250.1.213.4.1.1.1"
_REASON_SYSTEM = "1.2.250.1.213.1.1.4.11"
_AUTHORIZATION_KEY = ("AUTORISATION", "1.2.250.1.213.4.1.2.6.1")
_AUTHORIZATION_SYSTEM = "1.2.250.1.213.4.1.2.6.2"
_TREATING_KEY = ("STATUT_MT", "1.2.250.1.213.4.1.2.6.3")


class DmpState(enum.Enum):
    """Whether the patient has a DMP."""

    EXISTS = "exists"
    CLOSED = "closed"
    #: No DMP for this INS (queryResponseCode NF).
    UNKNOWN = "unknown"


class AuthorizationState(enum.Enum):
    """This professional's authorisation on the DMP; values are the DMP's codes."""

    VALID = "VALIDE"
    EXPIRED = "EXPIRE"
    #: The patient blocked this professional.
    BLOCKED = "INTERDIT"
    NONE = "NON_EXISTE"


class AuthorizationAction(enum.Enum):
    """TD0.3 actions: declare oneself authorised, remove one's authorisation, remove oneself as MT."""

    DECLARE = "AJOUT"
    REMOVE = "SUPPRESSION"
    REMOVE_TREATING = "SUPPRESSION_MT"

    @property
    def wire(self) -> tuple[str, str | None]:
        """The (action, role) pair of the request."""
        if self is AuthorizationAction.REMOVE_TREATING:
            return "SUPPRESSION", "MEDECIN_TRAITANT"
        return self.value, None


@dataclass(frozen=True, kw_only=True)
class DmpStatus:
    """What TD0.2 says: the DMP's state, this professional's rights on it, and the patient as the DMP knows them."""

    dmp: DmpState
    authorization: AuthorizationState | None = None
    treating_physician: bool = False
    #: True when the DMP is associated with Mon espace santé (RATTACHEMENT_ENS); None when not said.
    mes: bool | None = None
    web_access_open: bool | None = None
    family: str = ""
    given: str = ""
    gender: str = ""
    birth_date: str = ""

    def __repr__(self) -> str:
        # Names and birth date never reach a log line through a repr.
        rights = self.authorization.name if self.authorization else None
        return f"DmpStatus({self.dmp.name}, {rights}, mt={self.treating_physician})"


def _sub(parent: Any, name: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, q(HL7, name), **attrs)
    if text is not None:
        el.text = text
    return el


def _device(parent: Any, role: str, type_code: str, root: str, name: str) -> None:
    device = _sub(_sub(parent, role, typeCode=type_code), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(device, "id", root=root)
    _sub(device, "softwareName", name)


def build_hl7_header(
    interaction: str,
    *,
    oid_root: str,
    lps_name: str,
    message_id: str,
    now: dt.datetime,
    nil_attention_line: bool = True,
) -> Any:
    """The GDP message root with its transmission wrapper (id, creationTime, interaction, receiver, sender)."""
    root = etree.Element(q(HL7, interaction), nsmap={None: HL7}, ITSVersion="XML_1.0")
    _sub(root, "id", root=f"{oid_root}.1.1", extension=message_id)
    _sub(root, "creationTime", value=now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S"))
    _sub(root, "interactionId", root="2.16.840.1.113883.1.6", extension=interaction)
    _sub(root, "processingCode", code="D")
    _sub(root, "processingModeCode", code="T")
    _sub(root, "acceptAckCode", code="AL")
    _device(root, "receiver", "RCV", DMP_DEVICE, "DMP")
    _device(root, "sender", "SND", oid_root, lps_name)
    if nil_attention_line:  # as the GDP samples; the PDQv3 sample (TD0.5) has none
        _sub(root, "attentionLine").set(q(XSI, "nil"), "true")
    return root


def build_status_query(
    patient: PatientIns, *, oid_root: str, lps_name: str, message_id: str, query_id: str, now: dt.datetime
) -> Any:
    """TD0.2 request body: PRPA_IN201307UV02 with reasonCode TEST_EXST and the patient's INS."""
    return build_patient_query(
        patient,
        reason=("TEST_EXST", "Test d'existence de dossier"),
        oid_root=oid_root,
        lps_name=lps_name,
        message_id=message_id,
        query_id=query_id,
        now=now,
    )


def build_patient_query(
    patient: PatientIns,
    *,
    reason: tuple[str, str],
    oid_root: str,
    lps_name: str,
    message_id: str,
    query_id: str,
    now: dt.datetime,
) -> Any:
    """A GDP PRPA_IN201307UV02 query on one patient with its reasonCode (TRE_R271: TEST_EXST, CNSLT_DATA)."""
    root = build_hl7_header("PRPA_IN201307UV02", oid_root=oid_root, lps_name=lps_name, message_id=message_id, now=now)
    control = _sub(root, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "reasonCode", code=reason[0], codeSystem=_REASON_SYSTEM, displayName=reason[1])
    query = _sub(control, "queryByParameter")
    _sub(query, "queryId", root=f"{oid_root}.2", extension=query_id)
    _sub(query, "statusCode", code="new")
    params = _sub(query, "parameterList")
    _sub(params, "dataSource").set(q(XSI, "nil"), "true")
    ident = _sub(params, "patientIdentifier")
    _sub(ident, "value", root=patient.oid.value, extension=patient.value)
    _sub(ident, "semanticsText", "Patient.id")
    return root


def _h(path: str) -> str:
    return "/".join(f"{{{HL7}}}{step}" for step in path.split("/"))


def _bool(el: Any) -> bool | None:
    value = None if el is None else el.get("value")
    return None if value is None else value == "true"


def parse_status(body: Any) -> DmpStatus:
    """TD0.2 answer (PRPA_IN201308UV02) → DmpStatus; a refusal (acknowledgement AE/AR) is a DmpFault error."""
    if body.tag != q(HL7, "PRPA_IN201308UV02"):
        raise DmpInputError("TD0.2: PRPA_IN201308UV02 expected")
    ack = body.find(_h("acknowledgement"))
    if ack is not None and ack.get("typeCode") not in {"AA", "CA"}:
        detail = ack.find(_h("acknowledgementDetail/code"))
        code = detail.get("code", "") if detail is not None else ack.get("typeCode", "AE")
        raise DmpFault(code="Receiver", subcode=code or "AE").to_error()
    response = body.find(_h("controlActProcess/queryAck/queryResponseCode"))
    if response is None:
        raise DmpInputError("TD0.2: queryResponseCode absent")
    code = response.get("code", "")
    if code == "NF":
        return DmpStatus(dmp=DmpState.UNKNOWN)
    if code != "OK":
        raise DmpFault(code="Receiver", subcode=f"queryResponseCode {code}"[:64]).to_error()
    authorization: AuthorizationState | None = None
    treating = False
    for line in body.iterfind(_h("attentionLine")):
        key = line.find(_h("keyWordText"))
        value = line.find(_h("value"))
        if key is None or value is None:
            continue
        if (key.get("code"), key.get("codeSystem")) == _AUTHORIZATION_KEY:
            try:
                authorization = AuthorizationState(value.get("code", ""))
            except ValueError:
                raise DmpInputError("TD0.2: unknown AUTORISATION value") from None
        elif (key.get("code"), key.get("codeSystem")) == _TREATING_KEY:
            treating = bool(_bool(value))
    patient = body.find(_h("controlActProcess/subject/registrationEvent/subject1/patient"))
    if patient is None:
        raise DmpInputError("TD0.2: registrationEvent/subject1/patient absent")
    closed = patient.find(_h("statusCode")) is not None and patient.find(_h("statusCode")).get("code") != "active"
    observations: dict[str, bool | None] = {}
    for obs in patient.iterfind(_h("subjectOf/administrativeObservation")):
        obs_code = obs.find(_h("code"))
        if obs_code is not None:
            observations[obs_code.get("code", "")] = _bool(obs.find(_h("value")))
    person = patient.find(_h("patientPerson"))
    name = person.find(_h("name")) if person is not None else None
    gender = person.find(_h("administrativeGenderCode")) if person is not None else None
    birth = person.find(_h("birthTime")) if person is not None else None
    return DmpStatus(
        dmp=DmpState.CLOSED if closed else DmpState.EXISTS,
        authorization=authorization,
        treating_physician=treating,
        mes=observations.get("RATTACHEMENT_ENS"),
        web_access_open=observations.get("COMPTE_INTERNET_OUVERT"),
        family=(name.findtext(_h("family")) or "") if name is not None else "",
        given=(name.findtext(_h("given")) or "") if name is not None else "",
        gender=gender.get("code", "") if gender is not None else "",
        birth_date=birth.get("value", "") if birth is not None else "",
    )


def build_set_authorization(action: AuthorizationAction) -> Any:
    """TD0.3 request body: setAuthorization{action, role?} (elements qualified, as the sample)."""
    root = etree.Element(q(AUTHORIZATIONS_NS, "setAuthorization"), nsmap={None: AUTHORIZATIONS_NS})
    verb, role = action.wire
    etree.SubElement(root, q(AUTHORIZATIONS_NS, "action")).text = verb
    if role is not None:
        etree.SubElement(root, q(AUTHORIZATIONS_NS, "role")).text = role
    return root


def parse_set_authorization(body: Any) -> str:
    """TD0.3 answer → the DMP's context text when the status is DMPOk; any other status is its DmpFault error."""
    if body.tag != q(AUTHORIZATIONS_NS, "setAuthorizationResponse"):
        raise DmpInputError("TD0.3: setAuthorizationResponse expected")
    output = body.find(q(AUTHORIZATIONS_NS, "output"))
    status = (output.findtext(q(AUTHORIZATIONS_NS, "status")) or "").strip() if output is not None else ""
    context = (output.findtext(q(AUTHORIZATIONS_NS, "context")) or "").strip() if output is not None else ""
    if status != "DMPOk":
        raise DmpFault(code="Receiver", subcode=status or "DMPError", reason=context).to_error()
    return context
