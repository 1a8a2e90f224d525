"""A small, strict XML-DSig verifier (lxml + cryptography) for the VIHF and the XAdES of submissions.

Why not signxml's verifier: it canonicalises SignedInfo as a subtree, where libxml2 writes spurious
`xmlns=""` on descendants when `ds` is the default namespace (the official XAdES sample's form), so
valid signatures fail. Here every canonicalised node is first copied out as a standalone document
(`tostring` carries the in-scope namespaces), which gives the node-set octets of inclusive C14N.

Only what the DMP messages use is supported: C14N 1.0 / exclusive C14N (with or without comments),
the enveloped-signature transform, RSA PKCS#1 v1.5 with SHA-1/SHA-2, same-document `#id` references.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

__all__ = ["SignatureError", "VerifiedReference", "signer_certificate", "verify"]

_DS = "http://www.w3.org/2000/09/xmldsig#"
_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
_C14N = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": (False, False),
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": (False, True),
    "http://www.w3.org/2001/10/xml-exc-c14n#": (True, False),
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments": (True, True),
}
_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
_ID_ATTRIBUTES = ("Id", "ID", "id")
_EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"


class SignatureError(ValueError):
    """The signature is malformed, uses an unsupported algorithm, or does not verify."""


@dataclass(frozen=True)
class VerifiedReference:
    """A SignedInfo reference whose digest matched: its URI, Type and the element it covers."""

    uri: str
    type: str
    element: etree._Element


def _ds(name: str) -> str:
    return f"{{{_DS}}}{name}"


def _standalone(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element, with_tail=False))


def _prefixes(method: etree._Element | None) -> list[str] | None:
    """InclusiveNamespaces/@PrefixList of an exclusive c14n method or transform (the kit signs with one)."""
    node = method.find(f"{{{_EXC_NS}}}InclusiveNamespaces") if method is not None else None
    return (node.get("PrefixList") or "").split() or None if node is not None else None


def _canonical(
    element: etree._Element, algorithm: str, *, comments_allowed: bool, prefixes: list[str] | None = None
) -> bytes:
    if algorithm not in _C14N:
        raise SignatureError(f"canonicalisation non acceptée : {algorithm}")
    exclusive, comments = _C14N[algorithm]
    octets = etree.tostring(
        _standalone(element),
        method="c14n",
        exclusive=exclusive,
        with_comments=comments and comments_allowed,
        inclusive_ns_prefixes=prefixes if exclusive else None,
    )
    return bytes(octets)


def signer_certificate(signature: etree._Element) -> x509.Certificate:
    """The certificate of KeyInfo/X509Data (exactly one X509Certificate expected first)."""
    node = signature.find(f"{_ds('KeyInfo')}/{_ds('X509Data')}/{_ds('X509Certificate')}")
    if node is None or not (node.text or "").strip():
        raise SignatureError("certificat du signataire absent (KeyInfo/X509Data)")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()), validate=True))
    except (ValueError, binascii.Error):
        raise SignatureError("certificat du signataire illisible") from None


def _by_id(root: etree._Element, ident: str) -> etree._Element:
    found = [e for e in root.iter() if isinstance(e.tag, str) and any(e.get(a) == ident for a in _ID_ATTRIBUTES)]
    if len(found) != 1:
        # Zero or several elements with this id: refuse (signature wrapping).
        raise SignatureError(f"référence #{ident} introuvable ou ambiguë")
    return found[0]


def _without_signature(element: etree._Element, signature: etree._Element) -> etree._Element:
    copy = _standalone(element)
    value = signature.findtext(_ds("SignatureValue"))
    for candidate in copy.iter(_ds("Signature")):
        if candidate.findtext(_ds("SignatureValue")) == value:
            parent = candidate.getparent()
            if parent is None:
                raise SignatureError("signature enveloppée sans parent")
            # Remove the node but keep its tail text, which belongs to the parent's content.
            previous = candidate.getprevious()
            if candidate.tail:
                if previous is not None:
                    previous.tail = (previous.tail or "") + candidate.tail
                else:
                    parent.text = (parent.text or "") + candidate.tail
            parent.remove(candidate)
            return copy
    raise SignatureError("signature enveloppée introuvable")


def _reference_octets(ref: etree._Element, target: etree._Element, signature: etree._Element) -> bytes:
    node = target
    c14n = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"  # default for a node set (XML-DSig §4.3.3.2)
    prefixes: list[str] | None = None
    for transform in ref.iterfind(f"{_ds('Transforms')}/{_ds('Transform')}"):
        algorithm = transform.get("Algorithm", "")
        if algorithm == _ENVELOPED:
            node = _without_signature(node, signature)
        elif algorithm in _C14N:
            c14n, prefixes = algorithm, _prefixes(transform)
        else:
            raise SignatureError(f"transformation non acceptée : {algorithm}")
    # A bare "#id" reference excludes comments whatever the canonicalisation says (XML-DSig §4.3.3.3).
    return _canonical(node, c14n, comments_allowed=False, prefixes=prefixes)


def verify(signature: etree._Element, root: etree._Element, cert: x509.Certificate) -> list[VerifiedReference]:
    """Verify SignedInfo's signature with `cert` and every reference digest; references resolve in `root`."""
    info = signature.find(_ds("SignedInfo"))
    if info is None:
        raise SignatureError("SignedInfo absent")
    c14n = info.find(_ds("CanonicalizationMethod"))
    method = info.find(_ds("SignatureMethod"))
    if c14n is None or method is None:
        raise SignatureError("CanonicalizationMethod ou SignatureMethod absent")
    hash_class = _SIGNATURE_HASHES.get(method.get("Algorithm", ""))
    if hash_class is None:
        raise SignatureError(f"algorithme de signature non accepté : {method.get('Algorithm')}")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("clé de signature RSA attendue")
    octets = _canonical(info, c14n.get("Algorithm", ""), comments_allowed=True, prefixes=_prefixes(c14n))
    try:
        value = base64.b64decode("".join((signature.findtext(_ds("SignatureValue")) or "").split()), validate=True)
        key.verify(value, octets, padding.PKCS1v15(), hash_class())
    except (InvalidSignature, ValueError, binascii.Error):
        raise SignatureError("valeur de signature invalide") from None
    verified: list[VerifiedReference] = []
    for ref in info.iterfind(_ds("Reference")):
        uri = ref.get("URI", "")
        if not uri.startswith("#") or len(uri) < 2:
            raise SignatureError(f"seules les références internes #id sont acceptées : {uri}")
        target = _by_id(root, uri[1:])
        digest_method = ref.find(_ds("DigestMethod"))
        algorithm = _DIGESTS.get(digest_method.get("Algorithm", "") if digest_method is not None else "")
        if algorithm is None:
            raise SignatureError("algorithme d'empreinte non accepté")
        digest = base64.b64encode(hashlib.new(algorithm, _reference_octets(ref, target, signature)).digest()).decode()
        if digest != "".join((ref.findtext(_ds("DigestValue")) or "").split()):
            raise SignatureError(f"empreinte différente pour la référence {uri}")
        verified.append(VerifiedReference(uri, ref.get("Type", ""), target))
    if not verified:
        raise SignatureError("SignedInfo sans référence")
    return verified
