"""The XAdES signature of a TD2.1 submission set, and its registration as its own DocumentEntry.

Shape of the official `TD2.1-SignatureXades.xml` (IHE DSG over XAdES 1.1.1): a detached `Signature` whose
SignedInfo (inclusive c14n with comments) references the `IHEManifest` (one Reference per document,
`urn:oid:<uniqueId>`, plus the submission set with the placeholder digest `AA==`) and the XAdES
`SignedProperties` (signing time, digest and issuer/serial of the signer's certificates, implied
policy). signxml cannot produce this shape (XAdES 1.1.1), so it is built with lxml and signed with
any cryptography RSAPrivateKey (`key.sign`, PKCS#1 v1.5), a card-backed key included.

Signature profile — the one place it is decided (docs/api.md « Profil de signature » says the same):
- The official sample `TD2.1-SignatureXades.xml` (DMP_LPS « Exemple de messages » v02.05.00) signs with
  RSA-SHA1, SHA-1 digests, and lists three certificates in SigningCertificate: the signer, its
  intermediate CA and the root (KeyInfo holds the signer only).
- ANS's DRIMbox (`ansforge/DRIM-M_DRIMbox`, `dmp/xades/XadesSign.java`) signs with RSA-SHA1 and SHA-1
  digests, and lists the signer's certificate only.
- PDT-INF-579v4 (2025) lists the TLS suites of the DMP only: it says nothing about XML signatures. No
  DMP statement accepting SHA-256 in the XAdES was found (the ANS IG's 2024 VIHF example uses SHA-256,
  for the VIHF only).
So the default profile is the official sample's: RSA-SHA1 and the chain (`XadesProfile()`); SHA-256 and
the signer-only list are configuration (`[dmp] xades_algorithm`, `xades_certificates`), to follow a
newer DMP statement without a release. The simulator accepts both and checks that SigningCertificate
names the signer (digest and IssuerSerial) and only certificates of its chain.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from bridge.dmp.codes import Confidentiality, SignatureAlgorithm
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.ns import DS, XADES111, q
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Author, Code, DocumentEntry, Person, confidentiality_code
from bridge.xmlsafe import parse_xml

__all__ = [
    "C14N_WITH_COMMENTS",
    "MANIFEST_ID",
    "OFFICIAL_PROFILE",
    "PURPOSE_SOURCE",
    "SIGNED_PROPERTIES_ID",
    "SignedDocument",
    "XadesProfile",
    "build_xades_signature",
    "document_digest",
    "signature_entry",
]

C14N_WITH_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
MANIFEST_ID = "IHEManifest"
SIGNED_PROPERTIES_ID = "S0-SignedProperties"
#: purposeOfSignature / eventCode "Source" (ISO 17090 signature purpose 1.2.840.10065.1.12.1.14).
PURPOSE_SOURCE = "1.2.840.10065.1.12.1.14"
_MANIFEST_TYPE = "http://www.w3.org/2000/09/xmldsig#Manifest"
_SIGNED_PROPS_TYPE = "http://uri.etsi.org/01903/v1.1.1#SignedProperties"


@dataclass(frozen=True)
class XadesProfile:
    """How the submission-set signature is made (see the module docstring for the choice of default)."""

    #: Signature method and the paired digests (Manifest, SignedProperties, certificate digests).
    algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA1
    #: SigningCertificate lists the whole chain (official sample) or the signer only (DRIMbox).
    whole_chain: bool = True

    @classmethod
    def from_names(cls, algorithm: str, certificates: str) -> XadesProfile:
        """From the config's names: algorithm "rsa-sha1" | "rsa-sha256", certificates "chain" | "leaf"."""
        algorithms = {"rsa-sha1": SignatureAlgorithm.RSA_SHA1, "rsa-sha256": SignatureAlgorithm.RSA_SHA256}
        if algorithm not in algorithms or certificates not in ("chain", "leaf"):
            raise DmpParamsError("xades profile: algorithm rsa-sha1|rsa-sha256, certificates chain|leaf")
        return cls(algorithms[algorithm], certificates == "chain")


#: The official sample's profile, the default.
OFFICIAL_PROFILE = XadesProfile()


@dataclass(frozen=True)
class SignedDocument:
    """A document of the lot: its XDS uniqueId and bytes (XML documents are digested after c14n)."""

    unique_id: str
    content: bytes
    xml: bool = True

    def __repr__(self) -> str:
        return f"SignedDocument({self.unique_id!r}, {len(self.content)} bytes)"


