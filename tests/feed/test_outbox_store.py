"""The outbox store and the retry policy without a DMP: the state table, idempotent intake, crash recovery,
order per patient, backoff bounds and the transient/permanent split."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bridge.errors import BridgeError, ErrorCode
from bridge.feed.outbox_model import DocumentSpec, JobKind, JobState, Origin, OutboxJob
from bridge.feed.outbox_store import OutboxStore, StateError
from bridge.feed.retry_policy import RetryPolicy, Verdict, classify, may_have_landed

SPEC = DocumentSpec(mime_type="text/xml", title="CR")


def _add(
    store: OutboxStore, key: str, patient: str = "P1", kind: JobKind = JobKind.SUBMIT, qualified: bool = True
) -> tuple[OutboxJob, bool]:
    return store.enqueue(
        kind=kind, unique_id=f"1.2.3.{key}", patient=patient, patient_oid="1.2.250.1.213.1.4.10",
        ins_qualified=qualified, origin=Origin.API, source_key=key, spec=SPEC, payload=b"<x/>",
    )  # fmt: skip


def test_intake_is_idempotent_and_survives_reopening(tmp_path: Path) -> None:
    store = OutboxStore(tmp_path / "o.sqlite3")
    first, created = _add(store, "a")
    again, created_again = _add(store, "a")
    assert created and not created_again and again.id == first.id
    store.close()
    reopened = OutboxStore(tmp_path / "o.sqlite3")
    assert reopened.get(first.id) is not None and reopened.payload(first.id)[0] == b"<x/>"
    assert reopened.db_mode() == "wal"


def test_a_crash_while_sending_leaves_a_job_to_check(tmp_path: Path) -> None:
    store = OutboxStore(tmp_path / "o.sqlite3")
    job, _ = _add(store, "a")
    (taken,) = store.claim(4)
    assert taken.id == job.id and taken.state is JobState.SENDING and taken.attempts == 1 and not taken.verify
    (recovered,) = store.recover()  # the process died here
    assert recovered.state is JobState.QUEUED and recovered.verify


def test_transitions_outside_the_table_are_refused(tmp_path: Path) -> None:
    store = OutboxStore(tmp_path / "o.sqlite3")
    job, _ = _add(store, "a")
    store.claim(1)
    store.finish(job.id, JobState.SENT, result={"uniqueId": "u"})
    assert store.payload(job.id)[0] == b""  # sent: the document is not kept
    with pytest.raises(StateError):
        store.cancel(job.id)
    with pytest.raises(StateError):
        store.retry(job.id)
    unqualified, _ = _add(store, "b", qualified=False)
    assert unqualified.state is JobState.UNQUALIFIED
    with pytest.raises(StateError):
        store.retry(unqualified.id)
    assert store.retry(unqualified.id, ins_qualified=True).state is JobState.QUEUED


def test_order_per_patient(tmp_path: Path) -> None:
    store = OutboxStore(tmp_path / "o.sqlite3")
    a, _ = _add(store, "a")
    b, _ = _add(store, "b")
    replace, _ = _add(store, "c", kind=JobKind.REPLACE)
    after, _ = _add(store, "d")
    other, _ = _add(store, "e", patient="P2")
    # New documents go side by side; the replacement waits for the earlier ones, the later one for it.
    assert [j.id for j in store.claim(10)] == [a.id, b.id, other.id]
    store.finish(a.id, JobState.SENT)
    store.finish(b.id, JobState.WAITING, next_at=0.0)
    assert [j.id for j in store.claim(10)] == [b.id]
    store.finish(b.id, JobState.SENT)
    assert [j.id for j in store.claim(10)] == [replace.id]
    store.finish(replace.id, JobState.SENT)
    assert [j.id for j in store.claim(10)] == [after.id]


def test_waiting_jobs_are_due_at_their_time(tmp_path: Path) -> None:
    now = [1000.0]
    store = OutboxStore(tmp_path / "o.sqlite3", clock=lambda: now[0])
    job, _ = _add(store, "a")
    store.claim(1)
    store.finish(job.id, JobState.WAITING, reason="DMP_UNREACHABLE", next_at=1010.0)
    assert store.claim(1) == [] and store.next_due() == 1010.0
    now[0] = 1010.0
    assert [j.id for j in store.claim(1)] == [job.id]


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base=1.0, cap=30.0)
    rng = random.Random(5)
    delays = [policy.delay(n, rng) for n in range(1, 10)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(30.0, 2.0 ** (n - 1))
        assert ceiling / 2 <= d <= ceiling
    assert RetryPolicy(max_attempts=3).gives_up(3) and not RetryPolicy().gives_up(1000)


@pytest.mark.parametrize(
    ("error", "verdict", "landed"),
    [
        (BridgeError(ErrorCode.DMP_UNREACHABLE), Verdict.TRANSIENT, False),
        (BridgeError(ErrorCode.TIMEOUT, "TD2.1: exchange"), Verdict.TRANSIENT, True),
        (BridgeError(ErrorCode.DMP_OUTCOME_UNKNOWN), Verdict.TRANSIENT, True),
        (BridgeError(ErrorCode.DMP_FAULT, "HTTP_503", dmpCode="HTTP_503"), Verdict.TRANSIENT, True),
        (BridgeError(ErrorCode.DMP_FAULT, "DMPInternalError", dmpCode="DMPInternalError"), Verdict.TRANSIENT, True),
        (BridgeError(ErrorCode.DMP_FAULT, "DMPClosed", dmpCode="DMPClosed"), Verdict.PERMANENT, True),
        (BridgeError(ErrorCode.NOT_PERMITTED_FOR_ACTOR), Verdict.PERMANENT, True),
        (BridgeError(ErrorCode.INVALID_PARAMS), Verdict.PERMANENT, True),
    ],
)
def test_transient_and_permanent_faults(error: BridgeError, verdict: Verdict, landed: bool) -> None:
    assert classify(error) is verdict and may_have_landed(error) is landed
