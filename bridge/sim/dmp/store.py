"""SQLite storage of the simulated DMP: patients, document entries (all versions) and contents.

One connection guarded by a lock; callers run these methods off the event loop. The file survives
restarts; nothing is kept in memory between calls.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bridge.sim.dmp.constants import AvailabilityStatus

__all__ = ["DmpStore", "EntryRow", "NewEntry", "PatientRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS patients(
    ins TEXT PRIMARY KEY, oid TEXT NOT NULL, status TEXT NOT NULL,
    family TEXT NOT NULL, given TEXT NOT NULL, birth TEXT NOT NULL, gender TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_uuid TEXT NOT NULL UNIQUE, lid TEXT NOT NULL, version INTEGER NOT NULL,
    unique_id TEXT NOT NULL, patient TEXT NOT NULL, status TEXT NOT NULL,
    author_id TEXT NOT NULL, submitter_id TEXT NOT NULL, confidentiality TEXT NOT NULL,
    class_code TEXT NOT NULL, type_code TEXT NOT NULL, format_code TEXT NOT NULL,
    creation_time TEXT NOT NULL, is_signature INTEGER NOT NULL, metadata BLOB NOT NULL,
    replaces TEXT);
CREATE INDEX IF NOT EXISTS entries_patient ON entries(patient);
CREATE INDEX IF NOT EXISTS entries_unique ON entries(unique_id);
CREATE TABLE IF NOT EXISTS contents(
    unique_id TEXT PRIMARY KEY, mime_type TEXT NOT NULL, content BLOB NOT NULL,
    sha1 TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS submission_sets(
    unique_id TEXT PRIMARY KEY, patient TEXT NOT NULL, submitter_id TEXT NOT NULL, metadata BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS medecins_traitants(ins TEXT PRIMARY KEY, national_id TEXT NOT NULL);
"""

_ENTRY_COLUMNS = (
    "entry_uuid, lid, version, unique_id, patient, status, author_id, submitter_id, confidentiality, "
    "class_code, type_code, format_code, creation_time, is_signature, metadata, replaces"
)


@dataclass(frozen=True)
class PatientRow:
    """A patient whose DMP exists (active) or was closed."""

    ins: str
    oid: str
    status: str
    family: str
    given: str
    birth: str
    gender: str


@dataclass(frozen=True)
class EntryRow:
    """One version of a document entry."""

    entry_uuid: str
    lid: str
    version: int
    unique_id: str
    patient: str
    status: AvailabilityStatus
    author_id: str
    submitter_id: str
    confidentiality: tuple[str, ...]
    class_code: str
    type_code: str
    format_code: str
    creation_time: str
    is_signature: bool
    metadata: bytes
    replaces: str | None


@dataclass(frozen=True)
class NewEntry:
    """An entry to insert, with its content when the content is new."""

    row: EntryRow
    content: bytes | None = None
    mime_type: str = ""
    sha1: str = ""


def _row(values: tuple[object, ...]) -> EntryRow:
    (uuid_, lid, version, uid, patient, status, author, submitter, conf, cls, typ, fmt, ctime, sig, meta, repl) = values
    return EntryRow(
        str(uuid_),
        str(lid),
        int(str(version)),
        str(uid),
        str(patient),
        AvailabilityStatus(status),
        str(author),
        str(submitter),
        tuple(c for c in str(conf).split(",") if c),
        str(cls),
        str(typ),
        str(fmt),
        str(ctime),
        bool(sig),
        bytes(meta) if isinstance(meta, bytes | bytearray | memoryview) else str(meta).encode(),
        str(repl) if repl is not None else None,
    )


