"""TD3.1 (ITI-18 stored queries) and TD3.2 (ITI-43 retrieve) of `DmpClient`.

Two kinds of TD3.1, as the rights matrix (PDT-INF-526) separates them: « Rechercher les métadonnées »
(LeafClass: the entries themselves) is refused to the establishment certificate and to a CPE; « Rechercher
la référence d'un document » (ObjectRef: entryUUIDs only, note (5)) is what they may do, e.g. before a
deletion. `find_references` and `locate` are that second kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dmp import rights
from bridge.dmp.client_base import ClientBase, _Call
from bridge.dmp.codes import AvailabilityStatus
from bridge.dmp.context import Practitioner
from bridge.dmp.endpoints import Transaction
from bridge.dmp.transactions import find_documents, get_documents, retrieve_document_set
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code, DocumentEntry
from bridge.dmp.xds_parse import QueryResult, RetrievedDocument, parse_query_response, parse_retrieve_response
from bridge.errors import BridgeError, ErrorCode

__all__ = ["DocumentQueries", "DocumentRef"]

_OP = rights.Operation
#: The statuses a document can be changed from (TD3.3c/d), in the order `locate` asks for them.
_LIVE = (AvailabilityStatus.APPROVED, AvailabilityStatus.ARCHIVED)


@dataclass(frozen=True)
class DocumentRef:
    """Where a document is in the registry, as an ObjectRef query tells it: its current entryUUID and status."""

    unique_id: str
    entry_uuid: str
    status: AvailabilityStatus


class DocumentQueries(ClientBase):
    """TD3.1 and TD3.2 (see the module docstring)."""

    async def _query(self, practitioner: Practitioner, patient: PatientIns, body: Any, call: _Call) -> QueryResult:
        """One ITI-18 exchange inside a call, leaving the call's stage as it was (a lookup inside a write)."""
        vihf = await self._vihf(practitioner, patient, call)
        stage, write = call.stage, call.write
        answer = await self._exchange(Transaction.TD3_1, body, vihf, call)
        call.stage, call.write = stage, write
        result = parse_query_response(answer.body)
        fault = result.registry.fault()
        if fault is not None:
            raise fault.to_error()
        return result

    async def find(
        self,
        practitioner: Practitioner,
        patient: PatientIns,
        *,
        statuses: Sequence[AvailabilityStatus] = (AvailabilityStatus.APPROVED,),
        type_codes: Sequence[Code] = (),
        class_codes: Sequence[Code] = (),
        format_codes: Sequence[Code] = (),
        practice_settings: Sequence[Code] = (),
        facility_types: Sequence[Code] = (),
        confidentiality: Sequence[Code] = (),
        creation_from: str | None = None,
        creation_to: str | None = None,
        service_start_from: str | None = None,
        service_start_to: str | None = None,
        service_stop_from: str | None = None,
        service_stop_to: str | None = None,
        author_persons: Sequence[str] = (),
    ) -> tuple[DocumentEntry, ...]:
        """TD3.1 FindDocuments: the entries the caller may see, with these statuses, codes and dates."""
        self._permit(practitioner, _OP.TD3_1_METADATA)
        body = find_documents(
            patient,
            statuses=statuses,
            type_codes=type_codes,
            class_codes=class_codes,
            format_codes=format_codes,
            practice_settings=practice_settings,
            facility_types=facility_types,
            confidentiality=confidentiality,
            creation_from=creation_from,
            creation_to=creation_to,
            service_start_from=service_start_from,
            service_start_to=service_start_to,
            service_stop_from=service_stop_from,
            service_stop_to=service_stop_to,
            author_persons=author_persons,
        )
        async with self._call("TD3.1") as call:
            result = await self._query(practitioner, patient, body, call)
        return result.entries

    async def get_by_unique_id(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str
    ) -> DocumentEntry | None:
        """TD3.1 GetDocuments by uniqueId: the current version of the entry (None when not visible)."""
        self._permit(practitioner, _OP.TD3_1_METADATA)
        async with self._call("TD3.1") as call:
            return await self._lookup(practitioner, patient, unique_id, call)

    async def _lookup(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> DocumentEntry | None:
        result = await self._query(practitioner, patient, get_documents(unique_ids=[unique_id]), call)
        current = [e for e in result.entries if e.status is not AvailabilityStatus.DEPRECATED]
        if not current:
            return None
        return max(current, key=lambda e: int(e.version or "1"))

    async def find_references(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> tuple[str, ...]:
        """TD3.1 GetDocuments by uniqueId, ObjectRef: the entryUUIDs of the document's visible versions.

        Empty when the DMP holds no visible version: what an indirect-mode sender may ask (note (5)) to
        learn whether a document is already registered.
        """
        self._permit(practitioner, _OP.TD3_1_REFERENCE)
        async with self._call("TD3.1") as call:
            return await self._references(practitioner, patient, unique_id, call)

    async def _references(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> tuple[str, ...]:
        body = get_documents(unique_ids=[unique_id], return_type="ObjectRef")
        return (await self._query(practitioner, patient, body, call)).objects.object_refs

    async def locate(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> DocumentRef | None:
        """The current entryUUID and status of a document through ObjectRef queries only (note (5))."""
        self._permit(practitioner, _OP.TD3_1_REFERENCE)
        async with self._call("TD3.1") as call:
            return await self._locate(practitioner, patient, unique_id, call)

    async def _locate(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> DocumentRef | None:
        versions = set(await self._references(practitioner, patient, unique_id, call))
        if not versions:
            return None
        # GetDocuments gives every version; FindDocuments by status tells which one is current.
        for status in _LIVE:
            body = find_documents(patient, statuses=[status], return_type="ObjectRef")
            found = versions & set((await self._query(practitioner, patient, body, call)).objects.object_refs)
            if found:
                return DocumentRef(unique_id, sorted(found)[0], status)
        return None

    async def retrieve(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> RetrievedDocument:
        """TD3.2: the stored bytes of one document (byte-identical to what was submitted)."""
        self._permit(practitioner, _OP.TD3_2_UNMASKED)
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
