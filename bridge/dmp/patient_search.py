"""TD0.5, recherche d'un patient dans le DMP sans INS (IHE PDQv3, ITI-47), sans I/O.

`PRPA_IN201305UV02` (controlActProcess code PRPA_TE201305UV02, queryByParameter with the traits given)
answered by `PRPA_IN201306UV02` (one registrationEvent per candidate, queryAck with queryResponseCode and
the result quantities). Shapes from the official samples `TD0.5_*` and the HL7V3 NE2009 XSDs; the service
is `patientsPDQ` (notes §1.2). PDT-INF-526: for régulation (centre 15) and the establishment certificate in
régulation only. The DMP answers at most 10 candidates (MagicDMP comment, notes §2): `resultTotalQuantity`
and `resultRemainingQuantity` say how many more matched, and the caller is asked to refine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.failures import DmpFault, DmpInputError, DmpParamsError
from bridge.dmp.ns import HL7, q
from bridge.dmp.patient_access import build_hl7_header

__all__ = ["MAX_RESULTS", "Candidate", "SearchResult", "Traits", "build_search", "parse_search"]

#: The DMP's limit on candidates per answer (MagicDMP comment; not in a public specification).
MAX_RESULTS = 10
_INS_ROOTS = {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"}


@dataclass(frozen=True, kw_only=True)
class Traits:
    """What is known of the patient: at least the family name."""

    family: str
    given: str = ""
    gender: str = ""
    birth_date: str = ""
    postal_code: str = ""
    city: str = ""

    def __repr__(self) -> str:
        return "Traits(<redacted>)"


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One patient found: INS (value and OID) when the DMP gives one, names, birth, address, match score."""

    ins: str
    ins_oid: str
    family: str
    birth_family: str
    given: str
    gender: str
    birth_date: str
    postal_code: str
    city: str
    match: int | None
    opposition_acces_urgence: bool | None

    def __repr__(self) -> str:
        return f"Candidate(<redacted>, match={self.match})"


@dataclass(frozen=True)
class SearchResult:
    """The candidates and how many matched in all (more than shown: refine the traits)."""

    candidates: tuple[Candidate, ...]
    total: int
    remaining: int


def _sub(parent: Any, name: str, text: str | None = None, **attrs: str) -> Any:
    el = etree.SubElement(parent, q(HL7, name), **attrs)
    if text is not None:
        el.text = text
    return el


def build_search(
    traits: Traits, *, oid_root: str, lps_name: str, message_id: str, query_id: str, now: dt.datetime
) -> Any:
    """TD0.5 request body; parameters in the XSD's order (gender, birth time, name, address)."""
    if not traits.family.strip():
        raise DmpParamsError("family: required")
    root = build_hl7_header(
        "PRPA_IN201305UV02", oid_root=oid_root, lps_name=lps_name, message_id=message_id, now=now,
        nil_attention_line=False,
    )  # fmt: skip
    control = _sub(root, "controlActProcess", classCode="CACT", moodCode="EVN")
    _sub(control, "code", code="PRPA_TE201305UV02", codeSystem="2.16.840.1.113883.1.6")
    query = _sub(control, "queryByParameter")
    _sub(query, "queryId", root=f"{oid_root}.2", extension=query_id)
    _sub(query, "statusCode", code="new")
    params = _sub(query, "parameterList")
    if traits.gender:
        gender = _sub(params, "livingSubjectAdministrativeGender")
        _sub(gender, "value", code=traits.gender)
        _sub(gender, "semanticsText", "LivingSubject.administrativeGender")
    if traits.birth_date:
        birth = _sub(params, "livingSubjectBirthTime")
        _sub(birth, "value", value=traits.birth_date)
        _sub(birth, "semanticsText", "LivingSubject.birthTime")
    name = _sub(params, "livingSubjectName")
    value = _sub(name, "value")
    _sub(value, "family", traits.family.strip())
    if traits.given:
        _sub(value, "given", traits.given.strip())
    _sub(name, "semanticsText", "LivingSubject.name")
    if traits.postal_code or traits.city:
        address = _sub(params, "patientAddress")
        addr = _sub(address, "value")
        if traits.postal_code:
            _sub(addr, "postalCode", traits.postal_code)
        if traits.city:
            _sub(addr, "city", traits.city)
        _sub(address, "semanticsText", "Patient.addr")
    return root