def _hash(algorithm: SignatureAlgorithm) -> hashes.HashAlgorithm:
    return hashes.SHA1() if algorithm is SignatureAlgorithm.RSA_SHA1 else hashes.SHA256()


def _b64digest(data: bytes, algorithm: SignatureAlgorithm) -> str:
    return base64.b64encode(hashlib.new(algorithm.hash_name, data).digest()).decode("ascii")


def document_digest(doc: SignedDocument, algorithm: SignatureAlgorithm) -> str:
    """Manifest digest of one document: c14n with comments for XML (the Reference's transform), raw otherwise."""
    if doc.xml:
        tree = parse_xml(doc.content, large_text=True).getroottree()
        data = etree.tostring(tree, method="c14n", exclusive=False, with_comments=True)
    else:
        data = doc.content
    return _b64digest(data, algorithm)


def _ds(parent: Any, local: str, **attrs: str) -> Any:
    return etree.SubElement(parent, q(DS, local), attrs)


def _reference(parent: Any, uri: str, algorithm: SignatureAlgorithm, *, ref_type: str | None = None) -> Any:
    attrs = {"Type": ref_type, "URI": uri} if ref_type else {"URI": uri}
    ref = _ds(parent, "Reference", **attrs)
    return ref


def _digest(ref: Any, algorithm: SignatureAlgorithm, value: str) -> None:
    _ds(ref, "DigestMethod", Algorithm=algorithm.digest_uri)
    _ds(ref, "DigestValue").text = value


def _c14n(el: Any, *, comments: bool) -> bytes:
    # lxml's c14n of a non-root element writes spurious xmlns="" on descendants (lxml 6.1 / libxml2
    # 2.14), so the subtree is copied out first; the copy carries the in-scope namespaces it uses, which
    # in these trees are all of them, so inclusive c14n gives the same octets as over the node set.
    return bytes(etree.tostring(copy.deepcopy(el), method="c14n", exclusive=False, with_comments=comments))


