"""The DMP client: the I/O edge that puts the pure builders of `bridge.dmp` on the wire.

One `DmpClient` talks to one DMP with one set of credentials (the CPS card in DIRECTE mode, the
establishment certificates in the indirect modes): two keep-alive `HttpsClient`s (registry,
repository) sharing one TLS session cache, so the second endpoint resumes the first one's session and
the card signs the TLS handshake once. The VIHF is signed once per (practitioner, patient, mode,
purpose) and kept in a `VihfCache`. Every signing step (VIHF, XAdES) runs off the event loop, because
a card-backed key blocks on APDUs.

Each endpoint has a small connection pool, so one slow call never blocks another one. The TD2.1 lot is
built by `bridge.dmp.submission` (no I/O).

Errors: a DMP refusal (SOAP fault, failed RegistryResponse) is DMP_FAULT with the DMP's code; network
and TLS failures are DMP_UNREACHABLE (the request was not applied); only idempotent reads (find, get,
retrieve) are sent again, once. A write (TD2.1, ITI-57) sent without an answer is DMP_OUTCOME_UNKNOWN
carrying the uniqueIds concerned, never sent again behind the caller's back. Every call has a total
deadline (`DmpSettings.call_timeout`, card signatures included): TIMEOUT with the stage that ran out.
Clock and message ids are injected so that tests and benchmarks are reproducible.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from lxml import etree

from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.codes import AvailabilityStatus, Confidentiality
from bridge.dmp.context import (
    CONTENT_TYPE_DEFAULT,
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
from bridge.dmp.http import Body, HttpsClient, OutcomeUnknown
from bridge.dmp.mtom import MtomPart
from bridge.dmp.soap import SoapResponse, parse_registry_response, parse_soap_response
from bridge.dmp.submission import ProgressReader, describe_lot, finish_lot
from bridge.dmp.transactions import (
    find_documents,
    get_documents,
    retrieve_document_set,
    update_availability_status,
    update_visibility,
    with_visibility,
)
from bridge.dmp.vihf import PatientIns
from bridge.dmp.vihf_cache import VihfCache, VihfKey
from bridge.dmp.xades import SignedDocument, build_xades_signature
from bridge.dmp.xds_model import (
    Code,
    DocumentEntry,
    SubmissionSet,
    hl7_dtm,
    new_unique_id,
)
from bridge.dmp.xds_parse import RetrievedDocument, parse_query_response, parse_retrieve_response
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "DmpClient",
]

#: Seconds past a call's deadline before the outer guard cancels it: the HTTPS layer's own deadline
#: (socket timeouts, watchdog) ends first and says precisely what happened.
_GUARD_GRACE = 3.0


class _Call:
    """One DMP call's deadline and current stage, for the TIMEOUT it may end with."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: "signature" (card/key), "exchange" (HTTPS), ... — what a timeout interrupted.
        self.stage = "preparation"
        #: The uniqueIds a write would change (carried by DMP_OUTCOME_UNKNOWN).
        self.unique_ids: tuple[str, ...] = ()
        self.write = False


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
        max_connections: int = 4,
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
            name: HttpsClient(
                endpoint, sessions=self._sessions, max_connections=max_connections, timeout=settings.call_timeout
            )
            # patients / habilitations: the patient-level transactions (TD0.x, TD1.x) of bridge.dmp.patient_*.
            for name in ("registry", "repository", "patients", "habilitations", "patientsSpecific", "patientsPDQ")
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
        """Close every connection."""
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

    @contextlib.asynccontextmanager
    async def _call(self, what: str) -> AsyncIterator[_Call]:
        """A call with its total deadline; a timeout becomes TIMEOUT (or DMP_OUTCOME_UNKNOWN for a sent write)."""
        call = _Call(what, self.settings.call_timeout)
        try:
            async with asyncio.timeout(call.timeout + _GUARD_GRACE):
                yield call
        except TimeoutError:
            if call.write and call.stage == "exchange":
                raise self._unknown(call, f"{what}: no answer within {call.timeout:g} s") from None
            raise BridgeError(
                ErrorCode.TIMEOUT, f"{what}: {call.stage} not done within {call.timeout:g} s", stage=call.stage
            ) from None
        except OutcomeUnknown as exc:
            raise self._unknown(call, f"{what}: {exc.detail}") from exc
        except BridgeError as exc:
            if exc.code is ErrorCode.TIMEOUT and not (exc.detail or "").startswith(what):
                raise BridgeError(ErrorCode.TIMEOUT, f"{what}: {exc.detail}", **exc.extra) from exc
            raise

    @staticmethod
    def _unknown(call: _Call, detail: str) -> OutcomeUnknown:
        extra: dict[str, object] = {"transaction": call.what}
        if call.unique_ids:
            extra["uniqueId"] = call.unique_ids[0]
            extra["uniqueIds"] = list(call.unique_ids)
        return OutcomeUnknown(detail, **extra)

    def _uid(self, kind: int, now: dt.datetime) -> str:
        return new_unique_id(self.settings.oid_root, kind, now=now, counter=next(self._counter) % 1000 + 1)

    async def _vihf(self, practitioner: Practitioner, patient: PatientIns, call: _Call) -> Any:
        key = VihfKey(practitioner.cache_id, patient.cx(), practitioner.mode)

        def sign() -> Any:
            return signed_vihf(
                practitioner, patient, self.credentials, self.settings, now=self._clock(), assertion_id=self._new_id()
            )

        # One signature per context even when calls race; the card key blocks, so off the loop.
        call.stage = "signature"
        async with self._vihf_lock:
            return await asyncio.to_thread(self._cache.get_or_sign, key, sign)

    async def _exchange(
        self,
        transaction: Transaction,
        body: Any,
        vihf: Any,
        call: _Call,
        *,
        parts: Sequence[MtomPart] = (),
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
        payload: Body = ProgressReader(data, progress) if progress is not None else data  # type: ignore[assignment]
        call.stage, call.write = "exchange", not endpoint.idempotent
        # The HTTPS client resends only what cannot be applied twice (see bridge.dmp.http).
        response = await client.post(
            path, payload, content_type, idempotent=endpoint.idempotent, deadline=call.deadline
        )
        call.stage = "answer"
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

    async def transact(
        self, transaction: Transaction, practitioner: Practitioner, patient: PatientIns, body: Any
    ) -> SoapResponse:
        """Send one request built by a sans-IO module (bridge.dmp.patient_*) with this client's VIHF, TLS,
        deadline and at-most-once rules; the answer, its SOAP fault raised as the mapped BridgeError."""
        async with self._call(transaction.value) as call:
            vihf = await self._vihf(practitioner, patient, call)
            return await self._exchange(transaction, body, vihf, call)

    def message_ids(self) -> tuple[dt.datetime, str]:
        """The injected clock's now and a new id, for the HL7v3 messages the patient modules build."""
        return self._clock(), self._new_id()

    # -- TD2.1 ----------------------------------------------------------------------------------

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
        the uniqueId of the document it replaces (RPLC).

        Raises:
            OutcomeUnknown: the lot was sent and no answer came (DMP_OUTCOME_UNKNOWN, with `uniqueId`).
        """
        if not documents:
            raise DmpParamsError("nothing to submit")
        async with self._call("TD2.1") as call:
            return await self._submit(call, practitioner, patient, documents, replaces, content_type, progress)

    async def _submit(
        self,
        call: _Call,
        practitioner: Practitioner,
        patient: PatientIns,
        documents: Sequence[NewDocument],
        replaces: Mapping[int, str] | None,
        content_type: Code,
        progress: Progress | None,
    ) -> SubmitResult:
        started = time.perf_counter()
        now = self._clock()
        lot = describe_lot(practitioner, patient, documents, now, lambda: self._uid(3, now))
        call.unique_ids = lot.unique_ids
        lot_uid = self._uid(1, now)
        signature_uid = self._uid(4, now)
        old_uuids: dict[str, str] = {}
        for index, old_unique_id in (replaces or {}).items():
            if not 0 <= index < len(lot.entries):
                raise DmpParamsError("replacement index out of range")
            old = await self._lookup(practitioner, patient, old_unique_id, call)
            if old is None:
                raise BridgeError(ErrorCode.NOT_FOUND, "document to replace")
            old_uuids[lot.entries[index].entry_id] = old.entry_id
        self.timings = Timings(build=time.perf_counter() - started)
        signing_started = time.perf_counter()
        creds = self.credentials
        signed_docs = [SignedDocument(e.unique_id, d) for e, d in zip(lot.entries, lot.stored, strict=True)]

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

        call.stage = "signature"
        signature = await asyncio.to_thread(xades)
        vihf = await self._vihf(practitioner, patient, call)
        signing = time.perf_counter() - signing_started
        submission = SubmissionSet(
            entry_id="SubmissionSet01",
            unique_id=lot_uid,
            source_id=self.settings.oid_root,
            patient=patient,
            submission_time=hl7_dtm(now),
            content_type=content_type,
            authors=(practitioner.author(),),
        )
        body, parts = finish_lot(lot, practitioner, submission, signature, signature_uid, now, old_uuids)
        build_before = self.timings.build
        answer = await self._exchange(Transaction.TD2_1, body, vihf, call, parts=parts, progress=progress)
        self._raise_on_failure(answer.body)
        self.timings.build = build_before
        self.timings.signing = signing
        return SubmitResult(lot_uid, lot.unique_ids, lot.stored)

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
        async with self._call("TD3.1") as call:
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_1, body, vihf, call)
        result = parse_query_response(answer.body)
        fault = result.registry.fault()
        if fault is not None:
            raise fault.to_error()
        return result.entries

    async def get_by_unique_id(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str
    ) -> DocumentEntry | None:
        """TD3.1 GetDocuments by uniqueId: the current version of the entry (None when not visible)."""
        async with self._call("TD3.1") as call:
            return await self._lookup(practitioner, patient, unique_id, call)

    async def _lookup(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> DocumentEntry | None:
        vihf = await self._vihf(practitioner, patient, call)
        stage, write = call.stage, call.write
        answer = await self._exchange(Transaction.TD3_1, get_documents(unique_ids=[unique_id]), vihf, call)
        call.stage, call.write = stage, write
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
        body = retrieve_document_set([unique_id], self.settings.repository_id)
        async with self._call("TD3.2") as call:
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_2, body, vihf, call)
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

    async def _current(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> DocumentEntry:
        entry = await self._lookup(practitioner, patient, unique_id, call)
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
        async with self._call("TD3.3") as call:
            call.unique_ids = (unique_id,)
            entry = await self._current(practitioner, patient, unique_id, call)
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
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_3, body, vihf, call)
            self._raise_on_failure(answer.body)
            return changed

    async def set_status(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, status: AvailabilityStatus
    ) -> AvailabilityStatus:
        """TD3.3d archive/unarchive and TD3.3c delete (status Deleted); returns the previous status."""
        async with self._call("TD3.3") as call:
            call.unique_ids = (unique_id,)
            entry = await self._current(practitioner, patient, unique_id, call)
            original = entry.status or AvailabilityStatus.APPROVED
            if original is status:
                return original
            body = update_availability_status(self._update_lot(practitioner, patient), entry.entry_id, original, status)
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_3, body, vihf, call)
            self._raise_on_failure(answer.body)
            return original

    async def delete(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> None:
        """TD3.3c: delete a document (its author only)."""
        await self.set_status(practitioner, patient, unique_id, AvailabilityStatus.DELETED)
