"""Methods over many patients: `dmp.patients.authorized` (TD0.4) and `dmp.patients.search` (TD0.5).

Both need a `contextPatient`: the VIHF carries a patient's INS (resource-id) in every official sample, these
two included, though the transactions concern no single patient (notes/dmp-webservices.md §4: mandatory).
"""

from __future__ import annotations

from typing import Any, ClassVar

from bridge.api.handlers_dmp import _PATIENT, _caller
from bridge.api.handlers_patient import _ERRORS
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.dmp.failures import DmpInputError
from bridge.dmp.patient_lists import MAX_DMPS, AuthorizedDmp, DateType
from bridge.dmp.patient_search import MAX_RESULTS, Candidate, Traits
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_patient import PatientAccess

__all__ = ["DmpPatientsAuthorized", "DmpPatientsSearch", "patient_list_handlers"]

_APP = frozenset({Scope.APP})
_DATE_TYPES = {"authorization": DateType.LAST_AUTHORIZATION, "document": DateType.LAST_DOCUMENT}
_CONTEXT = {**_PATIENT, "description": "any patient's INS for the VIHF's resource-id (see the module docstring)"}
_S = {"type": "string", "maxLength": 100}
_ID = {"type": "string", "maxLength": 64}


def _context(access: PatientAccess, params: dict[str, Any]) -> PatientIns:
    p = params["contextPatient"]
    try:
        return access.dmp.patient(p["ins"], p.get("oid"))
    except DmpInputError:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "contextPatient/oid: unknown INS authority") from None


def dmp_json(dmp: AuthorizedDmp) -> dict[str, Any]:
    """The JSON view of one TD0.4 row."""
    return {
        "identifiers": [{"oid": oid, "value": value} for oid, value in dmp.identifiers],
        "lastName": dmp.family,
        "firstName": dmp.given,
        "birthDate": dmp.birth_date,
        "treatingPhysician": dmp.treating_physician,
        "lastAccess": dmp.last_access,
        "lastUpdate": dmp.last_update,
        "lastAdd": dmp.last_add,
    }


def candidate_json(c: Candidate) -> dict[str, Any]:
    """The JSON view of one TD0.5 candidate."""
    return {
        "ins": c.ins,
        "insOid": c.ins_oid,
        "lastName": c.family,
        "birthName": c.birth_family,
        "firstName": c.given,
        "gender": c.gender,
        "birthDate": c.birth_date,
        "postalCode": c.postal_code,
        "city": c.city,
        "match": c.match,
        "oppositionAccesUrgence": c.opposition_acces_urgence,
    }


class _ListHandler(Handler):
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _ERRORS

    def __init__(self, access: PatientAccess) -> None:
        self.access = access


class DmpPatientsAuthorized(_ListHandler):
    """dmp.patients.authorized: TD0.4."""

    name = "dmp.patients.authorized"
    summary = (
        "The DMPs the caller is authorised on (TD0.4), since `since` (YYYYMMDDhhmmss) by date of authorisation "
        "or of last document. A CPE names the professional of its structure (`psOwnerId`, PDT-INF-526 note 2); "
        "an establishment certificate may only ask for new authorisations (note 3)."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "contextPatient": _CONTEXT,
            "since": {"type": "string", "pattern": "^[0-9]{14}$"},
            "dateType": {"enum": list(_DATE_TYPES), "default": "authorization"},
            "psOwnerId": {"type": "string", "pattern": "^[0-9A-Za-z/]{4,30}$"},
        },
        ["contextPatient", "since"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "dmps": {
                "type": "array",
                "maxItems": MAX_DMPS,
                "items": object_schema(
                    {
                        "identifiers": {
                            "type": "array",
                            "maxItems": 8,
                            "items": object_schema({"oid": _ID, "value": _ID}),
                        },
                        "lastName": _S,
                        "firstName": _S,
                        "birthDate": {"type": "string", "maxLength": 8},
                        "treatingPhysician": {"type": "boolean"},
                        "lastAccess": {"type": "string", "maxLength": 14},
                        "lastUpdate": {"type": "string", "maxLength": 14},
                        "lastAdd": {"type": "string", "maxLength": 14},
                    }
                ),
            }
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        rows = await self.access.authorized(
            _caller(ctx),
            _context(self.access, params),
            params["since"],
            _DATE_TYPES[params.get("dateType", "authorization")],
            params.get("psOwnerId"),
        )
        return {"dmps": [dmp_json(d) for d in rows]}


class DmpPatientsSearch(_ListHandler):
    """dmp.patients.search: TD0.5."""

    name = "dmp.patients.search"
    summary = (
        "Find a patient's DMP without the INS, by identity traits (TD0.5, PDQv3): for régulation (centre 15) "
        f"only, per the rights matrix. At most {MAX_RESULTS} candidates: `total` and `remaining` say how many "
        "more matched (then refine with the given name, birth date, gender or city)."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "contextPatient": _CONTEXT,
            "lastName": {"type": "string", "minLength": 1, "maxLength": 100},
            "firstName": _S,
            "gender": {"enum": ["M", "F", "U"]},
            "birthDate": {"type": "string", "pattern": "^[0-9]{8}$"},
            "postalCode": {"type": "string", "pattern": "^[0-9A-Z]{2,10}$"},
            "city": _S,
        },
        ["contextPatient", "lastName"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "candidates": {
                "type": "array",
                "maxItems": 100,
                "items": object_schema(
                    {
                        "ins": {"type": "string", "maxLength": 64},
                        "insOid": {"type": "string", "maxLength": 64},
                        "lastName": _S,
                        "birthName": _S,
                        "firstName": _S,
                        "gender": {"type": "string", "maxLength": 1},
                        "birthDate": {"type": "string", "maxLength": 8},
                        "postalCode": {"type": "string", "maxLength": 10},
                        "city": _S,
                        "match": {"type": ["integer", "null"]},
                        "oppositionAccesUrgence": {"type": ["boolean", "null"]},
                    }
                ),
            },
            "total": {"type": "integer"},
            "remaining": {"type": "integer"},
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        traits = Traits(
            family=params["lastName"],
            given=params.get("firstName", ""),
            gender=params.get("gender", ""),
            birth_date=params.get("birthDate", ""),
            postal_code=params.get("postalCode", ""),
            city=params.get("city", ""),
        )
        result = await self.access.search(_caller(ctx), _context(self.access, params), traits)
        return {
            "candidates": [candidate_json(c) for c in result.candidates],
            "total": result.total,
            "remaining": result.remaining,
        }


def patient_list_handlers(access: PatientAccess) -> list[Handler]:
    """TD0.4 and TD0.5 handlers around one service."""
    return [DmpPatientsAuthorized(access), DmpPatientsSearch(access)]
