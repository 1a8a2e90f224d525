"""TD0.4 (patientList, service patientsSpecific) and TD0.5 (PDQv3 PRPA_IN201305UV02, service patientsPDQ).

TD0.4 lists the DMPs the professional is authorised on, filtered by the date of the authorisation
(LASTAUTORIZATION) or of the last document (LASTDOC). The matrix's notes are applied: a CPE names the
professional of its structure whose DMPs it lists (`psOwnerId`, note 2; the structure itself is not
checked: the simulator does not know who works where), an establishment certificate may only ask for new
authorisations (note 3, LASTAUTORIZATION). TD0.5 matches the family name (accents and case aside), and the
given name, gender, birth date when given; at most `MAX_RESULTS` candidates, with the total and remaining
counts in the queryAck (the limit of 10 is MagicDMP's, notes §2).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid

from lxml import etree

from bridge.dmp.rights import Actor, Operation
from bridge.sim.dmp.access import Caller, Reply
from bridge.sim.dmp.authorizations import State, enforce
from bridge.sim.dmp.constants import NS
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore, PatientRow

__all__ = ["MAX_RESULTS", "SEED_HOMONYMS", "patient_list", "pdq_search"]

_NS = "urn:si-dmp-patients"
_HL7 = NS["hl7"]
_XSI = NS["xsi"]
_DMP_DEVICE = "1.2.250.1.213.4.1.1.1"
MAX_RESULTS = 10


def _nir(first13: str) -> str:
    number = int(first13.replace("2A", "19").replace("2B", "18"))
    return f"{first13}{97 - number % 97:02d}"


#: Twelve homonyms (test NIRs with valid keys), more than one TD0.5 answer holds; one written with a grave
#: accent, which the search folds.
SEED_HOMONYMS: tuple[PatientRow, ...] = tuple(
    PatientRow(_nir(f"1{70 + i:02d}0175{100 + i:03d}{200 + i:03d}"), "1.2.250.1.213.1.4.10", "active",
               "LEFÈBVRE" if i == 11 else "LEFEBVRE",
               f"LUC{'-' if i % 2 else ''}{chr(65 + i)}", f"19{70 + i}0101", "M")
    for i in range(12)
)  # fmt: skip


def _q(name: str) -> str:
    return f"{{{_NS}}}{name}"


def _h(path: str) -> str:
    return "/".join(f"{{{_HL7}}}{step}" for step in path.split("/"))


def _last_document(store: DmpStore, ins: str) -> str:
    rows = store.select("SELECT MAX(creation_time) FROM entries WHERE patient=?", (ins,))
    return str(rows[0][0] or "") if rows else ""


def patient_list(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD0.4: the DMPs the professional (or, for a CPE, `psOwnerId`) is authorised on since `startDate`."""
    if body.tag != _q("patientList"):
        raise SoapFault(FaultCode.INVALID_REQUEST, "patientList attendu")
    fields: dict[str, str] = {}
    for child in body:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace != _NS or name.localname not in {"startDate", "dateType", "psOwnerId"}:
            raise SoapFault(FaultCode.INVALID_REQUEST, f"Élément inattendu : {child.tag[:120]}")
        fields[name.localname] = (child.text or "").strip()
    start, date_type = fields.get("startDate", ""), fields.get("dateType", "")
    if not (len(start) == 14 and start.isdigit()) or date_type not in {"LASTAUTORIZATION", "LASTDOC"}:
        raise SoapFault(FaultCode.INVALID_REQUEST, "startDate AAAAMMJJhhmmss et dateType LASTAUTORIZATION|LASTDOC")
    actor = enforce(store, caller, Operation.TD0_4, None)
    owner = caller.vihf.name_id
    if actor is Actor.CPE:
        owner = fields.get("psOwnerId", "")
        if not owner:
            raise SoapFault(FaultCode.ACCESS_DENIED_BY_RIGHTS, "TD0.4 par CPE : psOwnerId (PS de la structure) attendu")
    if actor is Actor.CERTIFICAT_ES and date_type != "LASTAUTORIZATION":
        raise SoapFault(FaultCode.ACCESS_DENIED_BY_RIGHTS, "TD0.4 par certificat ES : nouvelles autorisations")
    out = etree.Element(_q("patientListResponse"), nsmap={"ns1": _NS})
    output = etree.SubElement(out, _q("output"))
    rows = store.select(
        "SELECT a.ins, a.treating, a.since, a.last_action FROM authorizations a WHERE a.professional=? AND a.state=? "
        "ORDER BY a.since",
        (owner, State.VALID.value),
    )
    for ins, treating, since, last_action in rows:
        patient = store.patient(str(ins))
        if patient is None or patient.status != "active":
            continue
        last_doc = _last_document(store, patient.ins)
        if (str(since) if date_type == "LASTAUTORIZATION" else last_doc[:14].ljust(14, "0")) < start:
            continue
        data = etree.SubElement(output, _q("patientlistData"))
        ident = etree.SubElement(data, _q("patientIdentifier"))
        etree.SubElement(ident, _q("nationalId")).text = patient.ins
        etree.SubElement(ident, _q("nationalIdType")).text = patient.oid
        for tag, value in (
            ("lastName", patient.family),
            ("firstName", patient.given),
            ("dateOfBirth", patient.birth),
            ("MT", "true" if treating else "false"),
            ("message", "false"),
            ("lastAccessDate", str(last_action)),
            ("lastUpdateDate", last_doc or str(last_action)),
            ("lastAddDate", last_doc),
        ):
            etree.SubElement(data, _q(tag)).text = value
    etree.SubElement(output, _q("status")).text = "DMPOk"
    return Reply(out)


