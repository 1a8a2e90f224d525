"""What the outbox holds: a job (one document to feed, replace or delete) and its states, without I/O.

States (one table, `TRANSITIONS`, says which move is allowed; anything else is our bug):

- ``queued``: durably written, waiting for the worker;
- ``sending``: the worker took it; a crash here leaves it ambiguous, so it is checked with the DMP
  (existence by uniqueId) before any new send;
- ``sent``: the DMP registered it (its answer in ``result``);
- ``waiting``: a transient fault (network, timeout, 5xx, DMP unavailable): sent again at ``next_at``;
- ``unqualified``: the patient's INS is not qualified (INS reliability status is not VALI): the DMP may
  not be fed until it is; a person (or the INSi service) says so with ``retry(ins_qualified=True)``;
- ``failed``: a permanent fault (rights, invalid metadata, unknown patient), with the DMP's code;
- ``cancelled``: withdrawn by a person before it was sent.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

from bridge.dmp.xds_model import Code
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "ACTIVE_STATES",
    "INS_NOT_QUALIFIED",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "DocumentSpec",
    "JobKind",
    "JobState",
    "Origin",
    "OutboxJob",
    "explain_fr",
]

#: The reason of an UNQUALIFIED job (not an ErrorCode: nothing failed, the identity is not ready yet).
INS_NOT_QUALIFIED = "INS_NOT_QUALIFIED"
_INS_NOT_QUALIFIED_FR = (
    "L'identité du patient n'est pas qualifiée (INS non vérifiée) : le document attend. Qualifiez l'identité "
    "(téléservice INSi), puis relancez l'envoi."
)


def explain_fr(reason: str, detail: str | None = None) -> str:
    """The French explanation of a job's reason, with the next step for the person."""
    if reason == INS_NOT_QUALIFIED:
        return _INS_NOT_QUALIFIED_FR
    try:
        code = ErrorCode(reason)
    except ValueError:
        return BridgeError(ErrorCode.INTERNAL).message_fr
    text = BridgeError(code, detail).message_fr
    if code is ErrorCode.DMP_FAULT and detail:
        text += f" (code du DMP : {detail})"
    return text


class JobState(enum.Enum):
    """Where a job is (see the module docstring)."""

    #: Written durably, not taken yet.
    QUEUED = "queued"
    #: Taken by the worker (ambiguous after a crash).
    SENDING = "sending"
    #: Registered by the DMP.
    SENT = "sent"
    #: Transient fault: sent again at `next_at`.
    WAITING = "waiting"
    #: The INS is not qualified: held until it is.
    UNQUALIFIED = "unqualified"
    #: Permanent fault.
    FAILED = "failed"
    #: Withdrawn.
    CANCELLED = "cancelled"


class JobKind(enum.Enum):
    """What the job asks of the DMP."""

    #: TD2.1 of a new document.
    SUBMIT = "submit"
    #: TD2.1 with an RPLC association to the document `DocumentSpec.replaces`.
    REPLACE = "replace"
    #: TD3.3c of the document `unique_id`.
    DELETE = "delete"


class Origin(enum.Enum):
    """Who queued the job."""

    API = "api"
    CLI = "cli"
    HL7 = "hl7"
    HOT_FOLDER = "hotfolder"


TERMINAL_STATES = frozenset({JobState.SENT, JobState.FAILED, JobState.CANCELLED})
ACTIVE_STATES = frozenset(set(JobState) - TERMINAL_STATES)

#: Allowed moves: from → to. `recover` (crash) is SENDING → QUEUED with `verify` set.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SENDING, JobState.CANCELLED, JobState.UNQUALIFIED}),
    JobState.SENDING: frozenset({JobState.SENT, JobState.WAITING, JobState.FAILED, JobState.QUEUED}),
    JobState.WAITING: frozenset({JobState.SENDING, JobState.CANCELLED, JobState.QUEUED}),
    JobState.UNQUALIFIED: frozenset({JobState.QUEUED, JobState.CANCELLED}),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.SENT: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def _code(value: Any) -> Code | None:
    if value is None:
        return None
    code, system, display = value
    return Code(str(code), str(system), str(display))


@dataclass(frozen=True, kw_only=True)
class DocumentSpec:
    """The metadata the worker needs to send a document again, exactly as it was queued (JSON in the store)."""

    mime_type: str = "text/xml"
    title: str = ""
    type_code: Code | None = None
    class_code: Code | None = None
    content_type: Code | None = None
    hidden_from_professionals: bool = False
    hidden_from_patient: bool = False
    #: uniqueId of the document a REPLACE job replaces.
    replaces: str | None = None
    #: recordTarget of a wrapped (non-CDA) document: family, given, gender, birth date YYYYMMDD.
    identity: tuple[str, str, str, str] | None = None

    def __repr__(self) -> str:
        return f"DocumentSpec({self.mime_type!r})"

    def to_json(self) -> str:
        """The stored form."""

        def code(c: Code | None) -> list[str] | None:
            return None if c is None else [c.code, c.scheme, c.display]

        return json.dumps(
            {
                "mime": self.mime_type,
                "title": self.title,
                "typeCode": code(self.type_code),
                "classCode": code(self.class_code),
                "contentType": code(self.content_type),
                "hiddenFromProfessionals": self.hidden_from_professionals,
                "hiddenFromPatient": self.hidden_from_patient,
                "replaces": self.replaces,
                "identity": list(self.identity) if self.identity else None,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> DocumentSpec:
        """Read the stored form back."""
        raw = json.loads(text)
        identity = raw.get("identity")
        return cls(
            mime_type=raw["mime"],
            title=raw["title"],
            type_code=_code(raw.get("typeCode")),
            class_code=_code(raw.get("classCode")),
            content_type=_code(raw.get("contentType")),
            hidden_from_professionals=bool(raw.get("hiddenFromProfessionals")),
            hidden_from_patient=bool(raw.get("hiddenFromPatient")),
            replaces=raw.get("replaces"),
            identity=(str(identity[0]), str(identity[1]), str(identity[2]), str(identity[3])) if identity else None,
        )


@dataclass(frozen=True, kw_only=True)
class OutboxJob:
    """One job as stored (the document bytes are read apart: `OutboxStore.payload`)."""

    id: int
    kind: JobKind
    state: JobState
    unique_id: str
    patient: str
    patient_oid: str
    ins_qualified: bool
    origin: Origin
    #: The intake's own reference (HL7 MSH-10, hot folder file name, API caller's key); unique per origin.
    source_key: str
    attempts: int = 0
    #: Epoch seconds of the next attempt (WAITING).
    next_at: float | None = None
    #: Stable error code of the last fault (ErrorCode value or INS_NOT_QUALIFIED).
    reason: str | None = None
    #: The DMP's own code or a short non-secret precision.
    detail: str | None = None
    #: True when an earlier attempt may have reached the DMP: check existence before sending again.
    verify: bool = False
    result: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    def __repr__(self) -> str:
        return f"OutboxJob({self.id}, {self.kind.value}, {self.state.value})"

    def to_public(self) -> dict[str, Any]:
        """The API/CLI view (no document content; the INS is the caller's own data, shown as is)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "state": self.state.value,
            "uniqueId": self.unique_id,
            "origin": self.origin.value,
            "attempts": self.attempts,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }
        if self.next_at is not None and self.state is JobState.WAITING:
            out["nextAt"] = self.next_at
        if self.reason:
            out["reason"] = self.reason
            out["message_fr"] = explain_fr(self.reason, self.detail)
        if self.detail:
            out["detail"] = self.detail
        if self.result:
            out["result"] = self.result
        return out
