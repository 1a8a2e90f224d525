"""TD0.2 (test d'existence d'un DMP, HL7v3 PRPA_IN201307UV02 -> PRPA_IN201308UV02) and the seed of test patients.

The answer is shaped like the official sample: AUTORISATION attentionLine, acknowledgement AA,
registrationEvent with the patient's ids and status, queryAck OK, or NF when no DMP exists (the
not-found shape is an assumption: no sample). AUTORISATION, STATUT_MT and RATTACHEMENT_ENS come from the
access facts of `bridge.sim.dmp.authorizations`; the rights matrix is applied to the caller first.
"""

from __future__ import annotations

import datetime as dt
import uuid

from lxml import etree

from bridge.dmp.rights import Operation
from bridge.sim.dmp.access import Caller, Reply
from bridge.sim.dmp.authorizations import authorization, enforce, is_mes
from bridge.sim.dmp.constants import NS, InsOid
from bridge.sim.dmp.ins import InsError, parse_ins
from bridge.sim.dmp.patient_admin import add_details
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore, PatientRow

__all__ = ["SEED_PATIENTS", "patient_query"]

_HL7 = NS["hl7"]
_XSI = NS["xsi"]
_DMP_DEVICE = "1.2.250.1.213.4.1.1.1"

# Test patients (15-digit NIRs with valid keys, test INS OID): the official samples' two patients, the
# beneficiaries with their own NIR of the virtual Vitale profiles (bridge/sim/profiles/vitale-*.json),
# more test patients, and one closed DMP to exercise DMPClosed.
SEED_PATIENTS: tuple[PatientRow, ...] = tuple(
    PatientRow(ins, InsOid.NIR_TEST.value, status, family, given, birth, gender)
    for ins, status, family, given, birth, gender in (
        ("207058575627097", "active", "PATB-QUATRE", "LAURENCE", "19070525", "F"),
        ("279035121518989", "active", "PAT-TROIS", "DOMINIQUE", "19790328", "F"),
        ("178037511501201", "active", "MARTIN", "JEAN", "19780314", "M"),
        ("281209935201476", "active", "MARTIN", "AICHA", "19810000", "F"),
        ("165072A00405668", "active", "CASANOVA", "PAUL", "19650721", "M"),
        ("180017505601289", "active", "DUPONT", "PIERRE", "19800101", "M"),
        ("285036912304579", "active", "DURAND", "SOPHIE", "19850315", "F"),
        ("164063155504440", "closed", "ROBERT", "ANDRE", "19640610", "M"),
    )
)


# reasonCode (TRE_R271) → the matrix's line and the answer's displayName.
_QUERIES = {
    "TEST_EXST": (Operation.TD0_2, "Test d'existence de dossier"),
    "CNSLT_DATA": (Operation.TD1_3A, "Consultation des données de gestion de dossier"),
}


def _sub(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{_HL7}}}{name}", **attrs)


