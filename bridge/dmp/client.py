"""The DMP client: the I/O edge that puts the pure builders of `bridge.dmp` on the wire.

One `DmpClient` talks to one DMP with one set of credentials (the CPS card in DIRECTE mode, the
establishment certificates in the indirect modes): two keep-alive `HttpsClient`s (registry,
repository) sharing one TLS session cache, so the second endpoint resumes the first one's session and
the card signs the TLS handshake once. The VIHF is signed once per (practitioner, patient, mode,
purpose) and kept in a `VihfCache`. Every signing step (VIHF, XAdES) runs off the event loop, because
a card-backed key blocks on APDUs.

Each endpoint has a small connection pool, so one slow call never blocks another one. The TD2.1 lot is
built by `bridge.dmp.submission` (no I/O). The class is assembled from one module per transaction family:
`client_base` (connections, deadlines, VIHF, exchange, rights check), `client_queries` (TD3.1, TD3.2),
`client_updates` (TD3.3) and this module (TD2.1).

Rights: every operation is checked against the PDT-INF-526 matrix (`bridge.dmp.rights`) for the
practitioner's actor and access mode before anything is signed or sent: a refusal is
NOT_PERMITTED_FOR_ACTOR naming the transaction and the mode. What depends on facts only the DMP knows
(médecin traitant, the structure's documents, the patient's authorisation) is left to the DMP.

Errors: a DMP refusal (SOAP fault, failed RegistryResponse) is DMP_FAULT with the DMP's code; network
and TLS failures are DMP_UNREACHABLE (the request was not applied); only idempotent reads (find, get,
retrieve) are sent again, once. A write (TD2.1, ITI-57) sent without an answer is DMP_OUTCOME_UNKNOWN
carrying the uniqueIds concerned, never sent again behind the caller's back. Every call has a total
deadline (`DmpSettings.call_timeout`, card signatures included): TIMEOUT with the stage that ran out.
Clock and message ids are injected so that tests and benchmarks are reproducible.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from lxml import etree

from bridge.dmp import rights
from bridge.dmp.client_base import ClientBase, _Call
from bridge.dmp.client_queries import DocumentQueries, DocumentRef
from bridge.dmp.client_updates import DocumentUpdates
from bridge.dmp.context import CONTENT_TYPE_DEFAULT, NewDocument, Practitioner, Progress, SubmitResult, Timings
from bridge.dmp.endpoints import Transaction
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.submission import describe_lot, finish_lot
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xades import SignedDocument, build_xades_signature
from bridge.dmp.xds_model import Code, SubmissionSet, hl7_dtm

__all__ = [
    "ClientBase",
    "DmpClient",
    "DocumentQueries",
    "DocumentRef",
    "DocumentUpdates",
]

_OP = rights.Operation


class DmpClient(DocumentUpdates):
    """Async DMP document operations for one set of credentials (see the module docstring)."""

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
        actor = rights.actor_of(practitioner.mode.value, practitioner.profession_code)
        self._permit(practitioner, _OP.TD2_2 if actor is rights.Actor.CPE else _OP.TD2_1)
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
        lot = describe_lot(practitioner, patient, documents, now, lambda: self._uid(3, now), replaces)
        call.unique_ids = lot.unique_ids
        lot_uid = self._uid(1, now)
        signature_uid = self._uid(4, now)
        old_uuids: dict[str, str] = {}
        for index, old_unique_id in (replaces or {}).items():
            if not 0 <= index < len(lot.entries):
                raise DmpParamsError("replacement index out of range")
            old, _ = await self._target(practitioner, patient, old_unique_id, call)
            old_uuids[lot.entries[index].entry_id] = old.entry_uuid
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
                profile=self.settings.xades,
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
            # The lot is named after what it carries (the sample names its lot too).
            title=lot.entries[0].title if len(lot.entries) == 1 else f"{len(lot.entries)} documents",
        )
        body, parts = finish_lot(lot, practitioner, submission, signature, signature_uid, now, old_uuids)
        build_before = self.timings.build
        answer = await self._exchange(Transaction.TD2_1, body, vihf, call, parts=parts, progress=progress)
        self._raise_on_failure(answer.body)
        self.timings.build = build_before
        self.timings.signing = signing
        return SubmitResult(lot_uid, lot.unique_ids, lot.stored)
