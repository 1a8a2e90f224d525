"""The simulated DMP's access facts: authorisations (with their history), médecins traitants, blocked
professionals, Mon espace santé association, and the rights matrix applied to each caller.

Kept in the simulator's SQLite file (tables of their own, see `_SCHEMA`). The rights matrix is the one
table of `bridge.dmp.rights` (PDT-INF-526), with the actor derived by `bridge.dmp.actors` from the
checked VIHF and from what only the DMP knows (is this doctor the patient's médecin traitant).

Assumptions (no public source): a professional with no row is not authorised (AUTORISATION NON_EXISTE);
a DMP is associated with Mon espace santé unless flagged otherwise (every DMP is since 2022); a patient
who blocked a professional keeps the block when the professional declares themselves authorised
(refused with DMPAccessDeniedByPatient).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from bridge.dmp.rights import Actor, NotPermitted, Operation, access_mode_of, actor_of, require
from bridge.sim.dmp.access import Caller
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore

__all__ = [
    "SEED_ACCESS",
    "AuthorizationRow",
    "State",
    "authorization",
    "authorizations",
    "caller_actor",
    "enforce",
    "is_mes",
    "record",
    "seed_access",
    "set_mes",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS authorizations(
    ins TEXT NOT NULL, professional TEXT NOT NULL, state TEXT NOT NULL, treating INTEGER NOT NULL,
    speciality TEXT NOT NULL, given TEXT NOT NULL, family TEXT NOT NULL,
    since TEXT NOT NULL, last_action TEXT NOT NULL, PRIMARY KEY(ins, professional));
CREATE TABLE IF NOT EXISTS authorization_history(
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ins TEXT NOT NULL, professional TEXT NOT NULL,
    action TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dmp_flags(ins TEXT PRIMARY KEY, mes INTEGER NOT NULL);
"""
_PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"


class State(enum.Enum):
    """AUTORISATION values of TD0.2 (`1.2.250.1.213.4.1.2.6.2`)."""

    VALID = "VALIDE"
    EXPIRED = "EXPIRE"
    BLOCKED = "INTERDIT"
    NONE = "NON_EXISTE"


@dataclass(frozen=True)
class AuthorizationRow:
    """One professional's standing on one DMP."""

    ins: str
    professional: str
    state: State
    treating: bool
    speciality: str = ""
    given: str = ""
    family: str = ""
    since: str = ""
    last_action: str = ""


# Sandbox and test facts (see bridge/sim/dmp/patients.py for the patients): the sandbox GP (cps-gp,
# 810012345678) is authorised and médecin traitant on the official sample's patient, whose DMP is not
# associated with Mon espace santé (RATTACHEMENT_ENS false in the sample); on MARTIN JEAN the GP's
# authorisation has expired and the second GP (cps-gp2, 810098765432) is blocked by the patient.
SEED_ACCESS: tuple[AuthorizationRow, ...] = (
    AuthorizationRow("207058575627097", "810012345678", State.VALID, True, "G15_10/SM54", "JEAN", "MEDECIN",
                     "20210601135804", "20210601140606"),
    AuthorizationRow("178037511501201", "810012345678", State.EXPIRED, False, "G15_10/SM54", "JEAN", "MEDECIN",
                     "20200101090000", "20200101090000"),
    AuthorizationRow("178037511501201", "810098765432", State.BLOCKED, False, "G15_10/SM54", "PAUL", "CONFRERE",
                     "20220301100000", "20220301100000"),
)  # fmt: skip
#: DMPs not associated with Mon espace santé.
SEED_NON_MES: tuple[str, ...] = ("207058575627097", "165072A00405668")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")


