"""JSON-RPC methods of the outbox: `dmp.outbox.list|get|retry|cancel`, and `dmp.documents.submit` with
`queue: true` (the document is written to the outbox and a job id comes back at once; the worker sends it
with the establishment's certificate). State changes are notified as `dmp.outbox.changed` (see app.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from bridge.api.handlers_dmp import DmpDocumentsSubmit
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode
from bridge.feed.intake import queue_document
from bridge.feed.outbox_model import JobState, Origin, OutboxJob
from bridge.feed.outbox_store import StateError
from bridge.service.dmp import DmpService
from bridge.service.ins_gate import QUALIFICATIONS, QualifiedIns, qualification

if TYPE_CHECKING:
    from bridge.feed.feed_service import FeedService

__all__ = ["JOB_SCHEMA", "outbox_handlers"]

_APP = frozenset({Scope.APP})
_READ = frozenset({Scope.APP, Scope.DIAGNOSTICS})
_ID = {"type": "integer", "minimum": 1, "maximum": 2**62}
_S = {"type": "string", "maxLength": 256}
_STATE_NAMES = [s.value for s in JobState]
JOB_SCHEMA = object_schema(
    {
        "id": _ID,
        "kind": {"enum": ["submit", "replace", "delete"]},
        "state": {"enum": _STATE_NAMES},
        "uniqueId": {"type": "string", "maxLength": 64},
        "origin": {"enum": [o.value for o in Origin]},
        "attempts": {"type": "integer"},
        "createdAt": {"type": "number"},
        "updatedAt": {"type": "number"},
        "nextAt": {"type": "number"},
        "reason": _S,
        "detail": _S,
        "message_fr": {"type": "string", "maxLength": 1000},
        "result": {"type": "object"},
    },
    ["id", "kind", "state", "uniqueId", "origin", "attempts"],
)
_ERRORS = (ErrorCode.INVALID_PARAMS, ErrorCode.NOT_FOUND)


class _OutboxHandler(Handler):
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _ERRORS

    def __init__(self, feed: FeedService | None) -> None:
        self.feed = feed

    def _outbox(self) -> Any:
        if self.feed is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "feed-not-enabled")
        return self.feed.outbox

    async def _job(self, job_id: int) -> OutboxJob:
        job: OutboxJob | None = await self._outbox().get(job_id)
        if job is None:
            raise BridgeError(ErrorCode.NOT_FOUND, "job")
        return job


class OutboxList(_OutboxHandler):
    """dmp.outbox.list."""

    name = "dmp.outbox.list"
    summary = "The outbox's jobs, newest first, optionally by state; `before` pages by job id. Counts per state."
    scopes = _READ
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "states": {"type": "array", "items": {"enum": _STATE_NAMES}, "maxItems": len(_STATE_NAMES)},
            "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
            "before": _ID,
        }
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"jobs": {"type": "array", "items": JOB_SCHEMA, "maxItems": 500}, "summary": {"type": "object"}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """List."""
        outbox = self._outbox()
        states = [JobState(s) for s in params.get("states", [])]
        jobs = await outbox.jobs(states, limit=params.get("limit", 100), before=params.get("before"))
        return {"jobs": [j.to_public() for j in jobs], "summary": await outbox.summary()}


class OutboxGet(_OutboxHandler):
    """dmp.outbox.get."""

    name = "dmp.outbox.get"
    summary = "One outbox job: state, attempts, the last fault (code, DMP code, French explanation), the DMP's answer."
    scopes = _READ
    params_schema: ClassVar[dict[str, Any]] = object_schema({"id": _ID}, ["id"])
    result_schema: ClassVar[dict[str, Any]] = JOB_SCHEMA

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Get."""
        return (await self._job(params["id"])).to_public()