def _fold(text: str) -> str:
    """Upper case without diacritics; hyphens and apostrophes as spaces (the DMP's matching is not public)."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(plain.upper().replace("-", " ").replace("'", " ").split())


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{_HL7}}}{name}", **attrs)
    if text is not None:
        el.text = text
    return el


def pdq_search(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD0.5: patients matching the traits, at most MAX_RESULTS, with the total in the queryAck."""
    if body.tag != f"{{{_HL7}}}PRPA_IN201305UV02":
        raise SoapFault(FaultCode.INVALID_REQUEST, "PRPA_IN201305UV02 attendu")
    code = body.find(_h("controlActProcess/code"))
    params = body.find(_h("controlActProcess/queryByParameter/parameterList"))
    if code is None or code.get("code") != "PRPA_TE201305UV02" or params is None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "controlActProcess/code PRPA_TE201305UV02 et parameterList attendus")
    family = _fold(params.findtext(_h("livingSubjectName/value/family")) or "")
    if not family:
        raise SoapFault(FaultCode.INVALID_REQUEST, "livingSubjectName/value/family attendu")
    given = _fold(params.findtext(_h("livingSubjectName/value/given")) or "")
    gender_el = params.find(_h("livingSubjectAdministrativeGender/value"))
    birth_el = params.find(_h("livingSubjectBirthTime/value"))
    enforce(store, caller, Operation.TD0_5, None)
    rows = [
        PatientRow(*(str(v) for v in r))
        for r in store.select("SELECT * FROM patients WHERE status='active' ORDER BY ins")
    ]
    found = [
        p
        for p in rows
        if _fold(p.family) == family
        and (not given or _fold(p.given) == given)
        and (gender_el is None or p.gender == gender_el.get("code"))
        and (birth_el is None or p.birth == birth_el.get("value"))
    ]
    shown = found[:MAX_RESULTS]
    out = etree.Element(f"{{{_HL7}}}PRPA_IN201306UV02", nsmap={None: _HL7, "xsi": _XSI}, ITSVersion="XML_1.0")
    _sub(out, "id", root=str(uuid.uuid4()))
    _sub(out, "creationTime", value=dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"))
    _sub(out, "interactionId", extension="PRPA_IN201306UV02", root="2.16.840.1.113883.1.6")
    _sub(out, "processingCode", code="P")
    _sub(out, "processingModeCode", code="T")
    _sub(out, "acceptAckCode", code="NE")
    for role, type_code, root, soft in (("receiver", "RCV", "", ""), ("sender", "SND", _DMP_DEVICE, "DMP")):
        device = _sub(_sub(out, role, typeCode=type_code), "device", classCode="DEV", determinerCode="INSTANCE")
        _sub(device, "id", root=root or (body.find(_h("sender/device/id")).get("root", "")
                                         if body.find(_h("sender/device/id")) is not None else ""))  # fmt: skip
        _sub(device, "softwareName", soft or body.findtext(_h("sender/device/softwareName"), ""))
    ack = _sub(out, "acknowledgement")
    _sub(ack, "typeCode", code="AA")
    request_id = body.find(_h("id"))
    target = _sub(_sub(ack, "targetMessage"), "id")
    if request_id is not None:
        target.set("extension", request_id.get("extension", ""))
        target.set("root", request_id.get("root", ""))
    control = _sub(out, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "code", code="PRPA_TE201306UV02", codeSystem="2.16.840.1.113883.1.6").set(f"{{{_XSI}}}type", "CS")
    for p in shown:
        event = _sub(_sub(control, "subject", contextConductionInd="false", typeCode="SUBJ"), "registrationEvent",
                     classCode="REG", moodCode="EVN")  # fmt: skip
        _sub(event, "statusCode", code="active")
        pat = _sub(_sub(event, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
        _sub(pat, "id", extension=p.ins, root=p.oid)
        _sub(pat, "statusCode", code="active")
        person = _sub(pat, "patientPerson", classCode="PSN", determinerCode="INSTANCE")
        name = _sub(person, "name")
        _sub(name, "given", p.given)
        _sub(name, "family", p.family, qualifier="SP")
        _sub(person, "administrativeGenderCode", code=p.gender)
        _sub(person, "birthTime", value=p.birth)
        match = _sub(_sub(pat, "subjectOf1", typeCode="SBJ"), "queryMatchObservation", classCode="COND", moodCode="EVN")
        _sub(match, "code", code="POURCENTAGE").set(f"{{{_XSI}}}type", "CS")
        _sub(match, "value", value="100").set(f"{{{_XSI}}}type", "INT")
        _sub(_sub(_sub(event, "custodian", typeCode="CST"), "assignedEntity", classCode="ASSIGNED"), "id",
             root=_DMP_DEVICE)  # fmt: skip
    query_ack = _sub(control, "queryAck")
    query_id = body.find(_h("controlActProcess/queryByParameter/queryId"))
    if query_id is not None:
        _sub(query_ack, "queryId", extension=query_id.get("extension", ""), root=query_id.get("root", ""))
    _sub(query_ack, "queryResponseCode", code="OK" if found else "NF")
    _sub(query_ack, "resultTotalQuantity", value=str(len(found)))
    _sub(query_ack, "resultCurrentQuantity", value=str(len(shown)))
    _sub(query_ack, "resultRemainingQuantity", value=str(len(found) - len(shown)))
    query = body.find(_h("controlActProcess/queryByParameter"))
    if query is not None:
        control.append(etree.fromstring(etree.tostring(query)))
    return Reply(out)
