"""The patient's DMP use cases: status and authorisation (TD0.2, TD0.3), administrative data and closing
(TD1.3a, TD1.3b, TD1.4), professionals on the DMP (TD1.6), and the contextual Web PS link (TD0.9).

Each call takes the caller's DMP context from `DmpService` (who acts, how, with which keys), checks the
rights matrix (`bridge.dmp.rights.require`) before anything is sent, builds the request with the sans-IO
modules of `bridge.dmp`, and sends it through `DmpClient.transact` (VIHF, mutual TLS, deadline, at most
once for writes). The médecin traitant is a fact the DMP holds: the client checks as a plain médecin,
except for « se supprimer MT », which only a médecin traitant may ask. TD1.3b and TD1.4 first ask TD0.2
whether the DMP is associated with Mon espace santé (note 10): then DMP_MANAGED_BY_MES, nothing sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dmp import valuesets
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
from bridge.dmp.patient_admin import (
    AdminData,
    Author,
    build_admin_query,
    build_close,
    build_update,
    parse_admin,
    parse_registration_answer,
)
from bridge.dmp.patient_lists import (
    AuthorizedDmp,
    AuthorizedProfessional,
    DateType,
    ListMode,
    build_authorized_query,
    build_professionals_query,
    parse_authorized,
    parse_professionals,
)
from bridge.dmp.patient_search import SearchResult, Traits, build_search, parse_search
from bridge.dmp.rights import AccessMode, Actor, Operation, Verdict, access_mode_of, actor_of, check, require
from bridge.dmp.vihf import PatientIns
from bridge.dmp.webps import WebPsPage, webps_url
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpService

__all__ = ["AccessReport", "PatientAccess", "author_of", "rights_json"]

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
    return actor_of(practitioner.mode.value, practitioner.profession_code, treating_physician=treating
    )


class PatientAccess:
    """The patient-level DMP use cases around one `DmpService`."""

    def __init__(self, dmp: DmpService) -> None:
        self.dmp = dmp

    async def status(self, caller: Any, patient: PatientIns) -> AccessReport:
        """TD0.2: the DMP's state, the caller's authorisation and médecin traitant status, and what it allows."""
        async with self.dmp.using(caller) as (client, practitioner):
            mode = access_mode_of(practitioner.purpose.value)
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
            require(_actor(practitioner, treating=treating), access_mode_of(practitioner.purpose.value), operation)
            answer = await client.transact(Transaction.TD0_3, practitioner, patient, build_set_authorization(action))
        return parse_set_authorization(answer.body)

    async def admin(self, caller: Any, patient: PatientIns) -> AdminData:
        """TD1.3a: the DMP's administrative data."""
        async with self.dmp.using(caller) as (client, practitioner):
            require(_actor(practitioner), access_mode_of(practitioner.purpose.value), Operation.TD1_3A)
            body = build_admin_query(patient, **self._ids(client))
            answer = await client.transact(Transaction.TD1_3A, practitioner, patient, body)
        return parse_admin(answer.body)

    async def update_admin(self, caller: Any, patient: PatientIns, changes: dict[str, Any]) -> AdminData:
        """TD1.3b: the current data (TD1.3a) with `changes` (AdminData field names) sent back; non-MES DMPs only."""
        editable = {f.name for f in dataclasses.fields(AdminData)} - {"closed", "representatives"}
        unknown = set(changes) - editable
        if unknown:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"unknown field {sorted(unknown)[0]}")
        await self._require_not_mes(caller, patient, Operation.TD1_3B)
        current = await self.admin(caller, patient)
        wanted = dataclasses.replace(current, **changes)
        async with self.dmp.using(caller) as (client, practitioner):
            ids = self._ids(client)
            del ids["query_id"]
            body = build_update(patient, wanted, author_of(practitioner), **ids)
            answer = await client.transact(Transaction.TD1_3B, practitioner, patient, body)
        parse_registration_answer(answer.body)
        return wanted

    async def close(self, caller: Any, patient: PatientIns) -> None:
        """TD1.4: close the DMP at the patient's request; non-MES DMPs only."""
        status = await self._require_not_mes(caller, patient, Operation.TD1_4)
        data = AdminData(family=status.family, given=status.given)
        async with self.dmp.using(caller) as (client, practitioner):
            ids = self._ids(client)
            del ids["query_id"]
            body = build_close(patient, data, author_of(practitioner), **ids)
            answer = await client.transact(Transaction.TD1_4, practitioner, patient, body)
        parse_registration_answer(answer.body)

    async def _require_not_mes(self, caller: Any, patient: PatientIns, operation: Operation) -> DmpStatus:
        report = await self.status(caller, patient)
        if report.status.mes:
            raise BridgeError(ErrorCode.DMP_MANAGED_BY_MES, operation.transaction, transaction=operation.transaction)
        require(report.actor, report.mode, operation, dmp_mes=report.status.mes)
        return report.status

    @staticmethod
    def _ids(client: Any) -> dict[str, Any]:
        now, message_id = client.message_ids()
        _, query_id = client.message_ids()
        return {
            "oid_root": client.settings.oid_root,
            "lps_name": client.settings.lps_name,
            "message_id": message_id,
            "query_id": query_id,
            "now": now,
        }

    async def professionals(
        self, caller: Any, patient: PatientIns, mode: ListMode
    ) -> tuple[AuthorizedProfessional, ...]:
        """TD1.6: the professionals authorised on / blocked from the patient's DMP."""
        async with self.dmp.using(caller) as (client, practitioner):
            require(_actor(practitioner), access_mode_of(practitioner.purpose.value), Operation.TD1_6)
            body = build_professionals_query(mode)
            answer = await client.transact(Transaction.TD1_6, practitioner, patient, body)
        return parse_professionals(answer.body)

    async def authorized(
        self,
        caller: Any,
        context_patient: PatientIns,
        start: str,
        date_type: DateType,
        ps_owner_id: str | None = None,
    ) -> tuple[AuthorizedDmp, ...]:
        """TD0.4: the DMPs the caller (a CPE: `ps_owner_id`, a professional of its structure) is authorised on.

        `context_patient` only fills the VIHF's resource-id, mandatory in every sample (notes §4)."""
        async with self.dmp.using(caller) as (client, practitioner):
            actor, mode = _actor(practitioner), access_mode_of(practitioner.purpose.value)
            decision = require(actor, mode, Operation.TD0_4)
            # Notes (2) and (3): a CPE lists for a professional of its structure; a certificate, new authorisations.
            if actor is Actor.CPE and not ps_owner_id:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "psOwnerId: required for a CPE (PDT-INF-526 note 2)")
            if actor is Actor.CERTIFICAT_ES and date_type is not DateType.LAST_AUTHORIZATION:
                raise BridgeError(
                    ErrorCode.NOT_PERMITTED_FOR_ACTOR, "TD0.4 LASTDOC", transaction="TD0.4", actor=actor.value,
                    accessMode=mode.value, reason="(3)", notes=[n.text for n in decision.notes],
                )  # fmt: skip
            body = build_authorized_query(start, date_type, ps_owner_id if actor is Actor.CPE else None)
            answer = await client.transact(Transaction.TD0_4, practitioner, context_patient, body)
        return parse_authorized(answer.body)

    async def search(self, caller: Any, context_patient: PatientIns, traits: Traits) -> SearchResult:
        """TD0.5: patients by traits, without INS (régulation, or the establishment certificate in régulation)."""
        async with self.dmp.using(caller) as (client, practitioner):
            require(_actor(practitioner), access_mode_of(practitioner.purpose.value), Operation.TD0_5)
            body = build_search(traits, **self._ids(client))
            answer = await client.transact(Transaction.TD0_5, practitioner, context_patient, body)
        return parse_search(answer.body)

    async def webps(self, caller: Any, patient: PatientIns | None, page: WebPsPage) -> str:
        """TD0.9: the Web PS URL of `page` for this patient (direct authentication only: the matrix says so)."""
        ctx = self.dmp.context(caller)
        creds, practitioner = await self.dmp.acting_as(ctx)
        del creds
        require(_actor(practitioner), access_mode_of(practitioner.purpose.value), Operation.TD0_9)
        root = self.dmp.config.webps_url
        if not root:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "webps-not-configured")
        return webps_url(root, page, patient)


def author_of(practitioner: Practitioner) -> Author:
    specialty = practitioner.specialty_code
    return Author(
        national_id=practitioner.national_id,
        family=practitioner.family,
        given=practitioner.given,
        specialty_code=specialty,
        specialty_label=valuesets.label(valuesets.SPECIALTY, specialty) or specialty if specialty else "",
        structure_id=practitioner.structure_id,
        structure_name=practitioner.structure_name,
    )


def rights_json(rights: Sequence[tuple[Operation, Verdict]]) -> list[dict[str, str]]:
    """The JSON view of a status report's rights."""
    return [{"transaction": op.transaction, "operation": op.label, "verdict": v.value} for op, v in rights]
