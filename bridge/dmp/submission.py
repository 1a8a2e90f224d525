"""TD2.1 lots without I/O: each document wrapped or passed through, described (XDS), and put in MTOM parts.

`prepare_document` decides a document's uniqueId (the caller's, the CDA's own, or a new one), wraps non-CDA
content into a CDA and picks its formatCode; `describe_lot` makes the DocumentEntries and MTOM parts;
`finish_lot` adds the XAdES signature document and builds the ProvideAndRegister body. The DMP client
(`bridge.dmp.client`) signs and sends; tests can build a lot byte for byte with a fixed clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dmp.cda import CdaHeader, wrap_unstructured
from bridge.dmp.cda_header import CdaMetadata, read_cda_metadata
from bridge.dmp.codes import Confidentiality, DocFormat
from bridge.dmp.context import MAX_WRAPPED_BYTES, NewDocument, Practitioner, Progress
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.mtom import MtomPart
from bridge.dmp.transactions import provide_and_register
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xades import signature_entry
from bridge.dmp.xds_model import (
    Author,
    Code,
    DocumentEntry,
    SubmissionSet,
    confidentiality_code,
    format_code,
    hl7_dtm,
)

__all__ = ["Lot", "Prepared", "ProgressReader", "describe_lot", "finish_lot", "prepare_document"]

_CDA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})


class ProgressReader(io.RawIOBase):
    """A seekable reader over bytes that reports how much was read (sent) so far."""

    def __init__(self, data: bytes, progress: Progress) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._pos = 0
        self._progress = progress

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True (a request body may be sent again when it provably never arrived)."""
        return True

    def tell(self) -> int:
        """Current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move within the bytes (clamped)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        """Copy the next bytes into `buffer` and report progress."""
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._pos += n
        if n:
            self._progress(self._pos, len(self._view))
        return n


@dataclass(frozen=True)
class Prepared:
    """One document ready to be described: its uniqueId, stored bytes, formatCode, title, and for a CDA
    passed through, the header its metadata comes from."""

    unique_id: str
    data: bytes
    format: Code
    title: str
    header: CdaMetadata | None = None


def prepare_document(
    practitioner: Practitioner,
    patient: PatientIns,
    doc: NewDocument,
    now: dt.datetime,
    new_uid: Callable[[], str],
    replaces: str | None = None,
) -> Prepared:
    """One document prepared: a CDA is read (its header gives the metadata), other content is wrapped.

    A CDA keeps its own id (a caller-given `unique_id` must be it) and is refused when the caller's
    explicit metadata contradicts its header; wrapped content gets the caller's `unique_id`, else a new
    one from `new_uid`, and when it `replaces` a document, a relatedDocument RPLC naming it (version 2:
    the replaced document's CDA is not read back, so it is taken as a first version).
    """
    media = doc.mime_type.split(";")[0].strip().lower()
    if media in _CDA_TYPES:
        header = read_cda_metadata(doc.content)
        header.check_against(patient=patient, type_code=doc.type_code, title=doc.title)
        fmt = doc.format
        if fmt is None:
            if header.media_type is None:
                raise DmpParamsError("a structured CDA needs its formatCode")
            fmt = format_code(DocFormat.for_media_type(header.media_type))
        if doc.unique_id is not None and doc.unique_id != header.document_id:
            raise DmpParamsError("uniqueId: a CDA keeps the id written in it")
        return Prepared(header.document_id, doc.content, fmt, header.title, header)
    docformat = DocFormat.for_media_type(media)
    if len(doc.content) > MAX_WRAPPED_BYTES:
        raise DmpParamsError(f"document too large to wrap in a CDA (at most {MAX_WRAPPED_BYTES} bytes)")
    if doc.patient_identity is None:
        raise DmpParamsError("wrapping a non-CDA document needs the patient's identity (names, gender, birth)")
    if doc.patient_identity.ins != patient:
        raise DmpParamsError("the document's patient is not the patient of the call")
    unique_id = doc.unique_id or new_uid()
    wrapper = CdaHeader(
        document_id=unique_id,
        type_code=doc.type_code,
        title=doc.title,
        effective_time=now,
        patient=doc.patient_identity,
        author=practitioner.person(),
        custodian=practitioner.institution(),
        facility=practitioner.facility(),
        parent_document_id=replaces,
        version=2 if replaces else 1,
    )
    return Prepared(unique_id, wrap_unstructured(wrapper, doc.content, docformat), format_code(docformat), doc.title)


def _authors(practitioner: Practitioner, header: CdaMetadata) -> tuple[Author, ...]:
    """The CDA's authors as XDS authors; the practitioner's own entry (specialty, situation) when it is one."""
    mine = practitioner.author()
    out = []
    for person, organization in header.authors:
        if person.id == practitioner.national_id:
            out.append(dataclasses.replace(mine, person=person))
        else:
            out.append(Author(person, (organization,) if organization is not None else mine.institutions))
    return tuple(out) or (mine,)


@dataclass(frozen=True)
class Lot:
    """The documents of one TD2.1, described and ready to be signed."""

    entries: tuple[DocumentEntry, ...]
    parts: tuple[MtomPart, ...]
    #: The bytes the DMP stores for each document (the CDA, wrapper included).
    stored: tuple[bytes, ...]

    @property
    def unique_ids(self) -> tuple[str, ...]:
        """Each document's uniqueId, in order."""
        return tuple(e.unique_id for e in self.entries)


def describe_lot(
    practitioner: Practitioner,
    patient: PatientIns,
    documents: Sequence[NewDocument],
    now: dt.datetime,
    new_uid: Callable[[], str],
    replaces: Mapping[int, str] | None = None,
) -> Lot:
    """Prepare every document and its DocumentEntry and MTOM part (`replaces`: index → replaced uniqueId)."""
    when = hl7_dtm(now)
    author = practitioner.author()
    entries: list[DocumentEntry] = []
    parts: list[MtomPart] = []
    stored: list[bytes] = []
    for index, doc in enumerate(documents, start=1):
        ready = prepare_document(practitioner, patient, doc, now, new_uid, (replaces or {}).get(index - 1))
        unique_id, data, fmt, title, header = ready.unique_id, ready.data, ready.format, ready.title, ready.header
        confidentiality = [confidentiality_code(Confidentiality.NORMAL)]
        if doc.hidden_from_professionals:
            confidentiality.append(confidentiality_code(Confidentiality.MASQUE_PS))
        if doc.hidden_from_patient:
            confidentiality.append(confidentiality_code(Confidentiality.INVISIBLE_PATIENT))
        entry_id = f"Document{index:02d}"
        entry = DocumentEntry(
            entry_id=entry_id,
            unique_id=unique_id,
            patient=patient,
            mime_type="text/xml",
            title=title,
            class_code=doc.class_code,
            type_code=doc.type_code,
            format_code=fmt,
            facility_type=practitioner.facility(),
            practice_setting=practitioner.practice_setting,
            authors=(author,),
            confidentiality=tuple(confidentiality),
            creation_time=when,
            service_start=when,
            service_stop=when,
            legal_authenticator=practitioner.person(),
            source_patient_id=patient.cx(),
            hash=hashlib.sha1(data).hexdigest(),
            size=len(data),
        )
        if header is not None:
            # Metadata and document agree: what the CDA's header says wins over defaults.
            created = header.creation_time or when
            entry = dataclasses.replace(
                entry,
                type_code=Code(
                    header.type_code.code, header.type_code.scheme, doc.type_code.display or header.type_code.display
                ),
                authors=_authors(practitioner, header),
                creation_time=created,
                service_start=header.service_start or created,
                service_stop=header.service_stop or header.service_start or created,
                legal_authenticator=header.legal_authenticator or entry.legal_authenticator,
            )
        entries.append(entry)
        parts.append(MtomPart(f"{entry_id.lower()}@dmp-bridge", "text/xml", data))
        stored.append(data)
    ids = [e.unique_id for e in entries]
    if len(set(ids)) != len(ids):
        raise DmpParamsError("uniqueId: two documents of one lot have the same id")
    return Lot(tuple(entries), tuple(parts), tuple(stored))


def finish_lot(
    lot: Lot,
    practitioner: Practitioner,
    submission: SubmissionSet,
    signature: bytes,
    signature_uid: str,
    now: dt.datetime,
    replaces: Mapping[str, str] | None,
) -> tuple[Any, list[MtomPart]]:
    """The ProvideAndRegister body and all MTOM parts, the XAdES signature document last."""
    sig_entry = signature_entry(
        entry_id="Signature01",
        unique_id=signature_uid,
        patient=submission.patient,
        authors=(practitioner.author(),),
        legal_authenticator=practitioner.person(),
        time=hl7_dtm(now),
        facility_type=practitioner.facility(),
        practice_setting=practitioner.practice_setting,
    )
    sig_entry = dataclasses.replace(sig_entry, hash=hashlib.sha1(signature).hexdigest(), size=len(signature))
    parts = [*lot.parts, MtomPart("signature01@dmp-bridge", "text/xml", signature)]
    content_ids = {e.entry_id: p.content_id for e, p in zip(lot.entries, parts, strict=False)}
    content_ids["Signature01"] = parts[-1].content_id
    body = provide_and_register(
        submission,
        [*lot.entries, sig_entry],
        content_ids,
        signature_entry_id="Signature01",
        replaces=dict(replaces) if replaces else None,
    )
    return body, parts
