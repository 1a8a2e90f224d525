"""What a DMP call is made of: who acts, with which keys, against which DMP, on what document.

Values shared by the DMP client (`bridge.dmp.client`), the service layer and the debug tools; no I/O.
`signed_vihf` is the one place a VIHF is made from a practitioner: what `dmp-bridge debug vihf` prints
is what the client sends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint
from bridge.dmp import valuesets
from bridge.dmp.cda import CdaPatient
from bridge.dmp.codes import (
    PROFESSION_LABELS,
    SECTOR_OID,
    AuthMode,
    PurposeOfUse,
    SignatureAlgorithm,
)
from bridge.dmp.transactions import (
    DMP_REPOSITORY_ID,
)
from bridge.dmp.vihf import PatientIns, Role, VihfContext, build_vihf, issuer_dn, sign_vihf
from bridge.dmp.xades import OFFICIAL_PROFILE, XadesProfile
from bridge.dmp.xds_model import (
    SPECIALTY_SYSTEM,
    Author,
    Code,
    Institution,
    Person,
)
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "CLASS_COMPTE_RENDU",
    "CONTENT_TYPE_DEFAULT",
    "MAX_WRAPPED_BYTES",
    "PRACTICE_AMBULATOIRE",
    "PRACTICE_ETABLISSEMENT",
    "DmpCredentials",
    "DmpSettings",
    "LpsIdentity",
    "NewDocument",
    "Practitioner",
    "Progress",
    "SubmitResult",
    "Timings",
    "signed_vihf",
]

#: classCode "Compte rendu" (TRE_A03, JDV_J06), the default class of a submitted document.
CLASS_COMPTE_RENDU = Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu")
#: practiceSettingCode values (TRE_A01 / JDV_J04).
PRACTICE_AMBULATOIRE = Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire")
PRACTICE_ETABLISSEMENT = Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé")
#: SubmissionSet contentTypeCode (JDV_J59, TRE_R209 codes) used when the caller gives none: a consultation.
#: Not "01": TRE_R209 (ansforge/IG-terminologie-de-sante, TRE_R209_TypeActivite.fsh, version 20260629120000)
#: calls it « Administration », and JDV_J59 leaves it out; "07" is « Consultation Soins Externes ».
CONTENT_TYPE_DEFAULT = Code("07", "1.2.250.1.213.2.2", "Consultations soins externes")
#: Largest content wrapped in a CDA: a 20 MiB document, whose base64 still fits the API's 32 MiB message.
#: Its base64 is one XML text node over libxml2's default 10 MB limit, so the CDA is parsed with
#: `parse_xml(..., large_text=True)` (entities and DTDs still refused, size still bounded).
MAX_WRAPPED_BYTES = 20 * 1024 * 1024
_PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
_SPECIALTY_ROLE_SYSTEM = "1.2.250.1.71.4.2.5"

#: Called with (bytes sent, total bytes) while a request body goes out, on the HTTPS worker thread.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DmpCredentials:
    """Who the bridge is towards the DMP: the TLS client identity and the VIHF/XAdES signing key.

    DIRECTE: the CPS authentication key and certificate (TLS) and the CPS signature key (VIHF, XAdES).
    INDIRECTE: the establishment's AUTH_CLI and SIGN (cachet) certificates. `label` names them in
    caches and reprs (a card serial, "establishment"), never a person's name.
    """

    label: str
    tls: ClientIdentity
    signing_key: rsa.RSAPrivateKey
    signing_chain: tuple[x509.Certificate, ...]

    def __repr__(self) -> str:
        return f"DmpCredentials({self.label!r})"


@dataclass(frozen=True, kw_only=True)
class Practitioner:
    """The user of a DMP call, as the VIHF and the XDS author carry them."""

    national_id: str
    family: str
    given: str
    profession_code: str
    specialty_code: str
    structure_id: str
    structure_name: str
    #: Activity sector code SAxx (TRE_R02) of the situation.
    sector: str
    mode: AuthMode
    purpose: PurposeOfUse = PurposeOfUse.NORMAL
    practice_setting: Code = PRACTICE_AMBULATOIRE

    def __repr__(self) -> str:
        return f"Practitioner({self.mode.name}, {self.purpose.name})"

    @property
    def cache_id(self) -> str:
        """What distinguishes two VIHFs of the same mode and patient: person, structure, purpose."""
        return f"{self.national_id}|{self.structure_id}|{self.sector}|{self.purpose.value}"

    def roles(self) -> tuple[Role, ...]:
        """VIHF subject:role values: profession (TRE_G15), then specialty (TRE_R01) when known."""
        label = PROFESSION_LABELS.get(self.profession_code, self.profession_code)  # else shown as its code
        roles = [Role(code=self.profession_code, code_system=_PROFESSION_SYSTEM, display_name=label)]
        if self.specialty_code:
            specialty = valuesets.label(valuesets.SPECIALTY, self.specialty_code) or self.specialty_code
            roles.append(Role(code=self.specialty_code, code_system=_SPECIALTY_ROLE_SYSTEM, display_name=specialty))
        return tuple(roles)

    def person(self) -> Person:
        """The XDS/CDA person."""
        return Person(self.national_id, self.family, self.given)

    def institution(self) -> Institution:
        """The structure of the situation."""
        return Institution(self.structure_name, self.structure_id)

    def author(self) -> Author:
        """The XDS author (person, institution, authorSpecialty G15_xx/yy labelled from the value sets).

        The label is « profession - specialty » from TRE_G15 and TRE_R01, as in the official samples
        (`G15_10/SM26^Médecin - Qualifié en Médecine Générale (SM)`).
        """
        specialty = f"G15_{self.profession_code}" + (f"/{self.specialty_code}" if self.specialty_code else "")
        labels = [valuesets.label(valuesets.PROFESSION, self.profession_code) or self.profession_code]
        if self.specialty_code:
            labels.append(valuesets.label(valuesets.SPECIALTY, self.specialty_code) or self.specialty_code)
        return Author(self.person(), (self.institution(),), Code(specialty, SPECIALTY_SYSTEM, " - ".join(labels)))

    def facility(self) -> Code:
        """healthcareFacilityTypeCode: the activity sector."""
        return Code(self.sector, SECTOR_OID, valuesets.label(SECTOR_OID, self.sector) or self.sector)


@dataclass(frozen=True, kw_only=True)
class DmpSettings:
    """Where the DMP is and what the LPS says about itself."""

    #: Services base URL, e.g. https://127.0.0.1:8443/si-dmp-server/v2/services.
    base_url: str
    trust: ServerTrust
    #: OID root under which this installation makes uniqueIds (lots, documents, signatures).
    oid_root: str
    lps_name: str
    lps_version: str
    lps_homologation: str
    #: Name expected in the server certificate (default: the URL's host).
    server_name: str | None = None
    repository_id: str = DMP_REPOSITORY_ID
    #: Longest wait for one socket operation, in seconds.
    io_timeout: float = 60.0
    #: Total deadline of one DMP call (card signatures, connect, TLS, send, receive), in seconds.
    call_timeout: float = 120.0
    #: How the TD2.1 XAdES is signed (default: the official sample's profile, see `bridge.dmp.xades`).
    xades: XadesProfile = OFFICIAL_PROFILE

    def endpoint(self, identity: ClientIdentity) -> TlsEndpoint:
        """The TLS endpoint of the DMP for one client identity."""
        url = urlsplit(self.base_url)
        if url.scheme != "https" or not url.hostname:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "the DMP URL must be https://host[:port]/path")
        return TlsEndpoint(
            host=url.hostname,
            port=url.port or 443,
            trust=self.trust,
            identity=identity,
            server_name=self.server_name,
            io_timeout=self.io_timeout,
        )

    def path(self, service: str) -> str:
        """The HTTP path of a service (registry, repository)."""
        return urlsplit(self.base_url).path.rstrip("/") + "/" + service

    def url(self, service: str) -> str:
        """The full URL of a service (WS-Addressing To)."""
        return self.base_url.rstrip("/") + "/" + service


@dataclass(frozen=True, kw_only=True)
class NewDocument:
    """A document to submit: a CDA R2 (passed through) or content that is wrapped into a CDA."""

    content: bytes
    #: application/pdf, text/plain, text/rtf, image/jpeg, image/tiff, or text/xml for a CDA.
    mime_type: str
    title: str
    type_code: Code
    class_code: Code = CLASS_COMPTE_RENDU
    #: recordTarget of the CDA wrapper (required unless the content is already a CDA).
    patient_identity: CdaPatient | None = None
    #: formatCode of a structured CDA (a wrapped or unstructured one is derived from its body).
    format: Code | None = None
    hidden_from_professionals: bool = False
    hidden_from_patient: bool = False
    #: The document's uniqueId chosen by the caller (an idempotency key: the caller can look it up before
    #: sending again after DMP_OUTCOME_UNKNOWN); None: a new one. A CDA must carry it as its own id.
    unique_id: str | None = None

    def __repr__(self) -> str:
        return f"NewDocument({self.mime_type!r}, {len(self.content)} bytes)"


@dataclass(frozen=True)
class SubmitResult:
    """What a TD2.1 created: the lot's uniqueId and each document's uniqueId, in order."""

    submission_set_unique_id: str
    unique_ids: tuple[str, ...]
    #: The bytes stored by the DMP for each document (the CDA, wrapper included).
    stored: tuple[bytes, ...] = field(default=(), repr=False)


@dataclass
class Timings:
    """Seconds spent in the last call: building, signing (VIHF + XAdES), the HTTPS exchange."""

    build: float = 0.0
    signing: float = 0.0
    exchange: float = 0.0
    request_bytes: int = 0


def signed_vihf(
    practitioner: Practitioner,
    patient: PatientIns,
    credentials: DmpCredentials,
    lps: LpsIdentity,
    *,
    now: dt.datetime,
    assertion_id: str,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256,
) -> Any:
    """The VIHF of `practitioner` acting on `patient`, signed with the credentials' signing key.

    The one place a VIHF context is made from a practitioner: the DMP client and `dmp-bridge debug vihf`
    both call it. Blocks while a card signs: call it off the event loop.
    """
    ctx = VihfContext(
        assertion_id="_" + assertion_id,
        issue_instant=now,
        issuer_dn=issuer_dn(credentials.signing_chain[0]),
        name_id=practitioner.national_id,
        auth_mode=practitioner.mode,
        structure_id=practitioner.structure_id,
        sector=practitioner.sector,
        roles=practitioner.roles(),
        lps_name=lps.lps_name,
        lps_version=lps.lps_version,
        lps_homologation=lps.lps_homologation,
        patient=patient,
        purpose=practitioner.purpose,
        subject_id=None
        if practitioner.mode is AuthMode.DIRECTE
        else f"{practitioner.given} {practitioner.family}".strip() or practitioner.national_id,
    )
    return sign_vihf(build_vihf(ctx), credentials.signing_key, credentials.signing_chain, algorithm)


class LpsIdentity(Protocol):
    """The software's identity as a VIHF carries it (DmpSettings and DmpConfig both have it)."""

    @property
    def lps_name(self) -> str:
        """LPS name."""

    @property
    def lps_version(self) -> str:
        """LPS version."""

    @property
    def lps_homologation(self) -> str:
        """Homologation number."""
