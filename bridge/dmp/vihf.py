"""The VIHF: the SAML 2.0 assertion that identifies the user, the structure and the patient on every DMP call.

`build_vihf(ctx)` lays the assertion out exactly like the official samples (same elements, attribute
names, order and per-value `xs` declarations); `sign_vihf` adds the enveloped exclusive-c14n signature
right after `Issuer` with signxml, using any cryptography RSAPrivateKey (the CPS card key in DIRECTE mode,
the establishment ORG signature key in the indirect modes). `parse_vihf` reads one back (tests, simulator).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from bridge.dmp.codes import SECTOR_OID, AuthMode, Confidentiality, InsOid, PurposeOfUse, SignatureAlgorithm
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.ns import DS, HL7, SAML2, XS, XSI, q
from bridge.xmlsafe import parse_xml

__all__ = [
    "SMARTCARD_PKI",
    "PatientIns",
    "Role",
    "VihfContext",
    "build_vihf",
    "issuer_dn",
    "parse_vihf",
    "saml_instant",
    "sign_vihf",
]

SMARTCARD_PKI = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
_X509_SUBJECT = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
_PURPOSE_SYSTEM_NAME = "mode acces VIHF 2.0"

# Attribute names exactly as the official samples spell them (note `Authentification_mode`).
_A_STRUCTURE = "Identifiant_Structure"
_A_SECTOR = "Secteur_Activite"
_A_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
_A_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
_A_VERSION = "VIHF_Version"
_A_MODE = "Authentification_mode"
_A_RESOURCE = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
_A_URN = "Ressource_URN"
_A_PURPOSE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
_A_CONFIDENTIALITY = "urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"
_A_LPS_ID = "LPS_ID"
_A_LPS_NAME = "LPS_Nom"
_A_LPS_VERSION = "LPS_Version"
_A_LPS_HOMOLOGATION = "LPS_ID_HOMOLOGATION_DMP"


@dataclass(frozen=True, kw_only=True)
class Role:
    """One `subject:role` value: profession (TRE_G15) first, then specialty (TRE_R01) when required."""

    code: str
    code_system: str
    display_name: str
    code_system_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class PatientIns:
    """A patient INS with its assigning authority (NIR, NIA, or the test/demo NIR OIDs)."""

    value: str
    oid: InsOid

    def __post_init__(self) -> None:
        if not self.value.isalnum() or not 13 <= len(self.value) <= 22:
            raise DmpParamsError("INS must be 13 to 22 alphanumeric characters")

    def __repr__(self) -> str:
        # An INS never reaches a log line through a repr.
        return f"PatientIns(<redacted>, {self.oid.name})"

    @property
    def legacy(self) -> bool:
        """A legacy INS-C read from an old entry: shown, never sent."""
        return self.oid is InsOid.INS_C

    def cx(self) -> str:
        """HL7 CX form of the VIHF, queries and XDS patientId: `INS^^^&OID&ISO^NH` (`^INS-C`: legacy INS-C)."""
        return f"{self.value}^^^&{self.oid.value}&ISO^{'INS-C' if self.legacy else 'NH'}"

    @classmethod
    def from_cx(cls, text: str) -> PatientIns:
        """Parse a CX patient id (tolerates the `^^date` suffix of the samples; reads a legacy `^INS-C`)."""
        parts = text.strip().split("^")
        if len(parts) < 5 or parts[4] not in ("NH", "INS-C"):
            raise DmpInputError("patient id is not an INS CX (…^NH)")
        authority = parts[3].split("&")
        if len(authority) < 2:
            raise DmpInputError("patient id has no assigning authority")
        oid = InsOid(authority[1])
        if (parts[4] == "INS-C") != (oid is InsOid.INS_C):
            raise DmpInputError("patient id type and assigning authority disagree")
        return cls(value=parts[0], oid=oid)


@dataclass(frozen=True, kw_only=True)
class VihfContext:
    """Every value of a VIHF; time and the assertion id are given by the caller (sans-IO)."""

    assertion_id: str
    issue_instant: dt.datetime
    #: DN of the signing certificate (RFC 4514), the assertion's Issuer.
    issuer_dn: str
    #: Subject NameID: the practitioner's national id (RPPS/ADELI) or the responsible person's id.
    name_id: str
    auth_mode: AuthMode
    structure_id: str
    #: Activity sector code (SAxx) of the same card activity as `structure_id`.
    sector: str
    roles: tuple[Role, ...]
    lps_name: str
    lps_version: str
    lps_homologation: str
    patient: PatientIns | None = None
    purpose: PurposeOfUse = PurposeOfUse.NORMAL
    #: "PRENOM NOM" display identity; the DIRECTE samples omit it.
    subject_id: str | None = None
    #: Secret connection (minors): only INVISIBLE_REPRESENTANTS_LEGAUX is handled by the DMP.
    confidentiality: Confidentiality | None = None
    lps_id: str | None = None
    vihf_version: str = "3.0"
    authn_context: str = SMARTCARD_PKI
    #: AuthnContextDecl of the INDIRECTE_RENFORCEE mode (the official sample repeats the class ref).
    authn_context_decl: str | None = None
    authn_instant: dt.datetime | None = None
    #: When set, a saml2:Conditions NotBefore/NotOnOrAfter is emitted (the samples have none).
    valid_until: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"VihfContext({self.assertion_id!r}, {self.auth_mode.name}, {self.purpose.name})"

    def __post_init__(self) -> None:
        if not self.assertion_id or not (self.assertion_id[0].isalpha() or self.assertion_id[0] == "_"):
            raise DmpParamsError("VIHF assertion id must be an NCName (e.g. '_' + uuid)")
        if not self.roles:
            raise DmpParamsError("VIHF needs at least the profession role")
        if self.issue_instant.tzinfo is None:
            raise DmpParamsError("VIHF instants must be timezone-aware")
        if self.confidentiality not in (None, Confidentiality.INVISIBLE_REPRESENTANTS_LEGAUX):
            raise DmpParamsError("the VIHF secret mode only accepts INVISIBLE_REPRESENTANTS_LEGAUX")


def issuer_dn(cert: x509.Certificate) -> str:
    """The VIHF Issuer for a signing certificate: its subject DN in RFC 4514 form (as the samples)."""
    return cert.subject.rfc4514_string()


def saml_instant(when: dt.datetime) -> str:
    """SAML UTC instant with milliseconds, as in the samples: 2019-06-26T08:08:55.849Z."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _parse_instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def _string_attr(stmt: Any, name: str, value: str) -> None:
    attr = etree.SubElement(stmt, q(SAML2, "Attribute"), Name=name)
    val = etree.SubElement(attr, q(SAML2, "AttributeValue"), nsmap={"xs": XS})
    val.set(q(XSI, "type"), "xs:string")
    val.text = value


