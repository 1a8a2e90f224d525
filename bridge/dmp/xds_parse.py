"""Readers of XDS.b registry metadata and of the DMP document-transaction answers.

Everything here reads elements that came from `bridge.xmlsafe.parse_xml` (or our own builders, for the
round-trip tests). Unknown classification schemes are ignored; unknown status or association URNs raise
DmpInputError through the wire Enums.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.codes import AssociationType, AvailabilityStatus, ClassScheme, IdScheme
from bridge.dmp.failures import DmpInputError
from bridge.dmp.mtom import MtomPart, resolve_xop
from bridge.dmp.ns import EBRS_LCM, EBRS_QUERY, EBRS_RIM, EBRS_RS, XDSB, q
from bridge.dmp.soap import RegistryResult, parse_registry_response
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Institution,
    Person,
    SubmissionSet,
)

__all__ = [
    "QueryResult",
    "RetrieveResult",
    "RetrievedDocument",
    "SubmittedObjects",
    "parse_association",
    "parse_document_entry",
    "parse_query_response",
    "parse_retrieve_response",
    "parse_submission_set",
    "parse_submit_objects",
]

_EMPTY = Code("", "", "")


def _slots(el: Any) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for s in el.findall(q(EBRS_RIM, "Slot")):
        values = tuple((v.text or "").strip() for v in s.iterfind(f"{q(EBRS_RIM, 'ValueList')}/{q(EBRS_RIM, 'Value')}"))
        out[s.get("name", "")] = values
    return out


def _first(slots: dict[str, tuple[str, ...]], name: str) -> str | None:
    values = slots.get(name)
    return values[0] if values else None


def _localized(el: Any, local: str) -> str | None:
    ls = el.find(f"{q(EBRS_RIM, local)}/{q(EBRS_RIM, 'LocalizedString')}")
    return ls.get("value") if ls is not None else None


def _code(cl: Any) -> Code:
    scheme = _first(_slots(cl), "codingScheme") or ""
    return Code(cl.get("nodeRepresentation", ""), scheme, _localized(cl, "Name") or "")


def _author(cl: Any) -> Author:
    slots = _slots(cl)
    person = _first(slots, "authorPerson")
    if person is None:
        raise DmpInputError("author classification without authorPerson")
    specialty = None
    raw = _first(slots, "authorSpecialty")
    if raw:
        parts = raw.split("^")
        specialty = Code(parts[0], parts[2] if len(parts) > 2 else "", parts[1] if len(parts) > 1 else "")
    return Author(
        person=Person.from_xcn(person),
        institutions=tuple(Institution.from_xon(v) for v in slots.get("authorInstitution", ())),
        specialty=specialty,
        role=_first(slots, "authorRole"),
    )


def _classifications(el: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for cl in el.findall(q(EBRS_RIM, "Classification")):
        out.setdefault(cl.get("classificationScheme") or cl.get("classificationNode") or "", []).append(cl)
    return out


def _external_ids(el: Any) -> dict[str, str]:
    return {
        ei.get("identificationScheme", ""): ei.get("value", "") for ei in el.findall(q(EBRS_RIM, "ExternalIdentifier"))
    }


def _one_code(classes: dict[str, list[Any]], scheme: ClassScheme) -> Code:
    found = classes.get(scheme.value)
    return _code(found[0]) if found else _EMPTY


def parse_document_entry(el: Any) -> DocumentEntry:
    """An ExtrinsicObject as a DocumentEntry."""
    slots = _slots(el)
    classes = _classifications(el)
    ext = _external_ids(el)
    patient = ext.get(IdScheme.DE_PATIENT_ID.value)
    unique_id = ext.get(IdScheme.DE_UNIQUE_ID.value)
    if not patient or not unique_id:
        raise DmpInputError("document entry without patientId or uniqueId")
    size = _first(slots, "size")
    legal = _first(slots, "legalAuthenticator")
    version = el.find(q(EBRS_RIM, "VersionInfo"))
    status = el.get("status")
    return DocumentEntry(
        entry_id=el.get("id", ""),
        unique_id=unique_id,
        patient=PatientIns.from_cx(patient),
        mime_type=el.get("mimeType", ""),
        title=_localized(el, "Name") or "",
        class_code=_one_code(classes, ClassScheme.DE_CLASS),
        type_code=_one_code(classes, ClassScheme.DE_TYPE),
        format_code=_one_code(classes, ClassScheme.DE_FORMAT),
        facility_type=_one_code(classes, ClassScheme.DE_FACILITY_TYPE),
        practice_setting=_one_code(classes, ClassScheme.DE_PRACTICE_SETTING),
        authors=tuple(_author(cl) for cl in classes.get(ClassScheme.DE_AUTHOR.value, [])),
        confidentiality=tuple(_code(cl) for cl in classes.get(ClassScheme.DE_CONFIDENTIALITY.value, [])),
        creation_time=_first(slots, "creationTime"),
        service_start=_first(slots, "serviceStartTime"),
        service_stop=_first(slots, "serviceStopTime"),
        language=_first(slots, "languageCode") or "",
        legal_authenticator=Person.from_xcn(legal) if legal else None,
        source_patient_id=_first(slots, "sourcePatientId"),
        source_patient_info=slots.get("sourcePatientInfo", ()),
        comments=_localized(el, "Description"),
        event_codes=tuple(_code(cl) for cl in classes.get(ClassScheme.DE_EVENT.value, [])),
        hash=_first(slots, "hash"),
        size=int(size) if size and size.isdigit() else None,
        repository_unique_id=_first(slots, "repositoryUniqueId"),
        logical_id=el.get("lid"),
        version=version.get("versionName") if version is not None else None,
        status=AvailabilityStatus(status) if status else None,
        registry_xml=bytes(etree.tostring(el)),
    )


def parse_submission_set(el: Any) -> SubmissionSet:
    """A RegistryPackage as a SubmissionSet."""
    slots = _slots(el)
    classes = _classifications(el)
    ext = _external_ids(el)
    patient = ext.get(IdScheme.SS_PATIENT_ID.value)
    if not patient:
        raise DmpInputError("submission set without patientId")
    return SubmissionSet(
        entry_id=el.get("id", ""),
        unique_id=ext.get(IdScheme.SS_UNIQUE_ID.value, ""),
        source_id=ext.get(IdScheme.SS_SOURCE_ID.value, ""),
        patient=PatientIns.from_cx(patient),
        submission_time=_first(slots, "submissionTime") or "",
        content_type=_one_code(classes, ClassScheme.SS_CONTENT_TYPE),
        authors=tuple(_author(cl) for cl in classes.get(ClassScheme.SS_AUTHOR.value, [])),
        title=_localized(el, "Name"),
        comments=_localized(el, "Description"),
    )


def parse_association(el: Any) -> Association:
    """An ebRIM Association."""
    slots = tuple(
        (
            s.get("name", ""),
            tuple((v.text or "").strip() for v in s.iterfind(f"{q(EBRS_RIM, 'ValueList')}/{q(EBRS_RIM, 'Value')}")),
        )
        for s in el.findall(q(EBRS_RIM, "Slot"))
    )
    return Association(
        entry_id=el.get("id", ""),
        type=AssociationType(el.get("associationType", "")),
        source=el.get("sourceObject", ""),
        target=el.get("targetObject", ""),
        slots=slots,
    )


@dataclass(frozen=True)
class SubmittedObjects:
    """The content of a RegistryObjectList: submission sets, document entries, associations, object refs."""

    submission_sets: tuple[SubmissionSet, ...]
    entries: tuple[DocumentEntry, ...]
    associations: tuple[Association, ...]
    object_refs: tuple[str, ...] = ()


def _objects(object_list: Any | None) -> SubmittedObjects:
    if object_list is None:
        return SubmittedObjects((), (), ())
    packages, entries, assocs, refs = [], [], [], []
    for child in object_list:
        if child.tag == q(EBRS_RIM, "RegistryPackage"):
            packages.append(parse_submission_set(child))
        elif child.tag == q(EBRS_RIM, "ExtrinsicObject"):
            entries.append(parse_document_entry(child))
        elif child.tag == q(EBRS_RIM, "Association"):
            assocs.append(parse_association(child))
        elif child.tag == q(EBRS_RIM, "ObjectRef"):
            refs.append(child.get("id", ""))
    return SubmittedObjects(tuple(packages), tuple(entries), tuple(assocs), tuple(refs))


def parse_submit_objects(el: Any) -> SubmittedObjects:
    """A SubmitObjectsRequest (or a ProvideAndRegisterDocumentSetRequest wrapping one)."""
    if el.tag == q(XDSB, "ProvideAndRegisterDocumentSetRequest"):
        el = el.find(q(EBRS_LCM, "SubmitObjectsRequest"))
    if el is None or el.tag != q(EBRS_LCM, "SubmitObjectsRequest"):
        raise DmpInputError("not a SubmitObjectsRequest")
    return _objects(el.find(q(EBRS_RIM, "RegistryObjectList")))


@dataclass(frozen=True)
class QueryResult:
    """An ITI-18 AdhocQueryResponse."""

    registry: RegistryResult
    objects: SubmittedObjects

    @property
    def entries(self) -> tuple[DocumentEntry, ...]:
        """The document entries found."""
        return self.objects.entries


def parse_query_response(el: Any) -> QueryResult:
    """An AdhocQueryResponse (status, errors, entries/packages/associations/object refs)."""
    if el.tag != q(EBRS_QUERY, "AdhocQueryResponse"):
        raise DmpInputError("not an AdhocQueryResponse")
    return QueryResult(parse_registry_response(el), _objects(el.find(q(EBRS_RIM, "RegistryObjectList"))))


@dataclass(frozen=True)
class RetrievedDocument:
    """One document of an ITI-43 answer."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: bytes = b""

    def __repr__(self) -> str:
        # Document content never goes to logs or reprs.
        return f"RetrievedDocument({self.document_unique_id!r}, {self.mime_type!r}, {len(self.content)} bytes)"


