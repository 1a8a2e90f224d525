"""The patient's DMP methods: `dmp.patient.status` (TD0.2), `dmp.patient.authorize` (TD0.3),
`dmp.patient.admin.get|update` (TD1.3a/b), `dmp.patient.close` (TD1.4), `dmp.patient.professionals` (TD1.6)
and `dmp.webps.url` (TD0.9).

Params are checked by their schemas before any card or DMP access; the rights matrix (PDT-INF-526) is
checked by `PatientAccess` before anything is sent. Names, birth dates and INS travel in results only,
never in errors.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bridge.api.handlers_dmp import _DMP_ERRORS, _PATIENT, _caller, _patient
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.dmp.patient_access import AuthorizationAction, AuthorizationState
from bridge.dmp.patient_admin import AdminData
from bridge.dmp.patient_lists import MAX_PROFESSIONALS, AuthorizedProfessional, ListMode
from bridge.dmp.rights import Operation, Verdict
from bridge.dmp.webps import WebPsPage
from bridge.errors import ErrorCode
from bridge.service.dmp_patient import AccessReport, PatientAccess, rights_json

__all__ = [
    "DmpPatientAdminGet",
    "DmpPatientAdminUpdate",
    "DmpPatientAuthorize",
    "DmpPatientClose",
    "DmpPatientProfessionals",
    "DmpPatientStatus",
    "DmpWebPsUrl",
    "patient_handlers",
    "status_json",
]

_APP = frozenset({Scope.APP})
_ERRORS: tuple[ErrorCode, ...] = (*_DMP_ERRORS, ErrorCode.NOT_PERMITTED_FOR_ACTOR, ErrorCode.INVALID_PARAMS)
_AUTHORIZATION_NAMES = {
    AuthorizationState.VALID: "valid",
    AuthorizationState.EXPIRED: "expired",
    AuthorizationState.BLOCKED: "blocked",
    AuthorizationState.NONE: "none",
}
_ACTIONS = {
    "declare": AuthorizationAction.DECLARE,
    "remove": AuthorizationAction.REMOVE,
    "removeTreatingPhysician": AuthorizationAction.REMOVE_TREATING,
}
_LIST_MODES = {"authorized": ListMode.AUTHORIZED, "blocked": ListMode.BLOCKED, "all": ListMode.ALL}
_PAGES = {
    "dashboard": WebPsPage.DASHBOARD,
    "patient": WebPsPage.PATIENT,
    "management": WebPsPage.MANAGEMENT,
    "documents": WebPsPage.DOCUMENTS,
    "carePathway": WebPsPage.CARE_PATHWAY,
    "accessHistory": WebPsPage.ACCESS_HISTORY,
    "settings": WebPsPage.SETTINGS,
    "wishesAndRights": WebPsPage.WISHES_AND_RIGHTS,
    "vaccination": WebPsPage.VACCINATION,
}
_RIGHT = object_schema(
    {
        "transaction": {"type": "string", "maxLength": 8},
        "operation": {"type": "string", "maxLength": 120},
        "verdict": {"enum": [v.value for v in Verdict]},
    }
)
_STATUS = object_schema(
    {
        "dmp": {"enum": ["exists", "closed", "unknown"]},
        "authorization": {"enum": [*_AUTHORIZATION_NAMES.values(), None]},
        "treatingPhysician": {"type": "boolean"},
        "mes": {"type": ["boolean", "null"], "description": "associated with Mon espace santé; null: not said"},
        "webAccessOpen": {"type": ["boolean", "null"]},
        "patient": object_schema(
            {
                "lastName": {"type": "string", "maxLength": 100},
                "firstName": {"type": "string", "maxLength": 100},
                "gender": {"type": "string", "maxLength": 1},
                "birthDate": {"type": "string", "maxLength": 8},
            }
        ),
        "actor": {"type": "string", "maxLength": 40},
        "accessMode": {"enum": ["normal", "bris_de_glace", "centre_15"]},
        "rights": {"type": "array", "maxItems": len(Operation), "items": _RIGHT},
    }
)


def status_json(report: AccessReport) -> dict[str, Any]:
    """The JSON view of a TD0.2 report (also the CLI's --json)."""
    status = report.status
    return {
        "dmp": status.dmp.value,
        "authorization": _AUTHORIZATION_NAMES[status.authorization] if status.authorization else None,
        "treatingPhysician": status.treating_physician,
        "mes": status.mes,
        "webAccessOpen": status.web_access_open,
        "patient": {
            "lastName": status.family,
            "firstName": status.given,
            "gender": status.gender,
            "birthDate": status.birth_date,
        },
        "actor": report.actor.value,
        "accessMode": report.mode.value,
        "rights": rights_json(report.rights),
    }


def professional_json(pro: AuthorizedProfessional) -> dict[str, Any]:
    """The JSON view of one TD1.6 row."""
    return {
        "nationalId": pro.national_id,
        "lastName": pro.family,
        "firstName": pro.given,
        "specialities": list(pro.specialities),
        "since": pro.since,
        "lastAction": pro.last_action,
        "blocked": pro.blocked,
    }


class _PatientHandler(Handler):
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _ERRORS

    def __init__(self, access: PatientAccess) -> None:
        self.access = access


class DmpPatientStatus(_PatientHandler):
    """dmp.patient.status: TD0.2."""

    name = "dmp.patient.status"
    summary = (
        "Does the patient have a DMP (exists, closed, unknown), is it associated with Mon espace santé, is the "
        "caller authorised on it (valid, expired, blocked by the patient, none) and its médecin traitant, and "
        "what the rights matrix (PDT-INF-526) allows the caller on it in this access mode (TD0.2)."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema({"patient": _PATIENT}, ["patient"])
    result_schema: ClassVar[dict[str, Any]] = _STATUS

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        report = await self.access.status(_caller(ctx), _patient(self.access.dmp, params))
        return status_json(report)


class DmpPatientAuthorize(_PatientHandler):
    """dmp.patient.authorize: TD0.3."""

    name = "dmp.patient.authorize"
    summary = (
        "Declare yourself authorised on the patient's DMP (`declare`, only with the patient's agreement, which "
        "the caller records and states with `patientAgreement: true`), remove your authorisation (`remove`), "
        "or remove yourself as médecin traitant (`removeTreatingPhysician`) (TD0.3). Refused before sending "
        "where the rights matrix says no (NOT_PERMITTED_FOR_ACTOR); BLOCKED_BY_PATIENT when the patient "
        "blocked you. Sent at most once."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "patient": _PATIENT,
            "action": {"enum": list(_ACTIONS)},
            "patientAgreement": {"type": "boolean", "default": False},
        },
        ["patient", "action"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"action": {"enum": list(_ACTIONS)}, "context": {"type": "string", "maxLength": 1024}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        context = await self.access.authorize(
            _caller(ctx),
            _patient(self.access.dmp, params),
            _ACTIONS[params["action"]],
            patient_agreement=bool(params.get("patientAgreement", False)),
        )
        return {"action": params["action"], "context": context[:1024]}


_TELECOM = object_schema(
    {
        "use": {"type": "string", "pattern": "^[A-Z]{0,4}$", "maxLength": 4},
        "value": {"type": "string", "minLength": 4, "maxLength": 256},
    },
    ["value"],
)
#: JSON member → AdminData field, for the members a caller may change (TD1.3b).
_ADMIN_FIELDS = {
    "lastName": "family",
    "firstName": "given",
    "prefix": "prefix",
    "gender": "gender",
    "birthDate": "birth_date",
    "street": "street",
    "postalCode": "postal_code",
    "city": "city",
    "country": "country",
    "oppositionBrisDeGlace": "opposition_bris_de_glace",
    "oppositionAccesUrgence": "opposition_acces_urgence",
}
_ADMIN_MEMBERS: dict[str, Any] = {
    "lastName": {"type": "string", "minLength": 1, "maxLength": 100},
    "firstName": {"type": "string", "minLength": 1, "maxLength": 100},
    "prefix": {"type": "string", "maxLength": 10},
    "gender": {"enum": ["M", "F", "U"]},
    "birthDate": {"type": "string", "pattern": "^[0-9]{8}$"},
    "telecoms": {"type": "array", "maxItems": 10, "items": _TELECOM},
    "street": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 100}},
    "postalCode": {"type": "string", "maxLength": 10},
    "city": {"type": "string", "maxLength": 100},
    "country": {"type": "string", "maxLength": 60},
    "oppositionBrisDeGlace": {"type": "boolean"},
    "oppositionAccesUrgence": {"type": "boolean"},
}
_ADMIN = object_schema(
    {
        **_ADMIN_MEMBERS,
        "closed": {"type": "boolean"},
        "representatives": {
            "type": "array",
            "maxItems": 10,
            "items": object_schema(
                {"lastName": {"type": "string", "maxLength": 100}, "firstName": {"type": "string", "maxLength": 100}}
            ),
        },
    }
)


def admin_json(data: AdminData) -> dict[str, Any]:
    """The JSON view of a DMP's administrative data."""
    out: dict[str, Any] = {member: getattr(data, name) for member, name in _ADMIN_FIELDS.items()}
    out["street"] = list(data.street)
    out["telecoms"] = [{"use": use, "value": value} for use, value in data.telecoms]
    out["closed"] = data.closed
    out["representatives"] = [{"lastName": f, "firstName": g} for f, g in data.representatives]
    return out


class DmpPatientAdminGet(_PatientHandler):
    """dmp.patient.admin.get: TD1.3a."""

    name = "dmp.patient.admin.get"
    summary = "The DMP's administrative data: identity, contact, address, oppositions, legal representatives (TD1.3a)."
    params_schema: ClassVar[dict[str, Any]] = object_schema({"patient": _PATIENT}, ["patient"])
    result_schema: ClassVar[dict[str, Any]] = _ADMIN

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        return admin_json(await self.access.admin(_caller(ctx), _patient(self.access.dmp, params)))


class DmpPatientAdminUpdate(_PatientHandler):
    """dmp.patient.admin.update: TD1.3b."""

    name = "dmp.patient.admin.update"
    summary = (
        "Change the DMP's administrative data (TD1.3b): the members given replace the current ones, the others "
        "are sent back as the DMP has them. Only for a DMP not associated with Mon espace santé "
        "(PDT-INF-526 note 10): DMP_MANAGED_BY_MES otherwise, nothing sent. Sent at most once."
    )
    params_schema: ClassVar[dict[str, Any]] = {
        **object_schema({"patient": _PATIENT, "changes": object_schema(_ADMIN_MEMBERS)}, ["patient", "changes"]),
    }
    result_schema: ClassVar[dict[str, Any]] = _ADMIN
    errors: ClassVar[tuple[ErrorCode, ...]] = (*_ERRORS, ErrorCode.DMP_MANAGED_BY_MES)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        given = params["changes"]
        changes: dict[str, Any] = {_ADMIN_FIELDS[k]: v for k, v in given.items() if k in _ADMIN_FIELDS}
        if "street" in changes:
            changes["street"] = tuple(changes["street"])
        if "telecoms" in given:
            changes["telecoms"] = tuple((t.get("use", ""), t["value"]) for t in given["telecoms"])
        data = await self.access.update_admin(_caller(ctx), _patient(self.access.dmp, params), changes)
        return admin_json(data)


class DmpPatientClose(_PatientHandler):
    """dmp.patient.close: TD1.4."""

    name = "dmp.patient.close"
    summary = (
        "Close the patient's DMP at the patient's request (TD1.4; `patientRequest: true` states it). Only for a "
        "DMP not associated with Mon espace santé (note 10): DMP_MANAGED_BY_MES otherwise; DMP_CLOSED when "
        "already closed. Sent at most once."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "patientRequest": {"const": True}}, ["patient", "patientRequest"]
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema({"closed": {"const": True}})
    errors: ClassVar[tuple[ErrorCode, ...]] = (*_ERRORS, ErrorCode.DMP_MANAGED_BY_MES, ErrorCode.DMP_CLOSED)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        await self.access.close(_caller(ctx), _patient(self.access.dmp, params))
        return {"closed": True}


class DmpPatientProfessionals(_PatientHandler):
    """dmp.patient.professionals: TD1.6."""

    name = "dmp.patient.professionals"
    summary = "The professionals authorised on, or blocked from, the patient's DMP (TD1.6)."
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "mode": {"enum": list(_LIST_MODES), "default": "all"}}, ["patient"]
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "professionals": {
                "type": "array",
                "maxItems": MAX_PROFESSIONALS,
                "items": object_schema(
                    {
                        "nationalId": {"type": "string", "maxLength": 64},
                        "lastName": {"type": "string", "maxLength": 100},
                        "firstName": {"type": "string", "maxLength": 100},
                        "specialities": {
                            "type": "array",
                            "maxItems": 16,
                            "items": {"type": "string", "maxLength": 64},
                        },
                        "since": {"type": "string", "maxLength": 14},
                        "lastAction": {"type": "string", "maxLength": 14},
                        "blocked": {"type": "boolean"},
                    }
                ),
            }
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        rows = await self.access.professionals(
            _caller(ctx), _patient(self.access.dmp, params), _LIST_MODES[params.get("mode", "all")]
        )
        return {"professionals": [professional_json(p) for p in rows]}


class DmpWebPsUrl(_PatientHandler):
    """dmp.webps.url: TD0.9."""

    name = "dmp.webps.url"
    summary = (
        "The Web PS URL that opens a page of the DMP portal on this patient (TD0.9, PDT-INF-527); the person "
        "authenticates in the browser with their card. The portal's root is `dmp.webps_url` in config.toml."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "page": {"enum": list(_PAGES), "default": "patient"}}
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema({"url": {"type": "string", "maxLength": 512}})

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        patient = _patient(self.access.dmp, params) if "patient" in params else None
        return {"url": await self.access.webps(_caller(ctx), patient, _PAGES[params.get("page", "patient")])}


def patient_handlers(access: PatientAccess) -> list[Handler]:
    """All patient-level DMP handlers around one service."""
    return [
        DmpPatientStatus(access),
        DmpPatientAuthorize(access),
        DmpPatientAdminGet(access),
        DmpPatientAdminUpdate(access),
        DmpPatientClose(access),
        DmpPatientProfessionals(access),
        DmpWebPsUrl(access),
    ]
