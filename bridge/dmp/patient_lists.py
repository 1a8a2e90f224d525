"""TD0.4 (liste des DMP autorisés) and TD1.6 (liste des PS autorisés / bloqués sur un DMP), sans I/O.

TD0.4 is `patientList{startDate YYYYMMDDhhmmss, dateType LASTAUTORIZATION|LASTDOC, psOwnerId?}` of the
patientsSpecific service, answered by `output{patientlistData*, status, context}` (`PatientsSpecific.wsdl`,
official samples `TD0.4_*`). PDT-INF-526 limits it for a CPE to the DMPs of professionals of its structure
(note 2: `psOwnerId` names the professional) and for an establishment certificate to new authorisations
since a date (note 3: dateType LASTAUTORIZATION).

`listAuthorizationByPatient{mode ACTIVE|INTERDITE|TOUTE}` of the habilitations service, answered by
`output{listOfAuthorizationByPatient*, status, context}` (`Habilitations.wsdl`, official samples
`TD1.6_*`). A status other than DMPOk is the DMP's refusal (mapped by bridge/dmp/refusals.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from lxml import etree

from bridge.dmp.failures import DmpFault, DmpInputError, DmpParamsError
from bridge.dmp.ns import q
from bridge.dmp.patient_access import AUTHORIZATIONS_NS

__all__ = [
    "PATIENTS_NS",
    "AuthorizedDmp",
    "AuthorizedProfessional",
    "DateType",
    "ListMode",
    "build_authorized_query",
    "build_professionals_query",
    "parse_authorized",
    "parse_professionals",
]

PATIENTS_NS = "urn:si-dmp-patients"

#: More rows than any DMP holds; past it the answer is refused as hostile rather than kept in memory.
MAX_PROFESSIONALS = 1000
#: More DMPs than one professional's patients; past it the answer is refused.
MAX_DMPS = 20000


class DateType(enum.Enum):
    """TD0.4: which date `startDate` filters on."""

    LAST_AUTHORIZATION = "LASTAUTORIZATION"
    LAST_DOCUMENT = "LASTDOC"


@dataclass(frozen=True, kw_only=True)
class AuthorizedDmp:
    """One DMP of TD0.4: the patient's identifiers (OID → value) and names, and what happened lately."""

    identifiers: tuple[tuple[str, str], ...]
    family: str
    given: str
    birth_date: str
    treating_physician: bool
    last_access: str
    last_update: str
    last_add: str

    def __repr__(self) -> str:
        return f"AuthorizedDmp(<redacted>, mt={self.treating_physician})"


def build_authorized_query(start: str, date_type: DateType, ps_owner_id: str | None = None) -> Any:
    """TD0.4 request body (`start` is YYYYMMDDhhmmss)."""
    if not (len(start) == 14 and start.isdigit()):
        raise DmpParamsError("startDate: YYYYMMDDhhmmss")
    root = etree.Element(q(PATIENTS_NS, "patientList"), nsmap={None: PATIENTS_NS})
    etree.SubElement(root, q(PATIENTS_NS, "startDate")).text = start
    etree.SubElement(root, q(PATIENTS_NS, "dateType")).text = date_type.value
    if ps_owner_id:
        etree.SubElement(root, q(PATIENTS_NS, "psOwnerId")).text = ps_owner_id
    return root


def _p(el: Any, name: str) -> str:
    return (el.findtext(q(PATIENTS_NS, name)) or "").strip()


def parse_authorized(body: Any) -> tuple[AuthorizedDmp, ...]:
    """TD0.4 answer → the DMPs; a status other than DMPOk is raised as the mapped DMP error."""
    if body.tag != q(PATIENTS_NS, "patientListResponse"):
        raise DmpInputError("TD0.4: patientListResponse expected")
    output = body.find(q(PATIENTS_NS, "output"))
    if output is None:
        raise DmpInputError("TD0.4: output absent")
    status = _p(output, "status")
    if status != "DMPOk":
        raise DmpFault(code="Receiver", subcode=status or "DMPError", reason=_p(output, "context")).to_error()
    rows = output.findall(q(PATIENTS_NS, "patientlistData"))
    if len(rows) > MAX_DMPS:
        raise DmpInputError("TD0.4: too many DMPs")
    return tuple(
        AuthorizedDmp(
            identifiers=tuple(
                (_p(i, "nationalIdType"), _p(i, "nationalId"))
                for i in row.iterfind(q(PATIENTS_NS, "patientIdentifier"))
            ),
            family=_p(row, "lastName"),
            given=_p(row, "firstName"),
            birth_date=_p(row, "dateOfBirth"),
            treating_physician=_p(row, "MT") == "true",
            last_access=_p(row, "lastAccessDate"),
            last_update=_p(row, "lastUpdateDate"),
            last_add=_p(row, "lastAddDate"),
        )
        for row in rows
    )


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