def build_xades_signature(
    *,
    signature_id: str,
    submission_set_unique_id: str,
    documents: Sequence[SignedDocument],
    signing_time: dt.datetime,
    key: rsa.RSAPrivateKey,
    cert_chain: Sequence[x509.Certificate],
    profile: XadesProfile = OFFICIAL_PROFILE,
) -> Any:
    """Build and sign the submission-set signature document (root `ds:Signature`).

    `cert_chain` is the signer's certificate first, then its issuers (as far as known).
    """
    algorithm = profile.algorithm
    if not cert_chain:
        raise DmpParamsError("the XAdES signature needs the signer certificate")
    if not documents:
        raise DmpParamsError("the XAdES signature signs at least one document")
    if signing_time.tzinfo is None:
        raise DmpParamsError("signing time must be timezone-aware")
    sig = etree.Element(q(DS, "Signature"), nsmap={None: DS})
    sig.set("Id", signature_id)
    signed_info = _ds(sig, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=C14N_WITH_COMMENTS)
    _ds(signed_info, "SignatureMethod", Algorithm=algorithm.value)
    manifest_ref = _reference(signed_info, f"#{MANIFEST_ID}", algorithm, ref_type=_MANIFEST_TYPE)
    props_ref = _reference(signed_info, f"#{SIGNED_PROPERTIES_ID}", algorithm, ref_type=_SIGNED_PROPS_TYPE)
    signature_value = _ds(sig, "SignatureValue")
    key_info = _ds(sig, "KeyInfo")
    x509_data = _ds(key_info, "X509Data")
    _ds(x509_data, "X509Certificate").text = base64.b64encode(
        cert_chain[0].public_bytes(serialization.Encoding.DER)
    ).decode("ascii")

    manifest = _ds(_ds(sig, "Object"), "Manifest", Id=MANIFEST_ID)
    # The submission set itself is referenced with a placeholder digest, as IHE DSG and the sample do.
    _digest(_reference(manifest, f"urn:oid:{submission_set_unique_id}", algorithm), algorithm, "AA==")
    for doc in documents:
        ref = _reference(manifest, f"urn:oid:{doc.unique_id}", algorithm)
        if doc.xml:
            _ds(_ds(ref, "Transforms"), "Transform", Algorithm=C14N_WITH_COMMENTS)
        _digest(ref, algorithm, document_digest(doc, algorithm))

    # The sample puts SignatureProperties in no namespace (xmlns=""); kept so the DMP sees the same shape.
    # lxml only writes the xmlns="" undeclaration for nodes parsed with it, hence the constant fragment.
    sig_props = parse_xml(
        b'<SignatureProperties xmlns=""><SignatureProperty Id="purposeOfSignature"/></SignatureProperties>'
    )
    sig_props[0].set("Target", f"#{signature_id}")
    sig_props[0].text = PURPOSE_SOURCE
    _ds(sig, "Object").append(sig_props)

    qualifying = etree.SubElement(
        _ds(sig, "Object"), q(XADES111, "QualifyingProperties"), nsmap={None: XADES111}, Target=f"#{signature_id}"
    )
    signed_props = etree.SubElement(qualifying, q(XADES111, "SignedProperties"), Id=SIGNED_PROPERTIES_ID)
    ssp = etree.SubElement(signed_props, q(XADES111, "SignedSignatureProperties"))
    etree.SubElement(ssp, q(XADES111, "SigningTime")).text = signing_time.isoformat(timespec="milliseconds")
    signing_cert = etree.SubElement(ssp, q(XADES111, "SigningCertificate"))
    for cert in cert_chain if profile.whole_chain else cert_chain[:1]:
        cert_el = etree.SubElement(signing_cert, q(XADES111, "Cert"))
        cert_digest = etree.SubElement(cert_el, q(XADES111, "CertDigest"))
        # DigestMethod/DigestValue in the XAdES namespace, as in the official sample.
        etree.SubElement(cert_digest, q(XADES111, "DigestMethod"), Algorithm=algorithm.digest_uri)
        der = cert.public_bytes(serialization.Encoding.DER)
        etree.SubElement(cert_digest, q(XADES111, "DigestValue")).text = _b64digest(der, algorithm)
        issuer_serial = etree.SubElement(cert_el, q(XADES111, "IssuerSerial"))
        etree.SubElement(issuer_serial, q(DS, "X509IssuerName"), nsmap={None: DS}).text = cert.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, q(DS, "X509SerialNumber"), nsmap={None: DS}).text = str(cert.serial_number)
    policy = etree.SubElement(ssp, q(XADES111, "SignaturePolicyIdentifier"))
    etree.SubElement(policy, q(XADES111, "SignaturePolicyImplied"))
    etree.SubElement(signed_props, q(XADES111, "SignedDataObjectProperties"))

    # Same-document references without transforms: the node set is canonicalised with inclusive c14n
    # without comments (XML-DSig 4.3.3.3); only SignedInfo uses the declared c14n with comments.
    _digest(manifest_ref, algorithm, _b64digest(_c14n(manifest, comments=False), algorithm))
    _digest(props_ref, algorithm, _b64digest(_c14n(signed_props, comments=False), algorithm))
    raw = key.sign(_c14n(signed_info, comments=True), padding.PKCS1v15(), _hash(algorithm))
    signature_value.text = base64.b64encode(raw).decode("ascii")
    return sig


def signature_entry(
    *,
    entry_id: str,
    unique_id: str,
    patient: PatientIns,
    authors: tuple[Author, ...],
    legal_authenticator: Person | None,
    time: str,
    facility_type: Code,
    practice_setting: Code,
) -> DocumentEntry:
    """The DocumentEntry registering the signature document (codes of the TD2.1 sample's `Signature01`)."""
    return DocumentEntry(
        entry_id=entry_id,
        unique_id=unique_id,
        patient=patient,
        mime_type="text/xml",
        title="Source",
        class_code=Code("urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1", "URN", "Digital Signature"),
        type_code=Code("E1762", "ASTM", "Full Document"),
        format_code=Code("http://www.w3.org/2000/09/xmldsig#", "URN", "Default Signature Style"),
        facility_type=facility_type,
        practice_setting=practice_setting,
        authors=authors,
        confidentiality=(
            confidentiality_code(Confidentiality.NORMAL),
            confidentiality_code(Confidentiality.MASQUE_PS),
            confidentiality_code(Confidentiality.INVISIBLE_PATIENT),
        ),
        creation_time=time,
        service_start=time,
        service_stop=time,
        language="art",
        legal_authenticator=legal_authenticator,
        source_patient_id=patient.cx(),
        event_codes=(Code(PURPOSE_SOURCE, "1.2.840.10065.1.12", "Source"),),
    )
