"""The outbox's DMP side: unattended feeding with the establishment's certificates, and the existence check.

Unattended mode: no card and no person. The worker acts in an indirect mode (INDIRECTE or
INDIRECTE_RENFORCEE, `[feed] mode`) with the establishment's AUTH_CLI (TLS) and SIGN (VIHF, XAdES)
certificates and the configured responsible practitioner (`[dmp] practitioner_*`), through the same
`DmpService` (one client per credential set, kept alive) as the interactive calls. Each operation is
checked against the rights matrix for the establishment's certificate (`rights.require`, actor
« Certificat ES »: TD2.1, TD3.1 reference, TD3.3c of its own structure's documents) before it is sent.

`already_registered` is the one place that asks the DMP whether a uniqueId is registered. In an indirect
mode the rights matrix (PDT-INF-526, note (5); `bridge.dmp.rights`) allows the establishment only a
TD3.1 that returns object references, so it is a GetDocuments by uniqueId with returnType ObjectRef.
"""

from __future__ import annotations

from typing import Any

from bridge.dmp import rights
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.dmp.context import CLASS_COMPTE_RENDU, CONTENT_TYPE_DEFAULT, NewDocument, Practitioner
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode
from bridge.feed.outbox_model import DocumentSpec, JobKind, OutboxJob
from bridge.service.dmp import DmpContext, DmpService

__all__ = ["DmpFeedSender", "already_registered", "new_document"]


async def already_registered(
    client: DmpClient, practitioner: Practitioner, patient: PatientIns, unique_id: str
) -> bool:
    """True when the DMP holds an entry with this uniqueId: TD3.1 by uniqueId returning ObjectRefs, the only
    query the rights matrix allows the establishment certificate (PDT-INF-526 note (5))."""
    return bool(await client.find_references(practitioner, patient, unique_id))


def new_document(job: OutboxJob, payload: bytes, spec: DocumentSpec) -> NewDocument:
    """The TD2.1 document of a job (a CDA keeps its own id, which is the job's uniqueId)."""
    from bridge.dmp.cda import CdaPatient

    if spec.type_code is None:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "typeCode missing")
    identity = None
    if spec.identity is not None:
        family, given, gender, birth = spec.identity
        identity = CdaPatient(ins=_patient(job), family=family, given=given, gender=gender, birth_date=birth)
    return NewDocument(
        content=payload,
        mime_type=spec.mime_type,
        title=spec.title,
        type_code=spec.type_code,
        class_code=spec.class_code or CLASS_COMPTE_RENDU,
        patient_identity=identity,
        hidden_from_professionals=spec.hidden_from_professionals,
        hidden_from_patient=spec.hidden_from_patient,
        unique_id=job.unique_id,
    )


def _patient(job: OutboxJob) -> PatientIns:
    return PatientIns(value=job.patient, oid=InsOid(job.patient_oid))


def _permitted(operation: rights.Operation, **facts: bool) -> None:
    """What the establishment's certificate may do (PDT-INF-526), checked before anything is sent."""
    rights.require(rights.Actor.CERTIFICAT_ES, rights.AccessMode.NORMAL, operation, **facts)


class _FeedCaller:
    """The key of the worker's DMP context in `DmpService` (one per sender, never a connection)."""

    def __repr__(self) -> str:
        return "FeedCaller()"


class DmpFeedSender:
    """Sends outbox jobs with the establishment's certificates (see the module docstring)."""

    def __init__(self, service: DmpService, mode: AuthMode = AuthMode.INDIRECTE) -> None:
        if mode is AuthMode.DIRECTE:
            raise ValueError("unattended feeding uses an indirect mode")
        self.service = service
        self._caller = _FeedCaller()
        service.set_context(self._caller, DmpContext(mode=mode))

    async def registered(self, job: OutboxJob) -> bool:
        """Existence of the job's document; a deletion is sent again instead (TD3.3c reads the current status
        first and changes nothing when the document is already deleted)."""
        if job.kind is JobKind.DELETE:
            return False
        _permitted(rights.Operation.TD3_1_REFERENCE)
        async with self.service.using(self._caller) as (client, practitioner):
            return await already_registered(client, practitioner, _patient(job), job.unique_id)

    async def send(self, job: OutboxJob, payload: bytes, spec: DocumentSpec) -> dict[str, Any]:
        """TD2.1 (with RPLC for a replacement) or TD3.3c."""
        patient = _patient(job)
        if job.kind is JobKind.DELETE:
            # The establishment deletes what it fed (a document of its structure).
            _permitted(rights.Operation.TD3_3C_DELETE, structure_document=True)
            await self.service.set_status(self._caller, patient, job.unique_id, AvailabilityStatus.DELETED)
            return {"uniqueId": job.unique_id, "deleted": True}
        _permitted(rights.Operation.TD2_1)
        document = new_document(job, payload, spec)
        replaces = {0: spec.replaces} if job.kind is JobKind.REPLACE and spec.replaces else None
        # The lot's contentTypeCode when the intake gave one (HL7 PV1-2, mapping.md), else the default.
        content_type = spec.content_type or CONTENT_TYPE_DEFAULT
        async with self.service.using(self._caller) as (client, practitioner):
            result = await client.submit(
                practitioner, patient, [document], replaces=replaces, content_type=content_type
            )
        return {"uniqueId": result.unique_ids[0], "submissionSetUniqueId": result.submission_set_unique_id}
