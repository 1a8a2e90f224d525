"""The outbox as the daemon uses it: `OutboxStore` calls on one dedicated thread, and change listeners.

SQLite commits are synced to disk (see `bridge.feed.outbox_store`), so every call runs off the event
loop: intake (`enqueue`, synced) on its own connection and thread, everything else on another, where
calls are serialised in the order they were made. Two connections, so a burst of intake does not queue
the worker's small updates behind it (WAL: the write lock is held for the commit only). Every state change is told
to the listeners (JSON-RPC notification `dmp.outbox.changed`, the tray on a permanent failure, the
worker's wake-up, the hot folder).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from bridge.feed.outbox_model import DocumentSpec, JobKind, JobState, Origin, OutboxJob
from bridge.feed.outbox_store import OutboxStore, PendingAck

__all__ = ["Outbox"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

Listener = Callable[[OutboxJob], None]


class Outbox:
    """Async access to the outbox store, with change listeners (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._intake_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-in")
        self.store = OutboxStore(path)
        self._intake = OutboxStore(path)
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(job)` on the event loop after each state change."""
        self._listeners.append(listener)

    def _changed(self, job: OutboxJob) -> None:
        for listener in list(self._listeners):
            try:
                listener(job)
            except Exception:  # one listener's bug must not stop the others nor the worker
                log.exception("outbox listener failed")

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def aclose(self) -> None:
        """Finish pending calls and close the database."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._intake_executor, self._intake.close)
        await self._run(self.store.close)
        self._executor.shutdown(wait=True)
        self._intake_executor.shutdown(wait=True)

    async def enqueue(
        self,
        *,
        kind: JobKind,
        unique_id: str,
        patient: str,
        patient_oid: str,
        ins_qualified: bool,
        origin: Origin,
        source_key: str,
        spec: DocumentSpec,
        payload: bytes,
        reply_to: str | None = None,
    ) -> tuple[OutboxJob, bool]:
        """Write a job durably (see `OutboxStore.enqueue`)."""
        loop = asyncio.get_running_loop()
        write = functools.partial(
            self._intake.enqueue,
            kind=kind,
            unique_id=unique_id,
            patient=patient,
            patient_oid=patient_oid,
            ins_qualified=ins_qualified,
            origin=origin,
            source_key=source_key,
            spec=spec,
            payload=payload,
            reply_to=reply_to,
        )
        job, created = await loop.run_in_executor(self._intake_executor, write)
        if created:
            self._changed(job)
        return job, created

    async def recover(self) -> list[OutboxJob]:
        """Jobs left SENDING by a crash go back to the queue, to be checked before sending."""
        jobs = await self._run(self.store.recover)
        for job in jobs:
            self._changed(job)
        return jobs

    async def claim(self, limit: int, busy_patients: Iterable[str] = ()) -> list[OutboxJob]:
        """Take due jobs (see `OutboxStore.claim`)."""
        jobs = await self._run(self.store.claim, limit, tuple(busy_patients))
        for job in jobs:
            self._changed(job)
        return jobs

    async def claim_with_payloads(
        self, limit: int, busy_patients: Iterable[str] = ()
    ) -> list[tuple[OutboxJob, bytes, DocumentSpec]]:
        """Take due jobs with their documents, in one trip to the store's thread (the worker's path)."""

        def work() -> list[tuple[OutboxJob, bytes, DocumentSpec]]:
            jobs = self.store.claim(limit, tuple(busy_patients))
            return [(job, *self.store.payload(job.id)) for job in jobs]

        taken = await self._run(work)
        for job, _, _ in taken:
            self._changed(job)
        return taken

    async def finish(self, job_id: int, target: JobState, **kwargs: Any) -> OutboxJob:
        """Record an attempt's outcome (see `OutboxStore.finish`)."""
        return await self.finish_soon(job_id, target, **kwargs)

    def finish_soon(self, job_id: int, target: JobState, **kwargs: Any) -> asyncio.Future[OutboxJob]:
        """`finish`, handed to the store's thread now: any call made after this one runs after it."""
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._executor, functools.partial(self.store.finish, job_id, target, **kwargs))
        done.add_done_callback(lambda f: self._changed(f.result()) if not f.cancelled() and not f.exception() else None)
        return done

    async def retry(self, job_id: int, *, ins_qualified: bool = False) -> OutboxJob:
        """Queue a waiting, failed or unqualified job again now."""
        job = await self._run(self.store.retry, job_id, ins_qualified=ins_qualified)
        self._changed(job)
        return job

    async def cancel(self, job_id: int) -> OutboxJob:
        """Withdraw a job that was not sent."""
        job = await self._run(self.store.cancel, job_id)
        self._changed(job)
        return job

    async def get(self, job_id: int) -> OutboxJob | None:
        """One job."""
        return await self._run(self.store.get, job_id)

    async def find(self, origin: Origin, source_key: str) -> OutboxJob | None:
        """The job of one intake reference."""
        return await self._run(self.store.find, origin, source_key)

    async def jobs(
        self, states: Iterable[JobState] = (), *, limit: int = 100, before: int | None = None
    ) -> list[OutboxJob]:
        """Newest first."""
        return await self._run(self.store.jobs, tuple(states), limit=limit, before=before)

    async def payload(self, job_id: int) -> tuple[bytes, DocumentSpec]:
        """A job's document and metadata."""
        return await self._run(self.store.payload, job_id)

    async def next_due(self) -> float | None:
        """When the earliest waiting job is due."""
        return await self._run(self.store.next_due)

    async def pending_acks(self) -> list[PendingAck]:
        """Feeding acknowledgements due now."""
        return await self._run(self.store.pending_acks)

    async def ack_delivered(self, ack_id: int, job_id: int) -> None:
        """The DPI acknowledged one (listeners hear of its job again)."""
        await self._run(self.store.ack_delivered, ack_id)
        job = await self.get(job_id)
        if job is not None:
            self._changed(job)

    async def ack_later(self, ack_id: int, next_at: float) -> None:
        """Try one again later."""
        await self._run(self.store.ack_later, ack_id, next_at)

    async def next_ack_due(self) -> float | None:
        """When the earliest pending acknowledgement is due."""
        return await self._run(self.store.next_ack_due)

    async def summary(self, failures: int = 5) -> dict[str, Any]:
        """What the diagnostics page shows: counts per state, the oldest waiting job, the last failures."""

        def read() -> dict[str, Any]:
            oldest = self.store.oldest_waiting()
            failed = self.store.jobs((JobState.FAILED,), limit=failures)
            return {
                "counts": self.store.counts(),
                "acks": self.store.ack_counts(),
                "oldestWaiting": oldest.to_public() if oldest else None,
                "lastFailures": [j.to_public() for j in failed],
            }

        return await self._run(read)
