"""TD1.3a (consultation), TD1.3b (modification) of a DMP's administrative data and TD1.4 (fermeture), sans I/O.

TD1.3a is the TD0.2 query with reasonCode CNSLT_DATA; TD1.3b and TD1.4 are GDP `PRPA_IN201314UV02`
(reasonCode MODIF_DATA / FERM, `registrationRequest` with the patient and the author), answered by
`asip:ci-sis:gdp:2010` `PRPA_IN201314UV02_Response` holding `PRPA_IN201315UV02` (accepted) or
`PRPA_IN201316UV02` (refused, `acknowledgementDetail/code` = the DMP's code, e.g. DMPClosed). Shapes from
the official samples `TD1.3a_*`, `TD1.3b_*`, `TD1.4_*` and the HL7V3 NE2009 XSDs; oppositions
(`OPPOSITION_BRIS_DE_GLACE`, `OPPOSITION_ACCES_URGENCE`, `1.2.250.1.213.4.1.2.3`) and the closing reason
(`FERMETURE_DEMANDE_PATIENT`, `1.2.250.1.213.4.1.2.4`) from the samples. PDT-INF-526 note (10): TD1.3b and
TD1.4 only for DMPs not associated with Mon espace santé (checked by the caller with `rights.require`).

The author's `code` carries the specialty code where the samples show the OID `1.2.250.1.71.4.2.5` in
`code` (a sample quirk, same attributes): no public source settles which the DMP reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bridge.dmp.failures import DmpFault, DmpInputError
from bridge.dmp.ns import HL7, XSI, q
from bridge.dmp.patient_access import build_hl7_header, build_patient_query
from bridge.dmp.vihf import PatientIns

__all__ = [
    "GDP_NS",
    "AdminData",
    "Author",
    "build_admin_query",
    "build_close",
    "build_update",
    "parse_admin",
    "parse_registration_answer",
]

GDP_NS = "asip:ci-sis:gdp:2010"
_REASON_SYSTEM = "1.2.250.1.213.1.1.4.11"
_OBSERVATION_SYSTEM = "1.2.250.1.213.4.1.2.3"
_CLOSING_SYSTEM = "1.2.250.1.213.4.1.2.4"
_RPPS_ROOT = "1.2.250.1.71.4.2.1"
_STRUCTURE_ROOT = "1.2.250.1.71.4.2.2"
_OPPOSITIONS = {
    "OPPOSITION_BRIS_DE_GLACE": "opposition au mode bris de glace",
    "OPPOSITION_ACCES_URGENCE": "opposition à l'accès au mode urgence",
}


@dataclass(frozen=True, kw_only=True)
class AdminData:
    """A DMP's administrative data as TD1.3a gives and TD1.3b takes them."""

    family: str
    given: str
    prefix: str = ""
    gender: str = ""
    birth_date: str = ""
    #: (use, value) pairs, e.g. ("MC", "tel:0601020304"), ("", "mailto:x@y.fr").
    telecoms: tuple[tuple[str, str], ...] = ()
    street: tuple[str, ...] = ()
    postal_code: str = ""
    city: str = ""
    country: str = ""
    opposition_bris_de_glace: bool = False
    opposition_acces_urgence: bool = False
    closed: bool = False
    #: Legal representatives' names (family, given), read only.
    representatives: tuple[tuple[str, str], ...] = field(default=())

    def __repr__(self) -> str:
        return f"AdminData(<redacted>, closed={self.closed})"


@dataclass(frozen=True, kw_only=True)
class Author:
    """Who asks for TD1.3b/TD1.4 (the samples' `author/assignedEntity`)."""

    national_id: str
    family: str
    given: str
    specialty_code: str
    specialty_label: str
    structure_id: str
    structure_name: str


def _sub(parent: Any, name: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, q(HL7, name), **attrs)
    if text is not None:
        el.text = text
    return el


def _h(path: str) -> str:
    return "/".join(f"{{{HL7}}}{step}" for step in path.split("/"))


def build_admin_query(
    patient: PatientIns, *, oid_root: str, lps_name: str, message_id: str, query_id: str, now: dt.datetime
) -> Any:
    """TD1.3a request body: PRPA_IN201307UV02 with reasonCode CNSLT_DATA."""
    return build_patient_query(
        patient,
        reason=("CNSLT_DATA", "Consultation des données de gestion de dossier"),
        oid_root=oid_root,
        lps_name=lps_name,
        message_id=message_id,
        query_id=query_id,
        now=now,
    )


def _bool(el: Any) -> bool:
    return el is not None and el.get("value") == "true"


