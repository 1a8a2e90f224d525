"""Every code of a submission checked against the value sets, the one store shared with the client.

`bridge.dmp.valuesets` ships the ANS terminology tables (TRE_A03 class, JDV_J07 + ASS_X04 type → class,
JDV_J60 format, TRE_A01 practice setting, TRE_R02 facility, JDV_J59 content type, TRE_A07 + HL7
confidentiality, TRE_G15 profession, TRE_R01 specialty). A code outside its value set, a codingScheme
that is not the value set's system, or a classCode that ASS_X04 does not give for the typeCode is
refused with XDSRegistryMetadataError (the DMP's own code for these is not public: the XDS code for bad
metadata is assumed). The XAdES signature entry carries IHE codes of its own and is not checked here.
"""

from __future__ import annotations

from lxml import etree

from bridge.dmp import valuesets
from bridge.errors import BridgeError
from bridge.sim.dmp.constants import SIGNATURE_FORMAT, XdsScheme
from bridge.sim.dmp.errors import XdsError, XdsErrorCode
from bridge.sim.dmp.metadata import classifications, slot_values

__all__ = ["check_entry_codes", "check_submission_codes"]

#: Entry classification → (what, code system of its value set).
_ENTRY_CODES = (
    (XdsScheme.DE_CLASS, "classCode", valuesets.CLASS),
    (XdsScheme.DE_TYPE, "typeCode", valuesets.LOINC),
    (XdsScheme.DE_FORMAT, "formatCode", valuesets.FORMAT_SYSTEM),
    (XdsScheme.DE_PRACTICE, "practiceSettingCode", valuesets.PRACTICE_SETTING),
    (XdsScheme.DE_FACILITY, "healthcareFacilityTypeCode", valuesets.FACILITY),
)
_CONFIDENTIALITY_SYSTEMS = (valuesets.CONFIDENTIALITY_A07, "2.16.840.1.113883.5.25")
_SPECIALTY_SYSTEM = "1.2.250.1.213.1.1.4.5"


def _refuse(what: str, code: str, location: str, why: str = "hors du jeu de valeurs") -> XdsError:
    return XdsError(XdsErrorCode.REGISTRY_METADATA, f"{what} {code[:64]!r} {why}", location)


def _coded(cls: etree._Element) -> tuple[str, str]:
    schemes = slot_values(cls, "codingScheme")
    return cls.get("nodeRepresentation", ""), schemes[0] if schemes else ""


def _check(what: str, code: str, system: str, expected: str, location: str) -> None:
    if system != expected:
        raise _refuse(what, code, location, f"avec le codingScheme {system[:64]!r} au lieu de {expected}")
    try:
        valuesets.validate(expected, code, field=what)
    except BridgeError:
        raise _refuse(what, code, location) from None


def _check_specialty(values: list[str], location: str) -> None:
    # authorSpecialty G15_<profession>[/<specialty>]^label^1.2.250.1.213.1.1.4.5 (samples, kit).
    for value in values:
        parts = value.split("^")
        code, system = parts[0], parts[2] if len(parts) > 2 else ""
        if system != _SPECIALTY_SYSTEM or not code.startswith("G15_"):
            raise _refuse("authorSpecialty", code, location, "mal formé")
        profession, _, specialty = code[4:].partition("/")
        _check("authorSpecialty (profession)", profession, valuesets.PROFESSION, valuesets.PROFESSION, location)
        if specialty:
            _check("authorSpecialty (spécialité)", specialty, valuesets.SPECIALTY, valuesets.SPECIALTY, location)


def check_entry_codes(element: etree._Element) -> None:
    """Refuse a DocumentEntry whose codes are outside the value sets or whose classCode contradicts its typeCode."""
    location = element.get("id", "")
    if any(_coded(c)[0] == SIGNATURE_FORMAT for c in classifications(element, XdsScheme.DE_FORMAT)):
        return  # the XAdES signature entry (IHE DSG codes)
    found: dict[str, str] = {}
    for scheme, what, system in _ENTRY_CODES:
        for cls in classifications(element, scheme):
            code, coding = _coded(cls)
            found[what] = code
            _check(what, code, coding, system, location)
    if "typeCode" in found and "classCode" in found:
        expected = valuesets.class_of_type(found["typeCode"])
        if found["classCode"] != expected:
            why = f"incohérent avec le typeCode (ASS_X04 : {expected})"
            raise _refuse("classCode", found["classCode"], location, why)
    for cls in classifications(element, XdsScheme.DE_CONFIDENTIALITY):
        code, coding = _coded(cls)
        if coding not in _CONFIDENTIALITY_SYSTEMS:
            raise _refuse("confidentialityCode", code, location, f"avec le codingScheme {coding[:64]!r}")
        _check("confidentialityCode", code, coding, coding, location)
    for cls in classifications(element, XdsScheme.DE_AUTHOR):
        _check_specialty(slot_values(cls, "authorSpecialty"), location)


def check_submission_codes(package: etree._Element) -> None:
    """Refuse a SubmissionSet whose contentTypeCode is outside JDV_J59 or whose author specialty is unknown."""
    location = package.get("id", "")
    for cls in classifications(package, XdsScheme.SS_CONTENT_TYPE):
        code, coding = _coded(cls)
        _check("contentTypeCode", code, coding, valuesets.CONTENT_TYPE, location)
    for cls in classifications(package, XdsScheme.SS_AUTHOR):
        _check_specialty(slot_values(cls, "authorSpecialty"), location)
