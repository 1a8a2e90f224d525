"""Shared pieces of the feeding tests: CDA documents, the `[dmp]` config of unattended feeding, waits on the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.dmp.cda import CdaHeader, CdaPatient, wrap_unstructured
from bridge.dmp.codes import DocFormat, InsOid
from bridge.dmp.xds_model import Code, Institution, Person
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_model import DocumentSpec, JobKind, Origin, OutboxJob
from bridge.service.dmp_config import DmpConfig
from tests.dmp_fixtures import ESTABLISHMENT_ID, PATIENT_IDENTITY, establishment

__all__ = ["LOINC_CR", "cda", "feed_dmp_config", "queue_cda", "settled", "unique_id"]

LOINC_CR = Code("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation")


def unique_id(n: int, run: int = 0) -> str:
    """A document uniqueId under the test OID root."""
    return f"1.2.250.1.999.7.1.3.{run}.{n}"


def cda(doc_id: str, *, size: int = 2048, patient: CdaPatient = PATIENT_IDENTITY, seed: int = 0) -> bytes:
    """A CDA R2 level 1 wrapping a PDF of about `size` bytes, with `doc_id` as its id."""
    pdf = b"%PDF-1.4\n" + bytes((i * 7 + seed) % 256 for i in range(size)) + b"\n%%EOF\n"
    header = CdaHeader(
        document_id=doc_id,
        type_code=LOINC_CR,
        title="Compte rendu",
        effective_time=dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC),
        patient=patient,
        author=Person("810012345678", "MARTIN", "PAUL"),
        custodian=Institution("CLINIQUE DU TEST", ESTABLISHMENT_ID),
        facility=Code("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé"),
    )
    return wrap_unstructured(header, pdf, DocFormat.PDF)


#: A well-formed INS (its key checks out) for which the simulator has no DMP: the DMP refuses (DMP_UNKNOWN).
UNKNOWN_INS = "185057800608491"


def patient_with(ins: str) -> CdaPatient:
    """A CDA patient with this INS (test OID), for documents the DMP must refuse on the patient."""
    return CdaPatient(
        ins=type(PATIENT_IDENTITY.ins)(value=ins, oid=InsOid.NIR_TEST), family="X", given="Y", gender="M",
        birth_date="19800101",
    )  # fmt: skip


def feed_dmp_config(url: str, ca_file: Path, pki: TestPki, *, call_timeout: float = 5.0) -> DmpConfig:
    """`[dmp]` of unattended feeding: the establishment's certificates and responsible physician."""
    certs = establishment(pki)
    return DmpConfig(
        url=url, ca_bundle=ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value,
        default_mode="INDIRECTE", establishment_auth_p12=certs.auth_cli_p12, establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=certs.auth_cli_p12.with_name("p12-password"),
        establishment_id=ESTABLISHMENT_ID, establishment_name="CLINIQUE DU TEST", practitioner_id="810012345678",
        practitioner_family="MARTIN", practitioner_given="PAUL", practitioner_specialty="SM54",
        call_timeout=call_timeout, io_timeout=call_timeout,
    )  # fmt: skip


async def queue_cda(
    outbox: Outbox,
    doc_id: str,
    *,
    key: str | None = None,
    qualified: bool = True,
    ins: str | None = None,
    size: int = 2048,
    kind: JobKind = JobKind.SUBMIT,
    replaces: str | None = None,
) -> OutboxJob:
    """Queue one CDA for the test patient as the API would."""
    patient = PATIENT_IDENTITY if ins is None else patient_with(ins)
    spec = DocumentSpec(mime_type="text/xml", title="Compte rendu", type_code=LOINC_CR, replaces=replaces)
    job, _ = await outbox.enqueue(
        kind=kind, unique_id=doc_id, patient=patient.ins.value, patient_oid=patient.ins.oid.value,
        ins_qualified=qualified, origin=Origin.API, source_key=key or doc_id, spec=spec,
        payload=cda(doc_id, size=size, patient=patient),
    )  # fmt: skip
    return job


async def settled(outbox: Outbox, done: Callable[[], bool], timeout: float = 60) -> None:
    """Wait (on the outbox's change events, not a sleep) until `done()` holds."""
    event = asyncio.Event()

    def check(_job: OutboxJob | None = None) -> None:
        if done():
            event.set()

    outbox.add_listener(check)
    check()
    await asyncio.wait_for(event.wait(), timeout)
