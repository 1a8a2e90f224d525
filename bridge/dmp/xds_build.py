"""ebRIM elements for XDS.b metadata (RegistryPackage, ExtrinsicObject, Association), laid out like the samples.

Element order follows the official TD2.1 request: slots (alphabetical, as XDS registries emit them),
Name, Description, VersionInfo, Classifications (authors, class, type, confidentiality, format, facility,
practice, events) and ExternalIdentifiers (patientId then uniqueId). Local ids (`cla1`, `ei1`) come from
an `IdAllocator` owned by one message build.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.codes import ClassScheme, IdScheme, ObjectType
from bridge.dmp.ns import EBRS_LCM, EBRS_QUERY, EBRS_RIM, EBRS_RS, XDSB, XML, q
from bridge.dmp.xds_model import Association, Author, Code, DocumentEntry, SubmissionSet
from bridge.xmlsafe import parse_xml

__all__ = [
    "IdAllocator",
    "Layout",
    "association_element",
    "extrinsic_object",
    "extrinsic_object_verbatim",
    "localized",
    "registry_object_list",
    "registry_package",
    "slot",
]


class IdAllocator:
    """Hands out the local ids of one message: cla1, cla2… and ei1, ei2…"""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def next(self, prefix: str) -> str:
        """The next id with this prefix."""
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        return f"{prefix}{self._counts[prefix]}"


@dataclass(frozen=True)
class Layout:
    """Small layout differences between the samples of ITI-41 (TD2.1) and ITI-57 (TD3.3)."""

    #: ITI-57 samples give author classifications `nodeRepresentation=""` and associations an objectType.
    update: bool = False


def _rim(parent: Any, local: str, **attrs: str) -> Any:
    return etree.SubElement(parent, q(EBRS_RIM, local), {k: v for k, v in attrs.items()})


def slot(parent: Any, name: str, values: Sequence[str]) -> Any:
    """Append `<Slot name><ValueList><Value>…` to parent."""
    el = _rim(parent, "Slot", name=name)
    value_list = _rim(el, "ValueList")
    for value in values:
        _rim(value_list, "Value").text = value
    return el


def localized(parent: Any, local: str, text: str) -> Any:
    """Append `<Name|Description><LocalizedString charset="UTF8" value xml:lang="FR"/>`."""
    holder = _rim(parent, local)
    ls = _rim(holder, "LocalizedString", charset="UTF8", value=text)
    ls.set(q(XML, "lang"), "FR")
    return holder


def _coded(parent: Any, scheme: ClassScheme, obj_id: str, code: Code, ids: IdAllocator) -> None:
    el = _rim(
        parent,
        "Classification",
        classificationScheme=scheme.value,
        classifiedObject=obj_id,
        id=ids.next("cla"),
        nodeRepresentation=code.code,
    )
    slot(el, "codingScheme", [code.scheme])
    localized(el, "Name", code.display)


def _author(parent: Any, scheme: ClassScheme, obj_id: str, author: Author, ids: IdAllocator, layout: Layout) -> None:
    attrs = {"classificationScheme": scheme.value, "classifiedObject": obj_id, "id": ids.next("cla")}
    if layout.update:
        attrs["nodeRepresentation"] = ""
    el = _rim(parent, "Classification", **attrs)
    slot(el, "authorPerson", [author.person.xcn()])
    if author.specialty is not None:
        sp = author.specialty
        slot(el, "authorSpecialty", [f"{sp.code}^{sp.display}^{sp.scheme}"])
    if author.institutions:
        slot(el, "authorInstitution", [i.xon() for i in author.institutions])
    if author.role:
        slot(el, "authorRole", [author.role])


def _external_id(parent: Any, scheme: IdScheme, obj_id: str, value: str, ids: IdAllocator) -> None:
    el = _rim(parent, "ExternalIdentifier", id=ids.next("ei"), identificationScheme=scheme.value, registryObject=obj_id)
    el.set("value", value)
    localized(el, "Name", scheme.label)


def registry_package(parent: Any, ss: SubmissionSet, ids: IdAllocator, layout: Layout = Layout()) -> Any:
    """Append the SubmissionSet RegistryPackage to parent."""
    el = _rim(parent, "RegistryPackage", id=ss.entry_id)
    slot(el, "submissionTime", [ss.submission_time])
    if ss.title is not None:
        localized(el, "Name", ss.title)
    if ss.comments is not None:
        localized(el, "Description", ss.comments)
    for author in ss.authors:
        _author(el, ClassScheme.SS_AUTHOR, ss.entry_id, author, ids, layout)
    _coded(el, ClassScheme.SS_CONTENT_TYPE, ss.entry_id, ss.content_type, ids)
    _rim(
        el,
        "Classification",
        classificationNode=ClassScheme.SUBMISSION_SET_NODE.value,
        classifiedObject=ss.entry_id,
        id=ids.next("cla"),
    )
    _external_id(el, IdScheme.SS_PATIENT_ID, ss.entry_id, ss.patient.cx(), ids)
    _external_id(el, IdScheme.SS_SOURCE_ID, ss.entry_id, ss.source_id, ids)
    _external_id(el, IdScheme.SS_UNIQUE_ID, ss.entry_id, ss.unique_id, ids)
    return el


def extrinsic_object(parent: Any, de: DocumentEntry, ids: IdAllocator, layout: Layout = Layout()) -> Any:
    """Append the DocumentEntry ExtrinsicObject to parent."""
    attrs = {"id": de.entry_id}
    if layout.update:
        attrs["isOpaque"] = "false"
    if de.logical_id is not None:
        attrs["lid"] = de.logical_id
    attrs["mimeType"] = de.mime_type
    attrs["objectType"] = ObjectType.STABLE_DOCUMENT.value
    if de.status is not None:
        attrs["status"] = de.status.value
    el = _rim(parent, "ExtrinsicObject", **attrs)
    slots: list[tuple[str, list[str]]] = [
        ("creationTime", [de.creation_time] if de.creation_time else []),
        ("hash", [de.hash] if de.hash else []),
        ("languageCode", [de.language]),
        ("legalAuthenticator", [de.legal_authenticator.xcn()] if de.legal_authenticator else []),
        ("repositoryUniqueId", [de.repository_unique_id] if de.repository_unique_id else []),
        ("serviceStartTime", [de.service_start] if de.service_start else []),
        ("serviceStopTime", [de.service_stop] if de.service_stop else []),
        ("size", [str(de.size)] if de.size is not None else []),
        ("sourcePatientId", [de.source_patient_id] if de.source_patient_id else []),
        ("sourcePatientInfo", list(de.source_patient_info)),
    ]
    for name, values in slots:
        if values:
            slot(el, name, values)
    localized(el, "Name", de.title)
    if de.comments is not None:
        localized(el, "Description", de.comments)
    if de.version is not None:
        _rim(el, "VersionInfo", versionName=de.version)
    for author in de.authors:
        _author(el, ClassScheme.DE_AUTHOR, de.entry_id, author, ids, layout)
    _coded(el, ClassScheme.DE_CLASS, de.entry_id, de.class_code, ids)
    _coded(el, ClassScheme.DE_TYPE, de.entry_id, de.type_code, ids)
    for code in de.confidentiality:
        _coded(el, ClassScheme.DE_CONFIDENTIALITY, de.entry_id, code, ids)
    _coded(el, ClassScheme.DE_FORMAT, de.entry_id, de.format_code, ids)
    _coded(el, ClassScheme.DE_FACILITY_TYPE, de.entry_id, de.facility_type, ids)
    _coded(el, ClassScheme.DE_PRACTICE_SETTING, de.entry_id, de.practice_setting, ids)
    for code in de.event_codes:
        _coded(el, ClassScheme.DE_EVENT, de.entry_id, code, ids)
    _external_id(el, IdScheme.DE_PATIENT_ID, de.entry_id, de.patient.cx(), ids)
    _external_id(el, IdScheme.DE_UNIQUE_ID, de.entry_id, de.unique_id, ids)
    return el


def extrinsic_object_verbatim(
    parent: Any, registry_xml: bytes, entry_id: str, confidentiality: Sequence[Code], ids: IdAllocator
) -> Any:
    """Append the registry's ExtrinsicObject as it came, renamed `entry_id`, with these confidentiality codes.

    Everything else (slots, classifications, external identifiers, VersionInfo, status, ids) is copied
    byte for byte: an ITI-57 new version changes only what the operation changes (kit `template_masquage`).
    Confidentiality codes kept keep their original Classification; added ones get a new one.
    """
    el = parse_xml(registry_xml)
    if el.tag != q(EBRS_RIM, "ExtrinsicObject"):
        raise ValueError("not an ExtrinsicObject")
    classified = el.get("id", "")
    el.set("id", entry_id)
    scheme = ClassScheme.DE_CONFIDENTIALITY.value
    existing = [c for c in el.findall(q(EBRS_RIM, "Classification")) if c.get("classificationScheme") == scheme]
    kept = {(c.get("nodeRepresentation", ""), _coding_scheme(c)): c for c in existing}
    anchor = existing[0].getprevious() if existing else None
    for c in existing:
        el.remove(c)
    fresh = []
    for code in confidentiality:
        old = kept.get((code.code, code.scheme))
        if old is not None:
            fresh.append(old)
            continue
        holder = etree.Element(q(EBRS_RIM, "Holder"))
        _coded(holder, ClassScheme.DE_CONFIDENTIALITY, classified, code, ids)
        fresh.append(holder[0])
    position = (el.index(anchor) + 1) if anchor is not None else _first_classification_index(el)
    for offset, node in enumerate(fresh):
        el.insert(position + offset, node)
    parent.append(el)
    return el


def _coding_scheme(classification: Any) -> str:
    path = f"{q(EBRS_RIM, 'Slot')}[@name='codingScheme']/{q(EBRS_RIM, 'ValueList')}/{q(EBRS_RIM, 'Value')}"
    value = classification.find(path)
    return (value.text or "").strip() if value is not None else ""


def _first_classification_index(el: Any) -> int:
    for index, child in enumerate(el):
        if child.tag == q(EBRS_RIM, "Classification"):
            return index
    return len(el)


def association_element(parent: Any, assoc: Association, layout: Layout = Layout()) -> Any:
    """Append an Association to parent."""
    attrs = {"associationType": assoc.type.value, "id": assoc.entry_id}
    if layout.update:
        attrs["objectType"] = ObjectType.ASSOCIATION.value
    attrs["sourceObject"] = assoc.source
    attrs["targetObject"] = assoc.target
    el = _rim(parent, "Association", **attrs)
    for name, values in assoc.slots:
        slot(el, name, values)
    return el


def registry_object_list(
    submission: SubmissionSet,
    entries: Sequence[DocumentEntry],
    associations: Sequence[Association],
    layout: Layout = Layout(),
    parent: Any | None = None,
    ids: IdAllocator | None = None,
) -> Any:
    """A `lcm:SubmitObjectsRequest` holding the RegistryObjectList (lot, entries, associations in order).

    With `parent`, the request is appended to it (ITI-41 wraps it); otherwise it is the root (ITI-57).
    """
    if parent is not None:
        root = etree.SubElement(parent, q(EBRS_LCM, "SubmitObjectsRequest"))
    else:
        root = etree.Element(
            q(EBRS_LCM, "SubmitObjectsRequest"),
            nsmap={None: EBRS_RIM, "ns2": EBRS_RS, "ns3": EBRS_QUERY, "ns4": EBRS_LCM, "ns5": XDSB},
        )
    objects = _rim(root, "RegistryObjectList")
    ids = ids if ids is not None else IdAllocator()
    registry_package(objects, submission, ids, layout)
    for entry in entries:
        extrinsic_object(objects, entry, ids, layout)
    for assoc in associations:
        association_element(objects, assoc, layout)
    return root
