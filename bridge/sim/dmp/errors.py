"""XDS errors answered inside RegistryResponse / AdhocQueryResponse (IHE ITI TF-3 4.2.4 codes)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lxml import etree

from bridge.sim.dmp.constants import NS

__all__ = ["FAILURE", "SUCCESS", "XdsError", "XdsErrorCode", "error_list"]

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
_SEVERITY = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"


class XdsErrorCode(enum.Enum):
    """Standard XDS error codes (the DMP returns these in RegistryError/@errorCode)."""

    REGISTRY_METADATA = "XDSRegistryMetadataError"
    REPOSITORY_METADATA = "XDSRepositoryMetadataError"
    MISSING_DOCUMENT = "XDSMissingDocument"
    MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
    DUPLICATE_UNIQUE_ID = "XDSDuplicateUniqueIdInRegistry"
    NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
    NON_IDENTICAL_SIZE = "XDSNonIdenticalSize"
    PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
    UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
    DOCUMENT_UNIQUE_ID = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY = "XDSUnknownRepositoryId"
    UNKNOWN_STORED_QUERY = "XDSUnknownStoredQuery"
    STORED_QUERY_MISSING_PARAM = "XDSStoredQueryMissingParam"
    STORED_QUERY_PARAM_NUMBER = "XDSStoredQueryParamNumber"
    METADATA_UPDATE = "XDSMetadataUpdateError"
    METADATA_VERSION = "XDSMetadataVersionError"
    UNRESOLVED_REFERENCE = "UnresolvedReferenceException"
    # Assumed: submission signature (XAdES) refused; the DMP's own code is not public.
    SIGNATURE = "XDSRegistryMetadataError"
    REGISTRY = "XDSRegistryError"


@dataclass(frozen=True)
class XdsError(Exception):
    """A functional refusal: error code, French context, and location (element id) if any."""

    code: XdsErrorCode
    context: str
    location: str = ""


def error_list(errors: list[XdsError]) -> etree._Element:
    """`rs:RegistryErrorList` with one RegistryError per error."""
    rs = NS["rs"]
    node = etree.Element(f"{{{rs}}}RegistryErrorList", nsmap={"ns2": rs}, highestSeverity=_SEVERITY)
    for err in errors:
        etree.SubElement(
            node,
            f"{{{rs}}}RegistryError",
            errorCode=err.code.value,
            codeContext=err.context,
            location=err.location,
            severity=_SEVERITY,
        )
    return node
