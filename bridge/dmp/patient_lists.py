"""TD1.6 (liste des PS autorisés / bloqués sur un DMP), sans I/O.

`listAuthorizationByPatient{mode ACTIVE|INTERDITE|TOUTE}` of the habilitations service, answered by
`output{listOfAuthorizationByPatient*, status, context}` (`Habilitations.wsdl`, official samples
`TD1.6_*`). A status other than DMPOk is the DMP's refusal (mapped by bridge/dmp/refusals.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.failures import DmpFault, DmpInputError
from bridge.dmp.ns import q
from bridge.dmp.patient_access import AUTHORIZATIONS_NS

__all__ = ["AuthorizedProfessional", "ListMode", "build_professionals_query", "parse_professionals"]

#: More rows than any DMP holds; past it the answer is refused as hostile rather than kept in memory.
MAX_PROFESSIONALS = 1000


class ListMode(enum.Enum):
    """Which professionals TD1.6 lists."""

    AUTHORIZED = "ACTIVE"
    BLOCKED = "INTERDITE"
    ALL = "TOUTE"


@dataclass(frozen=True, kw_only=True)
class AuthorizedProfessional:
    """One professional authorised on (ACTIVE) or blocked from (INTERDITE) the patient's DMP."""

    national_id: str
    national_id_type: str
    given: str
    family: str
    specialities: tuple[str, ...]
    since: str
    last_action: str
    blocked: bool


def build_professionals_query(mode: ListMode) -> Any:
    """TD1.6 request body."""
    root = etree.Element(q(AUTHORIZATIONS_NS, "listAuthorizationByPatient"), nsmap={None: AUTHORIZATIONS_NS})
    etree.SubElement(root, q(AUTHORIZATIONS_NS, "mode")).text = mode.value
    return root


def _text(el: Any, name: str) -> str:
    return (el.findtext(q(AUTHORIZATIONS_NS, name)) or "").strip()


def parse_professionals(body: Any) -> tuple[AuthorizedProfessional, ...]:
    """TD1.6 answer → the professionals; a status other than DMPOk is raised as the mapped DMP error."""
    if body.tag != q(AUTHORIZATIONS_NS, "listAuthorizationByPatientResponse"):
        raise DmpInputError("TD1.6: listAuthorizationByPatientResponse expected")
    output = body.find(q(AUTHORIZATIONS_NS, "output"))
    if output is None:
        raise DmpInputError("TD1.6: output absent")
    status = _text(output, "status")
    if status != "DMPOk":
        raise DmpFault(code="Receiver", subcode=status or "DMPError", reason=_text(output, "context")).to_error()
    items = output.findall(q(AUTHORIZATIONS_NS, "listOfAuthorizationByPatient"))
    if len(items) > MAX_PROFESSIONALS:
        raise DmpInputError("TD1.6: too many professionals")
    return tuple(
        AuthorizedProfessional(
            national_id=_text(item, "nationalId"),
            national_id_type=_text(item, "nationalIdType"),
            given=_text(item, "firstName"),
            family=_text(item, "lastName"),
            specialities=tuple((s.text or "").strip() for s in item.iterfind(q(AUTHORIZATIONS_NS, "codeSpeciality"))),
            since=_text(item, "startOfAuthorization"),
            last_action=_text(item, "lastActionDate"),
            blocked=_text(item, "mode") == ListMode.BLOCKED.value,
        )
        for item in items
    )