def _h(path: str) -> str:
    return "/".join(f"{{{HL7}}}{step}" for step in path.split("/"))


def _int(el: Any) -> int | None:
    try:
        return int(el.get("value")) if el is not None else None
    except (TypeError, ValueError):
        return None


def _candidate(patient: Any) -> Candidate:
    ins, ins_oid = "", ""
    for ident in patient.iterfind(_h("id")):
        if ident.get("root") in _INS_ROOTS:
            ins, ins_oid = ident.get("extension", ""), ident.get("root", "")
    person = patient.find(_h("patientPerson"))
    name = person.find(_h("name")) if person is not None else None
    families = (
        {f.get("qualifier", ""): (f.text or "").strip() for f in name.iterfind(_h("family"))}
        if name is not None
        else {}
    )
    addr = person.find(_h("addr")) if person is not None else None
    gender = person.find(_h("administrativeGenderCode")) if person is not None else None
    birth = person.find(_h("birthTime")) if person is not None else None
    opposition = None
    for obs in patient.iterfind(_h("subjectOf2/administrativeObservation")):
        code = obs.find(_h("code"))
        if code is not None and code.get("code") == "OPPOSITION_ACCES_URGENCE":
            value = obs.find(_h("value"))
            opposition = value is not None and value.get("value") == "true"
    return Candidate(
        ins=ins,
        ins_oid=ins_oid,
        family=families.get("SP") or families.get("") or next(iter(families.values()), ""),
        birth_family=families.get("BR", ""),
        given=(name.findtext(_h("given")) or "").strip() if name is not None else "",
        gender=gender.get("code", "") if gender is not None else "",
        birth_date=birth.get("value", "") if birth is not None else "",
        postal_code=(addr.findtext(_h("postalCode")) or "").strip() if addr is not None else "",
        city=(addr.findtext(_h("city")) or "").strip() if addr is not None else "",
        match=_int(patient.find(_h("subjectOf1/queryMatchObservation/value"))),
        opposition_acces_urgence=opposition,
    )


def parse_search(body: Any) -> SearchResult:
    """TD0.5 answer → candidates (none: NF), total and remaining; a refusal is its mapped DMP error."""
    if body.tag != q(HL7, "PRPA_IN201306UV02"):
        raise DmpInputError("TD0.5: PRPA_IN201306UV02 expected")
    ack_type = body.find(_h("acknowledgement/typeCode"))
    if ack_type is not None and ack_type.get("code") not in {"AA", "CA"}:
        detail = body.find(_h("acknowledgement/acknowledgementDetail/code"))
        code = detail.get("code", "") if detail is not None else ""
        raise DmpFault(code="Receiver", subcode=code or ack_type.get("code", "AE")).to_error()
    ack = body.find(_h("controlActProcess/queryAck"))
    response = ack.find(_h("queryResponseCode")) if ack is not None else None
    if response is None:
        raise DmpInputError("TD0.5: queryAck/queryResponseCode absent")
    code = response.get("code", "")
    if code == "NF":
        return SearchResult((), 0, 0)
    if code != "OK":
        raise DmpFault(code="Receiver", subcode=f"queryResponseCode {code}"[:64]).to_error()
    patients = body.findall(_h("controlActProcess/subject/registrationEvent/subject1/patient"))
    if len(patients) > 100:
        raise DmpInputError("TD0.5: too many candidates")
    candidates = tuple(_candidate(p) for p in patients)
    total = _int(ack.find(_h("resultTotalQuantity")))
    remaining = _int(ack.find(_h("resultRemainingQuantity")))
    return SearchResult(candidates, total if total is not None else len(candidates), remaining or 0)
