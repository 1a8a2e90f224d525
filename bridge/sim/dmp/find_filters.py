"""FindDocuments filters read from a stored entry's metadata (IHE ITI-18 §3.18.4.1.2.3.7.1, as the DMP
answers TD3.1): creation and service times, practice setting, facility type and author person.

Times are HL7 DTM padded to the second (a day is its midnight); `…From` is inclusive and `…To`
exclusive, as ITI-18 says. Author values are LIKE patterns (`%`
any run, `_` one character) matched against each authorPerson.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lxml import etree

from bridge.sim.dmp.constants import NS, XdsScheme
from bridge.sim.dmp.metadata import classifications, slot_values
from bridge.xmlsafe import parse_xml

__all__ = ["matches_find_filters"]

_RIM = NS["rim"]
#: Time parameter → (slot, is the lower bound).
_TIMES = {
    "$XDSDocumentEntryCreationTimeFrom": ("creationTime", True),
    "$XDSDocumentEntryCreationTimeTo": ("creationTime", False),
    "$XDSDocumentEntryServiceStartTimeFrom": ("serviceStartTime", True),
    "$XDSDocumentEntryServiceStartTimeTo": ("serviceStartTime", False),
    "$XDSDocumentEntryServiceStopTimeFrom": ("serviceStopTime", True),
    "$XDSDocumentEntryServiceStopTimeTo": ("serviceStopTime", False),
}
_CODES = {
    "$XDSDocumentEntryPracticeSettingCode": XdsScheme.DE_PRACTICE,
    "$XDSDocumentEntryHealthcareFacilityTypeCode": XdsScheme.DE_FACILITY,
}


def _in_range(value: str, bound: str, lower: bool) -> bool:
    # Both padded to seconds: a day bound is that day's midnight.
    v, b = value.ljust(14, "0"), bound.ljust(14, "0")
    return v >= b if lower else v < b


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + r"\Z")


def _codes(element: etree._Element, scheme: XdsScheme) -> set[str]:
    return {c.get("nodeRepresentation", "") for c in classifications(element, scheme)}


def matches_find_filters(metadata: bytes, params: Mapping[str, Sequence[str]]) -> bool:
    """Whether a stored entry passes the time, practice setting, facility and author filters of a query."""
    wanted = [name for name in (*_TIMES, *_CODES, "$XDSDocumentEntryAuthorPerson") if params.get(name)]
    if not wanted:
        return True
    element = parse_xml(metadata)
    for name in wanted:
        values = params[name]
        if name in _TIMES:
            slot, lower = _TIMES[name]
            found = slot_values(element, slot)
            if not found or not _in_range(found[0], values[0], lower):
                return False
        elif name in _CODES:
            if not _codes(element, _CODES[name]) & {v.split("^", 1)[0] for v in values}:
                return False
        else:
            authors = [
                person
                for cls in classifications(element, XdsScheme.DE_AUTHOR)
                for person in slot_values(cls, "authorPerson")
            ]
            patterns = [_like(v) for v in values]
            if not any(p.match(a) for p in patterns for a in authors):
                return False
    return True
