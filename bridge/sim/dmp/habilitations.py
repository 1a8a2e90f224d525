"""The habilitations service: TD0.3 setAuthorization and TD1.6 listAuthorizationByPatient.

Shapes from `Habilitations.wsdl` and the official samples (`TD0.3_*`, `TD1.6_*`): elements qualified in
`urn:si-dmp-habilitations`, answers `output{…, status, context}` with status `DMPOk`. The patient is the
VIHF's (the requests carry none). Refusals: the rights matrix as a SOAP fault
(DMPAccessDeniedByRightsService), an unknown or closed DMP as a fault (DMPPatientNotFound, DMPClosed), a
professional blocked by the patient as the answer's status (DMPAccessDeniedByPatient) — the split between
fault and status is an assumption (no public sample of a refusal).
"""

from __future__ import annotations

from lxml import etree

from bridge.dmp.rights import Operation
from bridge.sim.dmp.access import Caller, Reply
from bridge.sim.dmp.authorizations import AuthorizationRow, State, authorization, authorizations, enforce, record
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore, PatientRow

__all__ = ["list_authorizations", "set_authorization"]

_NS = "urn:si-dmp-habilitations"
_SPECIALTY_SYSTEMS = ("1.2.250.1.213.1.1.4.5", "1.2.250.1.71.4.2.5")
_MODES = {"ACTIVE": (State.VALID,), "INTERDITE": (State.BLOCKED,), "TOUTE": (State.VALID, State.BLOCKED)}


def _q(name: str) -> str:
    return f"{{{_NS}}}{name}"


def _children(body: etree._Element, allowed: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for child in body:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace != _NS or name.localname not in allowed or name.localname in out:
            raise SoapFault(FaultCode.INVALID_REQUEST, f"Élément inattendu : {child.tag[:120]}")
        out[name.localname] = (child.text or "").strip()
    return out


def _patient(store: DmpStore, caller: Caller) -> PatientRow:
    ins = caller.vihf.ins
    patient = store.patient(ins.value)
    if patient is None or patient.oid != ins.oid.value:
        raise SoapFault(FaultCode.PATIENT_NOT_FOUND, "Aucun DMP pour cet INS")
    if patient.status != "active":
        raise SoapFault(FaultCode.DMP_CLOSED, "Le DMP de ce patient est fermé")
    return patient


def _answer(tag: str, status: str, context: str, rows: list[AuthorizationRow] | None = None) -> Reply:
    root = etree.Element(_q(tag), nsmap={"ns1": _NS})
    output = etree.SubElement(root, _q("output"))
    for row in rows or ():
        item = etree.SubElement(output, _q("listOfAuthorizationByPatient"))
        for name, value in (
            ("nationalId", row.professional),
            ("nationalIdType", "1.2.250.1.71.4.2.1"),
            ("firstName", row.given),
            ("lastName", row.family),
            ("codeSpeciality", row.speciality),
            ("startOfAuthorization", row.since),
            ("lastActionDate", row.last_action),
            ("mode", "ACTIVE" if row.state is State.VALID else "INTERDITE"),
        ):
            etree.SubElement(item, _q(name)).text = value
    etree.SubElement(output, _q("status")).text = status
    etree.SubElement(output, _q("context")).text = context
    return Reply(root)


def _speciality(caller: Caller) -> str:
    profession = caller.vihf.roles[0][0] if caller.vihf.roles else ""
    specialty = next((code for code, system in caller.vihf.roles[1:] if system in _SPECIALTY_SYSTEMS), "")
    return f"G15_{profession}" + (f"/{specialty}" if specialty else "")


def set_authorization(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD0.3: declare oneself authorised (AJOUT), remove it (SUPPRESSION), remove oneself as MT (role)."""
    if body.tag != _q("setAuthorization"):
        raise SoapFault(FaultCode.INVALID_REQUEST, "setAuthorization attendu")
    fields = _children(body, ("action", "role"))
    action, role = fields.get("action"), fields.get("role")
    if action not in {"AJOUT", "SUPPRESSION"} or role not in {None, "MEDECIN_TRAITANT"}:
        raise SoapFault(FaultCode.INVALID_REQUEST, "action AJOUT|SUPPRESSION et role MEDECIN_TRAITANT attendus")
    if action == "AJOUT" and role is not None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "Le rôle MEDECIN_TRAITANT ne se demande pas par TD0.3")
    patient = _patient(store, caller)
    who = caller.vihf.name_id
    operation = (
        Operation.TD0_3_DECLARE
        if action == "AJOUT"
        else Operation.TD0_3_REMOVE_MT
        if role
        else Operation.TD0_3_REMOVE
    )
    enforce(store, caller, operation, patient.ins)
    current = authorization(store, patient.ins, who)
    tag = "setAuthorizationResponse"
    if operation is Operation.TD0_3_DECLARE:
        if current.state is State.BLOCKED:
            return _answer(tag, FaultCode.ACCESS_DENIED_BY_PATIENT.value, "Le patient a bloqué ce professionnel")
        if current.state is State.VALID:
            return _answer(tag, "DMPOk", "Autorisation déjà présente aucune action effectuée")
        row = AuthorizationRow(patient.ins, who, State.VALID, current.treating, _speciality(caller))
        record(store, row, ins=patient.ins, professional=who, action="AJOUT")
        return _answer(tag, "DMPOk", "Autorisation ajoutée")
    if operation is Operation.TD0_3_REMOVE_MT:
        if not current.treating:
            return _answer(tag, "DMPOk", "Pas médecin traitant aucune action effectuée")
        record(store, _replace(current, treating=False), ins=patient.ins, professional=who, action="SUPPRESSION_MT")
        return _answer(tag, "DMPOk", "Médecin traitant supprimé")
    if current.state not in {State.VALID, State.EXPIRED}:
        return _answer(tag, "DMPOk", "Aucune autorisation aucune action effectuée")
    # Removing one's authorisation also ends the médecin traitant role on this DMP.
    record(store, None, ins=patient.ins, professional=who, action="SUPPRESSION")
    return _answer(tag, "DMPOk", "Autorisation supprimée")


def _replace(row: AuthorizationRow, *, treating: bool) -> AuthorizationRow:
    return AuthorizationRow(
        row.ins, row.professional, row.state, treating, row.speciality, row.given, row.family, row.since
    )


def list_authorizations(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD1.6: the professionals authorised (ACTIVE), blocked (INTERDITE) or both (TOUTE, the default)."""
    if body.tag != _q("listAuthorizationByPatient"):
        raise SoapFault(FaultCode.INVALID_REQUEST, "listAuthorizationByPatient attendu")
    mode = _children(body, ("mode",)).get("mode", "TOUTE")
    if mode not in _MODES:
        raise SoapFault(FaultCode.INVALID_REQUEST, "mode ACTIVE|INTERDITE|TOUTE attendu")
    patient = _patient(store, caller)
    enforce(store, caller, Operation.TD1_6, patient.ins)
    rows = [r for r in authorizations(store, patient.ins) if r.state in _MODES[mode]]
    return _answer("listAuthorizationByPatientResponse", "DMPOk", "", rows)