def parse_admin(body: Any) -> AdminData:
    """TD1.3a answer → AdminData; no DMP (NF) is DMP_UNKNOWN, a refusal its mapped error."""
    if body.tag != q(HL7, "PRPA_IN201308UV02"):
        raise DmpInputError("TD1.3a: PRPA_IN201308UV02 expected")
    _raise_on_refusal(body)
    response = body.find(_h("controlActProcess/queryAck/queryResponseCode"))
    if response is not None and response.get("code") == "NF":
        raise DmpFault(code="Receiver", subcode="DMPPatientNotFound").to_error()
    patient = body.find(_h("controlActProcess/subject/registrationEvent/subject1/patient"))
    if patient is None:
        raise DmpInputError("TD1.3a: registrationEvent/subject1/patient absent")
    person = patient.find(_h("patientPerson"))
    if person is None:
        raise DmpInputError("TD1.3a: patientPerson absent")
    name = person.find(_h("name"))
    addr = person.find(_h("addr"))
    status = patient.find(_h("statusCode"))
    observations = {
        (obs.find(_h("code")).get("code", "") if obs.find(_h("code")) is not None else ""): _bool(obs.find(_h("value")))
        for obs in patient.iterfind(_h("subjectOf/administrativeObservation"))
    }
    representatives = tuple(
        ((holder.findtext(_h("name/family")) or "").strip(), (holder.findtext(_h("name/given")) or "").strip())
        for holder in person.iterfind(_h("personalRelationship/relationshipHolder1"))
    )
    gender = person.find(_h("administrativeGenderCode"))
    birth = person.find(_h("birthTime"))
    return AdminData(
        family=(name.findtext(_h("family")) or "").strip() if name is not None else "",
        given=(name.findtext(_h("given")) or "").strip() if name is not None else "",
        prefix=(name.findtext(_h("prefix")) or "").strip() if name is not None else "",
        gender=gender.get("code", "") if gender is not None else "",
        birth_date=birth.get("value", "") if birth is not None else "",
        telecoms=tuple(dict.fromkeys((t.get("use", ""), t.get("value", "")) for t in person.iterfind(_h("telecom")))),
        street=tuple((line.text or "").strip() for line in addr.iterfind(_h("streetAddressLine")))
        if addr is not None
        else (),
        postal_code=(addr.findtext(_h("postalCode")) or "").strip() if addr is not None else "",
        city=(addr.findtext(_h("city")) or "").strip() if addr is not None else "",
        country=(addr.findtext(_h("country")) or "").strip() if addr is not None else "",
        opposition_bris_de_glace=observations.get("OPPOSITION_BRIS_DE_GLACE", False),
        opposition_acces_urgence=observations.get("OPPOSITION_ACCES_URGENCE", False),
        closed=status is not None and status.get("code") != "active",
        representatives=representatives,
    )


