"""The DMP's refusal codes, each mapped to the stable `data.code` a person can act on.

One table for every DMP transaction: `DmpFault.to_error()` (bridge/dmp/failures.py) looks the DMP's
most specific code up here, so a closed DMP, an unknown patient and an unknown document no longer all
end in "Le DMP a refusé la demande.". A code missing from the table stays DMP_FAULT with the DMP's own
code in `dmpCode` (nothing is lost).

Sources of the codes (SEL-MP-037, the DMPi specification, whose error catalogue is not public):
- IHE ITI TF-3 §4.2.4 (XDS error codes returned in RegistryError/@errorCode): `XDSUnknownPatientId`,
  `XDSPatientIdDoesNotMatch`, `XDSDocumentUniqueIdError` (retrieve of an unknown document),
  `XDSDuplicateUniqueIdInRegistry`, `XDSMissingDocument` (a submission lacking a document its metadata
  names), `XDSRegistryMetadataError`, `XDSRepositoryMetadataError`;
- `../shared/reference/notes/dmp-webservices.md` §2: `DMPClosed` (TD1.4; also the GIE kit's TD1.x
  tests, acknowledgementDetail code), `DMPFound`, `DMPPatientAccessAlreadyExists`,
  `DMPAccessDeniedByRightsService` (PDT-INF-527, Web PS), `DMPInvalidCertificate` (soap:Sender
  subcode, Dehempe notes);
- TD0.2 AUTORISATION values (`1.2.250.1.213.4.1.2.6.2`): `VALIDE` in the official sample; `NON_EXISTE`,
  `INTERDIT`, `EXPIRE` from MagicDMP (notes §2, unconfirmed against the specification);
- the simulator's own subcodes where no public source names the DMP's (bridge/sim/dmp/soap.py,
  `FaultCode`: `DMPInvalidVIHF`, `DMPInvalidSignature`, `DMPCertificateMismatch`, `DMPInvalidRequest`,
  and the access refusals `DMPAccessDenied`, `DMPAccessDeniedByPatient`, `DMPAuthorizationExpired`,
  `DMPPatientNotFound`, `DMPNotAllowedForMesDmp`): assumed names, kept here so that the day the real
  names are known only this table changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bridge.errors import ErrorCode

__all__ = ["AUTHORIZATION_ERRORS", "REFUSALS", "error_code_for"]

#: DMP code (SOAP fault subcode, RegistryError/@errorCode, acknowledgementDetail code) → data.code.
REFUSALS: Mapping[str, ErrorCode] = MappingProxyType(
    {
        # The patient's DMP.
        "XDSUnknownPatientId": ErrorCode.DMP_UNKNOWN,
        "DMPPatientNotFound": ErrorCode.DMP_UNKNOWN,
        "DMPClosed": ErrorCode.DMP_CLOSED,
        "XDSPatientIdDoesNotMatch": ErrorCode.PATIENT_MISMATCH,
        "DMPNotAllowedForMesDmp": ErrorCode.DMP_MANAGED_BY_MES,
        # This professional on this DMP.
        "DMPAccessDenied": ErrorCode.DMP_NOT_AUTHORIZED,
        "DMPAccessDeniedByPatient": ErrorCode.BLOCKED_BY_PATIENT,
        "DMPAuthorizationExpired": ErrorCode.DMP_AUTHORIZATION_EXPIRED,
        "DMPAccessDeniedByRightsService": ErrorCode.NOT_PERMITTED_FOR_ACTOR,
        # Documents.
        "XDSDocumentUniqueIdError": ErrorCode.DOCUMENT_UNKNOWN,
        "XDSDuplicateUniqueIdInRegistry": ErrorCode.DOCUMENT_ALREADY_EXISTS,
        # Authentication (card, certificates, VIHF).
        "DMPInvalidCertificate": ErrorCode.DMP_AUTHENTICATION_REFUSED,
        "DMPInvalidVIHF": ErrorCode.DMP_AUTHENTICATION_REFUSED,
        "DMPInvalidSignature": ErrorCode.DMP_AUTHENTICATION_REFUSED,
        "DMPCertificateMismatch": ErrorCode.DMP_AUTHENTICATION_REFUSED,
        # A request the DMP cannot take (our bug or an unsupported value).
        "DMPInvalidRequest": ErrorCode.DMP_REQUEST_REFUSED,
        "XDSRegistryMetadataError": ErrorCode.DMP_REQUEST_REFUSED,
        "XDSRepositoryMetadataError": ErrorCode.DMP_REQUEST_REFUSED,
        # A submission whose metadata names a document it does not carry (IHE: not an unknown document).
        "XDSMissingDocument": ErrorCode.DMP_REQUEST_REFUSED,
    }
)

#: TD0.2 AUTORISATION value → the error a transaction needing an authorisation would give.
AUTHORIZATION_ERRORS: Mapping[str, ErrorCode] = MappingProxyType(
    {
        "NON_EXISTE": ErrorCode.DMP_NOT_AUTHORIZED,
        "EXPIRE": ErrorCode.DMP_AUTHORIZATION_EXPIRED,
        "INTERDIT": ErrorCode.BLOCKED_BY_PATIENT,
    }
)


def error_code_for(dmp_code: str) -> ErrorCode:
    """The data.code for a DMP code; DMP_FAULT when the table does not know it."""
    # SOAP subcodes come qualified (`soap:DMPClosed`, `wsa:…`): the local part decides.
    return REFUSALS.get(dmp_code.rpartition(":")[2], ErrorCode.DMP_FAULT)
