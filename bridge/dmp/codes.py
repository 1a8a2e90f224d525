"""Wire identifiers of the DMP (OIDs, code systems, URNs, UUIDs) as Enums valued by the identifier.

Looking up an unknown value (`AuthMode("X")`) raises `DmpInputError` from `_missing_`, never ValueError,
so a code read from the wire or from a caller fails with our error taxonomy.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from bridge.dmp import valuesets
from bridge.dmp.failures import DmpInputError

__all__ = [
    "PROFESSION_LABELS",
    "RPPS_OID",
    "SECTOR_OID",
    "STRUCTURE_OID",
    "AssociationType",
    "AuthMode",
    "AvailabilityStatus",
    "ClassScheme",
    "Confidentiality",
    "DocFormat",
    "IdScheme",
    "InsOid",
    "ObjectType",
    "PurposeOfUse",
    "ResponseStatus",
    "SignatureAlgorithm",
    "StoredQuery",
    "WireEnum",
    "WsaAction",
]

#: Identifier system of health professionals (RPPS/ADELI national id, IDNPS).
RPPS_OID = "1.2.250.1.71.4.2.1"
#: Identifier system of health structures (IDNST).
STRUCTURE_OID = "1.2.250.1.71.4.2.2"
#: Code system of activity sectors (SAxx, JDV_J61 healthcareFacilityTypeCode).
SECTOR_OID = "1.2.250.1.71.4.2.4"
#: TRE_G15 (ProfessionSante) display names, by code: the shipped value set (bridge.dmp.valuesets), one source.
PROFESSION_LABELS: Mapping[str, str] = {
    code: name for code, name in valuesets.table("profession").systems[valuesets.PROFESSION].items() if name
}


class WireEnum(enum.Enum):
    """An Enum whose lookup by an unknown wire value raises our input error."""

    @classmethod
    def _missing_(cls, value: Any) -> Any:
        raise DmpInputError(f"unknown {cls.__name__} value {str(value)[:80]!r}")


class InsOid(WireEnum):
    """Assigning authority OIDs of the patient INS (FR Core INS profile)."""

    #: INS-NIR, production.
    NIR = "1.2.250.1.213.1.4.8"
    #: INS-NIA (temporary number).
    NIA = "1.2.250.1.213.1.4.9"
    #: INS-NIR of test identities (all official samples use it).
    NIR_TEST = "1.2.250.1.213.1.4.10"
    #: INS-NIR of demonstration identities.
    NIR_DEMO = "1.2.250.1.213.1.4.11"
    #: Legacy INS-C (calculated INS, CX type `INS-C`): still found in old DMP entries, read only, never sent.
    INS_C = "1.2.250.1.213.1.4.2"


class AuthMode(WireEnum):
    """VIHF `Authentification_mode`: who vouches for the user."""

    #: The practitioner's CPS card signs (card signature key).
    DIRECTE = "DIRECTE"
    #: The establishment's IGC-Santé ORG signature certificate signs.
    INDIRECTE = "INDIRECTE"
    #: Indirect with reinforced local authentication (AIR).
    INDIRECTE_RENFORCEE = "INDIRECTE_RENFORCEE"


class PurposeOfUse(WireEnum):
    """VIHF purpose of use, TRE_R248 ModeAcces (code system 1.2.250.1.213.1.1.4.248)."""

    NORMAL = "normal"
    BRIS_DE_GLACE = "bris_de_glace"
    CENTRE_15 = "centre_15"

    @property
    def code_system(self) -> str:
        """The TRE_R248 OID."""
        return "1.2.250.1.213.1.1.4.248"

    @property
    def display_name(self) -> str:
        """The French display name sent with the code."""
        return {
            "normal": "Accès normal",
            "bris_de_glace": "Accès en mode bris de glace",
            "centre_15": "Accès en mode centre de régulation",
        }[self.value]


class Confidentiality(WireEnum):
    """Document confidentiality / visibility codes (XDS confidentialityCode, VIHF secret mode)."""

    #: HL7 Normal (code system 2.16.840.1.113883.5.25), always present on a document.
    NORMAL = "N"
    #: Hidden from health professionals (TRE_A07, 1.2.250.1.213.1.1.4.13).
    MASQUE_PS = "MASQUE_PS"
    #: Not visible to the patient.
    INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
    #: Not visible to the patient's legal representatives (also the VIHF "secret" connection value).
    INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"

    @property
    def code_system(self) -> str:
        """The code system OID of this code."""
        return "2.16.840.1.113883.5.25" if self is Confidentiality.NORMAL else "1.2.250.1.213.1.1.4.13"

    @property
    def display_name(self) -> str:
        """The French display name used in the official samples."""
        return {
            "N": "Normal",
            "MASQUE_PS": "Masqué aux professionnels de santé",
            "INVISIBLE_PATIENT": "Non visible par le patient",
            "INVISIBLE_REPRESENTANTS_LEGAUX": "Non visible par les représentants légaux du patient",
        }[self.value]


class AvailabilityStatus(WireEnum):
    """Registry availability status of a document entry."""

    APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
    DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"


class AssociationType(WireEnum):
    """ebRIM / IHE association types."""

    HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
    APND = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
    XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
    UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"


class ClassScheme(WireEnum):
    """XDS classification schemes (UUIDs of the XDS metadata attributes)."""

    SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    DE_EVENT = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    DE_FACILITY_TYPE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    DE_PRACTICE_SETTING = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    #: classificationNode marking a RegistryPackage as a SubmissionSet.
    SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"


class IdScheme(WireEnum):
    """XDS external identifier schemes."""

    SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

    @property
    def label(self) -> str:
        """The Name/LocalizedString the samples give the identifier."""
        return {
            IdScheme.SS_PATIENT_ID: "XDSSubmissionSet.patientId",
            IdScheme.SS_SOURCE_ID: "XDSSubmissionSet.sourceId",
            IdScheme.SS_UNIQUE_ID: "XDSSubmissionSet.uniqueId",
            IdScheme.DE_PATIENT_ID: "XDSDocumentEntry.patientId",
            IdScheme.DE_UNIQUE_ID: "XDSDocumentEntry.uniqueId",
        }[self]


class ObjectType(WireEnum):
    """ebRIM object types."""

    STABLE_DOCUMENT = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    ON_DEMAND_DOCUMENT = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
    ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"


class StoredQuery(WireEnum):
    """ITI-18 stored query ids."""

    FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"


class ResponseStatus(WireEnum):
    """ebRS response status."""

    SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


class WsaAction(WireEnum):
    """WS-Addressing Action of each DMP request, as in the official samples."""

    PROVIDE_AND_REGISTER = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    REGISTRY_STORED_QUERY = "urn:ihe:iti:2007:RegistryStoredQuery"
    RETRIEVE_DOCUMENT_SET = "urn:ihe:iti:2007:RetrieveDocumentSet"
    UPDATE_DOCUMENT_SET = "urn:ihe:iti:2010:UpdateDocumentSet"
    PRPA_IN201307UV02 = "urn:hl7-org:v3:PRPA_IN201307UV02"
    #: TD0.4 (sample value).
    PATIENT_LIST = "urn:si-dmp-patients:PatientSpecificEndPoint:patientList"
    #: TD0.5 (PDQv3, ITI-47).
    PRPA_IN201305UV02 = "urn:hl7-org:v3:PRPA_IN201305UV02"
    #: TD1.3b / TD1.4 (GDP registration request).
    PRPA_IN201314UV02 = "urn:hl7-org:v3:PRPA_IN201314UV02"
    #: TD0.3 (sample value; the WSDL's soapAction `urn:hl7-org:v3:setAuthorization` is not what the DMP uses).
    SET_AUTHORIZATION = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
    #: TD1.6 (sample value).
    LIST_AUTHORIZATIONS = "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatient"


class SignatureAlgorithm(WireEnum):
    """XML-DSig signature methods accepted for the VIHF and the XAdES (samples: SHA-1; ANS IG: SHA-256)."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"

    @property
    def digest_uri(self) -> str:
        """The DigestMethod URI paired with this signature method."""
        if self is SignatureAlgorithm.RSA_SHA1:
            return "http://www.w3.org/2000/09/xmldsig#sha1"
        return "http://www.w3.org/2001/04/xmlenc#sha256"

    @property
    def hash_name(self) -> str:
        """hashlib name of the paired digest."""
        return "sha1" if self is SignatureAlgorithm.RSA_SHA1 else "sha256"


