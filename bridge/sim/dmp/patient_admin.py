"""The simulated DMP's administrative data: TD1.3a details in the GDP answer, TD1.3b (MODIF_DATA) and
TD1.4 (FERM) registration requests (PRPA_IN201314UV02 → PRPA_IN201314UV02_Response / PRPA_IN201315UV02).

Strict as the DMP: the request's patient is the VIHF's, the author is the VIHF's user, the rights matrix
applies (PDT-INF-526 note 10: TD1.3b/TD1.4 refused on a DMP associated with Mon espace santé, fault
DMPNotAllowedForMesDmp). An unknown or closed DMP answers PRPA_IN201316UV02 with acknowledgement AE and
`acknowledgementDetail/code` DMPPatientNotFound / DMPClosed (as the GIE kit's tests read DMPClosed; the
refusal message's exact shape is not public).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from lxml import etree

from bridge.dmp.rights import Operation
from bridge.sim.dmp.access import Caller, Reply
from bridge.sim.dmp.authorizations import enforce
from bridge.sim.dmp.constants import NS
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore

__all__ = ["add_details", "registration", "seed_admin"]

_HL7 = NS["hl7"]
_XSI = NS["xsi"]
_GDP = "asip:ci-sis:gdp:2010"
_DMP_DEVICE = "1.2.250.1.213.4.1.1.1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS patient_admin(
    ins TEXT PRIMARY KEY, telecoms TEXT NOT NULL, street TEXT NOT NULL, postal TEXT NOT NULL,
    city TEXT NOT NULL, country TEXT NOT NULL, opposition_bdg INTEGER NOT NULL, opposition_urgence INTEGER NOT NULL);
"""
_SEED = (
    ("207058575627097", [["", "mailto:alain@gmail.com"], ["MC", "tel:0102030405"]], ["1, rue du Chat qui pêche"],
     "75005", "Paris", ""),
)  # fmt: skip


def seed_admin(store: DmpStore) -> None:
    """Create the table and the official sample patient's details."""
    store.add_schema(_SCHEMA)
    with store.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO patient_admin VALUES (?,?,?,?,?,?,0,0)",
            [(ins, json.dumps(tel), json.dumps(street), postal, city, country)
             for ins, tel, street, postal, city, country in _SEED],
        )  # fmt: skip


def _h(path: str) -> str:
    return "/".join(f"{{{_HL7}}}{step}" for step in path.split("/"))


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{_HL7}}}{name}", **attrs)
    if text is not None:
        el.text = text
    return el


def add_details(store: DmpStore, ins: str, patient: etree._Element, person: etree._Element) -> None:
    """TD1.3a: telecoms and address into patientPerson (XSD order), oppositions as observations."""
    rows = store.select("SELECT * FROM patient_admin WHERE ins=?", (ins,))
    row = [str(v) for v in rows[0]] if rows else [ins, "[]", "[]", "", "", "", "0", "0"]
    telecoms, street = json.loads(row[1]), json.loads(row[2])
    postal, city, country, bdg, urgence = row[3], row[4], row[5], row[6] == "1", row[7] == "1"
    name = person.find(_h("name"))
    at = list(person).index(name) + 1 if name is not None else 0
    for use, value in telecoms:
        tel = etree.Element(f"{{{_HL7}}}telecom", value=value, **({"use": use} if use else {}))
        person.insert(at, tel)
        at += 1
    if street or postal or city:
        addr = _sub(person, "addr")
        for line in street:
            _sub(addr, "streetAddressLine", line)
        for tag, value in (("postalCode", postal), ("city", city), ("country", country)):
            if value:
                _sub(addr, tag, str(value))
    for code, flag, label in (
        ("OPPOSITION_BRIS_DE_GLACE", bdg, "opposition au mode bris de glace"),
        ("OPPOSITION_ACCES_URGENCE", urgence, "opposition à l'accès au mode urgence"),
    ):
        obs = _sub(_sub(patient, "subjectOf", typeCode="SBJ"), "administrativeObservation", classCode="OBS",
                   moodCode="EVN")  # fmt: skip
        _sub(obs, "code", code=code, codeSystem="1.2.250.1.213.4.1.2.3", displayName=label)
        _sub(obs, "value", value="true" if flag else "false").set(f"{{{_XSI}}}type", "BL")