def _device(parent: etree._Element, role: str, type_code: str, root: str, name: str) -> None:
    device = _sub(_sub(parent, role, typeCode=type_code), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(device, "id", root=root)
    _sub(device, "softwareName").text = name


def _typed_value(parent: etree._Element, xsi_type: str, **attrs: str) -> None:
    value = _sub(parent, "value", **attrs)
    value.set(f"{{{_XSI}}}type", xsi_type)


def patient_query(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD0.2: does the patient's DMP exist, and is the caller authorised."""
    if body.tag != f"{{{_HL7}}}PRPA_IN201307UV02":
        raise SoapFault(FaultCode.INVALID_REQUEST, "PRPA_IN201307UV02 attendu")
    reason = body.find(f"{{{_HL7}}}controlActProcess/{{{_HL7}}}reasonCode")
    kind = reason.get("code") if reason is not None else None
    if reason is None or kind not in _QUERIES or reason.get("codeSystem") != "1.2.250.1.213.1.1.4.11":
        raise SoapFault(FaultCode.INVALID_REQUEST, "reasonCode TEST_EXST|CNSLT_DATA (1.2.250.1.213.1.1.4.11) attendu")
    operation, display = _QUERIES[kind]
    query = body.find(f"{{{_HL7}}}controlActProcess/{{{_HL7}}}queryByParameter")
    value = (
        query.find(f"{{{_HL7}}}parameterList/{{{_HL7}}}patientIdentifier/{{{_HL7}}}value")
        if query is not None
        else None
    )
    if query is None or value is None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "queryByParameter/parameterList/patientIdentifier absent")
    try:
        ins = parse_ins(value.get("extension", ""), value.get("root", ""))
    except InsError as exc:
        raise SoapFault(FaultCode.INVALID_REQUEST, f"patientIdentifier : {exc}") from None
    if ins != caller.vihf.ins:
        raise SoapFault(FaultCode.INVALID_VIHF, "Le patient demandé n'est pas celui du VIHF (resource-id)")
    patient = store.patient(ins.value)
    if patient is not None and patient.oid != ins.oid.value:
        patient = None
    enforce(store, caller, operation, patient.ins if patient is not None else None)
    # TD1.3a answers the administrative data only: no AUTORISATION / STATUT_MT lines (official sample).
    standing = (
        authorization(store, patient.ins, caller.vihf.name_id)
        if patient is not None and operation is Operation.TD0_2
        else None
    )

    out = etree.Element(f"{{{_HL7}}}PRPA_IN201308UV02", nsmap={None: _HL7, "xsi": _XSI}, ITSVersion="XML_1.0")
    _sub(out, "id", root=str(uuid.uuid4()))
    _sub(out, "creationTime", value=dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S"))
    _sub(out, "interactionId", extension="PRPA_IN201308UV02", root="2.16.840.1.113883.1.6")
    _sub(out, "processingCode", code="P")
    _sub(out, "processingModeCode", code="T")
    _sub(out, "acceptAckCode", code="NE")
    sender = body.find(f"{{{_HL7}}}sender/{{{_HL7}}}device")
    sender_root = (
        sender.find(f"{{{_HL7}}}id").get("root", "")
        if sender is not None and sender.find(f"{{{_HL7}}}id") is not None
        else ""
    )
    sender_name = sender.findtext(f"{{{_HL7}}}softwareName", "") if sender is not None else ""
    _device(out, "receiver", "RCV", sender_root, sender_name)
    _device(out, "sender", "SND", _DMP_DEVICE, "DMP")
    if patient is not None and standing is not None:
        line = _sub(out, "attentionLine")
        _sub(line, "keyWordText", code="AUTORISATION", codeSystem="1.2.250.1.213.4.1.2.6.1")
        _typed_value(line, "CV", code=standing.state.value, codeSystem="1.2.250.1.213.4.1.2.6.2")
        line = _sub(out, "attentionLine")
        _sub(line, "keyWordText", code="STATUT_MT", codeSystem="1.2.250.1.213.4.1.2.6.3")
        _typed_value(line, "BL", value="true" if standing.treating else "false")
    ack = _sub(out, "acknowledgement", typeCode="AA")
    request_id = body.find(f"{{{_HL7}}}id")
    target = _sub(_sub(ack, "targetMessage"), "id")
    if request_id is not None:
        target.set("extension", request_id.get("extension", ""))
        target.set("root", request_id.get("root", ""))
    control = _sub(out, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "reasonCode", code=kind or "", codeSystem="1.2.250.1.213.1.1.4.11", displayName=display)
    if patient is not None:
        event = _sub(
            _sub(control, "subject", contextConductionInd="false", typeCode="SUBJ"),
            "registrationEvent",
            classCode="REG",
            moodCode="EVN",
        )
        _sub(event, "statusCode", code="completed")
        pat = _sub(_sub(event, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
        _sub(pat, "id", extension=patient.ins, root=patient.oid)
        _sub(pat, "statusCode", code="active" if patient.status == "active" else "terminated")
        person = _sub(pat, "patientPerson", classCode="PSN", determinerCode="INSTANCE")
        name = _sub(person, "name")
        _sub(name, "given").text = patient.given
        _sub(name, "family", qualifier="SP").text = patient.family
        _sub(person, "administrativeGenderCode", code=patient.gender)
        _sub(person, "birthTime", value=patient.birth)
        if operation is Operation.TD1_3A:
            add_details(store, patient.ins, pat, person)
        for code, system, flag in (
            ("COMPTE_INTERNET_OUVERT", "1.2.250.1.213.4.1.2.9", True),
            ("RATTACHEMENT_ENS", "1.2.250.1.213.4.1.2.3", is_mes(store, patient.ins)),
        ):
            obs = _sub(
                _sub(pat, "subjectOf", typeCode="SBJ"), "administrativeObservation", classCode="OBS", moodCode="EVN"
            )
            _sub(obs, "code", code=code, codeSystem=system)
            _typed_value(obs, "BL", value="true" if flag else "false")
        _sub(
            _sub(_sub(event, "custodian", typeCode="CST"), "assignedEntity", classCode="ASSIGNED"),
            "id",
            root=_DMP_DEVICE,
        )
    query_ack = _sub(control, "queryAck")
    query_id = query.find(f"{{{_HL7}}}queryId")
    if query_id is not None:
        _sub(query_ack, "queryId", extension=query_id.get("extension", ""), root=query_id.get("root", ""))
    _sub(query_ack, "queryResponseCode", code="OK" if patient is not None else "NF")
    return Reply(out)
