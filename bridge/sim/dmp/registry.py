"""Registry transactions: TD3.1 (ITI-18 FindDocuments / GetDocuments) and TD3.3a-d (ITI-57 Update Document Set).

ITI-57 is read as the official samples and kit templates do it: an `UpdateAvailabilityStatus`
association (archive, unarchive, delete) or a new ExtrinsicObject version (same `lid`, HasMember with
`PreviousVersion`) whose confidentiality codes add/remove MASQUE_PS or INVISIBLE_PATIENT.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable

from lxml import etree

from bridge.dmp import rights
from bridge.sim.dmp.access import (
    Caller,
    Reply,
    latest_versions,
    registry_response,
    require_patient,
    visible,
    visible_now,
)
from bridge.sim.dmp.codes_check import check_entry_codes, check_submission_codes
from bridge.sim.dmp.constants import (
    HAS_MEMBER,
    NS,
    UPDATE_AVAILABILITY,
    AvailabilityStatus,
    StoredQuery,
)
from bridge.sim.dmp.errors import FAILURE, SUCCESS, XdsError, XdsErrorCode, error_list
from bridge.sim.dmp.find_filters import matches_find_filters
from bridge.sim.dmp.ins import InsError, parse_ins_cx
from bridge.sim.dmp.metadata import association, parse_entry, parse_submission_set, registry_form, slot_values
from bridge.sim.dmp.rights_check import enforce, own_document, structure_document
from bridge.sim.dmp.store import DmpStore, EntryRow, NewEntry
from bridge.sim.dmp.versions import check_new_version
from bridge.xmlsafe import parse_xml

__all__ = ["stored_query", "update_document_set"]

_RIM = NS["rim"]
_QUERY = NS["query"]
_A = AvailabilityStatus
# Status changes the DMP offers (TD3.3c delete, TD3.3d archive / unarchive).
_TRANSITIONS = {
    (_A.APPROVED, _A.ARCHIVED),
    (_A.ARCHIVED, _A.APPROVED),
    (_A.APPROVED, _A.DELETED),
    (_A.ARCHIVED, _A.DELETED),
}
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _params(query: etree._Element) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for slot in query.iterfind(f"{{{_RIM}}}Slot"):
        values: list[str] = []
        for value in slot.iterfind(f"{{{_RIM}}}ValueList/{{{_RIM}}}Value"):
            text = (value.text or "").strip()
            if text.startswith("("):
                values.extend(m.replace("''", "'") for m in _QUOTED.findall(text))
            elif text.startswith("'") and text.endswith("'") and len(text) >= 2:
                values.append(text[1:-1].replace("''", "'"))
            else:
                values.append(text)  # numbers (times) are unquoted
        params.setdefault(slot.get("name", ""), []).extend(values)
    return params


def _codes(values: list[str]) -> set[str]:
    return {v.split("^", 1)[0] for v in values}


def _find(store: DmpStore, caller: Caller, params: dict[str, list[str]]) -> list[EntryRow]:
    patient_ids = params.get("$XDSDocumentEntryPatientId", [])
    if len(patient_ids) != 1:
        raise XdsError(XdsErrorCode.STORED_QUERY_MISSING_PARAM, "$XDSDocumentEntryPatientId attendu une fois")
    statuses = params.get("$XDSDocumentEntryStatus", [])
    if not statuses:
        raise XdsError(XdsErrorCode.STORED_QUERY_MISSING_PARAM, "$XDSDocumentEntryStatus absent")
    try:
        wanted = {AvailabilityStatus(s) for s in statuses}
        ins = parse_ins_cx(patient_ids[0])
    except ValueError as exc:
        detail = str(exc) if isinstance(exc, InsError) else "statut inconnu"
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, f"Paramètre invalide : {detail}") from None
    if AvailabilityStatus.DELETED in wanted:
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "Les documents supprimés ne sont pas consultables")
    require_patient(store, ins, caller)
    filters: dict[str, Callable[[EntryRow], str]] = {
        "$XDSDocumentEntryClassCode": lambda r: r.class_code,
        "$XDSDocumentEntryTypeCode": lambda r: r.type_code,
        "$XDSDocumentEntryFormatCode": lambda r: r.format_code,
    }
    everything = store.entries(ins.value)
    latest = latest_versions(everything)
    rows = [
        r for r in everything if r.status in wanted and not r.is_signature and visible_now(r, latest[r.lid], caller)
    ]
    for name, field in filters.items():
        if name in params:
            codes = _codes(params[name])
            rows = [r for r in rows if field(r) in codes]
    if "$XDSDocumentEntryConfidentialityCode" in params:
        codes = _codes(params["$XDSDocumentEntryConfidentialityCode"])
        rows = [r for r in rows if codes & set(r.confidentiality)]
    return [r for r in rows if matches_find_filters(r.metadata, params)]


def _get(store: DmpStore, caller: Caller, params: dict[str, list[str]]) -> list[EntryRow]:
    unique_ids = params.get("$XDSDocumentEntryUniqueId", [])
    uuids = params.get("$XDSDocumentEntryEntryUUID", [])
    if bool(unique_ids) == bool(uuids):
        raise XdsError(
            XdsErrorCode.STORED_QUERY_PARAM_NUMBER, "$XDSDocumentEntryUniqueId ou $XDSDocumentEntryEntryUUID attendu"
        )
    require_patient(store, caller.vihf.ins, caller)
    rows: list[EntryRow] = []
    for uid in unique_ids:
        rows.extend(store.entries_by_unique_id(uid))
    for entry_uuid in uuids:
        row = store.entry(entry_uuid)
        if row is not None:
            rows.append(row)
    return [
        r
        for r in rows
        if r.patient == caller.vihf.ins.value and visible_now(r, store.entries_by_lid(r.lid)[-1], caller)
    ]


def _extrinsic(row: EntryRow) -> etree._Element:
    element = parse_xml(row.metadata)
    element.set("status", row.status.value)
    return element


def stored_query(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD3.1: FindDocuments or GetDocuments, LeafClass or ObjectRef."""
    response = etree.Element(
        f"{{{_QUERY}}}AdhocQueryResponse",
        nsmap={"ns2": NS["rs"], "ns3": _QUERY, "ns4": _RIM, "ns5": NS["lcm"], "ns6": NS["hl7"]},
    )
    objects = etree.SubElement(response, f"{{{_RIM}}}RegistryObjectList")
    try:
        if body.tag != f"{{{_QUERY}}}AdhocQueryRequest":
            raise XdsError(XdsErrorCode.REGISTRY_METADATA, "AdhocQueryRequest attendu")
        option = body.find(f"{{{_QUERY}}}ResponseOption")
        return_type = option.get("returnType", "ObjectRef") if option is not None else "ObjectRef"
        if return_type not in {"LeafClass", "ObjectRef"}:
            raise XdsError(XdsErrorCode.REGISTRY_METADATA, "returnType LeafClass ou ObjectRef attendu", return_type)
        # Metadata (LeafClass) and references (ObjectRef) are two lines of the rights matrix.
        enforce(
            caller,
            rights.Operation.TD3_1_METADATA if return_type == "LeafClass" else rights.Operation.TD3_1_REFERENCE,
        )
        query = body.find(f"{{{_RIM}}}AdhocQuery")
        if query is None:
            raise XdsError(XdsErrorCode.UNKNOWN_STORED_QUERY, "AdhocQuery absent")
        try:
            kind = StoredQuery(query.get("id", ""))
        except ValueError:
            raise XdsError(
                XdsErrorCode.UNKNOWN_STORED_QUERY, "Requête stockée non prise en charge", query.get("id", "")
            ) from None
        params = _params(query)
        rows = _find(store, caller, params) if kind is StoredQuery.FIND_DOCUMENTS else _get(store, caller, params)
    except XdsError as err:
        response.set("status", FAILURE)
        response.insert(0, error_list([err]))
        return Reply(response)
    response.set("status", SUCCESS)
    response.set("startIndex", "0")
    response.set("totalResultCount", str(len(rows)))
    for row in rows:
        if return_type == "LeafClass":
            objects.append(_extrinsic(row))
        else:
            etree.SubElement(objects, f"{{{_RIM}}}ObjectRef", id=row.entry_uuid)
    return Reply(response)


