"""Turning a document given by the API, the CLI or the hot folder into an outbox job (no I/O but the queue).

The uniqueId is fixed here, once: a CDA's own id, else the caller's `uniqueId`, else a new OID under the
installation's root. Every later attempt sends that same id, which is what makes the existence check
after a crash meaningful.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from bridge.dmp.cda_header import read_cda_metadata
from bridge.dmp.context import NewDocument
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import new_unique_id
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_model import DocumentSpec, JobKind, Origin, OutboxJob

__all__ = ["CDA_TYPES", "job_spec", "queue_document", "unique_id_maker"]

CDA_TYPES = frozenset({"text/xml", "application/xml", "application/hl7-v3+xml"})


def unique_id_maker(oid_root: str) -> Callable[[], str]:
    """New document uniqueIds under `oid_root` (time in ms and a random counter)."""
    rng = random.SystemRandom()
    return lambda: new_unique_id(oid_root, 3, now=dt.datetime.now(dt.UTC), counter=rng.randint(1, 999))


def job_spec(document: NewDocument, replaces: str | None, new_uid: Callable[[], str]) -> tuple[str, DocumentSpec]:
    """(uniqueId, stored metadata) of a document to queue (DmpParamsError: refused before queuing)."""
    media = document.mime_type.split(";")[0].strip().lower()
    identity = None
    if media in CDA_TYPES:
        info = read_cda_metadata(document.content)
        if document.unique_id is not None and document.unique_id != info.document_id:
            raise DmpParamsError("uniqueId: a CDA keeps the id written in it")
        unique_id = info.document_id
    else:
        who = document.patient_identity
        if who is None:
            raise DmpParamsError("wrapping a non-CDA document needs the patient's identity (names, gender, birth)")
        identity = (who.family, who.given, who.gender, who.birth_date)
        unique_id = document.unique_id or new_uid()
    spec = DocumentSpec(
        mime_type=media,
        title=document.title,
        type_code=document.type_code,
        class_code=document.class_code,
        hidden_from_professionals=document.hidden_from_professionals,
        hidden_from_patient=document.hidden_from_patient,
        replaces=replaces,
        identity=identity,
    )
    return unique_id, spec


async def queue_document(
    outbox: Outbox,
    patient: PatientIns,
    document: NewDocument,
    *,
    origin: Origin,
    source_key: str | None,
    ins_qualified: bool,
    new_uid: Callable[[], str],
    replaces: str | None = None,
) -> tuple[OutboxJob, bool]:
    """Queue one document durably; (job, created). `source_key` None: the uniqueId is the key."""
    unique_id, spec = job_spec(document, replaces, new_uid)
    return await outbox.enqueue(
        kind=JobKind.REPLACE if replaces else JobKind.SUBMIT,
        unique_id=unique_id,
        patient=patient.value,
        patient_oid=patient.oid.value,
        ins_qualified=ins_qualified,
        origin=origin,
        source_key=source_key or unique_id,
        spec=spec,
        payload=document.content,
    )
