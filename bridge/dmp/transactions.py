"""Request bodies of the DMP document transactions (pure builders: values in, lxml element out).

TD2.1 ITI-41 ProvideAndRegisterDocumentSet-b (with replacement by RPLC), TD3.1 ITI-18 FindDocuments and
GetDocuments, TD3.2 ITI-43 RetrieveDocumentSet, TD3.3a/b ITI-57 visibility change (new metadata version of
the same logical id, HasMember with PreviousVersion, as the kit's masquage template), TD3.3c/d ITI-57
availability status change (UpdateAvailabilityStatus association, as the official samples).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lxml import etree

from bridge.dmp.codes import AssociationType, AvailabilityStatus, Confidentiality, StoredQuery
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.mtom import xop_include
from bridge.dmp.ns import EBRS_LCM, EBRS_QUERY, EBRS_RIM, EBRS_RS, XDSB, q
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_build import IdAllocator, Layout, extrinsic_object_verbatim, registry_object_list, slot
from bridge.dmp.xds_model import Association, Code, DocumentEntry, SubmissionSet, confidentiality_code

__all__ = [
    "DMP_REPOSITORY_ID",
    "find_documents",
    "get_documents",
    "provide_and_register",
    "retrieve_document_set",
    "update_availability_status",
    "update_visibility",
    "with_visibility",
]

#: RepositoryUniqueId of the DMP (samples, kit).
DMP_REPOSITORY_ID = "1.2.250.1.213.4.1.1.1.2"
_ORIGINAL = ("SubmissionSetStatus", ("Original",))


def provide_and_register(
    submission: SubmissionSet,
    entries: Sequence[DocumentEntry],
    content_ids: Mapping[str, str],
    *,
    signature_entry_id: str | None = None,
    replaces: Mapping[str, str] | None = None,
) -> Any:
    """TD2.1 body: ProvideAndRegisterDocumentSetRequest with one xop:Include per document.

    Args:
        content_ids: entry id → MIME Content-ID of its bytes (every entry must have one).
        signature_entry_id: the entry holding the XAdES signature of the lot (gets the `signs` association).
        replaces: new entry id → entryUUID of the document it replaces (RPLC association).
    """
    ids = [e.entry_id for e in entries]
    if len(set(ids)) != len(ids) or submission.entry_id in ids:
        raise DmpParamsError("entry ids must be unique within a submission")
    missing = [i for i in ids if i not in content_ids]
    if missing:
        raise DmpParamsError("every document entry needs its content")
    if signature_entry_id is not None and signature_entry_id not in ids:
        raise DmpParamsError("the signature entry must be one of the entries")
    associations: list[Association] = []
    counter = 0

    def assoc(kind: AssociationType, source: str, target: str, slots: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
        nonlocal counter
        counter += 1
        associations.append(Association(f"assoc{counter}", kind, source, target, slots))

    for entry_id in ids:
        assoc(AssociationType.HAS_MEMBER, submission.entry_id, entry_id, (_ORIGINAL,))
    if signature_entry_id is not None:
        assoc(AssociationType.SIGNS, signature_entry_id, submission.entry_id, (_ORIGINAL,))
    for new_id, old_uuid in (replaces or {}).items():
        if new_id not in ids or not old_uuid.startswith("urn:uuid:"):
            raise DmpParamsError("a replacement links an entry of this lot to the entryUUID it replaces")
        assoc(AssociationType.RPLC, new_id, old_uuid, ())

    root = etree.Element(
        q(XDSB, "ProvideAndRegisterDocumentSetRequest"),
        nsmap={None: EBRS_RIM, "ns2": EBRS_RS, "ns3": EBRS_LCM, "ns4": XDSB, "ns5": EBRS_QUERY},
    )
    registry_object_list(submission, entries, associations, parent=root)
    for entry_id in ids:
        doc = etree.SubElement(root, q(XDSB, "Document"), id=entry_id)
        xop_include(doc, content_ids[entry_id])
    return root


def _quoted(values: Iterable[str]) -> str:
    items = list(values)
    for v in items:
        if "'" in v:
            raise DmpParamsError("query values cannot contain quotes")
    return "(" + ",".join(f"'{v}'" for v in items) + ")"


def _adhoc(query: StoredQuery, return_type: str) -> tuple[Any, Any]:
    root = etree.Element(
        q(EBRS_QUERY, "AdhocQueryRequest"),
        nsmap={None: EBRS_RIM, "ns2": EBRS_RS, "ns3": EBRS_QUERY, "ns4": EBRS_LCM},
    )
    etree.SubElement(root, q(EBRS_QUERY, "ResponseOption"), returnComposedObjects="true", returnType=return_type)
    adhoc = etree.SubElement(root, q(EBRS_RIM, "AdhocQuery"), id=query.value)
    return root, adhoc


def find_documents(
    patient: PatientIns,
    *,
    statuses: Sequence[AvailabilityStatus] = (AvailabilityStatus.APPROVED,),
    confidentiality: Sequence[Code] = (),
    class_codes: Sequence[Code] = (),
    type_codes: Sequence[Code] = (),
    format_codes: Sequence[Code] = (),
    practice_settings: Sequence[Code] = (),
    facility_types: Sequence[Code] = (),
    creation_from: str | None = None,
    creation_to: str | None = None,
    service_start_from: str | None = None,
    service_start_to: str | None = None,
    service_stop_from: str | None = None,
    service_stop_to: str | None = None,
    author_persons: Sequence[str] = (),
    return_type: str = "LeafClass",
) -> Any:
    """TD3.1 body: FindDocuments stored query (status list, optional code, date and author filters).

    `author_persons` are ITI-18 LIKE patterns on authorPerson (e.g. `810012345678^%`).
    """
    if not statuses:
        raise DmpParamsError("FindDocuments needs at least one status")
    if return_type not in ("LeafClass", "ObjectRef"):
        raise DmpParamsError("returnType is LeafClass or ObjectRef")
    root, adhoc = _adhoc(StoredQuery.FIND_DOCUMENTS, return_type)
    slot(adhoc, "$XDSDocumentEntryPatientId", [f"'{patient.cx()}'"])
    slot(adhoc, "$XDSDocumentEntryStatus", [_quoted(s.value for s in statuses)])
    coded = [
        ("$XDSDocumentEntryClassCode", class_codes),
        ("$XDSDocumentEntryTypeCode", type_codes),
        ("$XDSDocumentEntryFormatCode", format_codes),
        ("$XDSDocumentEntryPracticeSettingCode", practice_settings),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", facility_types),
        ("$XDSDocumentEntryConfidentialityCode", confidentiality),
    ]
    for name, codes in coded:
        if codes:
            slot(adhoc, name, [_quoted(f"{c.code}^^{c.scheme}" for c in codes)])
    if author_persons:
        slot(adhoc, "$XDSDocumentEntryAuthorPerson", [_quoted(author_persons)])
    for name, value in (
        ("$XDSDocumentEntryCreationTimeFrom", creation_from),
        ("$XDSDocumentEntryCreationTimeTo", creation_to),
        ("$XDSDocumentEntryServiceStartTimeFrom", service_start_from),
        ("$XDSDocumentEntryServiceStartTimeTo", service_start_to),
        ("$XDSDocumentEntryServiceStopTimeFrom", service_stop_from),
        ("$XDSDocumentEntryServiceStopTimeTo", service_stop_to),
    ):
        if value is not None:
            if not value.isdigit():
                raise DmpParamsError("query times are HL7 DTM digits")
            slot(adhoc, name, [value])
    return root


def get_documents(
    *, unique_ids: Sequence[str] = (), entry_uuids: Sequence[str] = (), return_type: str = "LeafClass"
) -> Any:
    """TD3.1 body: GetDocuments stored query by uniqueIds or by entryUUIDs (exactly one of them)."""
    if bool(unique_ids) == bool(entry_uuids):
        raise DmpParamsError("GetDocuments takes uniqueIds or entryUUIDs")
    root, adhoc = _adhoc(StoredQuery.GET_DOCUMENTS, return_type)
    if unique_ids:
        slot(adhoc, "$XDSDocumentEntryUniqueId", [_quoted(unique_ids)])
    else:
        slot(adhoc, "$XDSDocumentEntryEntryUUID", [_quoted(entry_uuids)])
    return root


def retrieve_document_set(document_unique_ids: Sequence[str], repository_id: str = DMP_REPOSITORY_ID) -> Any:
    """TD3.2 body: RetrieveDocumentSetRequest (uniqueIds are XDS OIDs, not entryUUIDs)."""
    if not document_unique_ids:
        raise DmpParamsError("RetrieveDocumentSet needs at least one document")
    root = etree.Element(
        q(XDSB, "RetrieveDocumentSetRequest"),
        nsmap={None: XDSB, "ns2": EBRS_RIM, "ns3": EBRS_RS, "ns4": EBRS_QUERY, "ns5": EBRS_LCM},
    )
    for uid in document_unique_ids:
        if uid.startswith("urn:uuid:"):
            raise DmpParamsError("DocumentUniqueId is the document OID, not its entryUUID")
        req = etree.SubElement(root, q(XDSB, "DocumentRequest"))
        etree.SubElement(req, q(XDSB, "RepositoryUniqueId")).text = repository_id
        etree.SubElement(req, q(XDSB, "DocumentUniqueId")).text = uid
    return root


def update_availability_status(
    submission: SubmissionSet, entry_uuid: str, original: AvailabilityStatus, new: AvailabilityStatus
) -> Any:
    """TD3.3c (→ Deleted) and TD3.3d (Approved ↔ Archived) body: ITI-57 UpdateAvailabilityStatus."""
    if not entry_uuid.startswith("urn:uuid:"):
        raise DmpParamsError("the target of a status update is the document entryUUID")
    if original is new:
        raise DmpParamsError("the new status must differ from the original one")
    assoc = Association(
        "association1",
        AssociationType.UPDATE_AVAILABILITY_STATUS,
        submission.entry_id,
        entry_uuid,
        (("OriginalStatus", (original.value,)), ("NewStatus", (new.value,))),
    )
    return registry_object_list(submission, (), (assoc,), Layout(update=True))


def with_visibility(
    entry: DocumentEntry, *, add: Iterable[Confidentiality] = (), remove: Iterable[Confidentiality] = ()
) -> DocumentEntry:
    """A copy of an entry whose confidentiality codes gain/lose visibility codes (N always stays)."""
    removed = {c.value for c in remove}
    if Confidentiality.NORMAL.value in removed:
        raise DmpParamsError("the Normal confidentiality code cannot be removed")
    codes = [c for c in entry.confidentiality if c.code not in removed]
    for extra in add:
        if all(c.code != extra.value for c in codes):
            codes.append(confidentiality_code(extra))
    return dataclasses.replace(entry, confidentiality=tuple(codes))


def update_visibility(
    submission: SubmissionSet, new_version: DocumentEntry, previous_version: str, *, new_entry_id: str = "Document01"
) -> Any:
    """TD3.3a/b body: ITI-57 metadata update, the new version of the same logical id with its new codes.

    `new_version` is the registry's entry (from a LeafClass query, with its lid) changed by
    `with_visibility`; `previous_version` is its current VersionInfo versionName. An entry read from the
    registry is sent back verbatim (`DocumentEntry.registry_xml`: every slot, classification and external
    identifier, what the model does not interpret included) with only its confidentiality codes changed.
    """
    if not new_version.logical_id or not new_version.logical_id.startswith("urn:uuid:"):
        raise DmpParamsError("a metadata update needs the entry's logical id (lid)")
    assoc = Association(
        "association1",
        AssociationType.HAS_MEMBER,
        submission.entry_id,
        new_entry_id,
        (_ORIGINAL, ("PreviousVersion", (previous_version,))),
    )
    if new_version.registry_xml is None:
        entry = dataclasses.replace(new_version, entry_id=new_entry_id)
        return registry_object_list(submission, (entry,), (assoc,), Layout(update=True))
    ids = IdAllocator()
    root = registry_object_list(submission, (), (assoc,), Layout(update=True), ids=ids)
    objects = root.find(q(EBRS_RIM, "RegistryObjectList"))
    holder = etree.Element(q(EBRS_RIM, "Holder"))
    extrinsic_object_verbatim(holder, new_version.registry_xml, new_entry_id, new_version.confidentiality, ids)
    objects.insert(1, holder[0])
    return root
