"""The DMP client: the I/O edge that puts the pure builders of `bridge.dmp` on the wire.

One `DmpClient` talks to one DMP with one set of credentials (the CPS card in DIRECTE mode, the
establishment certificates in the indirect modes): two keep-alive `HttpsClient`s (registry,
repository) sharing one TLS session cache, so the second endpoint resumes the first one's session and
the card signs the TLS handshake once. The VIHF is signed once per (practitioner, patient, mode,
purpose) and kept in a `VihfCache`. Every signing step (VIHF, XAdES) runs off the event loop, because
a card-backed key blocks on APDUs.

Errors: a DMP refusal (SOAP fault, failed RegistryResponse) is DMP_FAULT with the DMP's code; network
and TLS failures are DMP_UNREACHABLE; only idempotent reads (find, get, retrieve) are sent again, once.
Clock and message ids are injected so that tests and benchmarks are reproducible.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lxml import etree

from bridge.crypto.tls import TlsError, TlsSessionCache
from bridge.dmp.cda import CdaHeader, read_cda, wrap_unstructured
from bridge.dmp.codes import (
    AvailabilityStatus,
    Confidentiality,
    DocFormat,
)
from bridge.dmp.context import (
    CONTENT_TYPE_DEFAULT,
    MAX_WRAPPED_BYTES,
    DmpCredentials,
    DmpSettings,
    NewDocument,
    Practitioner,
    Progress,
    SubmitResult,
    Timings,
    signed_vihf,
)
from bridge.dmp.endpoints import Transaction, encode_request
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.http import Body, HttpsClient
from bridge.dmp.mtom import MtomPart
from bridge.dmp.soap import SoapResponse, parse_registry_response, parse_soap_response
from bridge.dmp.transactions import (
    find_documents,
    get_documents,
    provide_and_register,
    retrieve_document_set,
    update_availability_status,
    update_visibility,
    with_visibility,
)
from bridge.dmp.vihf import PatientIns
from bridge.dmp.vihf_cache import VihfCache, VihfKey
from bridge.dmp.xades import SignedDocument, build_xades_signature, signature_entry
from bridge.dmp.xds_model import (
    Code,
    DocumentEntry,
    SubmissionSet,
    confidentiality_code,
    format_code,
    hl7_dtm,
    new_unique_id,
)
from bridge.dmp.xds_parse import RetrievedDocument, parse_query_response, parse_retrieve_response
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "DmpClient",
]

_CDA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})


class _ProgressReader(io.RawIOBase):
    """A seekable reader over bytes that reports how much was read (sent) so far."""

    def __init__(self, data: bytes, progress: Progress) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._pos = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def readinto(self, buffer: Any) -> int:
        chunk = self._view[self._pos : self._pos + len(buffer)]
        n = len(chunk)
        memoryview(buffer).cast("B")[:n] = chunk
        self._pos += n
        if n:
            self._progress(self._pos, len(self._view))
        return n


class DmpClient:
    """Async DMP document operations for one set of credentials (see the module docstring)."""

    def __init__(
        self,
        settings: DmpSettings,
        credentials: DmpCredentials,
        *,
        vihf_cache: VihfCache | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._cache = vihf_cache if vihf_cache is not None else VihfCache()
        self._clock = clock
        self._new_id = new_id
        self._counter = itertools.count()
        self._sessions = TlsSessionCache()
        endpoint = settings.endpoint(credentials.tls)
        self._http = {
            "registry": HttpsClient(endpoint, sessions=self._sessions),
            "repository": HttpsClient(endpoint, sessions=self._sessions),
        }
        self._vihf_lock = asyncio.Lock()
        #: Time split of the last call (benchmarks, diagnostics).
        self.timings = Timings()

    def __repr__(self) -> str:
        return f"DmpClient({self.settings.base_url!r}, {self.credentials!r})"

    async def __aenter__(self) -> DmpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close both connections."""
        for client in self._http.values():
            await client.aclose()

    @property
    def handshakes(self) -> int:
        """TLS handshakes made so far (full or resumed), both endpoints together."""
        return sum(len(c.handshakes) for c in self._http.values())

    @property
    def resumed_handshakes(self) -> int:
        """How many of those resumed a TLS session (no new client-certificate signature)."""
        return sum(h.resumed for c in self._http.values() for h in c.handshakes)

    def forget(self, practitioner_id: str | None = None) -> None:
        """Drop cached VIHFs (logout, card removed)."""
        self._cache.invalidate(practitioner_id)

    # -- building blocks ------------------------------------------------------------------------

    def _uid(self, kind: int, now: dt.datetime) -> str:
        return new_unique_id(self.settings.oid_root, kind, now=now, counter=next(self._counter) % 1000 + 1)

    async def _vihf(self, practitioner: Practitioner, patient: PatientIns) -> Any:
        key = VihfKey(practitioner.cache_id, patient.cx(), practitioner.mode)

        def sign() -> Any:
            return signed_vihf(
                practitioner, patient, self.credentials, self.settings, now=self._clock(), assertion_id=self._new_id()
            )

        # One signature per context even when calls race; the card key blocks, so off the loop.
        async with self._vihf_lock:
            return await asyncio.to_thread(self._cache.get_or_sign, key, sign)

    async def _exchange(
        self,
        transaction: Transaction,
        body: Any,
        vihf: Any,
        *,
        parts: Sequence[MtomPart] = (),
        idempotent: bool = False,
        progress: Progress | None = None,
    ) -> SoapResponse:
        endpoint = transaction.endpoint
        message_id = "urn:uuid:" + self._new_id()
        content_type, data = encode_request(
            body,
            transaction=transaction,
            message_id=message_id,
            vihf=vihf,
            to=self.settings.url(endpoint.path),
            parts=parts,
            boundary="MIMEBoundary_" + self._new_id().replace("-", ""),
        )
        self.timings.request_bytes = len(data)
        client = self._http[endpoint.path]
        path = self.settings.path(endpoint.path)
        started = time.perf_counter()
        attempts = 2 if idempotent else 1
        for attempt in range(attempts):
            payload: Body = _ProgressReader(data, progress) if progress is not None else data  # type: ignore[assignment]
            try:
                response = await client.post(path, payload, content_type)
                break
            except TlsError:
                if attempt + 1 == attempts:
                    raise
        self.timings.exchange = time.perf_counter() - started
        try:
            answer = parse_soap_response(response.body, response.header("content-type"))
        except (DmpInputError, ValueError) as exc:
            if response.status >= 400:
                raise BridgeError(
                    ErrorCode.DMP_FAULT, f"HTTP {response.status}", dmpCode=f"HTTP_{response.status}"
                ) from exc
            raise
        if answer.fault is not None:
            raise answer.fault.to_error()
        if answer.body is None:
            raise DmpInputError("empty SOAP body")
        return answer

    @staticmethod
    def _raise_on_failure(element: Any) -> None:
        fault = parse_registry_response(element).fault()
        if fault is not None:
            raise fault.to_error()

    # -- TD2.1 ----------------------------------------------------------------------------------

    def _prepare(
        self, practitioner: Practitioner, patient: PatientIns, doc: NewDocument, now: dt.datetime
    ) -> tuple[str, bytes, Code, str]:
        """(uniqueId, stored bytes, formatCode, title) of one document, wrapping non-CDA content."""
        media = doc.mime_type.split(";")[0].strip().lower()
        if media in _CDA_TYPES:
            info = read_cda(doc.content)
            fmt = doc.format
            if fmt is None:
                if info.media_type is None:
                    raise DmpParamsError("a structured CDA needs its formatCode")
                fmt = format_code(DocFormat.for_media_type(info.media_type))
            return info.document_id, doc.content, fmt, doc.title or info.title
        docformat = DocFormat.for_media_type(media)
        if len(doc.content) > MAX_WRAPPED_BYTES:
            raise DmpParamsError(f"document too large to wrap in a CDA (at most {MAX_WRAPPED_BYTES} bytes)")
        if doc.patient_identity is None:
            raise DmpParamsError("wrapping a non-CDA document needs the patient's identity (names, gender, birth)")
        if doc.patient_identity.ins != patient:
            raise DmpParamsError("the document's patient is not the patient of the call")
        unique_id = self._uid(3, now)
        header = CdaHeader(
            document_id=unique_id,
            type_code=doc.type_code,
            title=doc.title,
            effective_time=now,
            patient=doc.patient_identity,
            author=practitioner.person(),
            custodian=practitioner.institution(),
            facility=practitioner.facility(),
        )
        return unique_id, wrap_unstructured(header, doc.content, docformat), format_code(docformat), doc.title

    async def submit(
        self,
        practitioner: Practitioner,
        patient: PatientIns,
        documents: Sequence[NewDocument],
        *,
        replaces: Mapping[int, str] | None = None,
        content_type: Code = CONTENT_TYPE_DEFAULT,
        progress: Progress | None = None,
    ) -> SubmitResult:
        """TD2.1: wrap, describe, sign (XAdES) and send documents; `replaces` maps a document index to
        the uniqueId of the document it replaces (RPLC)."""
        if not documents:
            raise DmpParamsError("nothing to submit")
        started = time.perf_counter()
        now = self._clock()
        when = hl7_dtm(now)
        author = practitioner.author()
        entries: list[DocumentEntry] = []
        parts: list[MtomPart] = []
        stored: list[bytes] = []
        for index, doc in enumerate(documents, start=1):
            unique_id, data, fmt, title = self._prepare(practitioner, patient, doc, now)
            confidentiality = [confidentiality_code(Confidentiality.NORMAL)]
            if doc.hidden_from_professionals:
                confidentiality.append(confidentiality_code(Confidentiality.MASQUE_PS))
            if doc.hidden_from_patient:
                confidentiality.append(confidentiality_code(Confidentiality.INVISIBLE_PATIENT))
            entry_id = f"Document{index:02d}"
            entries.append(
                DocumentEntry(
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
                    legal_authenticator=practitioner.person(),
                    source_patient_id=patient.cx(),
                    hash=hashlib.sha1(data).hexdigest(),
                    size=len(data),
                )
            )
            parts.append(MtomPart(f"{entry_id.lower()}@dmp-bridge", "text/xml", data))
            stored.append(data)
        lot_uid = self._uid(1, now)
        signature_uid = self._uid(4, now)
        old_uuids: dict[str, str] = {}
        for index, old_unique_id in (replaces or {}).items():
            if not 0 <= index < len(entries):
                raise DmpParamsError("replacement index out of range")
            old = await self.get_by_unique_id(practitioner, patient, old_unique_id)
            if old is None:
                raise BridgeError(ErrorCode.NOT_FOUND, "document to replace")
            old_uuids[entries[index].entry_id] = old.entry_id
        self.timings = Timings(build=time.perf_counter() - started)
        signing_started = time.perf_counter()
        creds = self.credentials
        signed_docs = [SignedDocument(e.unique_id, d) for e, d in zip(entries, stored, strict=True)]

        def xades() -> bytes:
            element = build_xades_signature(
                signature_id="sig-" + self._new_id(),
                submission_set_unique_id=lot_uid,
                documents=signed_docs,
                signing_time=now,
                key=creds.signing_key,
                cert_chain=list(creds.signing_chain),
            )
            return bytes(etree.tostring(element, encoding="utf-8"))

        signature = await asyncio.to_thread(xades)
        vihf = await self._vihf(practitioner, patient)
        signing = time.perf_counter() - signing_started
        sig_entry = signature_entry(
            entry_id="Signature01",
            unique_id=signature_uid,
            patient=patient,
            authors=(author,),
            legal_authenticator=practitioner.person(),
            time=when,
            facility_type=practitioner.facility(),
            practice_setting=practitioner.practice_setting,
        )
        sig_entry = dataclasses.replace(sig_entry, hash=hashlib.sha1(signature).hexdigest(), size=len(signature))
        parts.append(MtomPart("signature01@dmp-bridge", "text/xml", signature))
        submission = SubmissionSet(
            entry_id="SubmissionSet01",
            unique_id=lot_uid,
            source_id=self.settings.oid_root,
            patient=patient,
            submission_time=when,
            content_type=content_type,
            authors=(author,),
        )
        body = provide_and_register(
            submission,
            [*entries, sig_entry],
            _content_ids(entries, parts),
            signature_entry_id="Signature01",
            replaces=old_uuids or None,
        )
        build_before = self.timings.build
        answer = await self._exchange(Transaction.TD2_1, body, vihf, parts=parts, progress=progress)
        self._raise_on_failure(answer.body)
        self.timings.build = build_before
        self.timings.signing = signing
        return SubmitResult(lot_uid, tuple(e.unique_id for e in entries), tuple(stored))

    # -- TD3.1 / TD3.2 --------------------------------------------------------------------------

    async def find(
        self,
        practitioner: Practitioner,
        patient: PatientIns,
        *,
        statuses: Sequence[AvailabilityStatus] = (AvailabilityStatus.APPROVED,),
        type_codes: Sequence[Code] = (),
        class_codes: Sequence[Code] = (),
        confidentiality: Sequence[Code] = (),
    ) -> tuple[DocumentEntry, ...]:
        """TD3.1 FindDocuments: the entries the caller may see, with these statuses and codes."""
        body = find_documents(
            patient, statuses=statuses, type_codes=type_codes, class_codes=class_codes, confidentiality=confidentiality
        )
        vihf = await self._vihf(practitioner, patient)
        answer = await self._exchange(Transaction.TD3_1, body, vihf, idempotent=True)
        result = parse_query_response(answer.body)
        fault = result.registry.fault()
        if fault is not None:
            raise fault.to_error()
        return result.entries

    async def get_by_unique_id(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str
    ) -> DocumentEntry | None:
        """TD3.1 GetDocuments by uniqueId: the current version of the entry (None when not visible)."""
        vihf = await self._vihf(practitioner, patient)
        answer = await self._exchange(Transaction.TD3_1, get_documents(unique_ids=[unique_id]), vihf, idempotent=True)
        result = parse_query_response(answer.body)
        fault = result.registry.fault()
        if fault is not None:
            raise fault.to_error()
        current = [e for e in result.entries if e.status is not AvailabilityStatus.DEPRECATED]
        if not current:
            return None
        return max(current, key=lambda e: int(e.version or "1"))

    async def retrieve(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> RetrievedDocument:
        """TD3.2: the stored bytes of one document (byte-identical to what was submitted)."""
        vihf = await self._vihf(practitioner, patient)
        body = retrieve_document_set([unique_id], self.settings.repository_id)
        answer = await self._exchange(Transaction.TD3_2, body, vihf, idempotent=True)
        result = parse_retrieve_response(answer.body, answer.attachments)
        fault = result.registry.fault()
        if fault is not None:
            raise fault.to_error()
        for doc in result.documents:
            if doc.document_unique_id == unique_id:
                return doc
        raise BridgeError(ErrorCode.NOT_FOUND, "document")

    # -- TD3.3 ----------------------------------------------------------------------------------

    def _update_lot(self, practitioner: Practitioner, patient: PatientIns) -> SubmissionSet:
        now = self._clock()
        return SubmissionSet(
            entry_id="SubmissionSet01",
            unique_id=self._uid(1, now),
            source_id=self.settings.oid_root,
            patient=patient,
            submission_time=hl7_dtm(now),
            content_type=CONTENT_TYPE_DEFAULT,
            authors=(practitioner.author(),),
        )

    async def _current(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> DocumentEntry:
        entry = await self.get_by_unique_id(practitioner, patient, unique_id)
        if entry is None:
            raise BridgeError(ErrorCode.NOT_FOUND, "document")
        return entry

    async def set_visibility(
        self,
        practitioner: Practitioner,
        patient: PatientIns,
        unique_id: str,
        *,
        hidden_from_professionals: bool | None = None,
        hidden_from_patient: bool | None = None,
    ) -> DocumentEntry:
        """TD3.3a/b: mask to / unmask for professionals, hide from / show to the patient (None = unchanged)."""
        entry = await self._current(practitioner, patient, unique_id)
        add, remove = [], []
        for flag, code in (
            (hidden_from_professionals, Confidentiality.MASQUE_PS),
            (hidden_from_patient, Confidentiality.INVISIBLE_PATIENT),
        ):
            if flag is True:
                add.append(code)
            elif flag is False:
                remove.append(code)
        changed = with_visibility(entry, add=add, remove=remove)
        if changed.confidentiality == entry.confidentiality:
            return entry
        # The new version carries only what the registry keeps: its own slots come back from the DMP.
        changed = dataclasses.replace(
            changed, status=None, version=None, hash=None, size=None, repository_unique_id=None
        )
        body = update_visibility(self._update_lot(practitioner, patient), changed, entry.version or "1")
        vihf = await self._vihf(practitioner, patient)
        answer = await self._exchange(Transaction.TD3_3, body, vihf)
        self._raise_on_failure(answer.body)
        return changed

    async def set_status(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, status: AvailabilityStatus
    ) -> AvailabilityStatus:
        """TD3.3d archive/unarchive and TD3.3c delete (status Deleted); returns the previous status."""
        entry = await self._current(practitioner, patient, unique_id)
        original = entry.status or AvailabilityStatus.APPROVED
        if original is status:
            return original
        body = update_availability_status(self._update_lot(practitioner, patient), entry.entry_id, original, status)
        vihf = await self._vihf(practitioner, patient)
        answer = await self._exchange(Transaction.TD3_3, body, vihf)
        self._raise_on_failure(answer.body)
        return original

    async def delete(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> None:
        """TD3.3c: delete a document (its author only)."""
        await self.set_status(practitioner, patient, unique_id, AvailabilityStatus.DELETED)


def _content_ids(entries: Sequence[DocumentEntry], parts: Sequence[MtomPart]) -> dict[str, str]:
    ids = {e.entry_id: p.content_id for e, p in zip(entries, parts, strict=False)}
    ids["Signature01"] = parts[-1].content_id
    return ids
