"""Checks of the XAdES signature document of an ITI-41 submission (notes §4, sample TD2.1-SignatureXades).

The signature must verify with a certificate of the test IGC-Santé, sign an IHE Manifest and the XAdES
SignedProperties, and its Manifest must name the submission set (`urn:oid:<uniqueId>`, placeholder
digest) and every document of the submission with the digest of its content (C14N with comments for
XML documents when the Reference says so, raw bytes otherwise).

The signed SigningCertificate must name the signer first (CertDigest of its DER with the stated digest,
IssuerSerial = its issuer and serial number) and then only certificates of its chain in the trust store:
the official sample lists signer, intermediate and root (RSA-SHA1), DRIMbox the signer only; both pass.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bridge.sim.dmp.constants import NS
from bridge.sim.dmp.errors import XdsError, XdsErrorCode
from bridge.sim.dmp.trust import TrustError, TrustStore, require_signature_usage
from bridge.sim.dmp.xmldsig import SignatureError, signer_certificate, verify
from bridge.xmlsafe import XmlInputError, parse_xml

__all__ = ["SignedDocument", "check_xades"]

_DS = NS["ds"]
_XADES = "http://uri.etsi.org/01903/v1.1.1#"
_C14N = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
}
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
_SIGNED_PROPERTIES_TYPES = frozenset(
    {"http://uri.etsi.org/01903/v1.1.1#SignedProperties", "http://uri.etsi.org/01903#SignedProperties"}
)


@dataclass(frozen=True)
class SignedDocument:
    """A document of the submission the signature must cover."""

    unique_id: str
    content: bytes
    is_xml: bool


def _fail(context: str) -> XdsError:
    return XdsError(XdsErrorCode.SIGNATURE, f"Signature XAdES du lot invalide : {context}", "Signature")


def _digest_of(ref: etree._Element, doc: SignedDocument) -> bytes:
    method = ref.find(f"{{{_DS}}}DigestMethod")
    algorithm = _DIGESTS.get(method.get("Algorithm", "") if method is not None else "")
    if algorithm is None:
        raise _fail("algorithme d'empreinte non accepté")
    transforms = [t.get("Algorithm", "") for t in ref.iterfind(f"{{{_DS}}}Transforms/{{{_DS}}}Transform")]
    data = doc.content
    if transforms:
        if len(transforms) != 1 or transforms[0] not in _C14N:
            raise _fail("transformation non acceptée dans le Manifest")
        exclusive, comments = _C14N[transforms[0]]
        try:
            tree = parse_xml(doc.content, large_text=True).getroottree()
        except XmlInputError:
            raise _fail("document XML illisible pour la canonicalisation") from None
        data = etree.tostring(tree, method="c14n", exclusive=exclusive, with_comments=comments)
    return hashlib.new(algorithm, data).digest()


def _same_name(text: str, name: x509.Name) -> bool:
    try:
        if x509.Name.from_rfc4514_string(text) == name:
            return True
    except ValueError:
        pass
    return text.replace(" ", "") == name.rfc4514_string().replace(" ", "")


def _names(cert_el: etree._Element, cert: x509.Certificate) -> bool:
    """Whether one xades:Cert (CertDigest, IssuerSerial) designates `cert`."""
    method = cert_el.find(f"{{{_XADES}}}CertDigest/{{{_XADES}}}DigestMethod")
    if method is None:
        method = cert_el.find(f"{{{_XADES}}}CertDigest/{{{_DS}}}DigestMethod")
    value = cert_el.find(f"{{{_XADES}}}CertDigest/{{{_XADES}}}DigestValue")
    if value is None:
        value = cert_el.find(f"{{{_XADES}}}CertDigest/{{{_DS}}}DigestValue")
    algorithm = _DIGESTS.get(method.get("Algorithm", "") if method is not None else "")
    if algorithm is None or value is None:
        return False
    der = cert.public_bytes(serialization.Encoding.DER)
    if base64.b64encode(hashlib.new(algorithm, der).digest()).decode() != (value.text or "").strip():
        return False
    issuer = (cert_el.findtext(f"{{{_XADES}}}IssuerSerial/{{{_DS}}}X509IssuerName") or "").strip()
    serial = (cert_el.findtext(f"{{{_XADES}}}IssuerSerial/{{{_DS}}}X509SerialNumber") or "").strip()
    return serial == str(cert.serial_number) and _same_name(issuer, cert.issuer)


def _check_signing_certificate(signed_props: etree._Element, signer: x509.Certificate, trust: TrustStore) -> None:
    certs = signed_props.findall(
        f"{{{_XADES}}}SignedSignatureProperties/{{{_XADES}}}SigningCertificate/{{{_XADES}}}Cert"
    )
    if not certs:
        raise _fail("SigningCertificate absent")
    if not _names(certs[0], signer):
        raise _fail("SigningCertificate ne désigne pas le certificat signataire (empreinte ou IssuerSerial)")
    for extra in certs[1:]:
        if not any(_names(extra, ca) for ca in trust.cas):
            raise _fail("SigningCertificate désigne un certificat hors de la chaîne du signataire")


def _in_object(element: etree._Element, root: etree._Element) -> bool:
    parent = element.getparent()
    return parent is not None and parent.tag == f"{{{_DS}}}Object" and parent.getparent() is root


def check_xades(
    signature_xml: bytes,
    submission_unique_id: str,
    documents: list[SignedDocument],
    trust: TrustStore,
    now: dt.datetime | None = None,
) -> x509.Certificate:
    """Verify the signature document of a submission; return the signer certificate or raise XdsError."""
    try:
        root = parse_xml(signature_xml)
    except XmlInputError:
        raise _fail("document de signature illisible") from None
    if root.tag != f"{{{_DS}}}Signature":
        raise _fail("ds:Signature attendu à la racine")
    try:
        cert = signer_certificate(root)
        trust.verify(cert, at=now)
        require_signature_usage(cert)
        references = verify(root, root, cert)
    except TrustError as exc:
        raise _fail(f"certificat du signataire refusé ({exc})") from None
    except SignatureError as exc:
        raise _fail(str(exc)) from None
    # The signed Manifest must be the one in this signature's own Object (not one smuggled elsewhere).
    manifests = [r.element for r in references if r.element.tag == f"{{{_DS}}}Manifest" and _in_object(r.element, root)]
    if len(manifests) != 1:
        raise _fail("le Manifest IHE n'est pas signé")
    signed_props = [r.element for r in references if r.type in _SIGNED_PROPERTIES_TYPES]
    if not signed_props:
        raise _fail("SignedProperties XAdES non signées")
    _check_signing_certificate(signed_props[0], cert, trust)
    by_uri = {f"urn:oid:{d.unique_id}": d for d in documents}
    seen: set[str] = set()
    for ref in manifests[0].iterfind(f"{{{_DS}}}Reference"):
        uri = ref.get("URI", "")
        if uri == f"urn:oid:{submission_unique_id}":
            seen.add(uri)  # the submission set itself: placeholder digest (AA==) in the official sample
            continue
        doc = by_uri.get(uri)
        if doc is None:
            raise _fail(f"référence inconnue dans le Manifest : {uri}")
        expected = (ref.findtext(f"{{{_DS}}}DigestValue") or "").strip()
        if base64.b64encode(_digest_of(ref, doc)).decode() != expected:
            raise _fail(f"empreinte différente pour {uri}")
        seen.add(uri)
    missing = ({f"urn:oid:{submission_unique_id}"} | set(by_uri)) - seen
    if missing:
        raise _fail("objets non couverts par la signature : " + ", ".join(sorted(missing)))
    return cert