@dataclass(frozen=True)
class RetrieveResult:
    """An ITI-43 RetrieveDocumentSetResponse."""

    registry: RegistryResult
    documents: tuple[RetrievedDocument, ...]


def parse_retrieve_response(el: Any, attachments: dict[str, MtomPart] | None = None) -> RetrieveResult:
    """A RetrieveDocumentSetResponse; document bytes come from MTOM parts or inline base64."""
    if el.tag != q(XDSB, "RetrieveDocumentSetResponse"):
        raise DmpInputError("not a RetrieveDocumentSetResponse")
    rr = el.find(q(EBRS_RS, "RegistryResponse"))
    if rr is None:
        raise DmpInputError("RetrieveDocumentSetResponse without RegistryResponse")
    docs = []
    for dr in el.findall(q(XDSB, "DocumentResponse")):
        content_el = dr.find(q(XDSB, "Document"))
        docs.append(
            RetrievedDocument(
                repository_unique_id=(dr.findtext(q(XDSB, "RepositoryUniqueId")) or "").strip(),
                document_unique_id=(dr.findtext(q(XDSB, "DocumentUniqueId")) or "").strip(),
                mime_type=(dr.findtext(q(XDSB, "mimeType")) or "").strip(),
                content=resolve_xop(content_el, attachments or {}) if content_el is not None else b"",
            )
        )
    return RetrieveResult(parse_registry_response(rr), tuple(docs))
