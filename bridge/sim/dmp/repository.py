"""Repository transactions: TD2.1 (ITI-41 Provide and Register, with RPLC) and TD3.2 (ITI-43 Retrieve)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from urllib.parse import quote

from lxml import etree

from bridge.dmp import rights
from bridge.sim.dmp.access import Caller, Reply, latest_versions, registry_response, require_patient, visible
from bridge.sim.dmp.cda_check import check_cda_header
from bridge.sim.dmp.codes_check import check_entry_codes, check_submission_codes
from bridge.sim.dmp.constants import HAS_MEMBER, NS, REPOSITORY_UNIQUE_ID, RPLC, SIGNS, AvailabilityStatus
from bridge.sim.dmp.errors import FAILURE, SUCCESS, XdsError, XdsErrorCode, error_list
from bridge.sim.dmp.metadata import (
    DocEntry,
    association,
    parse_entry,
    parse_submission_set,
    registry_form,
    slot_values,
)
from bridge.sim.dmp.mime import resolve_cid
from bridge.sim.dmp.rights_check import enforce, own_document, read_operations
from bridge.sim.dmp.store import DmpStore, EntryRow, NewEntry
from bridge.sim.dmp.trust import TrustStore
from bridge.sim.dmp.xades import SignedDocument, check_xades

__all__ = ["provide_and_register", "retrieve"]

_RIM = NS["rim"]
_XDS = NS["xds"]
_PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


def _documents(request: etree._Element, attachments: dict[str, bytes]) -> dict[str, bytes]:
    docs: dict[str, bytes] = {}
    for doc in request.iterfind(f"{{{_XDS}}}Document"):
        doc_id = doc.get("id", "")
        include = doc.find(f"{{{NS['xop']}}}Include")
        if include is not None:
            content = resolve_cid(include.get("href", ""), attachments)
            if content is None:
                raise XdsError(XdsErrorCode.MISSING_DOCUMENT, "Partie MTOM introuvable pour xop:Include", doc_id)
        else:
            try:
                content = base64.b64decode("".join((doc.text or "").split()), validate=True)
            except (binascii.Error, ValueError):
                raise XdsError(XdsErrorCode.MISSING_DOCUMENT, "Contenu base64 invalide", doc_id) from None
        if doc_id in docs:
            raise XdsError(XdsErrorCode.REPOSITORY_METADATA, "Document répété", doc_id)
        docs[doc_id] = content
    return docs


def _content_for(entry: DocEntry, docs: dict[str, bytes], used: set[str]) -> bytes:
    if entry.symbolic_id in docs:
        used.add(entry.symbolic_id)
        return docs[entry.symbolic_id]
    # The official TD2.1 sample pairs ExtrinsicObject "DocumentME2" with Document "documentME2": accept a
    # case-only difference when it is unambiguous (assumption: the DMP's parser is case-insensitive here).
    folded = [k for k in docs if k.lower() == entry.symbolic_id.lower()]
    if len(folded) == 1:
        used.add(folded[0])
        return docs[folded[0]]
    raise XdsError(XdsErrorCode.MISSING_DOCUMENT, "Aucun Document pour cette fiche", entry.symbolic_id)


def _check_declared_hash(entry: DocEntry, content: bytes, sha1: str) -> None:
    declared = slot_values(entry.element, "hash")
    if declared and declared[0].lower() != sha1:
        raise XdsError(XdsErrorCode.NON_IDENTICAL_HASH, "hash déclaré différent du contenu", entry.symbolic_id)
    size = slot_values(entry.element, "size")
    if size and size[0] != str(len(content)):
        raise XdsError(XdsErrorCode.NON_IDENTICAL_SIZE, "size déclarée différente du contenu", entry.symbolic_id)


def provide_and_register(
    store: DmpStore, trust: TrustStore, caller: Caller, body: etree._Element, attachments: dict[str, bytes]
) -> Reply:
    """TD2.1: check the submission (metadata, documents, XAdES), store it, deprecate replaced versions."""
    try:
        _provide_and_register(store, trust, caller, body, attachments)
    except XdsError as err:
        return Reply(registry_response([err]))
    return Reply(registry_response([]))


def _provide_and_register(
    store: DmpStore, trust: TrustStore, caller: Caller, body: etree._Element, attachments: dict[str, bytes]
) -> None:
    # A CPE feeds through TD2.2 (secrétaires médicales libérales), everyone else through TD2.1.
    enforce(caller, rights.Operation.TD2_2 if caller.actor is rights.Actor.CPE else rights.Operation.TD2_1)
    if body.tag != f"{{{_XDS}}}ProvideAndRegisterDocumentSetRequest":
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "ProvideAndRegisterDocumentSetRequest attendu")
    objects = body.find(f"{{{NS['lcm']}}}SubmitObjectsRequest/{{{_RIM}}}RegistryObjectList")
    if objects is None:
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "SubmitObjectsRequest/RegistryObjectList absent")
    submission = parse_submission_set(objects)
    entries = [parse_entry(e) for e in objects.iterfind(f"{{{_RIM}}}ExtrinsicObject")]
    if not entries:
        raise XdsError(XdsErrorCode.MISSING_DOCUMENT_METADATA, "Aucune fiche de document (ExtrinsicObject)")
    require_patient(store, submission.patient, caller)
    check_submission_codes(submission.element)
    for entry in entries:
        check_entry_codes(entry.element)
        if entry.patient != submission.patient:
            raise XdsError(XdsErrorCode.PATIENT_ID_DOES_NOT_MATCH, "patientId différent du lot", entry.symbolic_id)
    by_id = {e.symbolic_id: e for e in entries}
    if len(by_id) != len(entries) or len({e.unique_id for e in entries}) != len(entries):
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "id ou uniqueId de fiche répété")

    links = [association(a) for a in objects.iterfind(f"{{{_RIM}}}Association")]
    members = {a.target for a in links if a.kind == HAS_MEMBER and a.source == submission.symbolic_id}
    for entry in entries:
        if entry.symbolic_id not in members:
            raise XdsError(XdsErrorCode.REGISTRY_METADATA, "Fiche non rattachée au lot (HasMember)", entry.symbolic_id)
    signatures = [e for e in entries if e.is_signature]
    if len(signatures) != 1:
        raise XdsError(XdsErrorCode.SIGNATURE, "Le lot doit contenir un et un seul document de signature XAdES")
    signature = signatures[0]
    if not any(
        a.kind == SIGNS and a.source == signature.symbolic_id and a.target == submission.symbolic_id for a in links
    ):
        raise XdsError(XdsErrorCode.SIGNATURE, "Association signs signature -> lot absente", signature.symbolic_id)

    docs = _documents(body, attachments)
    used: set[str] = set()
    contents = {e.symbolic_id: _content_for(e, docs, used) for e in entries}
    if set(docs) - used:
        raise XdsError(XdsErrorCode.REPOSITORY_METADATA, "Document sans fiche : " + ", ".join(sorted(set(docs) - used)))
    hashes = {k: hashlib.sha1(v).hexdigest() for k, v in contents.items()}
    for entry in entries:
        _check_declared_hash(entry, contents[entry.symbolic_id], hashes[entry.symbolic_id])
        if not entry.is_signature and "xml" in entry.mime_type:
            check_cda_header(entry, contents[entry.symbolic_id])
    check_xades(
        contents[signature.symbolic_id],
        submission.unique_id,
        [
            SignedDocument(e.unique_id, contents[e.symbolic_id], "xml" in e.mime_type)
            for e in entries
            if not e.is_signature
        ],
        trust,
    )
    if store.submission_set_exists(submission.unique_id):
        raise XdsError(XdsErrorCode.DUPLICATE_UNIQUE_ID, "uniqueId de lot déjà utilisé", submission.symbolic_id)
    taken = store.unique_ids_taken(e.unique_id for e in entries)
    if taken:
        raise XdsError(XdsErrorCode.DUPLICATE_UNIQUE_ID, "uniqueId de document déjà utilisé : " + ", ".join(taken))

    deprecate: list[tuple[str, AvailabilityStatus]] = []
    replaces: dict[str, str] = {}
    for link in links:
        if link.kind != RPLC:
            continue
        if link.source not in by_id or by_id[link.source].is_signature:
            raise XdsError(
                XdsErrorCode.REGISTRY_METADATA, "RPLC doit partir d'une fiche du lot", link.element.get("id", "")
            )
        old = store.entry(link.target)
        if old is None or old.patient != submission.patient.value or not visible(old, caller):
            raise XdsError(XdsErrorCode.UNRESOLVED_REFERENCE, "Document remplacé inconnu", link.target)
        if old.status is not AvailabilityStatus.APPROVED:
            raise XdsError(
                XdsErrorCode.REGISTRY_METADATA, "Seule une version Approved peut être remplacée", link.target
            )
        deprecate.append((old.entry_uuid, AvailabilityStatus.DEPRECATED))
        replaces[link.source] = old.entry_uuid

    new: list[NewEntry] = []
    for entry in entries:
        entry_uuid = f"urn:uuid:{uuid.uuid4()}"
        content = contents[entry.symbolic_id]
        row = EntryRow(
            entry_uuid=entry_uuid,
            lid=entry_uuid,
            version=1,
            unique_id=entry.unique_id,
            patient=entry.patient.value,
            status=AvailabilityStatus.APPROVED,
            author_id=entry.author_id,
            submitter_id=caller.vihf.name_id,
            confidentiality=entry.confidentiality,
            class_code=entry.class_code,
            type_code=entry.type_code,
            format_code=entry.format_code,
            creation_time=entry.creation_time,
            is_signature=entry.is_signature,
            metadata=registry_form(entry, entry_uuid, entry_uuid, 1, hashes[entry.symbolic_id], len(content)),
            replaces=replaces.get(entry.symbolic_id),
        )
        new.append(NewEntry(row, content, entry.mime_type, hashes[entry.symbolic_id]))
    package = bytes(etree.tostring(submission.element))
    store.register(
        new,
        submission=(submission.unique_id, submission.patient.value, caller.vihf.name_id, package),
        status_changes=deprecate,
    )


def retrieve(store: DmpStore, caller: Caller, body: etree._Element) -> Reply:
    """TD3.2: the requested documents, byte-identical, as MTOM attachments."""
    if body.tag != f"{{{_XDS}}}RetrieveDocumentSetRequest":
        raise XdsError(XdsErrorCode.REGISTRY_METADATA, "RetrieveDocumentSetRequest attendu")
    response = etree.Element(
        f"{{{_XDS}}}RetrieveDocumentSetResponse",
        nsmap={"ns2": NS["rs"], "ns3": NS["lcm"], "ns4": _XDS, "ns5": _RIM, "ns6": NS["query"]},
    )
    status = etree.SubElement(response, f"{{{NS['rs']}}}RegistryResponse")
    errors: list[XdsError] = []
    attachments: list[tuple[str, str, bytes]] = []
    requests = body.findall(f"{{{_XDS}}}DocumentRequest")
    if not requests:
        errors.append(XdsError(XdsErrorCode.DOCUMENT_UNIQUE_ID, "Aucun DocumentRequest"))
    for request in requests:
        repository = (request.findtext(f"{{{_XDS}}}RepositoryUniqueId") or "").strip()
        unique_id = (request.findtext(f"{{{_XDS}}}DocumentUniqueId") or "").strip()
        if repository != REPOSITORY_UNIQUE_ID:
            errors.append(XdsError(XdsErrorCode.UNKNOWN_REPOSITORY, "RepositoryUniqueId inconnu", repository))
            continue
        # Visibility is that of the latest version (a masking creates a new version; older ones are Deprecated).
        latest = latest_versions(store.entries_by_unique_id(unique_id))
        rows = [r for r in latest.values() if r.patient == caller.vihf.ins.value and visible(r, caller)]
        for row in rows:
            for operation in read_operations(row):
                # No record of the patient's authorisation for masked documents (note (7)): not given.
                enforce(caller, operation, own_document=own_document(caller, row), patient_authorised=False)
        stored = store.content(unique_id) if rows else None
        if stored is None:
            errors.append(XdsError(XdsErrorCode.DOCUMENT_UNIQUE_ID, "Document inconnu ou non visible", unique_id))
            continue
        mime, content = stored
        # Content-ID as Axis2 writes it; the href is its URL-encoded form (RFC 2392), as in the TD3.2 sample.
        cid = f"{uuid.uuid4()}-{len(attachments) + 1}@urn:ihe:iti:xds-b:2007"
        attachments.append((cid, mime, content))
        doc = etree.SubElement(response, f"{{{_XDS}}}DocumentResponse")
        etree.SubElement(doc, f"{{{_XDS}}}RepositoryUniqueId").text = repository
        etree.SubElement(doc, f"{{{_XDS}}}DocumentUniqueId").text = unique_id
        etree.SubElement(doc, f"{{{_XDS}}}mimeType").text = mime
        include = etree.SubElement(etree.SubElement(doc, f"{{{_XDS}}}Document"), f"{{{NS['xop']}}}Include")
        include.set("href", "cid:" + quote(cid, safe="@-."))
    status.set("status", (_PARTIAL if attachments else FAILURE) if errors else SUCCESS)
    if errors:
        status.append(error_list(errors))
    return Reply(response, tuple(attachments))
