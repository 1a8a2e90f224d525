"""VIHF checks: the SAML 2.0 assertion in wsse:Security, its XML signature and its attributes.

Attribute names and values follow the official VIHF samples and notes §3; the validity window (no
`Conditions` in the samples) is an assumption: IssueInstant at most `max_age` old and not in the
future beyond `skew`, plus `Conditions` NotBefore/NotOnOrAfter when present.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from bridge.sim.dmp.constants import NS
from bridge.sim.dmp.ins import Ins, InsError, parse_ins_cx
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.trust import TrustError, TrustStore, require_signature_usage
from bridge.sim.dmp.vihf_values import check_vihf_values
from bridge.sim.dmp.xmldsig import SignatureError, signer_certificate, verify
from bridge.xmlsafe import XmlInputError, parse_xml

__all__ = ["Vihf", "VihfPolicy", "check_tls_binding", "check_vihf"]

_SAML = NS["saml"]
_HL7 = NS["hl7"]
_SECTOR = re.compile(r"^SA[0-9]{2}\^1\.2\.250\.1\.71\.4\.2\.4$")
_PURPOSES = frozenset({"normal", "bris_de_glace", "centre_15"})
_PURPOSE_SYSTEM = "1.2.250.1.213.1.1.4.248"
_PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"
# Médecin (10) and pharmacien (21) must carry a second role (specialty / CNOP section), notes §3.1.
_NEEDS_SPECIALTY = frozenset({"10", "21"})
_MODES = frozenset({"DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE"})

# RSA-SHA1 (every official sample) and RSA-SHA2 (ANS IG) are both accepted by the verifier (xmldsig).


@dataclass(frozen=True)
class VihfPolicy:
    """Validity window of a VIHF."""

    max_age: dt.timedelta = dt.timedelta(hours=8)
    skew: dt.timedelta = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Vihf:
    """The checked facts of a VIHF."""

    name_id: str
    structure_id: str
    sector: str
    mode: str
    roles: tuple[tuple[str, str], ...]
    ins: Ins
    purpose: str
    homologation: str
    signer: x509.Certificate


def _fail(reason: str, code: FaultCode = FaultCode.INVALID_VIHF) -> SoapFault:
    return SoapFault(code, reason)


def _parse_time(value: str | None, what: str) -> dt.datetime:
    if not value:
        raise _fail(f"VIHF : {what} absent")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"VIHF : {what} mal formé") from None
    if parsed.tzinfo is None:
        raise _fail(f"VIHF : {what} sans fuseau horaire")
    return parsed


def _names_equal(issuer: str, subject: x509.Name) -> bool:
    try:
        if x509.Name.from_rfc4514_string(issuer) == subject:
            return True
    except ValueError:
        pass
    return issuer.replace(" ", "") == subject.rfc4514_string().replace(" ", "")


def _verify_signature(
    assertion: etree._Element, trust: TrustStore, now: dt.datetime
) -> tuple[etree._Element, x509.Certificate]:
    # Work on a standalone copy: the reference must resolve to the assertion itself, nothing around it.
    standalone = parse_xml(etree.tostring(assertion, with_tail=False))
    signatures = standalone.findall(f"{{{NS['ds']}}}Signature")
    if not signatures:
        raise _fail("VIHF non signé", FaultCode.INVALID_SIGNATURE)
    if len(signatures) > 1:
        raise _fail("VIHF : plusieurs signatures", FaultCode.INVALID_SIGNATURE)
    try:
        cert = signer_certificate(signatures[0])
    except SignatureError as exc:
        raise _fail(f"VIHF : {exc}", FaultCode.INVALID_CERTIFICATE) from None
    try:
        trust.verify(cert, at=now)
        require_signature_usage(cert)
    except TrustError as exc:
        raise _fail(f"Le certificat ayant signé le VIHF est invalide : {exc}", FaultCode.INVALID_CERTIFICATE) from None
    try:
        references = verify(signatures[0], standalone, cert)
    except SignatureError as exc:
        raise _fail(f"Signature du VIHF invalide : {exc}", FaultCode.INVALID_SIGNATURE) from None
    # "See what is signed": one reference, to the assertion itself, with the enveloped transform.
    if len(references) != 1 or references[0].element is not standalone:
        raise _fail("La signature du VIHF ne couvre pas l'assertion", FaultCode.INVALID_SIGNATURE)
    transforms = signatures[0].findall(f".//{{{NS['ds']}}}Reference/{{{NS['ds']}}}Transforms/{{{NS['ds']}}}Transform")
    if not any(t.get("Algorithm") == "http://www.w3.org/2000/09/xmldsig#enveloped-signature" for t in transforms):
        raise _fail("La signature du VIHF doit être enveloppée", FaultCode.INVALID_SIGNATURE)
    return standalone, cert


def _attributes(signed: etree._Element) -> dict[str, list[etree._Element]]:
    attrs: dict[str, list[etree._Element]] = {}
    for attr in signed.iterfind(f"{{{_SAML}}}AttributeStatement/{{{_SAML}}}Attribute"):
        name = attr.get("Name", "")
        attrs.setdefault(name, []).extend(attr.iterfind(f"{{{_SAML}}}AttributeValue"))
    return attrs


def _single(attrs: dict[str, list[etree._Element]], *names: str) -> str:
    for name in names:
        values = attrs.get(name)
        if values:
            text = (values[0].text or "").strip()
            if text:
                return text
    raise _fail(f"VIHF : attribut {names[0]} absent ou vide")


def check_vihf(
    header: etree._Element,
    trust: TrustStore,
    *,
    now: dt.datetime | None = None,
    policy: VihfPolicy | None = None,
) -> Vihf:
    """Find, verify and read the VIHF of a SOAP header; raise SoapFault on any defect."""
    policy = policy or VihfPolicy()
    now = now or dt.datetime.now(dt.UTC)
    security = header.findall(f"{{{NS['wsse']}}}Security")
    if len(security) != 1:
        raise _fail("En-tête wsse:Security absent ou répété")
    assertions = security[0].findall(f"{{{_SAML}}}Assertion")
    if len(assertions) != 1:
        raise _fail("wsse:Security doit contenir exactement un VIHF (saml2:Assertion)")
    assertion = assertions[0]
    if assertion.get("Version") != "2.0" or not assertion.get("ID"):
        raise _fail("VIHF : Version 2.0 et ID attendus")
    try:
        signed, cert = _verify_signature(assertion, trust, now)
    except XmlInputError:
        raise _fail("VIHF illisible") from None

    issued = _parse_time(signed.get("IssueInstant"), "IssueInstant")
    if issued > now + policy.skew:
        raise _fail("VIHF émis dans le futur")
    if issued < now - policy.max_age:
        raise _fail("VIHF expiré")
    conditions = signed.find(f"{{{_SAML}}}Conditions")
    if conditions is not None:
        if conditions.get("NotBefore") and now + policy.skew < _parse_time(conditions.get("NotBefore"), "NotBefore"):
            raise _fail("VIHF pas encore valide")
        if conditions.get("NotOnOrAfter") and now >= _parse_time(conditions.get("NotOnOrAfter"), "NotOnOrAfter"):
            raise _fail("VIHF expiré")

    issuer = signed.find(f"{{{_SAML}}}Issuer")
    if issuer is None or issuer.get("Format") != "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName":
        raise _fail("VIHF : Issuer au format X509SubjectName attendu")
    if not _names_equal((issuer.text or "").strip(), cert.subject):
        raise _fail("VIHF : l'Issuer n'est pas le DN du certificat signataire")
    name_id = (signed.findtext(f"{{{_SAML}}}Subject/{{{_SAML}}}NameID") or "").strip()
    if not name_id:
        raise _fail("VIHF : Subject/NameID absent")
    if not signed.findtext(
        f"{{{_SAML}}}AuthnStatement/{{{_SAML}}}AuthnContext/{{{_SAML}}}AuthnContextClassRef", ""
    ).strip():
        raise _fail("VIHF : AuthnStatement/AuthnContextClassRef absent")

    attrs = _attributes(signed)
    if _single(attrs, "VIHF_Version") not in {"3.0", "4.0"}:
        raise _fail("VIHF : VIHF_Version 3.0 attendue")
    mode = _single(attrs, "Authentification_mode", "Authentification_Mode")
    if mode not in _MODES:
        raise _fail("VIHF : Authentification_mode inconnu")
    structure = _single(attrs, "Identifiant_Structure")
    sector = _single(attrs, "Secteur_Activite")
    if not _SECTOR.match(sector):
        raise _fail("VIHF : Secteur_Activite au format SAxx^1.2.250.1.71.4.2.4 attendu")
    if _single(attrs, "Ressource_URN") != "urn:dmp":
        raise _fail("VIHF : Ressource_URN urn:dmp attendu")
    try:
        ins = parse_ins_cx(_single(attrs, "urn:oasis:names:tc:xacml:2.0:resource:resource-id"))
    except InsError as exc:
        raise _fail(f"VIHF : resource-id : {exc}") from None
    roles: list[tuple[str, str]] = []
    for value in attrs.get("urn:oasis:names:tc:xacml:2.0:subject:role", []):
        role = value.find(f"{{{_HL7}}}Role")
        if role is None or not role.get("code") or not role.get("codeSystem"):
            raise _fail("VIHF : rôle sans code ou codeSystem")
        roles.append((role.get("code", ""), role.get("codeSystem", "")))
    if not roles:
        raise _fail("VIHF : aucun rôle (subject:role)")
    if roles[0][1] == _PROFESSION_SYSTEM and roles[0][0] in _NEEDS_SPECIALTY and len(roles) < 2:
        raise _fail("Aucune spécialité dans le vihf pour cette profession")
    purposes = attrs.get("urn:oasis:names:tc:xspa:1.0:subject:purposeofuse", [])
    purpose_el = purposes[0].find(f"{{{_HL7}}}PurposeOfUse") if purposes else None
    if purpose_el is None or purpose_el.get("codeSystem") != _PURPOSE_SYSTEM:
        raise _fail("VIHF : purposeofuse (PurposeOfUse, 1.2.250.1.213.1.1.4.248) absent")
    purpose = purpose_el.get("code", "")
    if purpose not in _PURPOSES:
        raise _fail("VIHF : mode d'accès (purposeofuse) inconnu")
    _single(attrs, "LPS_Nom")
    _single(attrs, "LPS_Version")
    homologation = _single(attrs, "LPS_ID_HOMOLOGATION_DMP")
    if mode != "DIRECTE":
        _single(attrs, "urn:oasis:names:tc:xspa:1.0:subject:subject-id")
    check_vihf_values(
        mode=mode, name_id=name_id, structure_id=structure, sector=sector, roles=tuple(roles), signer=cert
    )
    return Vihf(name_id, structure, sector, mode, tuple(roles), ins, purpose, homologation, cert)


def check_tls_binding(vihf: Vihf, peer: x509.Certificate | None) -> None:
    """Direct mode: the TLS client certificate and the VIHF signer belong to the same card holder (same DN)."""
    if vihf.mode != "DIRECTE":
        return
    if peer is None or peer.subject != vihf.signer.subject:
        raise SoapFault(FaultCode.CERTIFICATE_MISMATCH, "Le porteur du certificat TLS n'est pas le signataire du VIHF")
