"""The value sets of the codes the bridge emits, loaded from the shipped data files (bridge/dmp/valuesets/*.json).

Each file is one table of the ANS terminology repository (`ansforge/IG-terminologie-de-sante`: TRE code
systems, JDV value sets, the ASS_X04 type → class map), reduced to the codes the bridge needs, with the
table's OID, version and source file and commit. `label` gives a code's official display name,
`validate` refuses a caller's unknown code before anything is sent (INVALID_PARAMS naming the code), and
`class_of_type` derives classCode from typeCode (ASS_X04); typeCode labels come from JDV_J07. Codes are
looked up by code system OID, as they travel in XDS metadata and the VIHF.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "CLASS",
    "CONFIDENTIALITY_A07",
    "CONTENT_TYPE",
    "FACILITY",
    "FORMAT_SYSTEM",
    "LOINC",
    "PRACTICE_SETTING",
    "PROFESSION",
    "SPECIALTY",
    "Table",
    "class_of_type",
    "label",
    "table",
    "validate",
]

#: Code system OIDs (XDS codingScheme / CDA codeSystem).
CLASS = "1.2.250.1.213.1.1.4.1"
LOINC = "2.16.840.1.113883.6.1"
PRACTICE_SETTING = "1.2.250.1.213.1.1.4.9"
FACILITY = "1.2.250.1.71.4.2.4"
CONTENT_TYPE = "1.2.250.1.213.2.2"
FORMAT_SYSTEM = "1.3.6.1.4.1.19376.1.2.3"
CONFIDENTIALITY_A07 = "1.2.250.1.213.1.1.4.13"
PROFESSION = "1.2.250.1.71.1.2.7"
SPECIALTY = "1.2.250.1.71.4.2.5"


@dataclass(frozen=True)
class Table:
    """One shipped table: its name, OID, version, source, and codes (code → label or None) by code system."""

    key: str
    name: str
    oid: str
    version: str
    source: Mapping[str, Any]
    systems: Mapping[str, Mapping[str, str | None]]


# Which table answers for a code system; the XDS formatCode scheme is shared by every format.
_SYSTEM_TABLE = MappingProxyType(
    {
        CLASS: "class",
        LOINC: "type_class",
        PRACTICE_SETTING: "practice_setting",
        FACILITY: "facility",
        CONTENT_TYPE: "content_type",
        FORMAT_SYSTEM: "format",
        CONFIDENTIALITY_A07: "confidentiality",
        "2.16.840.1.113883.5.25": "confidentiality",
        PROFESSION: "profession",
        SPECIALTY: "specialty",
    }
)
#: The system a single-system file's codes belong to.
_FILE_SYSTEM = MappingProxyType(
    {
        "class": CLASS,
        "practice_setting": PRACTICE_SETTING,
        "facility": FACILITY,
        "format": FORMAT_SYSTEM,
        "profession": PROFESSION,
        "specialty": SPECIALTY,
        "type": LOINC,
    }
)
#: Where a system's labels are when its validating table has none (ASS_X04 carries no display names).
_LABEL_TABLE = MappingProxyType({LOINC: "type"})


@functools.cache
def table(key: str) -> Table:
    """The shipped table `key` (file bridge/dmp/valuesets/<key>.json), loaded once."""
    raw = json.loads(resources.files("bridge.dmp").joinpath(f"valuesets/{key}.json").read_text(encoding="utf-8"))
    groups = raw["groups"] if "groups" in raw else {_FILE_SYSTEM[key]: raw["codes"]}
    if key == "type_class":
        # The map's values are classes, not labels: the type codes have no display name in ASS_X04.
        groups = {system: dict.fromkeys(codes) for system, codes in groups.items()}
    systems = MappingProxyType({s: MappingProxyType(dict(c)) for s, c in groups.items()})
    return Table(key, raw["name"], raw["oid"], raw["version"], MappingProxyType(raw["source"]), systems)


def _codes(system: str, value_set: str | None = None) -> Mapping[str, str | None] | None:
    key = value_set or _SYSTEM_TABLE.get(system)
    return None if key is None else table(key).systems.get(system)


def label(system: str, code: str) -> str | None:
    """The official display name of `code` in `system`, or None (unknown code, or a table without labels)."""
    codes = _codes(system, _LABEL_TABLE.get(system))
    return None if codes is None else codes.get(code)


def validate(system: str, code: str, *, field: str = "code", value_set: str | None = None) -> str:
    """`code` if the shipped value set (by default: the system's table) holds it; else INVALID_PARAMS naming it."""
    codes = _codes(system, value_set)
    if codes is None:
        raise BridgeError(ErrorCode.INVALID_PARAMS, f"{field}: code system {system[:64]!r} not supported")
    if code not in codes:
        name = table(value_set or _SYSTEM_TABLE[system]).name
        raise BridgeError(ErrorCode.INVALID_PARAMS, f"{field}: unknown code {code[:64]!r} ({name})")
    return code


@functools.cache
def _type_classes() -> Mapping[str, str]:
    raw = json.loads(resources.files("bridge.dmp").joinpath("valuesets/type_class.json").read_text(encoding="utf-8"))
    return MappingProxyType(dict(raw["groups"][LOINC]))


def class_of_type(type_code: str) -> str:
    """The classCode of a LOINC typeCode (ASS_X04); INVALID_PARAMS for a type outside JDV_J07."""
    validate(LOINC, type_code, field="typeCode")
    return _type_classes()[type_code]