def _registration(
    reason: tuple[str, str],
    patient: PatientIns,
    data: AdminData,
    author: Author,
    *,
    status: str,
    oid_root: str,
    lps_name: str,
    message_id: str,
    now: dt.datetime,
) -> tuple[Any, Any, Any]:
    root = build_hl7_header("PRPA_IN201314UV02", oid_root=oid_root, lps_name=lps_name, message_id=message_id, now=now)
    control = _sub(root, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "reasonCode", code=reason[0], codeSystem=_REASON_SYSTEM, displayName=reason[1])
    request = _sub(
        _sub(control, "subject", typeCode="SUBJ", contextConductionInd="false"),
        "registrationRequest",
        classCode="REG",
        moodCode="RQO",
    )
    _sub(request, "statusCode", code="active")
    pat = _sub(_sub(request, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
    _sub(pat, "id", root=patient.oid.value, extension=patient.value)
    _sub(pat, "statusCode", code=status)
    person = _sub(pat, "patientPerson", classCode="PSN", determinerCode="INSTANCE")
    name = _sub(person, "name")
    if data.prefix:
        _sub(name, "prefix", data.prefix)
    _sub(name, "family", data.family, qualifier="SP")
    _sub(name, "given", data.given)
    assigned = _sub(_sub(request, "author", typeCode="AUT"), "assignedEntity", classCode="ASSIGNED")
    _sub(assigned, "id", root=_RPPS_ROOT, extension=author.national_id)
    _sub(assigned, "code", code=author.specialty_code, displayName=author.specialty_label)
    who = _sub(_sub(assigned, "assignedPerson", classCode="PSN", determinerCode="INSTANCE"), "name")
    _sub(who, "family", author.family)
    _sub(who, "given", author.given)
    org = _sub(assigned, "representedOrganization", classCode="ORG", determinerCode="INSTANCE")
    _sub(org, "id", root=_STRUCTURE_ROOT, extension=author.structure_id)
    _sub(org, "name", author.structure_name)
    # Required by the XSD (COCT_MT150000UV02 contactParty 1..*), present in the TD1.4 sample, absent from TD1.3b's.
    _sub(org, "contactParty", classCode="CON")
    return root, control, (pat, person)


def build_update(
    patient: PatientIns, data: AdminData, author: Author, *, oid_root: str, lps_name: str, message_id: str,
    now: dt.datetime,
) -> Any:  # fmt: skip
    """TD1.3b request body: MODIF_DATA with the new administrative data and the oppositions."""
    root, _, (pat, person) = _registration(
        ("MODIF_DATA", "Modification des données de gestion du dossier"), patient, data, author, status="active",
        oid_root=oid_root, lps_name=lps_name, message_id=message_id, now=now,
    )  # fmt: skip
    # As the TD1.3b sample (not the TD1.4 one): the author's name typed PN.
    root.find(_h("controlActProcess/subject/registrationRequest/author/assignedEntity/assignedPerson/name")).set(
        q(XSI, "type"), "PN"
    )
    # Order of the XSD (COCT_MT050000UV01 Person): name, telecom, gender, birthTime, addr.
    for use, value in data.telecoms:
        attrs = {"value": value, **({"use": use} if use else {})}
        _sub(person, "telecom", **attrs)
    if data.gender:
        _sub(person, "administrativeGenderCode", code=data.gender)
    if data.birth_date:
        _sub(person, "birthTime", value=data.birth_date)
    if data.street or data.postal_code or data.city or data.country:
        addr = _sub(person, "addr")
        for line in data.street:
            _sub(addr, "streetAddressLine", line)
        for tag, value in (("postalCode", data.postal_code), ("city", data.city), ("country", data.country)):
            if value:
                _sub(addr, tag, value)
    for code, flag in (
        ("OPPOSITION_BRIS_DE_GLACE", data.opposition_bris_de_glace),
        ("OPPOSITION_ACCES_URGENCE", data.opposition_acces_urgence),
    ):
        obs = _sub(_sub(pat, "subjectOf", typeCode="SBJ"), "administrativeObservation", classCode="OBS", moodCode="EVN")
        _sub(obs, "code", code=code, codeSystem=_OBSERVATION_SYSTEM, displayName=_OPPOSITIONS[code])
        _sub(obs, "value", value="true" if flag else "false").set(q(XSI, "type"), "BL")
    return root


def build_close(
    patient: PatientIns, data: AdminData, author: Author, *, oid_root: str, lps_name: str, message_id: str,
    now: dt.datetime,
) -> Any:  # fmt: skip
    """TD1.4 request body: FERM, patient statusCode terminated, reason FERMETURE_DEMANDE_PATIENT."""
    root, control, _ = _registration(
        ("FERM", "Fermeture de dossier"), patient, data, author, status="terminated",
        oid_root=oid_root, lps_name=lps_name, message_id=message_id, now=now,
    )  # fmt: skip
    event = _sub(_sub(control, "reasonOf", typeCode="RSON"), "detectedIssueEvent", classCode="ALRT", moodCode="EVN")
    _sub(event, "code", code="FERMETURE_DEMANDE_PATIENT", codeSystem=_CLOSING_SYSTEM)
    _sub(event, "text", "FERMETURE_DEMANDE_PATIENT")
    return root


def _raise_on_refusal(message: Any) -> None:
    ack = message.find(_h("acknowledgement"))
    if ack is not None and ack.get("typeCode") not in {"AA", "CA"}:
        detail = ack.find(_h("acknowledgementDetail/code"))
        code = detail.get("code", "") if detail is not None else ""
        raise DmpFault(code="Receiver", subcode=code or ack.get("typeCode", "AE")).to_error()


def parse_registration_answer(body: Any) -> None:
    """TD1.3b/TD1.4 answer: returns when accepted (PRPA_IN201315UV02), raises the mapped DMP error otherwise."""
    if body.tag != q(GDP_NS, "PRPA_IN201314UV02_Response"):
        raise DmpInputError("TD1.3b/TD1.4: PRPA_IN201314UV02_Response expected")
    message = next((c for c in body if isinstance(c.tag, str)), None)
    if message is None:
        raise DmpInputError("TD1.3b/TD1.4: empty answer")
    _raise_on_refusal(message)
    if message.tag != q(HL7, "PRPA_IN201315UV02"):
        raise DmpFault(code="Receiver", subcode="DMPError").to_error()