class OutboxRetry(_OutboxHandler):
    """dmp.outbox.retry."""

    name = "dmp.outbox.retry"
    summary = (
        "Send a waiting or failed job again now; an `unqualified` job needs `insQualified: true` (the patient's "
        "identity was qualified since). A document that may have reached the DMP is looked up before it is sent."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"id": _ID, "insQualified": {"type": "boolean", "default": False}}, ["id"]
    )
    result_schema: ClassVar[dict[str, Any]] = JOB_SCHEMA

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Retry."""
        await self._job(params["id"])
        try:
            job = await self._outbox().retry(params["id"], ins_qualified=bool(params.get("insQualified", False)))
        except StateError as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"state: {exc.job.state.value}") from None
        return job.to_public()


class OutboxCancel(_OutboxHandler):
    """dmp.outbox.cancel."""

    name = "dmp.outbox.cancel"
    summary = "Withdraw a job not sent yet (queued, waiting, unqualified); a job being sent or sent cannot be."
    params_schema: ClassVar[dict[str, Any]] = object_schema({"id": _ID}, ["id"])
    result_schema: ClassVar[dict[str, Any]] = JOB_SCHEMA

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Cancel."""
        await self._job(params["id"])
        try:
            job = await self._outbox().cancel(params["id"])
        except StateError as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"state: {exc.job.state.value}") from None
        return job.to_public()


class DmpDocumentsSubmitQueued(DmpDocumentsSubmit):
    """dmp.documents.submit, with `queue: true` through the outbox."""

    summary = DmpDocumentsSubmit.summary + (
        " With `queue: true` the document is written to the outbox and `{jobId, uniqueId, state}` comes back "
        "at once; the bridge sends it with the establishment's certificate, retries transient faults and "
        "never sends it twice (follow it with dmp.outbox.get or the dmp.outbox.changed notifications). "
        "`insQualified` says the patient's INS is qualified; else the job waits in state `unqualified`."
    )
    params_schema: ClassVar[dict[str, Any]] = {
        **DmpDocumentsSubmit.params_schema,
        "properties": {
            **DmpDocumentsSubmit.params_schema["properties"],
            "queue": {"type": "boolean", "default": False},
        },
    }
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "uniqueId": {"type": "string", "maxLength": 64},
            "submissionSetUniqueId": {"type": "string", "maxLength": 64},
            "insQualification": {"enum": QUALIFICATIONS},
            "jobId": _ID,
            "state": {"enum": _STATE_NAMES},
        }
    )

    def __init__(self, service: DmpService, feed: FeedService | None, ins: QualifiedIns | None = None) -> None:
        super().__init__(service, ins)
        self.feed = feed

    def _ins_qualified(self, patient: PatientIns, params: dict[str, Any]) -> bool:
        """The same INS rule as a direct submission; a queued job without it waits in state `unqualified`."""
        try:
            qualification(self.ins, patient, params)
        except BridgeError:
            return False
        return True

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Submit now, or queue."""
        if not params.get("queue"):
            return await super().call(ctx, params)
        if self.feed is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "feed-not-enabled")
        patient, document = self.document(params)
        try:
            job, _ = await queue_document(
                self.feed.outbox, patient, document, origin=Origin.API, source_key=params.get("uniqueId"),
                ins_qualified=self._ins_qualified(patient, params), new_uid=self.feed.new_uid,
                replaces=params.get("replaces"),
            )  # fmt: skip
        except (DmpInputError, DmpParamsError) as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, (exc.detail or "document")[:200]) from None
        return {"jobId": job.id, "uniqueId": job.unique_id, "state": job.state.value}


def outbox_handlers(service: DmpService, feed: FeedService | None, ins: QualifiedIns | None = None) -> list[Handler]:
    """The outbox methods and the queue-capable dmp.documents.submit (it replaces the plain one)."""
    return [
        OutboxList(feed),
        OutboxGet(feed),
        OutboxRetry(feed),
        OutboxCancel(feed),
        DmpDocumentsSubmitQueued(service, feed, ins),
    ]
