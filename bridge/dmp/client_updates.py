"""TD3.3 (ITI-57 Update Document Set) of `DmpClient`: visibility, archive, unarchive, delete.

What the DMP offers after a submission (PDT-INF-526): mask / unmask to professionals (TD3.3a), make
visible to the patient (TD3.3b; hiding from the patient exists only at submission), archive / unarchive
(TD3.3d), delete (TD3.3c). A visibility change is a new metadata version made from the registry's own
ExtrinsicObject (everything kept, only the confidentiality codes changed); a status change is an
UpdateAvailabilityStatus association on the current entryUUID. Where the matrix refuses metadata search
(establishment certificate, CPE), that entryUUID is found by ObjectRef queries only (note (5)).
"""

from __future__ import annotations

from bridge.dmp import rights
from bridge.dmp.client_base import _Call
from bridge.dmp.client_queries import DocumentQueries, DocumentRef
from bridge.dmp.codes import AvailabilityStatus, Confidentiality
from bridge.dmp.context import CONTENT_TYPE_DEFAULT, Practitioner
from bridge.dmp.endpoints import Transaction
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.transactions import update_availability_status, update_visibility, with_visibility
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import DocumentEntry, SubmissionSet, hl7_dtm
from bridge.errors import BridgeError, ErrorCode

__all__ = ["DocumentUpdates"]

_OP = rights.Operation
_A = AvailabilityStatus
#: Status change → the matrix line that governs it.
_STATUS_OPERATION = {
    (_A.APPROVED, _A.ARCHIVED): _OP.TD3_3D_ARCHIVE,
    (_A.ARCHIVED, _A.APPROVED): _OP.TD3_3D_UNARCHIVE,
    (_A.APPROVED, _A.DELETED): _OP.TD3_3C_DELETE,
    (_A.ARCHIVED, _A.DELETED): _OP.TD3_3C_DELETE,
}


def _own(practitioner: Practitioner, entry: DocumentEntry | None) -> bool | None:
    """Whether the practitioner is an author of the entry (None: not known, e.g. from an ObjectRef)."""
    if entry is None:
        return None
    return any(a.person.id == practitioner.national_id for a in entry.authors)


def _reads_metadata(practitioner: Practitioner) -> bool:
    actor = rights.actor_of(practitioner.mode.value, practitioner.profession_code)
    mode = rights.access_mode_of(practitioner.purpose.value)
    return rights.check(actor, mode, _OP.TD3_1_METADATA).allowed


class DocumentUpdates(DocumentQueries):
    """TD3.3a-d (see the module docstring)."""

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
        """TD3.3a mask to / unmask for professionals, TD3.3b make visible to the patient (None = unchanged).

        Hiding a registered document from the patient has no transaction: refused (INVALID_PARAMS).
        """
        if hidden_from_patient is True:
            raise DmpParamsError(
                "hiding a document from the patient is only possible when it is submitted (TD3.3b only makes "
                "it visible)"
            )
        self._permit(practitioner, _OP.TD3_1_METADATA)
        async with self._call("TD3.3") as call:
            call.unique_ids = (unique_id,)
            entry = await self._current(practitioner, patient, unique_id, call)
            add, remove = [], []
            if hidden_from_professionals is True:
                add.append(Confidentiality.MASQUE_PS)
            elif hidden_from_professionals is False:
                remove.append(Confidentiality.MASQUE_PS)
            if hidden_from_patient is False:
                remove.append(Confidentiality.INVISIBLE_PATIENT)
            changed = with_visibility(entry, add=add, remove=remove)
            if changed.confidentiality == entry.confidentiality:
                return entry
            own = _own(practitioner, entry)
            before, after = entry.visibility, changed.visibility
            if Confidentiality.MASQUE_PS in after - before:
                self._permit(practitioner, _OP.TD3_3A_MASK, own_document=own)
            if Confidentiality.MASQUE_PS in before - after:
                self._permit(practitioner, _OP.TD3_3A_UNMASK, own_document=own)
            if Confidentiality.INVISIBLE_PATIENT in before - after:
                self._permit(practitioner, _OP.TD3_3B_MAKE_VISIBLE, own_document=own)
            body = update_visibility(self._update_lot(practitioner, patient), changed, entry.version or "1")
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_3, body, vihf, call)
            self._raise_on_failure(answer.body)
            return changed

    async def _target(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, call: _Call
    ) -> tuple[DocumentRef, DocumentEntry | None]:
        """The current version to change: by LeafClass where the actor may read metadata, else by ObjectRef."""
        if _reads_metadata(practitioner):
            entry = await self._current(practitioner, patient, unique_id, call)
            return DocumentRef(unique_id, entry.entry_id, entry.status or _A.APPROVED), entry
        self._permit(practitioner, _OP.TD3_1_REFERENCE)
        ref = await self._locate(practitioner, patient, unique_id, call)
        if ref is None:
            raise BridgeError(ErrorCode.NOT_FOUND, "document")
        return ref, None

    async def set_status(
        self, practitioner: Practitioner, patient: PatientIns, unique_id: str, status: AvailabilityStatus
    ) -> AvailabilityStatus:
        """TD3.3d archive/unarchive and TD3.3c delete (status Deleted); returns the previous status."""
        wanted = {op for (_, new), op in _STATUS_OPERATION.items() if new is status}
        if not wanted:
            raise DmpParamsError("a document can be archived, unarchived or deleted")
        for operation in wanted:  # refuse before any exchange when the matrix says non for every case
            self._permit(practitioner, operation)
        async with self._call("TD3.3") as call:
            call.unique_ids = (unique_id,)
            ref, entry = await self._target(practitioner, patient, unique_id, call)
            original = ref.status
            if original is status:
                return original
            change = _STATUS_OPERATION.get((original, status))
            if change is None:
                raise DmpParamsError(f"no change from {original.name} to {status.name}")
            self._permit(practitioner, change, own_document=_own(practitioner, entry))
            body = update_availability_status(self._update_lot(practitioner, patient), ref.entry_uuid, original, status)
            vihf = await self._vihf(practitioner, patient, call)
            answer = await self._exchange(Transaction.TD3_3, body, vihf, call)
            self._raise_on_failure(answer.body)
            return original

    async def delete(self, practitioner: Practitioner, patient: PatientIns, unique_id: str) -> None:
        """TD3.3c: delete a document (its author, or the structure's documents in indirect mode)."""
        await self.set_status(practitioner, patient, unique_id, AvailabilityStatus.DELETED)
