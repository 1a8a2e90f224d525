"""`dmp.documents.find` (TD3.1 FindDocuments) with the filters users need: statuses, type, class, format,
practice setting, facility type, visibility, creation and service dates, author.

Every code is checked against the shipped value sets before anything is sent (INVALID_PARAMS naming the
field); dates are HL7 DTM (`YYYYMMDD`, `YYYYMMDDhhmm`, `YYYYMMDDhhmmss`, UTC). The filters go to the DMP
as ITI-18 parameters: the DMP, not the bridge, filters.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bridge.api.handlers_dmp import (
    _DOCUMENT,
    _LOINC,
    _MAX_DOCUMENTS,
    _PATIENT,
    _STATUSES,
    _caller,
    _DmpHandler,
    _patient,
    document_json,
)
from bridge.api.methods import CallContext, object_schema
from bridge.dmp import valuesets
from bridge.dmp.codes import Confidentiality
from bridge.dmp.xds_model import Code, confidentiality_code

__all__ = ["DmpDocumentsFind"]

_DTM = {"type": "string", "pattern": "^[0-9]{8}([0-9]{4}([0-9]{2})?)?$", "maxLength": 14}
_NATIONAL_ID = {"type": "string", "pattern": "^[0-9A-Za-z/]{1,32}$", "maxLength": 32}


def _codes(pattern: str, max_length: int) -> dict[str, Any]:
    return {
        "type": "array",
        "maxItems": 32,
        "items": {"type": "string", "pattern": pattern, "maxLength": max_length},
    }


#: API parameter → (client keyword, code system of its value set).
_CODED = {
    "classCodes": ("class_codes", valuesets.CLASS),
    "formatCodes": ("format_codes", valuesets.FORMAT_SYSTEM),
    "practiceSettings": ("practice_settings", valuesets.PRACTICE_SETTING),
    "facilityTypes": ("facility_types", valuesets.FACILITY),
}
#: API parameter → client keyword of a date bound.
_DATES = {
    "creationFrom": "creation_from",
    "creationTo": "creation_to",
    "serviceStartFrom": "service_start_from",
    "serviceStartTo": "service_start_to",
    "serviceStopFrom": "service_stop_from",
    "serviceStopTo": "service_stop_to",
}
_VISIBILITY = {
    "hiddenFromProfessionals": Confidentiality.MASQUE_PS,
    "hiddenFromPatient": Confidentiality.INVISIBLE_PATIENT,
}


class DmpDocumentsFind(_DmpHandler):
    """dmp.documents.find: TD3.1."""

    name = "dmp.documents.find"
    summary = (
        "Find the patient's documents visible to the caller (TD3.1): by status, type, class, format, practice "
        "setting, facility type, visibility, creation and service dates (HL7 DTM, UTC; From inclusive, To "
        "exclusive) and author (national id)."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "patient": _PATIENT,
            "statuses": {
                "type": "array",
                "items": {"enum": list(_STATUSES)},
                "minItems": 1,
                # No uniqueItems: jsonschema checks it in quadratic time; a repeated status is simply ignored.
                "maxItems": len(_STATUSES),
                "default": ["approved"],
            },
            "typeCodes": _codes("^[0-9A-Za-z.-]{1,20}$", 20),
            "classCodes": _codes("^[0-9A-Za-z_.-]{1,20}$", 20),
            "formatCodes": _codes("^[0-9A-Za-z:._/#-]{1,80}$", 80),
            "practiceSettings": _codes("^[0-9A-Za-z_.-]{1,40}$", 40),
            "facilityTypes": _codes("^[0-9A-Za-z_.-]{1,20}$", 20),
            "visibility": {"type": "array", "maxItems": len(_VISIBILITY), "items": {"enum": list(_VISIBILITY)}},
            **{name: _DTM for name in _DATES},
            "authors": {"type": "array", "maxItems": 8, "items": _NATIONAL_ID},
        },
        ["patient"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"documents": {"type": "array", "maxItems": _MAX_DOCUMENTS, "items": _DOCUMENT}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        patient = _patient(self.service, params)
        statuses = [_STATUSES[s] for s in dict.fromkeys(params.get("statuses", ["approved"]))]
        types = [Code(valuesets.validate(_LOINC, c, field="typeCodes"), _LOINC) for c in params.get("typeCodes", [])]
        filters: dict[str, Any] = {}
        for name, (keyword, system) in _CODED.items():
            if params.get(name):
                filters[keyword] = [Code(valuesets.validate(system, c, field=name), system) for c in params[name]]
        for name, keyword in _DATES.items():
            if params.get(name):
                filters[keyword] = params[name]
        if params.get("visibility"):
            filters["confidentiality"] = [
                confidentiality_code(_VISIBILITY[v]) for v in dict.fromkeys(params["visibility"])
            ]
        if params.get("authors"):
            # ITI-18 LIKE pattern on authorPerson: the national id, any names after it.
            filters["author_persons"] = [f"{a}^%" for a in params["authors"]]
        entries = await self.service.find(_caller(ctx), patient, statuses, types, filters)
        return {"documents": [document_json(e) for e in entries]}
