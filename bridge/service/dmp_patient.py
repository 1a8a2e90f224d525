"""The patient's DMP use cases: status and authorisation (TD0.2, TD0.3), professionals on the DMP (TD1.6),
and the contextual Web PS link (TD0.9).

Each call takes the caller's DMP context from `DmpService` (who acts, how, with which keys), checks the
rights matrix (`bridge.dmp.rights.require`) before anything is sent, builds the request with the sans-IO
modules of `bridge.dmp`, and sends it through `DmpClient.transact` (VIHF, mutual TLS, deadline, at most
once for writes). The médecin traitant is a fact the DMP holds: the client checks as a plain médecin,
except for « se supprimer MT », which only a médecin traitant may ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dmp.actors import access_mode_for, actor_for
from bridge.dmp.context import Practitioner
from bridge.dmp.endpoints import Transaction
from bridge.dmp.patient_access import (
    AuthorizationAction,
    DmpStatus,
    build_set_authorization,
    build_status_query,
    parse_set_authorization,
    parse_status,
)
from bridge.dmp.patient_lists import AuthorizedProfessional, ListMode, build_professionals_query, parse_professionals
from bridge.dmp.rights import AccessMode, Actor, Operation, Verdict, check, require
from bridge.dmp.vihf import PatientIns
from bridge.dmp.webps import WebPsPage, webps_url
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpService

__all__ = ["AccessReport", "PatientAccess", "rights_json"]

_ACTION_OPERATIONS = {
    AuthorizationAction.DECLARE: Operation.TD0_3_DECLARE,
    AuthorizationAction.REMOVE: Operation.TD0_3_REMOVE,
    AuthorizationAction.REMOVE_TREATING: Operation.TD0_3_REMOVE_MT,
}
# What the status report says the caller may do next (the transactions a DPI offers from the status).
_OFFERED = (
    Operation.TD0_3_DECLARE,
    Operation.TD0_3_REMOVE,
    Operation.TD0_3_REMOVE_MT,
    Operation.TD0_9,
    Operation.TD1_3A,
    Operation.TD1_3B,
    Operation.TD1_4,
    Operation.TD1_6,
    Operation.TD2_1,
    Operation.TD3_1_METADATA,
    Operation.TD3_2_UNMASKED,
)


@dataclass(frozen=True)
class AccessReport:
    """TD0.2's answer with who the caller is for the rights matrix and what it allows them on this DMP."""

    status: DmpStatus
    actor: Actor
    mode: AccessMode
    #: (operation, verdict) for the operations of `_OFFERED`.
    rights: tuple[tuple[Operation, Verdict], ...]


def _actor(practitioner: Practitioner, *, treating: bool = False) -> Actor:
    return actor_for(
        auth_mode=practitioner.mode.value, profession_code=practitioner.profession_code, treating_physician=treating
    )


class PatientAccess:
    """The patient-level DMP use cases around one `DmpService`."""

    def __init__(self, dmp: DmpService) -> None:
        self.dmp = dmp

    async def status(self, caller: Any, patient: PatientIns) -> AccessReport:
        """TD0.2: the DMP's state, the caller's authorisation and médecin traitant status, and what it allows."""
        async with self.dmp.using(caller) as (client, practitioner):
            mode = access_mode_for(practitioner.purpose.value)
            require(_actor(practitioner), mode, Operation.TD0_2)
            now, message_id = client.message_ids()
            _, query_id = client.message_ids()
            body = build_status_query(
                patient,
                oid_root=client.settings.oid_root,
                lps_name=client.settings.lps_name,
                message_id=message_id,
                query_id=query_id,
                now=now,
            )
            answer = await client.transact(Transaction.TD0_2, practitioner, patient, body)
        status = parse_status(answer.body)
        actor = _actor(practitioner, treating=status.treating_physician)
        rights = tuple((op, check(actor, mode, op, dmp_mes=status.mes).verdict) for op in _OFFERED)
        return AccessReport(status, actor, mode, rights)

    async def authorize(
        self, caller: Any, patient: PatientIns, action: AuthorizationAction, *, patient_agreement: bool
    ) -> str:
        """TD0.3: declare oneself authorised (the patient's agreement recorded by the caller), remove one's
        authorisation, or remove oneself as médecin traitant; the DMP's context text."""
        if action is AuthorizationAction.DECLARE and not patient_agreement:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "patientAgreement: the patient's agreement is required")
        async with self.dmp.using(caller) as (client, practitioner):
            operation = _ACTION_OPERATIONS[action]
            treating = action is AuthorizationAction.REMOVE_TREATING
            require(_actor(practitioner, treating=treating), access_mode_for(practitioner.purpose.value), operation)
            answer = await client.transact(Transaction.TD0_3, practitioner, patient, build_set_authorization(action))
        return parse_set_authorization(answer.body)

    async def professionals(
        self, caller: Any, patient: PatientIns, mode: ListMode
    ) -> tuple[AuthorizedProfessional, ...]:
        """TD1.6: the professionals authorised on / blocked from the patient's DMP."""
        async with self.dmp.using(caller) as (client, practitioner):
            require(_actor(practitioner), access_mode_for(practitioner.purpose.value), Operation.TD1_6)
            body = build_professionals_query(mode)
            answer = await client.transact(Transaction.TD1_6, practitioner, patient, body)
        return parse_professionals(answer.body)

    async def webps(self, caller: Any, patient: PatientIns | None, page: WebPsPage) -> str:
        """TD0.9: the Web PS URL of `page` for this patient (direct authentication only: the matrix says so)."""
        ctx = self.dmp.context(caller)
        creds, practitioner = await self.dmp.acting_as(ctx)
        del creds
        require(_actor(practitioner), access_mode_for(practitioner.purpose.value), Operation.TD0_9)
        root = self.dmp.config.webps_url
        if not root:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "webps-not-configured")
        return webps_url(root, page, patient)


def rights_json(rights: Sequence[tuple[Operation, Verdict]]) -> list[dict[str, str]]:
    """The JSON view of a status report's rights."""
    return [{"transaction": op.transaction, "operation": op.label, "verdict": v.value} for op, v in rights]
