"""The outbox worker against the real DMP simulator over mutual TLS, through a fault-injecting proxy:
transient faults wait and go again, permanent ones stop, an answer lost after the upload is checked with
the DMP (ObjectRef query by uniqueId) before any new send, and each document is stored exactly once."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_dmp import DmpFeedSender
from bridge.feed.outbox_model import JobState
from bridge.feed.outbox_worker import OutboxWorker
from bridge.feed.retry_policy import RetryPolicy
from bridge.service.dmp import DmpService
from tests.dmp_fixtures import RunningSim
from tests.faults import Fault, FaultProxy
from tests.feed.support import feed_dmp_config, queue_cda, settled, unique_id

FAST = RetryPolicy(base=0.05, cap=0.2)
THRESHOLD = 24 * 1024


def _stored(sim: RunningSim, uid: str) -> int:
    db = sim.sim.store._db  # the simulator's own SQLite: what it registered
    return int(db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (uid,)).fetchone()[0])


@pytest.fixture
async def feeding(
    dmp_sim: RunningSim,
    dmp_pki: TestPki,
    tmp_path: Path,
) -> AsyncIterator[tuple[Outbox, OutboxWorker, FaultProxy, DmpService]]:
    """An outbox, its worker and the DMP service, talking to the simulator through a proxy."""
    async with FaultProxy(dmp_sim.sim.port, THRESHOLD) as proxy:
        url = dmp_sim.url.replace(f":{dmp_sim.sim.port}/", f":{proxy.port}/")
        service = DmpService(feed_dmp_config(url, dmp_sim.ca_file, dmp_pki, call_timeout=3.0))
        outbox = Outbox(tmp_path / "outbox.sqlite3")
        worker = OutboxWorker(outbox, DmpFeedSender(service), policy=FAST, rng=random.Random(1))
        try:
            yield outbox, worker, proxy, service
        finally:
            await worker.stop()
            await service.aclose()
            await outbox.aclose()


def _all(outbox: Outbox, state: JobState, n: int) -> bool:
    return outbox.store.counts()[state.value] == n


async def test_documents_are_sent_once_each(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService], dmp_sim: RunningSim
) -> None:
    outbox, worker, _proxy, _ = feeding
    uids = [unique_id(n, 1) for n in range(6)]
    for uid in uids:
        await queue_cda(outbox, uid)
    worker.start()
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 6))
    assert [_stored(dmp_sim, u) for u in uids] == [1] * 6
    job = outbox.store.jobs()[0]
    assert job.result["uniqueId"] == job.unique_id and job.attempts == 1


async def test_lost_answer_is_checked_before_sending_again(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService],
    dmp_sim: RunningSim,
) -> None:
    """The upload arrives, the answer is dropped: the job waits, is checked by uniqueId, and is not sent twice."""
    outbox, worker, proxy, _ = feeding
    uid = unique_id(1, 2)
    proxy.fault = Fault.DROP_RESPONSE
    job = await queue_cda(outbox, uid, size=48 * 1024)
    seen: list[JobState] = []
    outbox.add_listener(lambda j: seen.append(j.state) if j.id == job.id else None)
    worker.start()
    await settled(outbox, lambda: JobState.WAITING in seen)
    waiting = outbox.store.get(job.id)
    assert waiting is not None and waiting.reason == "DMP_OUTCOME_UNKNOWN" and waiting.verify
    assert _stored(dmp_sim, uid) == 1  # it did land
    proxy.fault = Fault.PASS
    uploads = proxy.uploads
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 1))
    sent = outbox.store.get(job.id)
    assert sent is not None and sent.result == {"alreadyRegistered": True, "uniqueId": uid}
    assert _stored(dmp_sim, uid) == 1
    assert proxy.uploads == uploads  # the document was not uploaded again


async def test_refused_connection_waits_then_goes(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService],
    dmp_sim: RunningSim,
) -> None:
    outbox, worker, proxy, _ = feeding
    proxy.fault = Fault.REFUSE
    uid = unique_id(1, 3)
    job = await queue_cda(outbox, uid)
    worker.start()
    await settled(outbox, lambda: (j := outbox.store.get(job.id)) is not None and j.attempts >= 2)
    waiting = outbox.store.get(job.id)
    assert waiting is not None and waiting.state in (JobState.WAITING, JobState.SENDING)
    assert waiting.reason in ("DMP_UNREACHABLE", None)
    proxy.fault = Fault.PASS
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 1))
    assert _stored(dmp_sim, uid) == 1


async def test_unknown_patient_fails_for_good(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService],
    dmp_sim: RunningSim,
) -> None:
    outbox, worker, _proxy, _ = feeding
    job = await queue_cda(outbox, unique_id(1, 4), ins="185057800608491")  # a valid INS the DMP does not know
    worker.start()
    await settled(outbox, lambda: _all(outbox, JobState.FAILED, 1))
    failed = outbox.store.get(job.id)
    assert failed is not None and failed.attempts == 1 and failed.reason == "DMP_UNKNOWN"
    assert "DMP" in failed.to_public()["message_fr"]


async def test_unqualified_identity_waits_until_qualified(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService],
    dmp_sim: RunningSim,
) -> None:
    outbox, worker, _proxy, _ = feeding
    uid = unique_id(1, 5)
    job = await queue_cda(outbox, uid, qualified=False)
    assert job.state is JobState.UNQUALIFIED and job.reason == "INS_NOT_QUALIFIED"
    other = await queue_cda(outbox, unique_id(2, 5))
    worker.start()
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 1))
    assert outbox.store.get(job.id).state is JobState.UNQUALIFIED  # type: ignore[union-attr]
    assert _stored(dmp_sim, uid) == 0 and outbox.store.get(other.id).state is JobState.SENT  # type: ignore[union-attr]
    await outbox.retry(job.id, ins_qualified=True)
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 2))
    assert _stored(dmp_sim, uid) == 1


async def test_a_document_already_in_the_dmp_is_not_a_failure(
    feeding: tuple[Outbox, OutboxWorker, FaultProxy, DmpService], dmp_sim: RunningSim
) -> None:
    """Its record lost (a power cut after the send): the DMP refuses the duplicate uniqueId, the job is sent."""
    outbox, worker, _proxy, service = feeding
    uid = unique_id(1, 6)
    job = await queue_cda(outbox, uid)
    payload, spec = await outbox.payload(job.id)
    await DmpFeedSender(service).send(job, payload, spec)  # the earlier attempt, whose outcome was not recorded
    worker.start()
    await settled(outbox, lambda: _all(outbox, JobState.SENT, 1))
    sent = outbox.store.get(job.id)
    assert sent is not None and sent.result["alreadyRegistered"] and sent.attempts == 1
    assert _stored(dmp_sim, uid) == 1
