"""A caller's CDA header read as XDS metadata, and checked against what the caller said.

A CDA passed through is registered with the metadata its own header gives (CI-SIS / ANS mapping
`IG-hl7v2-volet-transmission-document-cda-r2` mapping.md): typeCode ← `code`, title ← `title`,
creationTime ← `effectiveTime`, serviceStart/StopTime ← `documentationOf/serviceEvent/effectiveTime`
low/high, authors ← `author/assignedAuthor`, legalAuthenticator ← `legalAuthenticator/assignedEntity`,
confidentiality ← `confidentialityCode`, patient ← `recordTarget/patientRole/id` (the INS). Explicit caller
metadata that contradicts the header is refused (INVALID_PARAMS naming the field) rather than registered
as a document whose metadata and content disagree.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from bridge.dmp.codes import RPPS_OID, InsOid
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.ns import HL7, q
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code, Institution, Person
from bridge.xmlsafe import parse_xml

__all__ = ["CdaMetadata", "read_cda_metadata", "ts_to_dtm"]

_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d+)?([+-]\d{4})?$")
_INS_ROOTS = frozenset(o.value for o in InsOid if o is not InsOid.INS_C)


def ts_to_dtm(value: str) -> str:
    """An HL7 TS (`20190221133445+0100`) as an XDS DTM: in UTC when it has an offset, at its precision."""
    m = _TS.match(value.strip())
    if not m:
        raise DmpInputError(f"CDA time {value[:32]!r} is not an HL7 TS")
    parts = [p for p in m.groups()[:6] if p is not None]
    offset = m.group(7)
    if offset is None or len(parts) < 4:
        return "".join(parts)
    numbers = [int(p) for p in parts] + [0] * (6 - len(parts))
    zone = dt.timezone(dt.timedelta(hours=int(offset[:3]), minutes=int(offset[0] + offset[3:])))
    when = dt.datetime(numbers[0], numbers[1], numbers[2], numbers[3], numbers[4], numbers[5], tzinfo=zone)
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")[: len("".join(parts))]


@dataclass(frozen=True)
class CdaMetadata:
    """What the XDS metadata of a passed-through CDA comes from."""

    document_id: str
    type_code: Code
    title: str
    creation_time: str | None
    service_start: str | None
    service_stop: str | None
    authors: tuple[tuple[Person, Institution | None], ...]
    legal_authenticator: Person | None
    confidentiality: str
    patient: PatientIns | None
    media_type: str | None

    def __repr__(self) -> str:
        return f"CdaMetadata({self.document_id!r}, {self.type_code.code!r})"

    def check_against(self, *, patient: PatientIns, type_code: Code, title: str) -> None:
        """Refuse a caller's explicit metadata that contradicts this header (INVALID_PARAMS naming the field)."""
        if self.patient is not None and self.patient != patient:
            raise DmpParamsError("patient: the CDA's recordTarget INS is not the patient of the call")
        if type_code.code and (type_code.code, type_code.scheme) != (self.type_code.code, self.type_code.scheme):
            raise DmpParamsError(f"typeCode: the CDA header says {self.type_code.code!r}")
        if title and title != self.title:
            raise DmpParamsError("title: the CDA header has another title")
        if self.confidentiality != "N":
            raise DmpParamsError("confidentialityCode: the DMP takes CDA documents with confidentialityCode N")


def _person(entity: Any) -> Person | None:
    ident = entity.find(q(HL7, "id")) if entity is not None else None
    if ident is None or not ident.get("extension"):
        return None
    name = entity.find(f"{q(HL7, 'assignedPerson')}/{q(HL7, 'name')}")
    family = (name.findtext(q(HL7, "family")) or "").strip() if name is not None else ""
    given = (name.findtext(q(HL7, "given")) or "").strip() if name is not None else ""
    try:
        return Person(ident.get("extension"), family, given, ident.get("root") or RPPS_OID)
    except DmpParamsError:
        raise DmpInputError("CDA author or authenticator with characters XDS cannot carry") from None


def _organization(entity: Any) -> Institution | None:
    org = entity.find(q(HL7, "representedOrganization"))
    ident = org.find(q(HL7, "id")) if org is not None else None
    if ident is None or not ident.get("extension"):
        return None
    return Institution((org.findtext(q(HL7, "name")) or "").strip(), ident.get("extension"))


def _time(el: Any) -> str | None:
    value = el.get("value") if el is not None else None
    return ts_to_dtm(value) if value else None


def read_cda_metadata(data: bytes) -> CdaMetadata:
    """The header of a CDA R2 document as XDS metadata (hardened parse; DmpInputError if not a CDA)."""
    root = parse_xml(data, large_text=True)
    if root.tag != q(HL7, "ClinicalDocument"):
        raise DmpInputError("not a CDA document (root is not hl7:ClinicalDocument)")
    type_id = root.find(q(HL7, "typeId"))
    if type_id is None or type_id.get("extension") != "POCD_HD000040":
        raise DmpInputError("not a CDA R2 document (typeId POCD_HD000040 missing)")
    doc_id, code = root.find(q(HL7, "id")), root.find(q(HL7, "code"))
    if doc_id is None or not doc_id.get("root") or code is None:
        raise DmpInputError("CDA without id or code")
    event_time = root.find(f"{q(HL7, 'documentationOf')}/{q(HL7, 'serviceEvent')}/{q(HL7, 'effectiveTime')}")
    authors = []
    for assigned in root.iterfind(f"{q(HL7, 'author')}/{q(HL7, 'assignedAuthor')}"):
        person = _person(assigned)
        if person is not None:
            authors.append((person, _organization(assigned)))
    patient = None
    for ident in root.iterfind(f"{q(HL7, 'recordTarget')}/{q(HL7, 'patientRole')}/{q(HL7, 'id')}"):
        if ident.get("root") in _INS_ROOTS and ident.get("extension"):
            patient = PatientIns(value=ident.get("extension"), oid=InsOid(ident.get("root")))
    conf = root.find(q(HL7, "confidentialityCode"))
    text = root.find(f"{q(HL7, 'component')}/{q(HL7, 'nonXMLBody')}/{q(HL7, 'text')}")
    return CdaMetadata(
        # XDS uniqueId of a CDA: root, or root^extension (IHE XDS-SD).
        document_id=doc_id.get("root") + (f"^{doc_id.get('extension')}" if doc_id.get("extension") else ""),
        type_code=Code(code.get("code", ""), code.get("codeSystem", ""), code.get("displayName", "")),
        title=(root.findtext(q(HL7, "title")) or "").strip(),
        creation_time=_time(root.find(q(HL7, "effectiveTime"))),
        service_start=_time(event_time.find(q(HL7, "low"))) if event_time is not None else None,
        service_stop=_time(event_time.find(q(HL7, "high"))) if event_time is not None else None,
        authors=tuple(authors),
        legal_authenticator=_person(root.find(f"{q(HL7, 'legalAuthenticator')}/{q(HL7, 'assignedEntity')}")),
        confidentiality=conf.get("code", "N") if conf is not None else "N",
        patient=patient,
        media_type=text.get("mediaType") if text is not None else None,
    )
