"""The worker that empties the outbox: takes due jobs, sends them, records the outcome.

Exactly once: a job whose earlier attempt may have reached the DMP (a crash while SENDING, an answer
that never came, a timeout, a 5xx) carries `verify`; before sending it again the worker asks the DMP
whether its uniqueId is registered (`FeedSender.registered`), and marks it SENT without sending when it
is. The uniqueId is fixed when the job is queued, so every attempt sends the same document id.

A few jobs run side by side (`concurrency`); order per patient is kept by `OutboxStore.claim`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from bridge.errors import BridgeError, to_bridge_error
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_model import DocumentSpec, JobKind, JobState, OutboxJob
from bridge.feed.retry_policy import RetryPolicy, Verdict, already_there, classify, may_have_landed

__all__ = ["AckBuilder", "FeedSender", "OutboxWorker"]

log = logging.getLogger(__name__)

#: Builds the HL7 feeding acknowledgement of a finished job from its `reply_to` (None: none to send).
AckBuilder = Callable[[OutboxJob, str], bytes | None]


class FeedSender(Protocol):
    """What the worker needs from the DMP side (`bridge.feed.outbox_dmp.DmpFeedSender`)."""

    async def registered(self, job: OutboxJob) -> bool:
        """True when the DMP already holds the job's uniqueId (or, for a deletion, it is deleted)."""

    async def send(self, job: OutboxJob, payload: bytes, spec: DocumentSpec) -> dict[str, Any]:
        """Do what the job asks; the DMP's answer as a small JSON-able dict."""


class OutboxWorker:
    """Runs until stopped (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        sender: FeedSender,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int = 4,
        ack: AckBuilder | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.sender = sender
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self._ack = ack
        self._rng = rng or random.Random()
        self._clock = clock
        self._wake = asyncio.Event()
        self._inflight: dict[int, tuple[str, asyncio.Task[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        outbox.add_listener(self._noticed)

    def _noticed(self, job: OutboxJob) -> None:
        if job.state is JobState.QUEUED:
            self._wake.set()

    def wake(self) -> None:
        """Look for due jobs now."""
        self._wake.set()

    def start(self) -> None:
        """Start the loop as a task."""
        self._task = asyncio.create_task(self.run(), name="outbox-worker")

    async def stop(self) -> None:
        """Stop the loop and cancel attempts in flight (they stay SENDING, checked at the next start)."""
        tasks = [t for _, t in self._inflight.values()]
        if self._task is not None:
            self._task.cancel()
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def run(self) -> None:
        """Recover from a crash, then send due jobs forever."""
        recovered = await self.outbox.recover()
        if recovered:
            log.info("outbox: %d job(s) left in flight by a stop are checked before sending", len(recovered))
        while True:
            self._wake.clear()
            free = self.concurrency - len(self._inflight)
            jobs: list[OutboxJob] = []
            if free > 0:
                busy = {patient for patient, _ in self._inflight.values()}
                taken = await self.outbox.claim_with_payloads(free, busy)
                jobs = [job for job, _, _ in taken]
                for job, payload, spec in taken:
                    task = asyncio.create_task(self._attempt(job, payload, spec), name=f"outbox-job-{job.id}")
                    self._inflight[job.id] = (job.patient, task)
                    task.add_done_callback(functools.partial(self._done, job.id))
            if jobs and len(self._inflight) < self.concurrency:
                continue  # more may be due
            # Every slot busy: a finishing job wakes the loop, no need to ask when the next waiting one is due.
            due = await self.outbox.next_due() if len(self._inflight) < self.concurrency else None
            timeout = 30.0 if due is None else min(30.0, max(0.01, due - self._clock()))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (stop() would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _done(self, job_id: int, _task: object = None) -> None:
        self._inflight.pop(job_id, None)
        self._wake.set()

    async def _attempt(self, job: OutboxJob, payload: bytes, spec: DocumentSpec) -> None:
        try:
            if job.verify and await self.sender.registered(job):
                log.info("outbox: job %d was already registered by an earlier attempt", job.id)
                await self.outbox.finish(
                    job.id, JobState.SENT, result={"alreadyRegistered": True, "uniqueId": job.unique_id}, ack=self._ack
                )
                return
            result = await self.sender.send(job, payload, spec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is recorded on the job, none ends the worker
            await self._failed(job, to_bridge_error(exc))
            return
        # The outcome is handed to the store's thread first, then the slot is freed: the next claim (same
        # thread, after it) already sees this job finished, and the record overlaps the next DMP call.
        recorded = self.outbox.finish_soon(job.id, JobState.SENT, result=result, ack=self._ack)
        self._done(job.id)
        await recorded

    async def _failed(self, job: OutboxJob, error: BridgeError) -> None:
        if job.kind is not JobKind.DELETE and already_there(error):
            # An earlier attempt landed and its record was lost (power cut): the DMP says so itself.
            log.info("outbox: job %d was already registered (duplicate uniqueId)", job.id)
            result = {"alreadyRegistered": True, "uniqueId": job.unique_id}
            await self.outbox.finish(job.id, JobState.SENT, result=result, ack=self._ack)
            return
        detail = str(error.extra.get("dmpCode") or error.detail or "")[:200] or None
        verify = job.verify or may_have_landed(error)
        if classify(error) is Verdict.TRANSIENT and not self.policy.gives_up(job.attempts):
            delay = self.policy.delay(job.attempts, self._rng)
            log.info("outbox: job %d %s, next attempt in %.1f s", job.id, error.code.value, delay)
            await self.outbox.finish(
                job.id,
                JobState.WAITING,
                reason=error.code.value,
                detail=detail,
                next_at=self._clock() + delay,
                verify=verify,
            )
            return
        log.warning("outbox: job %d failed for good: %s", job.id, error.code.value)
        await self.outbox.finish(
            job.id, JobState.FAILED, reason=error.code.value, detail=detail, verify=verify, ack=self._ack
        )