class DocFormat(WireEnum):
    """formatCode of unstructured CDA (XDS-SD) documents, with the MIME type of the wrapped content."""

    PDF = "urn:ihe:iti:xds-sd:pdf:2008"
    TEXT = "urn:ihe:iti:xds-sd:text:2008"
    RTF = "urn:ihe:iti-fr:xds-sd:rtf:2010"
    JPEG = "urn:ihe:iti-fr:xds-sd:jpeg:2010"
    TIFF = "urn:ihe:iti-fr:xds-sd:tiff:2010"

    @property
    def media_type(self) -> str:
        """The MIME type of the content wrapped in the CDA nonXMLBody."""
        return {
            "urn:ihe:iti:xds-sd:pdf:2008": "application/pdf",
            "urn:ihe:iti:xds-sd:text:2008": "text/plain",
            "urn:ihe:iti-fr:xds-sd:rtf:2010": "text/rtf",
            "urn:ihe:iti-fr:xds-sd:jpeg:2010": "image/jpeg",
            "urn:ihe:iti-fr:xds-sd:tiff:2010": "image/tiff",
        }[self.value]

    @property
    def display_name(self) -> str:
        """The French display name of the format."""
        return {
            "urn:ihe:iti:xds-sd:pdf:2008": "Document à corps non structuré en Pdf/A-1",
            "urn:ihe:iti:xds-sd:text:2008": "Document à corps non structuré en texte brut",
            "urn:ihe:iti-fr:xds-sd:rtf:2010": "Document à corps non structuré en RTF",
            "urn:ihe:iti-fr:xds-sd:jpeg:2010": "Document à corps non structuré en JPEG",
            "urn:ihe:iti-fr:xds-sd:tiff:2010": "Document à corps non structuré en TIFF",
        }[self.value]

    @classmethod
    def for_media_type(cls, media_type: str) -> DocFormat:
        """The format of a MIME type (raises DmpInputError for an unsupported one)."""
        for fmt in cls:
            if fmt.media_type == media_type.split(";")[0].strip().lower():
                return fmt
        raise DmpInputError(f"unsupported media type {media_type[:60]!r}")

    @property
    def code_system(self) -> str:
        """The formatCode coding scheme."""
        return "1.3.6.1.4.1.19376.1.2.3"
