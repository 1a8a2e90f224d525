"""The durable outbox: SQLite in WAL mode, every commit synced before it returns (synchronous=FULL).

A job is written with its document bytes, metadata and stable uniqueId in one transaction before any
intake says "accepted" (an HL7 ACK, a hot-folder pick-up, an API job id). Intake is idempotent: a
second write with the same (origin, source key) returns the first job, so a DPI that resends a message
whose ACK it never got does not queue the document twice.

Every state change goes through `_move`, which checks `TRANSITIONS`; the HL7 feeding acknowledgement
of a job is written in the same transaction as the job's final state, so it can never be lost between
the two. Blocking calls: use from one thread at a time (`bridge.feed.outbox.Outbox` runs them on its
own single worker thread).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bridge.feed.outbox_model import (
    ACTIVE_STATES,
    INS_NOT_QUALIFIED,
    TRANSITIONS,
    DocumentSpec,
    JobKind,
    JobState,
    Origin,
    OutboxJob,
)

__all__ = ["OUTBOX_FILENAME", "OutboxStore", "PendingAck", "StateError"]

OUTBOX_FILENAME = "outbox.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    patient TEXT NOT NULL,
    patient_oid TEXT NOT NULL,
    ins_qualified INTEGER NOT NULL,
    origin TEXT NOT NULL,
    source_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL,
    reason TEXT,
    detail TEXT,
    verify INTEGER NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT '{}',
    reply_to TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (origin, source_key)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, next_at);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_patient ON jobs (patient, id);
CREATE INDEX IF NOT EXISTS jobs_order ON jobs (patient, kind, id);
CREATE TABLE IF NOT EXISTS acks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    message BLOB NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS acks_pending ON acks (done, next_at);
"""

_ACTIVE = tuple(s.value for s in ACTIVE_STATES)


class StateError(Exception):
    """A move the state table does not allow (asked by a person: retry a sent job, cancel a sending one)."""

    def __init__(self, job: OutboxJob, target: JobState) -> None:
        super().__init__(f"job {job.id}: {job.state.value} -> {target.value} not allowed")
        self.job = job
        self.target = target


class PendingAck:
    """A feeding acknowledgement still to be delivered to the DPI."""

    __slots__ = ("attempts", "id", "job_id", "message")

    def __init__(self, id: int, job_id: int, message: bytes, attempts: int) -> None:
        self.id = id
        self.job_id = job_id
        self.message = message
        self.attempts = attempts