def _answer(body: etree._Element, accepted: bool, reason: etree._Element, detail: str = "") -> Reply:
    wrapper = etree.Element(f"{{{_GDP}}}PRPA_IN201314UV02_Response", nsmap={None: _HL7, "ns2": _GDP})
    name = "PRPA_IN201315UV02" if accepted else "PRPA_IN201316UV02"
    out = _sub(wrapper, name, ITSVersion="XML_1.0")
    _sub(out, "id", root=f"{_DMP_DEVICE}.1", extension=str(uuid.uuid4()))
    _sub(out, "creationTime", value=dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"))
    _sub(out, "interactionId", extension=name, root="2.16.840.1.113883.1.6")
    _sub(out, "processingCode", code="P")
    _sub(out, "processingModeCode", code="T")
    _sub(out, "acceptAckCode", code="NE")
    sender = body.find(_h("sender/device"))
    for role, code, root, soft in (
        ("receiver", "RCV", sender.find(_h("id")).get("root", "") if sender is not None and sender.find(_h("id"))
         is not None else "", sender.findtext(_h("softwareName"), "") if sender is not None else ""),
        ("sender", "SND", _DMP_DEVICE, "DMP"),
    ):  # fmt: skip
        device = _sub(_sub(out, role, typeCode=code), "device", classCode="DEV", determinerCode="INSTANCE")
        _sub(device, "id", root=root)
        _sub(device, "softwareName", soft)
    ack = _sub(out, "acknowledgement", typeCode="AA" if accepted else "AE")
    request_id = body.find(_h("id"))
    target = _sub(_sub(ack, "targetMessage"), "id")
    if request_id is not None:
        target.set("extension", request_id.get("extension", ""))
        target.set("root", request_id.get("root", ""))
    if not accepted:
        _sub(_sub(ack, "acknowledgementDetail", typeCode="E"), "code", code=detail, codeSystem="1.2.250.1.213.4.1.2.1")
    control = _sub(out, "controlActProcess", classCode="CACT", moodCode="EVN")
    control.append(etree.fromstring(etree.tostring(reason)))
    return Reply(wrapper)


def registration(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD1.3b (MODIF_DATA) and TD1.4 (FERM)."""
    if body.tag != f"{{{_HL7}}}PRPA_IN201314UV02":
        raise SoapFault(FaultCode.INVALID_REQUEST, "PRPA_IN201314UV02 attendu")
    reason = body.find(_h("controlActProcess/reasonCode"))
    kind = reason.get("code") if reason is not None else None
    if reason is None or kind not in {"MODIF_DATA", "FERM"} or reason.get("codeSystem") != "1.2.250.1.213.1.1.4.11":
        raise SoapFault(FaultCode.INVALID_REQUEST, "reasonCode MODIF_DATA ou FERM (1.2.250.1.213.1.1.4.11) attendu")
    request = body.find(_h("controlActProcess/subject/registrationRequest"))
    patient_el = request.find(_h("subject1/patient")) if request is not None else None
    ident = patient_el.find(_h("id")) if patient_el is not None else None
    author = request.find(_h("author/assignedEntity/id")) if request is not None else None
    if patient_el is None or ident is None or author is None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "registrationRequest : patient, id et author attendus")
    ins = caller.vihf.ins
    if (ident.get("extension"), ident.get("root")) != (ins.value, ins.oid.value):
        raise SoapFault(FaultCode.INVALID_VIHF, "Le patient demandé n'est pas celui du VIHF (resource-id)")
    if (author.get("root"), author.get("extension")) != ("1.2.250.1.71.4.2.1", caller.vihf.name_id):
        raise SoapFault(FaultCode.INVALID_REQUEST, "L'auteur de la demande n'est pas l'utilisateur du VIHF")
    patient = store.patient(ins.value)
    if patient is None or patient.oid != ins.oid.value:
        return _answer(body, False, reason, "DMPPatientNotFound")
    if patient.status != "active":
        return _answer(body, False, reason, "DMPClosed")
    enforce(store, caller, Operation.TD1_4 if kind == "FERM" else Operation.TD1_3B, patient.ins)
    status = patient_el.find(_h("statusCode"))
    if kind == "FERM":
        closing = body.find(_h("controlActProcess/reasonOf/detectedIssueEvent/code"))
        if status is None or status.get("code") != "terminated" or closing is None:
            raise SoapFault(FaultCode.INVALID_REQUEST, "Fermeture : statusCode terminated et reasonOf attendus")
        with store.transaction() as db:
            db.execute("UPDATE patients SET status='closed' WHERE ins=?", (patient.ins,))
        return _answer(body, True, reason)
    _update(store, patient.ins, patient_el)
    return _answer(body, True, reason)


def _update(store: DmpStore, ins: str, patient_el: etree._Element) -> None:
    person = patient_el.find(_h("patientPerson"))
    if person is None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "patientPerson attendu")
    family = (person.findtext(_h("name/family")) or "").strip()
    given = (person.findtext(_h("name/given")) or "").strip()
    if not family or not given:
        raise SoapFault(FaultCode.INVALID_REQUEST, "Nom et prénom du patient attendus")
    gender = person.find(_h("administrativeGenderCode"))
    birth = person.find(_h("birthTime"))
    addr = person.find(_h("addr"))
    telecoms = [[t.get("use", ""), t.get("value", "")] for t in person.iterfind(_h("telecom"))]
    street = [(s.text or "").strip() for s in addr.iterfind(_h("streetAddressLine"))] if addr is not None else []
    flags = {
        obs.find(_h("code")).get("code", ""): obs.find(_h("value")).get("value") == "true"
        for obs in patient_el.iterfind(_h("subjectOf/administrativeObservation"))
        if obs.find(_h("code")) is not None and obs.find(_h("value")) is not None
    }
    with store.transaction() as db:
        db.execute(
            "UPDATE patients SET family=?, given=?, gender=COALESCE(?, gender), birth=COALESCE(?, birth) WHERE ins=?",
            (family, given, gender.get("code") if gender is not None else None,
             birth.get("value") if birth is not None else None, ins),
        )  # fmt: skip
        db.execute(
            "INSERT OR REPLACE INTO patient_admin VALUES (?,?,?,?,?,?,?,?)",
            (ins, json.dumps(telecoms), json.dumps(street),
             (addr.findtext(_h("postalCode")) or "") if addr is not None else "",
             (addr.findtext(_h("city")) or "") if addr is not None else "",
             (addr.findtext(_h("country")) or "") if addr is not None else "",
             int(flags.get("OPPOSITION_BRIS_DE_GLACE", False)), int(flags.get("OPPOSITION_ACCES_URGENCE", False))),
        )  # fmt: skip