class DmpStore:
    """The simulator's database (one SQLite file in the data directory)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- for the modules that keep their own tables in this file (authorisations: sim/dmp/authorizations.py)

    def add_schema(self, script: str) -> None:
        """Create a module's own tables (idempotent `CREATE … IF NOT EXISTS` script)."""
        with self._lock:
            self._db.executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        with self._tx() as db:
            yield db

    def select(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """The rows of one read query."""
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    def seed_patients(self, patients: Iterable[PatientRow]) -> None:
        """Insert patients that are not there yet (existing rows, e.g. closed DMPs, are kept)."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO patients VALUES (?,?,?,?,?,?,?)",
                [(p.ins, p.oid, p.status, p.family, p.given, p.birth, p.gender) for p in patients],
            )

    def patient(self, ins: str) -> PatientRow | None:
        """The patient with this INS, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM patients WHERE ins=?", (ins,)).fetchone()
        return PatientRow(*row) if row else None

    def submission_set_exists(self, unique_id: str) -> bool:
        """True if a submission set with this uniqueId was registered."""
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM submission_sets WHERE unique_id=?", (unique_id,)).fetchone() is not None
            )

    def unique_ids_taken(self, unique_ids: Iterable[str]) -> list[str]:
        """Which of these document uniqueIds are already registered."""
        ids = list(unique_ids)
        with self._lock:
            return [u for u in ids if self._db.execute("SELECT 1 FROM contents WHERE unique_id=?", (u,)).fetchone()]

    def entries(self, patient: str) -> list[EntryRow]:
        """All entries (every version and status) of a patient, oldest first."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE patient=? ORDER BY seq", (patient,))
            return [_row(r) for r in rows.fetchall()]

    def entry(self, entry_uuid: str) -> EntryRow | None:
        """The entry with this entryUUID."""
        with self._lock:
            row = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE entry_uuid=?", (entry_uuid,)).fetchone()
        return _row(row) if row else None

    def entries_by_unique_id(self, unique_id: str) -> list[EntryRow]:
        """Every version of the document with this uniqueId."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE unique_id=? ORDER BY seq", (unique_id,)
            ).fetchall()
        return [_row(r) for r in rows]

    def entries_by_lid(self, lid: str) -> list[EntryRow]:
        """Every version of a logical document."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE lid=? ORDER BY seq", (lid,)).fetchall()
        return [_row(r) for r in rows]

    def content(self, unique_id: str) -> tuple[str, bytes] | None:
        """(mime type, bytes) of a stored document."""
        with self._lock:
            row = self._db.execute("SELECT mime_type, content FROM contents WHERE unique_id=?", (unique_id,)).fetchone()
        return (str(row[0]), bytes(row[1])) if row else None

    def register(
        self,
        new: list[NewEntry],
        *,
        submission: tuple[str, str, str, bytes] | None = None,
        status_changes: Iterable[tuple[str, AvailabilityStatus]] = (),
    ) -> None:
        """Atomically add entries (and contents), a submission set, and change statuses."""
        with self._tx() as db:
            if submission is not None:
                db.execute("INSERT INTO submission_sets VALUES (?,?,?,?)", submission)
            for item in new:
                r = item.row
                if item.content is not None:
                    db.execute(
                        "INSERT INTO contents VALUES (?,?,?,?,?)",
                        (r.unique_id, item.mime_type, item.content, item.sha1, len(item.content)),
                    )
                db.execute(
                    f"INSERT INTO entries({_ENTRY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.entry_uuid, r.lid, r.version, r.unique_id, r.patient, r.status.value, r.author_id,
                        r.submitter_id, ",".join(r.confidentiality), r.class_code, r.type_code, r.format_code,
                        r.creation_time, int(r.is_signature), r.metadata, r.replaces,
                    ),
                )  # fmt: skip
            for entry_uuid, status in status_changes:
                db.execute("UPDATE entries SET status=? WHERE entry_uuid=?", (status.value, entry_uuid))

    # -- médecin traitant (the DMP's own knowledge; the rights matrix's MT column) ---------------

    def set_medecin_traitant(self, ins: str, national_id: str | None) -> None:
        """Make `national_id` the médecin traitant of the patient's DMP (None: no MT)."""
        with self._tx() as db:
            db.execute("DELETE FROM medecins_traitants WHERE ins=?", (ins,))
            if national_id is not None:
                db.execute("INSERT INTO medecins_traitants(ins, national_id) VALUES(?, ?)", (ins, national_id))

    def medecin_traitant(self, ins: str) -> str | None:
        """The national id of the patient's médecin traitant, if the DMP has one."""
        with self._lock:
            row = self._db.execute("SELECT national_id FROM medecins_traitants WHERE ins=?", (ins,)).fetchone()
        return str(row[0]) if row else None
