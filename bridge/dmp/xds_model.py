"""XDS.b metadata as frozen values: SubmissionSet, DocumentEntry, Association and their coded parts.

HL7 v2 composite strings (XCN person, XON institution, CX patient id) are produced and read here, so
builders and parsers deal in fields, not in carets.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from bridge.dmp.codes import (
    RPPS_OID,
    STRUCTURE_OID,
    AssociationType,
    AvailabilityStatus,
    Confidentiality,
    DocFormat,
)
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.vihf import PatientIns

__all__ = [
    "SPECIALTY_SYSTEM",
    "Association",
    "Author",
    "Code",
    "DocumentEntry",
    "Institution",
    "Person",
    "SubmissionSet",
    "confidentiality_code",
    "format_code",
    "hl7_dtm",
    "new_unique_id",
]

#: Code system of authorSpecialty values such as `G15_10/SM26`.
SPECIALTY_SYSTEM = "1.2.250.1.213.1.1.4.5"
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


@dataclass(frozen=True)
class Code:
    """A coded value: code, coding scheme (OID or 'URN'/'ASTM'), display name."""

    code: str
    scheme: str
    display: str = ""


def confidentiality_code(value: Confidentiality) -> Code:
    """The XDS confidentialityCode for a Confidentiality value."""
    return Code(value.value, value.code_system, value.display_name)


def format_code(value: DocFormat) -> Code:
    """The XDS formatCode for a DocFormat."""
    return Code(value.value, value.code_system, value.display_name)


def hl7_dtm(when: dt.datetime) -> str:
    """XDS DTM in UTC, YYYYMMDDhhmmss (naive datetimes are refused: time zone ambiguity)."""
    if when.tzinfo is None:
        raise DmpParamsError("XDS times must be timezone-aware")
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def new_unique_id(root: str, kind: int, *, now: dt.datetime, counter: int = 0) -> str:
    """A new OID under the LPS root: `<root>.<kind>.<epoch ms><counter>` (kind 1 = lot, 3/4 = documents).

    The caller gives the clock value and a counter that it increments for ids made in the same millisecond.
    """
    if not _OID.match(root) or kind < 0 or counter < 0:
        raise DmpParamsError("unique id root must be an OID and kind/counter non-negative")
    millis = int(now.timestamp() * 1000)
    oid = f"{root}.{kind}.{millis}{counter:03d}" if counter else f"{root}.{kind}.{millis}"
    if len(oid) > 64:
        raise DmpParamsError("unique id root too long: an XDS uniqueId OID has at most 64 characters")
    return oid


def _check_component(name: str, value: str) -> None:
    if any(c in value for c in "^&|~\\\r\n"):
        raise DmpParamsError(f"{name} contains an HL7 separator character")


@dataclass(frozen=True)
class Person:
    """An author or legal authenticator: national id (RPPS/ADELI, IDNPS), family and given names."""

    id: str
    family: str = ""
    given: str = ""
    oid: str = RPPS_OID

    def __post_init__(self) -> None:
        for name in ("id", "family", "given", "oid"):
            _check_component(name, getattr(self, name))

    def __repr__(self) -> str:
        return f"Person({self.id!r}, <names redacted>)"

    def xcn(self) -> str:
        """HL7 XCN `id^FAMILY^Given^^^^^^&oid&ISO^D^^^IDNPS` (samples)."""
        return f"{self.id}^{self.family}^{self.given}^^^^^^&{self.oid}&ISO^D^^^IDNPS"

    @classmethod
    def from_xcn(cls, text: str) -> Person:
        """Parse an XCN person."""
        parts = text.split("^")
        authority = parts[8].split("&") if len(parts) > 8 else []
        return cls(
            id=parts[0],
            family=parts[1] if len(parts) > 1 else "",
            given=parts[2] if len(parts) > 2 else "",
            oid=authority[1] if len(authority) > 1 else RPPS_OID,
        )


@dataclass(frozen=True)
class Institution:
    """An author institution: name and structure id (IDNST)."""

    name: str
    id: str
    oid: str = STRUCTURE_OID

    def __post_init__(self) -> None:
        for name in ("name", "id", "oid"):
            _check_component(name, getattr(self, name))

    def xon(self) -> str:
        """HL7 XON `name^^^^^&oid&ISO^IDNST^^^id` (samples)."""
        return f"{self.name}^^^^^&{self.oid}&ISO^IDNST^^^{self.id}"

    @classmethod
    def from_xon(cls, text: str) -> Institution:
        """Parse an XON institution."""
        parts = text.split("^")
        authority = parts[5].split("&") if len(parts) > 5 else []
        return cls(
            name=parts[0],
            id=parts[9] if len(parts) > 9 else "",
            oid=authority[1] if len(authority) > 1 else STRUCTURE_OID,
        )


@dataclass(frozen=True)
class Author:
    """An XDS author: person, institutions, specialty (`G15_10/SM26`), optional role."""

    person: Person
    institutions: tuple[Institution, ...] = ()
    specialty: Code | None = None
    role: str | None = None


@dataclass(frozen=True)
class DocumentEntry:
    """An XDS DocumentEntry (ExtrinsicObject). `entry_id` is a symbolic id or an entryUUID."""

    entry_id: str
    unique_id: str
    patient: PatientIns
    mime_type: str
    title: str
    class_code: Code
    type_code: Code
    format_code: Code
    facility_type: Code
    practice_setting: Code
    authors: tuple[Author, ...]
    confidentiality: tuple[Code, ...] = (confidentiality_code(Confidentiality.NORMAL),)
    creation_time: str | None = None
    service_start: str | None = None
    service_stop: str | None = None
    language: str = "fr-FR"
    legal_authenticator: Person | None = None
    source_patient_id: str | None = None
    source_patient_info: tuple[str, ...] = ()
    comments: str | None = None
    event_codes: tuple[Code, ...] = ()
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str | None = None
    #: Logical id (lid) shared by all versions; set on registry answers and ITI-57 updates.
    logical_id: str | None = None
    version: str | None = None
    status: AvailabilityStatus | None = None
    #: The ExtrinsicObject as the registry sent it (None for an entry we build): an ITI-57 new version is
    #: made from it, so that what this model does not hold (more slots, referenceIdList…) is kept verbatim.
    registry_xml: bytes | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        # Titles, comments and PID-5 carry names and clinical hints: ids only in reprs.
        status = self.status.name if self.status else None
        return f"DocumentEntry({self.entry_id!r}, {self.unique_id!r}, {status})"

    @property
    def visibility(self) -> frozenset[Confidentiality]:
        """The TRE_A07 visibility codes carried (MASQUE_PS, INVISIBLE_PATIENT, …)."""
        out = set()
        for code in self.confidentiality:
            if code.scheme == Confidentiality.MASQUE_PS.code_system:
                try:
                    out.add(Confidentiality(code.code))
                except DmpInputError:
                    continue  # other TRE_A07 codes (MASQUE_PSOCIAL…) are kept in `confidentiality`
        return frozenset(out)


@dataclass(frozen=True)
class SubmissionSet:
    """An XDS SubmissionSet (RegistryPackage)."""

    entry_id: str
    unique_id: str
    source_id: str
    patient: PatientIns
    submission_time: str
    content_type: Code
    authors: tuple[Author, ...]
    title: str | None = None
    comments: str | None = None

    def __repr__(self) -> str:
        return f"SubmissionSet({self.entry_id!r}, {self.unique_id!r})"


@dataclass(frozen=True)
class Association:
    """An ebRIM Association with its slots (name → values), in order."""

    entry_id: str
    type: AssociationType
    source: str
    target: str
    slots: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def slot(self, name: str) -> tuple[str, ...]:
        """Values of one slot (empty when absent)."""
        return next((values for key, values in self.slots if key == name), ())