def seed_access(store: DmpStore) -> None:
    """Create the tables and insert the seed facts that are not there yet."""
    store.add_schema(_SCHEMA)
    with store.transaction() as db:
        db.executemany(
            "INSERT OR IGNORE INTO authorizations VALUES (?,?,?,?,?,?,?,?,?)",
            [(r.ins, r.professional, r.state.value, int(r.treating), r.speciality, r.given, r.family, r.since,
              r.last_action) for r in SEED_ACCESS],
        )  # fmt: skip
        db.executemany("INSERT OR IGNORE INTO dmp_flags VALUES (?, 0)", [(ins,) for ins in SEED_NON_MES])


def is_mes(store: DmpStore, ins: str) -> bool:
    """True when the DMP is associated with Mon espace santé (the default)."""
    rows = store.select("SELECT mes FROM dmp_flags WHERE ins=?", (ins,))
    return bool(rows[0][0]) if rows else True


def set_mes(store: DmpStore, ins: str, mes: bool) -> None:
    """Flag a DMP as associated with Mon espace santé or not (tests, sandbox)."""
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO dmp_flags VALUES (?,?)", (ins, int(mes)))


def _row(values: tuple[object, ...]) -> AuthorizationRow:
    ins, pro, state, treating, speciality, given, family, since, last = values
    return AuthorizationRow(
        str(ins), str(pro), State(state), bool(treating), str(speciality), str(given), str(family), str(since),
        str(last),
    )  # fmt: skip


def authorization(store: DmpStore, ins: str, professional: str) -> AuthorizationRow:
    """This professional's standing on this DMP (NON_EXISTE when no row)."""
    rows = store.select("SELECT * FROM authorizations WHERE ins=? AND professional=?", (ins, professional))
    return _row(rows[0]) if rows else AuthorizationRow(ins, professional, State.NONE, False)


def authorizations(store: DmpStore, ins: str) -> list[AuthorizationRow]:
    """Every professional with a standing on this DMP, in the order they got it."""
    return [_row(r) for r in store.select("SELECT * FROM authorizations WHERE ins=? ORDER BY since", (ins,))]


def record(store: DmpStore, row: AuthorizationRow | None, *, ins: str, professional: str, action: str) -> None:
    """Write a professional's new standing (None: no row any more) and append the action to the history."""
    now = _now()
    with store.transaction() as db:
        if row is None:
            db.execute("DELETE FROM authorizations WHERE ins=? AND professional=?", (ins, professional))
        else:
            db.execute(
                "INSERT OR REPLACE INTO authorizations VALUES (?,?,?,?,?,?,?,?,?)",
                (row.ins, row.professional, row.state.value, int(row.treating), row.speciality, row.given,
                 row.family, row.since or now, now),
            )  # fmt: skip
        db.execute(
            "INSERT INTO authorization_history(ins, professional, action, at) VALUES (?,?,?,?)",
            (ins, professional, action, now),
        )


def caller_actor(store: DmpStore, caller: Caller, ins: str | None) -> Actor:
    """The matrix's actor for this caller on this DMP (médecin traitant known from the store)."""
    vihf = caller.vihf
    profession = next((code for code, system in vihf.roles if system == _PROFESSION_SYSTEM), "")
    treating = ins is not None and authorization(store, ins, vihf.name_id).treating
    return actor_of(vihf.mode, profession, treating_physician=treating)


def enforce(store: DmpStore, caller: Caller, operation: Operation, ins: str | None) -> Actor:
    """Apply the rights matrix as the DMP does: DMPAccessDeniedByRightsService when it says no."""
    actor = caller_actor(store, caller, ins)
    mes = is_mes(store, ins) if ins is not None else None
    try:
        require(actor, access_mode_of(caller.vihf.purpose), operation, dmp_mes=mes)
    except NotPermitted as exc:
        code = FaultCode.NOT_ALLOWED_FOR_MES if exc.decision.reason == "(10)" else FaultCode.ACCESS_DENIED_BY_RIGHTS
        raise SoapFault(
            code, f"{operation.transaction} « {operation.label} » refusée pour {actor.value} ({caller.vihf.purpose})"
        ) from None
    return actor