def _ce_attr(stmt: Any, name: str, tag: str, values: list[dict[str, str]]) -> None:
    attr = etree.SubElement(stmt, q(SAML2, "Attribute"), Name=name)
    for fields in values:
        holder = etree.SubElement(attr, q(SAML2, "AttributeValue"))
        ce = etree.SubElement(holder, q(HL7, tag), nsmap={None: HL7})
        for key, value in fields.items():
            ce.set(key, value)
        ce.set(q(XSI, "type"), "CE")


def build_vihf(ctx: VihfContext) -> Any:
    """Build the unsigned assertion element, laid out like the official VIHF samples."""
    root = etree.Element(q(SAML2, "Assertion"), nsmap={"saml2": SAML2, "xsi": XSI})
    root.set("ID", ctx.assertion_id)
    root.set("IssueInstant", saml_instant(ctx.issue_instant))
    root.set("Version", "2.0")
    issuer = etree.SubElement(root, q(SAML2, "Issuer"), Format=_X509_SUBJECT)
    issuer.text = ctx.issuer_dn
    subject = etree.SubElement(root, q(SAML2, "Subject"))
    etree.SubElement(subject, q(SAML2, "NameID")).text = ctx.name_id
    if ctx.valid_until is not None:
        etree.SubElement(
            root,
            q(SAML2, "Conditions"),
            NotBefore=saml_instant(ctx.issue_instant),
            NotOnOrAfter=saml_instant(ctx.valid_until),
        )
    authn = etree.SubElement(
        root, q(SAML2, "AuthnStatement"), AuthnInstant=saml_instant(ctx.authn_instant or ctx.issue_instant)
    )
    authn_ctx = etree.SubElement(authn, q(SAML2, "AuthnContext"))
    etree.SubElement(authn_ctx, q(SAML2, "AuthnContextClassRef")).text = ctx.authn_context
    decl = ctx.authn_context_decl
    if decl is None and ctx.auth_mode is AuthMode.INDIRECTE_RENFORCEE:
        decl = ctx.authn_context
    if decl is not None:
        etree.SubElement(authn_ctx, q(SAML2, "AuthnContextDecl")).text = decl

    stmt = etree.SubElement(root, q(SAML2, "AttributeStatement"))
    _string_attr(stmt, _A_STRUCTURE, ctx.structure_id)
    _string_attr(stmt, _A_SECTOR, f"{ctx.sector}^{SECTOR_OID}")
    if ctx.subject_id is not None:
        _string_attr(stmt, _A_SUBJECT_ID, ctx.subject_id)
    roles = []
    for role in ctx.roles:
        fields = {"code": role.code, "codeSystem": role.code_system}
        if role.code_system_name:
            fields["codeSystemName"] = role.code_system_name
        fields["displayName"] = role.display_name
        roles.append(fields)
    _ce_attr(stmt, _A_ROLE, "Role", roles)
    _string_attr(stmt, _A_VERSION, ctx.vihf_version)
    _string_attr(stmt, _A_MODE, ctx.auth_mode.value)
    if ctx.patient is not None:
        _string_attr(stmt, _A_RESOURCE, ctx.patient.cx())
    _string_attr(stmt, _A_URN, "urn:dmp")
    purpose = {
        "code": ctx.purpose.value,
        "codeSystem": ctx.purpose.code_system,
        "codeSystemName": _PURPOSE_SYSTEM_NAME,
        "displayName": ctx.purpose.display_name,
    }
    _ce_attr(stmt, _A_PURPOSE, "PurposeOfUse", [purpose])
    if ctx.confidentiality is not None:
        conf = ctx.confidentiality
        _string_attr(stmt, _A_CONFIDENTIALITY, f"{conf.value}^{conf.code_system}")
    if ctx.lps_id is not None:
        _string_attr(stmt, _A_LPS_ID, ctx.lps_id)
    _string_attr(stmt, _A_LPS_NAME, ctx.lps_name)
    _string_attr(stmt, _A_LPS_VERSION, ctx.lps_version)
    _string_attr(stmt, _A_LPS_HOMOLOGATION, ctx.lps_homologation)
    return root


