"""CDA R2 documents for the DMP: wrap non-CDA content (PDF, text, RTF, JPEG, TIFF) into a level-1 CDA
(`nonXMLBody`, base64), laid out like the kit's `template_CDA.xml`. A caller's CDA is read by
`bridge.dmp.cda_header` (its header as XDS metadata).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.codes import SECTOR_OID, Confidentiality, DocFormat
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.ns import HL7, XSI, q
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code, Institution, Person

__all__ = ["CdaHeader", "CdaPatient", "cda_time", "wrap_unstructured"]

_GENDERS = ("M", "F", "U")


@dataclass(frozen=True, kw_only=True)
class CdaPatient:
    """The recordTarget: INS, optional local id (extension, root), names, gender, birth date YYYYMMDD."""

    ins: PatientIns
    family: str
    given: str
    gender: str
    birth_date: str
    local_id: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if self.gender not in _GENDERS or not (self.birth_date.isdigit() and len(self.birth_date) == 8):
            raise DmpParamsError("patient gender is M/F/U and birth date YYYYMMDD")

    def __repr__(self) -> str:
        return "CdaPatient(<redacted>)"


@dataclass(frozen=True, kw_only=True)
class CdaHeader:
    """Everything of the CDA header; times and ids come from the caller."""

    document_id: str
    type_code: Code
    title: str
    effective_time: dt.datetime
    patient: CdaPatient
    author: Person
    custodian: Institution
    facility: Code
    legal_authenticator: Person | None = None
    author_prefix: str | None = None
    confidentiality: Confidentiality = Confidentiality.NORMAL
    language: str = "fr-FR"
    service_event: Code | None = None
    service_start: dt.date | None = None
    encounter_start: dt.date | None = None
    #: A replacement (RPLC): the uniqueId of the document it replaces, and this version's number.
    parent_document_id: str | None = None
    version: int = 1


def cda_time(when: dt.datetime) -> str:
    """HL7 TS with offset, as in the samples: 20190221133445+0100."""
    if when.tzinfo is None:
        raise DmpParamsError("CDA times must be timezone-aware")
    return when.strftime("%Y%m%d%H%M%S%z")


def _h(parent: Any, local: str, **attrs: str) -> Any:
    return etree.SubElement(parent, q(HL7, local), attrs)


def _person_name(parent: Any, person: Person, prefix: str | None) -> None:
    name = _h(_h(parent, "assignedPerson"), "name")
    _h(name, "given").text = person.given
    _h(name, "family").text = person.family
    if prefix:
        _h(name, "prefix").text = prefix


def wrap_unstructured(header: CdaHeader, content: bytes, fmt: DocFormat) -> bytes:
    """A CDA R2 level-1 document wrapping `content` (base64 in nonXMLBody) with the header's values."""
    if not content:
        raise DmpParamsError("the document is empty")
    doc = etree.Element(q(HL7, "ClinicalDocument"), nsmap={None: HL7, "xsi": XSI})
    _h(doc, "realmCode", code="FR")
    _h(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    _h(doc, "templateId", root="2.16.840.1.113883.2.8.2.1", assigningAuthorityName="HL7 France")
    _h(doc, "templateId", root="1.2.250.1.213.1.1.1.1", assigningAuthorityName="CI-SIS")
    _h(doc, "templateId", root="1.3.6.1.4.1.19376.1.2.20", assigningAuthorityName="IHE XDS-SD")
    _h(doc, "id", root=header.document_id)
    tc = header.type_code
    _h(doc, "code", code=tc.code, displayName=tc.display, codeSystem=tc.scheme)
    _h(doc, "title").text = header.title
    when = cda_time(header.effective_time)
    _h(doc, "effectiveTime", value=when)
    conf = header.confidentiality
    _h(doc, "confidentialityCode", code=conf.value, displayName=conf.display_name, codeSystem=conf.code_system)
    _h(doc, "languageCode", code=header.language)
    if header.parent_document_id is not None:
        # A new version of a document (kit template_CVA_CDA_Update): setId names the document across
        # versions, here the first version's id, i.e. the parent's when it is a first version.
        _h(doc, "setId", root=header.parent_document_id)
        _h(doc, "versionNumber", value=str(header.version))

    role = _h(_h(doc, "recordTarget"), "patientRole")
    p = header.patient
    _h(role, "id", extension=p.ins.value, root=p.ins.oid.value)
    if p.local_id is not None:
        _h(role, "id", extension=p.local_id[0], root=p.local_id[1])
    _h(role, "addr", nullFlavor="NASK")
    _h(role, "telecom", nullFlavor="NASK")
    patient = _h(role, "patient")
    name = _h(patient, "name")
    _h(name, "given").text = p.given
    _h(name, "family", qualifier="SP").text = p.family
    _h(patient, "administrativeGenderCode", code=p.gender, codeSystem="2.16.840.1.113883.5.1")
    _h(patient, "birthTime", value=p.birth_date)

    author = _h(doc, "author")
    _h(author, "time", value=when)
    assigned = _h(author, "assignedAuthor")
    _h(assigned, "id", root=header.author.oid, extension=header.author.id, assigningAuthorityName="GIP-CPS")
    _person_name(assigned, header.author, header.author_prefix)

    org = _h(_h(_h(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _h(org, "id", root=header.custodian.oid, extension=header.custodian.id, assigningAuthorityName="GIP-CPS")
    _h(org, "name").text = header.custodian.name

    legal = header.legal_authenticator or header.author
    la = _h(doc, "legalAuthenticator")
    _h(la, "time", value=when)
    _h(la, "signatureCode", code="S")
    entity = _h(la, "assignedEntity")
    _h(entity, "id", root=legal.oid, extension=legal.id, assigningAuthorityName="GIP-CPS")
    _person_name(entity, legal, header.author_prefix)

    day = (header.service_start or header.effective_time.date()).strftime("%Y%m%d")
    event = _h(_h(doc, "documentationOf"), "serviceEvent")
    if header.service_event is not None:
        se = header.service_event
        _h(event, "code", code=se.code, displayName=se.display, codeSystem=se.scheme)
    times = _h(event, "effectiveTime")
    if header.service_start is not None or header.service_event is not None:
        _h(times, "low", value=day)  # a coded act of its own day (kit template)
    else:
        # The act is the document's: serviceStart/StopTime of the metadata are these two instants.
        _h(times, "low", value=when)
        _h(times, "high", value=when)
    if header.parent_document_id is not None:
        parent = _h(_h(doc, "relatedDocument", typeCode="RPLC"), "parentDocument")
        _h(parent, "id", root=header.parent_document_id)
    encounter = _h(_h(doc, "componentOf"), "encompassingEncounter")
    enc_day = (header.encounter_start or header.service_start or header.effective_time.date()).strftime("%Y%m%d")
    _h(_h(encounter, "effectiveTime"), "low", value=enc_day)
    facility = _h(_h(encounter, "location"), "healthCareFacility")
    fc = header.facility
    # codeSystemName R02 (TRE_R02 SecteurActivite) as in the kit template and the TD2.1 sample.
    _h(facility, "code", code=fc.code, displayName=fc.display, codeSystem=fc.scheme or SECTOR_OID, codeSystemName="R02")

    body = _h(_h(doc, "component"), "nonXMLBody")
    text = _h(body, "text", mediaType=fmt.media_type, representation="B64")
    text.text = base64.b64encode(content).decode("ascii")
    return bytes(etree.tostring(doc, encoding="UTF-8", xml_declaration=True))