def update_document_set(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD3.3a-d: visibility (new metadata version) or availability status changes."""
    try:
        _update(store, caller, body)
    except XdsError as err:
        return Reply(registry_response([err]))
    return Reply(registry_response([]))


def _update(store: DmpStore, caller: Caller, body: etree._Element) -> None:
    if body.tag != f"{{{NS['lcm']}}}SubmitObjectsRequest":
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "SubmitObjectsRequest attendu")
    objects = body.find(f"{{{_RIM}}}RegistryObjectList")
    if objects is None:
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "RegistryObjectList absent")
    submission = parse_submission_set(objects)
    require_patient(store, submission.patient, caller)
    check_submission_codes(submission.element)
    links = [association(a) for a in objects.iterfind(f"{{{_RIM}}}Association")]
    changes: list[tuple[str, AvailabilityStatus]] = []
    new: list[NewEntry] = []
    for link in links:
        if link.kind != UPDATE_AVAILABILITY:
            continue
        changes.append(_status_change(store, caller, link.element, link.target))
    for element in objects.iterfind(f"{{{_RIM}}}ExtrinsicObject"):
        previous = [
            slot_values(a.element, "PreviousVersion")
            for a in links
            if a.kind == HAS_MEMBER and a.source == submission.symbolic_id and a.target == element.get("id")
        ]
        if len(previous) != 1 or len(previous[0]) != 1:
            raise XdsError(
                XdsErrorCode.METADATA_UPDATE, "HasMember avec PreviousVersion attendu", element.get("id", "")
            )
        entry, old = _new_version(store, caller, element, previous[0][0])
        changes.append((old.entry_uuid, AvailabilityStatus.DEPRECATED))
        new.append(NewEntry(entry))
    if not changes:
        raise XdsError(
            XdsErrorCode.METADATA_UPDATE, "Aucune mise à jour (UpdateAvailabilityStatus ou nouvelle version)"
        )
    if store.submission_set_exists(submission.unique_id):
        raise XdsError(XdsErrorCode.DUPLICATE_UNIQUE_ID, "uniqueId de lot déjà utilisé", submission.symbolic_id)
    package = bytes(etree.tostring(submission.element))
    store.register(
        new,
        submission=(submission.unique_id, submission.patient.value, caller.vihf.name_id, package),
        status_changes=changes,
    )


def _status_change(
    store: DmpStore, caller: Caller, element: etree._Element, target: str
) -> tuple[str, AvailabilityStatus]:
    row = store.entry(target)
    if row is None or row.patient != caller.vihf.ins.value or not visible(row, caller):
        raise XdsError(XdsErrorCode.UNRESOLVED_REFERENCE, "Document inconnu", target)
    original, new_status = slot_values(element, "OriginalStatus"), slot_values(element, "NewStatus")
    try:
        before, after = AvailabilityStatus(original[0]), AvailabilityStatus(new_status[0])
    except (IndexError, ValueError):
        raise XdsError(XdsErrorCode.METADATA_UPDATE, "OriginalStatus/NewStatus absents ou inconnus", target) from None
    if before is not row.status:
        raise XdsError(XdsErrorCode.METADATA_UPDATE, "OriginalStatus différent du statut actuel", target)
    if (before, after) not in _TRANSITIONS:
        raise XdsError(XdsErrorCode.METADATA_UPDATE, "Changement de statut non autorisé", target)
    if after is AvailabilityStatus.DELETED:
        operation = rights.Operation.TD3_3C_DELETE
    elif after is AvailabilityStatus.ARCHIVED:
        operation = rights.Operation.TD3_3D_ARCHIVE
    else:
        operation = rights.Operation.TD3_3D_UNARCHIVE
    # Every document here was sent by a professional: « * » (a patient's own document) never applies.
    enforce(
        caller,
        operation,
        own_document=own_document(caller, row),
        structure_document=structure_document(caller, row),
        patient_document=False,
    )
    return row.entry_uuid, after


def _new_version(store: DmpStore, caller: Caller, element: etree._Element, previous: str) -> tuple[EntryRow, EntryRow]:
    entry = parse_entry(element)
    check_entry_codes(element)
    if not entry.lid:
        raise XdsError(XdsErrorCode.METADATA_UPDATE, "lid absent", entry.symbolic_id)
    current = [
        r
        for r in store.entries_by_lid(entry.lid)
        if r.status in {AvailabilityStatus.APPROVED, AvailabilityStatus.ARCHIVED}
    ]
    if not current or current[-1].patient != caller.vihf.ins.value or not visible(current[-1], caller):
        raise XdsError(XdsErrorCode.UNRESOLVED_REFERENCE, "Document inconnu", entry.lid)
    old = current[-1]
    if previous != str(old.version):
        raise XdsError(XdsErrorCode.METADATA_VERSION, "PreviousVersion n'est pas la version courante", entry.lid)
    check_new_version(caller, element, old, previous)
    stored = store.content(old.unique_id)
    assert stored is not None
    sha1 = hashlib.sha1(stored[1]).hexdigest()
    entry_uuid = f"urn:uuid:{uuid.uuid4()}"
    version = old.version + 1
    row = EntryRow(
        entry_uuid=entry_uuid,
        lid=old.lid,
        version=version,
        unique_id=old.unique_id,
        patient=old.patient,
        status=old.status,
        author_id=old.author_id,
        submitter_id=old.submitter_id,
        confidentiality=entry.confidentiality,
        class_code=old.class_code,
        type_code=old.type_code,
        format_code=old.format_code,
        creation_time=old.creation_time,
        is_signature=old.is_signature,
        metadata=registry_form(entry, entry_uuid, old.lid, version, sha1, len(stored[1])),
        replaces=None,
    )
    return row, old