class _Sha1TolerantSigner(XMLSigner):
    """signxml refuses SHA-1 by default; the DMP samples use RSA-SHA1, so it is allowed when asked for."""

    def check_deprecated_methods(self) -> None:
        """Accept SHA-1 (only reached when the caller chose RSA_SHA1 explicitly)."""


def sign_vihf(
    assertion: Any,
    key: rsa.RSAPrivateKey,
    cert_chain: tuple[x509.Certificate, ...] | list[x509.Certificate],
    algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256,
) -> Any:
    """Sign the assertion: enveloped, exclusive c14n, Signature right after Issuer, KeyInfo = signer cert."""
    if not cert_chain:
        raise DmpParamsError("signing the VIHF needs the signer certificate")
    if assertion.find(q(DS, "Signature")) is not None:
        raise DmpParamsError("the VIHF is already signed")
    assertion_id = assertion.get("ID")
    # signxml puts an enveloped signature where a placeholder stands; SAML wants it after Issuer.
    issuer = assertion.find(q(SAML2, "Issuer"))
    placeholder = etree.Element(q(DS, "Signature"), nsmap={None: DS}, Id="placeholder")
    issuer.addnext(placeholder)
    signer_class = _Sha1TolerantSigner if algorithm is SignatureAlgorithm.RSA_SHA1 else XMLSigner
    signer = signer_class(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod(algorithm.value),
        digest_algorithm=DigestAlgorithm(algorithm.digest_uri),
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    # The samples use a default-namespace <Signature>; signxml supports it though typed for prefixes.
    signer.namespaces = cast(dict[str, str], {None: DS})
    try:
        signed = signer.sign(assertion, key=key, cert=[cert_chain[0]], reference_uri=f"#{assertion_id}")
    finally:
        if placeholder.getparent() is not None:
            placeholder.getparent().remove(placeholder)
    # With a default-namespace Signature, signxml leaves the children un-namespaced in memory (they only
    # read as ds: once serialised); a serialise/parse round trip gives the tree the wire will carry.
    return parse_xml(etree.tostring(signed, encoding="utf-8"))


def _text(el: Any, path: str) -> str:
    found = el.find(path)
    if found is None or found.text is None:
        raise DmpInputError(f"VIHF lacks {path.split('}')[-1]}")
    return str(found.text).strip()


def parse_vihf(assertion: Any) -> VihfContext:
    """Read a VIHF assertion element back into a VihfContext (values only; the signature is not checked here)."""
    if assertion.tag != q(SAML2, "Assertion"):
        raise DmpInputError("not a SAML 2.0 assertion")
    attrs: dict[str, list[Any]] = {}
    stmt = assertion.find(q(SAML2, "AttributeStatement"))
    if stmt is None:
        raise DmpInputError("VIHF lacks its AttributeStatement")
    for attr in stmt.findall(q(SAML2, "Attribute")):
        attrs[attr.get("Name", "")] = list(attr.findall(q(SAML2, "AttributeValue")))

    def one(name: str, required: bool = True) -> str | None:
        values = attrs.get(name)
        if not values or values[0].text is None:
            if required:
                raise DmpInputError(f"VIHF lacks attribute {name}")
            return None
        return str(values[0].text).strip()

    def ce(value: Any) -> Any:
        inner = value[0] if len(value) else None
        if inner is None:
            raise DmpInputError("VIHF coded attribute has no CE element")
        return inner

    roles = tuple(
        Role(
            code=ce(v).get("code", ""),
            code_system=ce(v).get("codeSystem", ""),
            display_name=ce(v).get("displayName", ""),
            code_system_name=ce(v).get("codeSystemName"),
        )
        for v in attrs.get(_A_ROLE, [])
    )
    purpose_values = attrs.get(_A_PURPOSE)
    purpose = PurposeOfUse(ce(purpose_values[0]).get("code")) if purpose_values else PurposeOfUse.NORMAL
    resource = one(_A_RESOURCE, required=False)
    conf = one(_A_CONFIDENTIALITY, required=False)
    sector = one(_A_SECTOR) or ""
    authn = assertion.find(q(SAML2, "AuthnStatement"))
    conditions = assertion.find(q(SAML2, "Conditions"))
    decl = assertion.find(f"{q(SAML2, 'AuthnStatement')}/{q(SAML2, 'AuthnContext')}/{q(SAML2, 'AuthnContextDecl')}")
    try:
        return VihfContext(
            assertion_id=assertion.get("ID", ""),
            issue_instant=_parse_instant(assertion.get("IssueInstant", "")),
            issuer_dn=_text(assertion, q(SAML2, "Issuer")),
            name_id=_text(assertion, f"{q(SAML2, 'Subject')}/{q(SAML2, 'NameID')}"),
            auth_mode=AuthMode(one(_A_MODE)),
            structure_id=one(_A_STRUCTURE) or "",
            sector=sector.split("^")[0],
            roles=roles,
            lps_name=one(_A_LPS_NAME) or "",
            lps_version=one(_A_LPS_VERSION) or "",
            lps_homologation=one(_A_LPS_HOMOLOGATION) or "",
            patient=PatientIns.from_cx(resource) if resource else None,
            purpose=purpose,
            subject_id=one(_A_SUBJECT_ID, required=False),
            confidentiality=Confidentiality(conf.split("^")[0]) if conf else None,
            lps_id=one(_A_LPS_ID, required=False),
            vihf_version=one(_A_VERSION) or "",
            authn_context=_text(assertion, f".//{q(SAML2, 'AuthnContextClassRef')}"),
            authn_context_decl=decl.text.strip() if decl is not None and decl.text else None,
            authn_instant=_parse_instant(authn.get("AuthnInstant")) if authn is not None else None,
            valid_until=_parse_instant(conditions.get("NotOnOrAfter")) if conditions is not None else None,
        )
    except (ValueError, DmpParamsError) as exc:
        raise DmpInputError(f"VIHF has an unreadable value: {type(exc).__name__}") from None