def _job(row: sqlite3.Row) -> OutboxJob:
    return OutboxJob(
        id=row["id"],
        kind=JobKind(row["kind"]),
        state=JobState(row["state"]),
        unique_id=row["unique_id"],
        patient=row["patient"],
        patient_oid=row["patient_oid"],
        ins_qualified=bool(row["ins_qualified"]),
        origin=Origin(row["origin"]),
        source_key=row["source_key"],
        attempts=row["attempts"],
        next_at=row["next_at"],
        reason=row["reason"],
        detail=row["detail"],
        verify=bool(row["verify"]),
        result=json.loads(row["result"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_COLUMNS = (
    "id, kind, state, unique_id, patient, patient_oid, ins_qualified, origin, source_key, attempts, next_at, "
    "reason, detail, verify, result, created_at, updated_at"
)


class OutboxStore:
    """The outbox database (see the module docstring)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: every commit survives a crash of the process; intake commits are also synced
        # (FULL, see `_tx(durable=True)`) so "queued" survives a power cut before anything acknowledges it.
        # A state change lost to a power cut is covered by the existence check and the duplicate rule.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._synchronous = "NORMAL"
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)

    def db_mode(self) -> str:
        """The SQLite journal mode ("wal")."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _tx(self, work: Callable[[sqlite3.Connection], Any], *, durable: bool = False) -> Any:
        with self._lock:
            wanted = "FULL" if durable else "NORMAL"
            if wanted != self._synchronous:
                self._db.execute(f"PRAGMA synchronous={wanted}")
                self._synchronous = wanted
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def _get(self, db: sqlite3.Connection, job_id: int) -> OutboxJob | None:
        row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    # -- intake -----------------------------------------------------------------------------------

    def enqueue(
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
        """Write a job durably; (the job, True) when new, (the existing job, False) for a repeated intake."""
        now = self._clock()
        state = JobState.QUEUED if ins_qualified else JobState.UNQUALIFIED
        reason = None if ins_qualified else INS_NOT_QUALIFIED

        def work(db: sqlite3.Connection) -> tuple[OutboxJob, bool]:
            found = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE origin=? AND source_key=?", (origin.value, source_key)
            ).fetchone()
            if found is not None:
                return _job(found), False
            cur = db.execute(
                "INSERT INTO jobs (kind, state, unique_id, patient, patient_oid, ins_qualified, origin, source_key,"
                " spec, payload, reason, reply_to, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    kind.value, state.value, unique_id, patient, patient_oid, int(ins_qualified), origin.value,
                    source_key, spec.to_json(), payload, reason, reply_to, now, now,
                ),
            )  # fmt: skip
            job = self._get(db, int(cur.lastrowid or 0))
            assert job is not None
            return job, True

        result: tuple[OutboxJob, bool] = self._tx(work, durable=True)
        return result

    def payload(self, job_id: int) -> tuple[bytes, DocumentSpec]:
        """The document bytes and metadata of a job."""
        with self._lock:
            row = self._db.execute("SELECT payload, spec FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(job_id)
        return bytes(row["payload"]), DocumentSpec.from_json(row["spec"])

    def reply_to(self, job_id: int) -> str | None:
        """The HL7 intake's reference for the feeding acknowledgement (JSON), if any."""
        with self._lock:
            row = self._db.execute("SELECT reply_to FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else row["reply_to"]

    # -- the worker -------------------------------------------------------------------------------

    def recover(self) -> list[OutboxJob]:
        """After a crash: jobs left SENDING may have reached the DMP; queue them again, to be checked first."""

        def work(db: sqlite3.Connection) -> list[OutboxJob]:
            ids = [r[0] for r in db.execute("SELECT id FROM jobs WHERE state=?", (JobState.SENDING.value,))]
            now = self._clock()
            db.execute(
                "UPDATE jobs SET state=?, verify=1, updated_at=? WHERE state=?",
                (JobState.QUEUED.value, now, JobState.SENDING.value),
            )
            return [j for j in (self._get(db, i) for i in ids) if j is not None]

        jobs: list[OutboxJob] = self._tx(work)
        return jobs

    def claim(self, limit: int, busy_patients: Iterable[str] = ()) -> list[OutboxJob]:
        """Take up to `limit` jobs that are due, in order per patient, and mark them SENDING.

        Order per patient: a replacement or deletion waits for every earlier job of its patient, and any
        job waits for an earlier replacement or deletion of its patient; new documents of one patient may
        go side by side. `busy_patients` are patients with a job in flight that must not be overtaken.
        """
        now = self._clock()
        busy = tuple(busy_patients)

        def work(db: sqlite3.Connection) -> list[OutboxJob]:
            active = ",".join("?" * len(_ACTIVE))
            # Two index lookups per candidate (jobs_order): earlier replacements/deletions of the patient
            # (any job waits for them), and, for a replacement/deletion only, any earlier job of the patient.
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs j WHERE j.state IN (?, ?) AND (j.next_at IS NULL OR j.next_at <= ?)"
                " AND NOT EXISTS (SELECT 1 FROM jobs e WHERE e.patient = j.patient AND e.kind IN ('replace', 'delete')"
                f" AND e.id < j.id AND e.state IN ({active}))"
                " AND (j.kind = 'submit' OR NOT EXISTS (SELECT 1 FROM jobs e WHERE e.patient = j.patient"
                f" AND e.id < j.id AND e.state IN ({active})))"
                " ORDER BY j.id LIMIT ?",
                (JobState.QUEUED.value, JobState.WAITING.value, now, *_ACTIVE, *_ACTIVE, limit * 4),
            ).fetchall()
            taken: list[OutboxJob] = []
            for row in rows:
                job = _job(row)
                if job.kind is not JobKind.SUBMIT and job.patient in busy:
                    continue
                db.execute(
                    "UPDATE jobs SET state=?, attempts=attempts+1, updated_at=? WHERE id=?",
                    (JobState.SENDING.value, now, job.id),
                )
                taken.append(
                    dataclasses.replace(job, state=JobState.SENDING, attempts=job.attempts + 1, updated_at=now)
                )
                if len(taken) >= limit:
                    break
            return taken

        jobs: list[OutboxJob] = self._tx(work)
        return jobs

    def _move(
        self,
        db: sqlite3.Connection,
        job_id: int,
        target: JobState,
        *,
        sets: dict[str, Any],
    ) -> OutboxJob:
        job = self._get(db, job_id)
        if job is None:
            raise KeyError(job_id)
        if target not in TRANSITIONS[job.state]:
            raise StateError(job, target)
        now = self._clock()
        columns = {"state": target.value, "updated_at": now, **sets}
        assignments = ", ".join(f"{name}=?" for name in columns)
        db.execute(f"UPDATE jobs SET {assignments} WHERE id=?", (*columns.values(), job_id))
        # The new row, without reading it back: the columns just written, mapped to the job's fields.
        changed: dict[str, Any] = {"state": target, "updated_at": now}
        for name, value in sets.items():
            if name == "payload":
                continue
            if name == "result":
                changed["result"] = json.loads(value)
            elif name in ("verify", "ins_qualified"):
                changed[name] = bool(value)
            else:
                changed[name] = value
        return dataclasses.replace(job, **changed)

    def finish(
        self,
        job_id: int,
        target: JobState,
        *,
        reason: str | None = None,
        detail: str | None = None,
        result: dict[str, Any] | None = None,
        next_at: float | None = None,
        verify: bool | None = None,
        ack: Callable[[OutboxJob, str], bytes | None] | None = None,
    ) -> OutboxJob:
        """Record the outcome of an attempt; for a job with a `reply_to` (HL7), `ack` builds the feeding
        acknowledgement from the final job, written in the same transaction (only for SENT and FAILED)."""
        sets: dict[str, Any] = {"reason": reason, "detail": detail, "next_at": next_at}
        if target is JobState.SENT:
            sets["payload"] = b""  # the DMP holds the document now: the outbox keeps only what it did
        if result is not None:
            sets["result"] = json.dumps(result)
        if verify is not None:
            sets["verify"] = int(verify)

        def work(db: sqlite3.Connection) -> OutboxJob:
            moved = self._move(db, job_id, target, sets=sets)
            final = target in (JobState.SENT, JobState.FAILED)
            reply = (
                db.execute("SELECT reply_to FROM jobs WHERE id=?", (job_id,)).fetchone()[0] if ack and final else None
            )
            if ack is not None and reply and final:
                message = ack(moved, reply)
                if message is not None:
                    now = self._clock()
                    db.execute(
                        "INSERT INTO acks (job_id, message, next_at, created_at) VALUES (?,?,?,?)",
                        (job_id, message, now, now),
                    )
            return moved

        job: OutboxJob = self._tx(work)
        return job

    # -- people -----------------------------------------------------------------------------------

    def retry(self, job_id: int, *, ins_qualified: bool = False) -> OutboxJob:
        """Send a waiting, failed or unqualified job now (`ins_qualified`: the INS was qualified since)."""

        def work(db: sqlite3.Connection) -> OutboxJob:
            job = self._get(db, job_id)
            if job is None:
                raise KeyError(job_id)
            if job.state is JobState.UNQUALIFIED and not ins_qualified:
                raise StateError(job, JobState.QUEUED)
            sets: dict[str, Any] = {"next_at": None, "reason": None, "detail": None}
            if ins_qualified:
                sets["ins_qualified"] = 1
            return self._move(db, job_id, JobState.QUEUED, sets=sets)

        job: OutboxJob = self._tx(work)
        return job

    def cancel(self, job_id: int) -> OutboxJob:
        """Withdraw a job that was not sent (queued, waiting, unqualified)."""
        job: OutboxJob = self._tx(lambda db: self._move(db, job_id, JobState.CANCELLED, sets={"payload": b""}))
        return job

    # -- reading ----------------------------------------------------------------------------------

    def get(self, job_id: int) -> OutboxJob | None:
        """One job."""
        with self._lock:
            return self._get(self._db, job_id)

    def find(self, origin: Origin, source_key: str) -> OutboxJob | None:
        """The job of one intake reference."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE origin=? AND source_key=?", (origin.value, source_key)
            ).fetchone()
        return None if row is None else _job(row)

    def jobs(self, states: Iterable[JobState] = (), *, limit: int = 100, before: int | None = None) -> list[OutboxJob]:
        """Newest first, optionally filtered by state, paged by id."""
        wanted = [s.value for s in states] or [s.value for s in JobState]
        query = f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({','.join('?' * len(wanted))})"
        args: list[Any] = list(wanted)
        if before is not None:
            query += " AND id < ?"
            args.append(before)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            return [_job(r) for r in self._db.execute(query, args)]

    def counts(self) -> dict[str, int]:
        """Jobs per state (every state present)."""
        out = {s.value: 0 for s in JobState}
        with self._lock:
            for state, n in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
                out[state] = n
        return out

    def oldest_waiting(self) -> OutboxJob | None:
        """The oldest job that waits (transient fault or unqualified INS)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN (?, ?) ORDER BY id LIMIT 1",
                (JobState.WAITING.value, JobState.UNQUALIFIED.value),
            ).fetchone()
        return None if row is None else _job(row)

    def next_due(self) -> float | None:
        """When the earliest waiting job is due (None: nothing waits on a timer)."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_at) FROM jobs WHERE state=?", (JobState.WAITING.value,)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # -- feeding acknowledgements -----------------------------------------------------------------

    def pending_acks(self, limit: int = 16) -> list[PendingAck]:
        """Acknowledgements due now, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, job_id, message, attempts FROM acks WHERE done=0 AND next_at <= ? ORDER BY id LIMIT ?",
                (self._clock(), limit),
            ).fetchall()
        return [PendingAck(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def ack_delivered(self, ack_id: int) -> None:
        """The DPI acknowledged it."""
        self._tx(lambda db: db.execute("UPDATE acks SET done=1, attempts=attempts+1 WHERE id=?", (ack_id,)))

    def ack_later(self, ack_id: int, next_at: float) -> None:
        """Delivery failed: try again at `next_at`."""
        self._tx(lambda db: db.execute("UPDATE acks SET attempts=attempts+1, next_at=? WHERE id=?", (next_at, ack_id)))

    def ack_counts(self) -> dict[str, int]:
        """Acknowledgements delivered and pending."""
        with self._lock:
            rows = dict(self._db.execute("SELECT done, COUNT(*) FROM acks GROUP BY done").fetchall())
        return {"delivered": int(rows.get(1, 0)), "pending": int(rows.get(0, 0))}

    def next_ack_due(self) -> float | None:
        """When the earliest pending acknowledgement is due."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_at) FROM acks WHERE done=0").fetchone()
        return None if row is None or row[0] is None else float(row[0])
