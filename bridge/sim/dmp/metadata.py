"""Reading and completeness checks of XDS metadata (ebRIM 3.0) for ITI-41 and ITI-57, sans-IO.

Required elements follow the official TD2.1 sample and IHE XDS.b: what a DocumentEntry or the
SubmissionSet lacks is refused with XDSRegistryMetadataError, naming the element.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass

from lxml import etree

from bridge.sim.dmp.constants import (
    NS,
    REPOSITORY_UNIQUE_ID,
    SIGNATURE_FORMAT,
    VISIBILITY_SCHEME,
    ConfidentialityCode,
    XdsScheme,
)
from bridge.sim.dmp.errors import XdsError, XdsErrorCode
from bridge.sim.dmp.ins import Ins, InsError, parse_ins_cx

__all__ = [
    "Association",
    "DocEntry",
    "SubmissionSet",
    "association",
    "classifications",
    "external_id",
    "parse_entry",
    "parse_submission_set",
    "registry_form",
    "slot_values",
]

_RIM = NS["rim"]
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_DTM = re.compile(r"^[0-9]{4}([0-9]{2}){0,5}$")


def _meta(context: str, location: str = "") -> XdsError:
    return XdsError(XdsErrorCode.REGISTRY_METADATA, context, location)


def slot_values(element: etree._Element, name: str) -> list[str]:
    """Values of the direct child Slot `name`."""
    for slot in element.iterfind(f"{{{_RIM}}}Slot"):
        if slot.get("name") == name:
            return [(v.text or "").strip() for v in slot.iterfind(f"{{{_RIM}}}ValueList/{{{_RIM}}}Value")]
    return []


def classifications(element: etree._Element, scheme: XdsScheme) -> list[etree._Element]:
    """Direct child Classifications of a scheme."""
    return [c for c in element.iterfind(f"{{{_RIM}}}Classification") if c.get("classificationScheme") == scheme.value]


def external_id(element: etree._Element, scheme: XdsScheme) -> str:
    """The value of the direct child ExternalIdentifier of a scheme, or ''."""
    for ext in element.iterfind(f"{{{_RIM}}}ExternalIdentifier"):
        if ext.get("identificationScheme") == scheme.value:
            return (ext.get("value") or "").strip()
    return ""


def _coded(element: etree._Element, scheme: XdsScheme, what: str, location: str, *, many: bool = False) -> list[str]:
    found = classifications(element, scheme)
    if not found or (len(found) > 1 and not many):
        raise _meta(f"{what} absent ou répété", location)
    codes = []
    for cls in found:
        code = cls.get("nodeRepresentation", "")
        if not code or not slot_values(cls, "codingScheme"):
            raise _meta(f"{what} sans code ou sans codingScheme", location)
        codes.append(code)
    return codes


def _patient(element: etree._Element, scheme: XdsScheme, location: str) -> Ins:
    value = external_id(element, scheme)
    if not value:
        raise _meta("patientId absent", location)
    try:
        return parse_ins_cx(value)
    except InsError as exc:
        raise XdsError(XdsErrorCode.UNKNOWN_PATIENT_ID, f"patientId : {exc}", location) from None


def _unique_id(element: etree._Element, scheme: XdsScheme, location: str) -> str:
    value = external_id(element, scheme)
    if not _OID.match(value):
        raise _meta("uniqueId absent ou qui n'est pas un OID", location)
    return value


def _author_id(element: etree._Element, scheme: XdsScheme, location: str) -> str:
    authors = classifications(element, scheme)
    if not authors:
        raise _meta("author absent", location)
    person = slot_values(authors[0], "authorPerson")
    institution = slot_values(authors[0], "authorInstitution")
    if not person and not institution:
        raise _meta("author sans authorPerson ni authorInstitution", location)
    return person[0].split("^", 1)[0] if person else ""


@dataclass(frozen=True)
class DocEntry:
    """A DocumentEntry (ExtrinsicObject) of a request."""

    element: etree._Element
    symbolic_id: str
    unique_id: str
    patient: Ins
    mime_type: str
    author_id: str
    class_code: str
    type_code: str
    format_code: str
    confidentiality: tuple[str, ...]
    creation_time: str
    lid: str

    @property
    def is_signature(self) -> bool:
        """True for the XAdES signature document of a submission."""
        return self.format_code == SIGNATURE_FORMAT


@dataclass(frozen=True)
class SubmissionSet:
    """The RegistryPackage of a request."""

    element: etree._Element
    symbolic_id: str
    unique_id: str
    source_id: str
    patient: Ins


@dataclass(frozen=True)
class Association:
    """An Association of a request."""

    element: etree._Element
    kind: str
    source: str
    target: str


def parse_entry(element: etree._Element) -> DocEntry:
    """Read and check one DocumentEntry."""
    loc = element.get("id", "")
    if not loc:
        raise _meta("ExtrinsicObject sans id")
    if element.get("objectType") != XdsScheme.DE_OBJECT_TYPE.value:
        raise _meta("objectType de DocumentEntry stable attendu", loc)
    mime = element.get("mimeType", "")
    if "/" not in mime:
        raise _meta("mimeType absent", loc)
    creation = slot_values(element, "creationTime")
    if len(creation) != 1 or not _DTM.match(creation[0]):
        raise _meta("creationTime absent ou mal formé", loc)
    for required in ("languageCode", "sourcePatientId"):
        if not slot_values(element, required):
            raise _meta(f"{required} absent", loc)
    conf = tuple(_coded(element, XdsScheme.DE_CONFIDENTIALITY, "confidentialityCode", loc, many=True))
    for cls in classifications(element, XdsScheme.DE_CONFIDENTIALITY):
        code = cls.get("nodeRepresentation", "")
        if code in {c.value for c in ConfidentialityCode} and slot_values(cls, "codingScheme") != [VISIBILITY_SCHEME]:
            raise _meta(f"confidentialityCode {code} hors de la nomenclature {VISIBILITY_SCHEME}", loc)
    if "N" not in conf:
        raise _meta("confidentialityCode N (normal) attendu", loc)
    _coded(element, XdsScheme.DE_FACILITY, "healthcareFacilityTypeCode", loc)
    _coded(element, XdsScheme.DE_PRACTICE, "practiceSettingCode", loc)
    return DocEntry(
        element=element,
        symbolic_id=loc,
        unique_id=_unique_id(element, XdsScheme.DE_UNIQUE_ID, loc),
        patient=_patient(element, XdsScheme.DE_PATIENT_ID, loc),
        mime_type=mime,
        author_id=_author_id(element, XdsScheme.DE_AUTHOR, loc),
        class_code=_coded(element, XdsScheme.DE_CLASS, "classCode", loc)[0],
        type_code=_coded(element, XdsScheme.DE_TYPE, "typeCode", loc)[0],
        format_code=_coded(element, XdsScheme.DE_FORMAT, "formatCode", loc)[0],
        confidentiality=conf,
        creation_time=creation[0],
        lid=element.get("lid", ""),
    )


def parse_submission_set(objects: etree._Element) -> SubmissionSet:
    """Read and check the one RegistryPackage classified as SubmissionSet."""
    packages = objects.findall(f"{{{_RIM}}}RegistryPackage")
    if len(packages) != 1:
        raise _meta("un et un seul RegistryPackage (lot de soumission) attendu")
    package = packages[0]
    loc = package.get("id", "")
    if not loc:
        raise _meta("RegistryPackage sans id")
    nodes = [
        c
        for c in objects.iter(f"{{{_RIM}}}Classification")
        if c.get("classificationNode") == XdsScheme.SS_NODE.value and c.get("classifiedObject") == loc
    ]
    if not nodes:
        raise _meta("classification SubmissionSet absente", loc)
    times = slot_values(package, "submissionTime")
    if len(times) != 1 or not _DTM.match(times[0]):
        raise _meta("submissionTime absent ou mal formé", loc)
    _author_id(package, XdsScheme.SS_AUTHOR, loc)
    _coded(package, XdsScheme.SS_CONTENT_TYPE, "contentTypeCode", loc)
    source = external_id(package, XdsScheme.SS_SOURCE_ID)
    if not _OID.match(source):
        raise _meta("sourceId absent ou qui n'est pas un OID", loc)
    return SubmissionSet(
        element=package,
        symbolic_id=loc,
        unique_id=_unique_id(package, XdsScheme.SS_UNIQUE_ID, loc),
        source_id=source,
        patient=_patient(package, XdsScheme.SS_PATIENT_ID, loc),
    )


def association(element: etree._Element) -> Association:
    """Read one Association."""
    kind, source, target = (element.get(a, "") for a in ("associationType", "sourceObject", "targetObject"))
    if not (kind and source and target):
        raise _meta("Association incomplète", element.get("id", ""))
    return Association(element, kind, source, target)


def _new_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _set_slot(element: etree._Element, name: str, value: str) -> None:
    slots = element.findall(f"{{{_RIM}}}Slot")
    for slot in slots:
        if slot.get("name") == name:
            element.remove(slot)
    new = etree.Element(f"{{{_RIM}}}Slot", name=name)
    etree.SubElement(etree.SubElement(new, f"{{{_RIM}}}ValueList"), f"{{{_RIM}}}Value").text = value
    remaining = element.findall(f"{{{_RIM}}}Slot")
    anchor = remaining[-1] if remaining else None
    if anchor is not None:
        anchor.addnext(new)
    else:
        element.insert(0, new)


def registry_form(entry: DocEntry, entry_uuid: str, lid: str, version: int, sha1_hex: str, size: int) -> bytes:
    """The stored form of an entry: registry ids, lid, VersionInfo and the repository's hash/size slots."""
    element = copy.deepcopy(entry.element)
    element.set("id", entry_uuid)
    element.set("lid", lid)
    element.set("isOpaque", "false")
    element.attrib.pop("status", None)
    _set_slot(element, "hash", sha1_hex)
    _set_slot(element, "size", str(size))
    _set_slot(element, "repositoryUniqueId", REPOSITORY_UNIQUE_ID)
    # Slots in name order, as the DMP answers them (sample TD3.1).
    slots = element.findall(f"{{{_RIM}}}Slot")
    for slot in slots:
        element.remove(slot)
    for index, slot in enumerate(sorted(slots, key=lambda s: s.get("name", ""))):
        element.insert(index, slot)
    for old in element.findall(f"{{{_RIM}}}VersionInfo"):
        element.remove(old)
    version_info = etree.Element(f"{{{_RIM}}}VersionInfo", versionName=str(version))
    first = element.find(f"{{{_RIM}}}Classification")
    if first is not None:
        first.addprevious(version_info)
    else:
        element.append(version_info)
    for cls in element.iterfind(f"{{{_RIM}}}Classification"):
        cls.set("id", _new_id())
        cls.set("classifiedObject", entry_uuid)
    for ext in element.iterfind(f"{{{_RIM}}}ExternalIdentifier"):
        ext.set("id", _new_id())
        ext.set("registryObject", entry_uuid)
    return bytes(etree.tostring(element))
