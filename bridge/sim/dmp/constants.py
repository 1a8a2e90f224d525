"""Wire identifiers the DMP simulator recognises: namespaces, WS-Addressing actions, XDS UUIDs, codes.

Values come from the official DMP sample messages and templates (reference/dmp) and the IHE XDS.b
profile; each Enum is valued by its wire identifier.
"""

from __future__ import annotations

import enum

__all__ = [
    "ADDRESSING_ANONYMOUS",
    "NS",
    "REPOSITORY_UNIQUE_ID",
    "Action",
    "AvailabilityStatus",
    "ConfidentialityCode",
    "Endpoint",
    "InsOid",
    "StoredQuery",
    "Transaction",
    "XdsScheme",
]

NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "soap11": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xop": "http://www.w3.org/2004/08/xop/include",
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "query": "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0",
    "xds": "urn:ihe:iti:xds-b:2007",
    "hl7": "urn:hl7-org:v3",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xades111": "http://uri.etsi.org/01903/v1.1.1#",
}

ADDRESSING_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
# RepositoryUniqueId of the DMP in the samples and the C# kit.
REPOSITORY_UNIQUE_ID = "1.2.250.1.213.4.1.1.1.2"


class Endpoint(enum.Enum):
    """Service path suffixes under `/si-dmp-server/v2/services/` (notes §1.2)."""

    PATIENTS = "patients"
    HABILITATIONS = "habilitations"
    PATIENTS_SPECIFIC = "patientsSpecific"
    PATIENTS_PDQ = "patientsPDQ"
    REGISTRY = "registry"
    REPOSITORY = "repository"


class Action(enum.Enum):
    """WS-Addressing Action of each request, as in the official samples."""

    PATIENT_QUERY = "urn:hl7-org:v3:PRPA_IN201307UV02"
    PROVIDE_AND_REGISTER = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    RETRIEVE = "urn:ihe:iti:2007:RetrieveDocumentSet"
    STORED_QUERY = "urn:ihe:iti:2007:RegistryStoredQuery"
    UPDATE_DOCUMENT_SET = "urn:ihe:iti:2010:UpdateDocumentSet"
    REGISTRATION = "urn:hl7-org:v3:PRPA_IN201314UV02"
    PATIENT_LIST = "urn:si-dmp-patients:PatientSpecificEndPoint:patientList"
    PDQ_QUERY = "urn:hl7-org:v3:PRPA_IN201305UV02"
    SET_AUTHORIZATION = "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorization"
    LIST_AUTHORIZATIONS = "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatient"

    @property
    def response(self) -> str:
        """The Action of the answer, as in the official sample responses."""
        return _RESPONSE_ACTIONS[self]


_RESPONSE_ACTIONS = {
    Action.PATIENT_QUERY: "urn:hl7-org:v3:PRPA_IN201308UV02",
    Action.PROVIDE_AND_REGISTER: "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
    Action.RETRIEVE: "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    Action.STORED_QUERY: "urn:ihe:iti:2007:RegistryStoredQueryResponse",
    Action.UPDATE_DOCUMENT_SET: "urn:ihe:iti:2010:UpdateDocumentSet-Response",
    Action.REGISTRATION: "urn:hl7-org:v3:PRPA_IN201314ResponseUV02",
    Action.PATIENT_LIST: "urn:si-dmp-patients:PatientSpecificEndPoint:patientListResponse",
    Action.PDQ_QUERY: "urn:hl7-org:v3:PRPA_IN201306UV02",
    Action.SET_AUTHORIZATION: "urn:si-dmp-habilitations:HabilitationsEndPoint:setAuthorizationResponse",
    Action.LIST_AUTHORIZATIONS: "urn:si-dmp-habilitations:HabilitationsEndPoint:listAuthorizationByPatientResponse",
}

# Which actions each endpoint serves.
ENDPOINT_ACTIONS: dict[Endpoint, frozenset[Action]] = {
    Endpoint.PATIENTS: frozenset({Action.PATIENT_QUERY, Action.REGISTRATION}),
    Endpoint.REGISTRY: frozenset({Action.STORED_QUERY, Action.UPDATE_DOCUMENT_SET}),
    Endpoint.REPOSITORY: frozenset({Action.PROVIDE_AND_REGISTER, Action.RETRIEVE}),
    Endpoint.HABILITATIONS: frozenset({Action.SET_AUTHORIZATION, Action.LIST_AUTHORIZATIONS}),
    Endpoint.PATIENTS_SPECIFIC: frozenset({Action.PATIENT_LIST}),
    Endpoint.PATIENTS_PDQ: frozenset({Action.PDQ_QUERY}),
}


class Transaction(enum.Enum):
    """DMP transaction names used in dumps and logs."""

    TD0_2 = "TD0.2"
    TD0_3 = "TD0.3"
    TD1_6 = "TD1.6"
    TD1_3B_4 = "TD1.3b-TD1.4"
    TD0_4 = "TD0.4"
    TD0_5 = "TD0.5"
    TD2_1 = "TD2.1"
    TD3_1 = "TD3.1"
    TD3_2 = "TD3.2"
    TD3_3 = "TD3.3"
    TD3_3AB = "TD3.3ab"
    TD3_3C = "TD3.3c"
    TD3_3D = "TD3.3d"
    UNKNOWN = "unknown"


class InsOid(enum.Enum):
    """Assigning authorities of the INS (notes §5); legacy INS-C/INS-A are refused."""

    NIR = "1.2.250.1.213.1.4.8"
    NIA = "1.2.250.1.213.1.4.9"
    NIR_TEST = "1.2.250.1.213.1.4.10"
    NIR_DEMO = "1.2.250.1.213.1.4.11"


class AvailabilityStatus(enum.Enum):
    """Document entry statuses (notes §5)."""

    APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
    DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"


class ConfidentialityCode(enum.Enum):
    """Visibility codes of TRE_A07 (codingScheme 1.2.250.1.213.1.1.4.13)."""

    MASQUE_PS = "MASQUE_PS"
    INVISIBLE_PATIENT = "INVISIBLE_PATIENT"
    INVISIBLE_REPRESENTANTS_LEGAUX = "INVISIBLE_REPRESENTANTS_LEGAUX"


class XdsScheme(enum.Enum):
    """XDS classification / identification schemes."""

    SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    SS_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
    SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
    DE_OBJECT_TYPE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
    DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    DE_CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    DE_TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    DE_FORMAT = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    DE_FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    DE_PRACTICE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    DE_EVENT = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"


class StoredQuery(enum.Enum):
    """ITI-18 stored queries the simulator answers."""

    FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


# Association types.
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
UPDATE_AVAILABILITY = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
SIGNATURE_FORMAT = "http://www.w3.org/2000/09/xmldsig#"
VISIBILITY_SCHEME = "1.2.250.1.213.1.1.4.13"
