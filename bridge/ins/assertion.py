"""The INSi's wsse:Security assertion in CPS mode: a SAML 2.0 assertion signed by the CPS.

Layout from the official sample `WS_INS2_rechercherInsAvecTraitsIdentite_request.xml`: `Assertion`
(ID, IssueInstant, Version 2.0), `Issuer` (X509SubjectName = the signer's subject DN), the enveloped
signature right after Issuer (exclusive c14n, RSA-SHA256, KeyInfo = the certificate), `Subject/NameID`
with NameQualifier="CPS" holding the card holder's identifier, and an `AttributeStatement` with
`identifiantFacturation` (the situation's billing number) when the card has one. The signature follows
the VIHF's rules exactly, so `bridge.dmp.vihf.sign_vihf` signs it (one signer for both).

An establishment calling with its INSI-AUTO / INSI-MANU certificate authenticates by mutual TLS only
and sends no assertion (`padoa/tlsi-ins`: `initClientPfx` sets TLS client authentication and no
Security header); see docs/api.md for what no public source settles.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from bridge.dmp.ns import SAML2, XS, XSI, q
from bridge.dmp.vihf import issuer_dn, saml_instant, sign_vihf

__all__ = ["NAME_QUALIFIER", "build_ps_assertion", "signed_ps_assertion"]

NAME_QUALIFIER = "CPS"
_X509_SUBJECT = "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
_BILLING = "identifiantFacturation"


def build_ps_assertion(
    *, assertion_id: str, now: dt.datetime, issuer: str, holder_id: str, billing_id: str | None
) -> Any:
    """The unsigned assertion, laid out like the sample."""
    root = etree.Element(q(SAML2, "Assertion"), nsmap={"saml2": SAML2})
    root.set("ID", assertion_id)
    root.set("IssueInstant", saml_instant(now))
    root.set("Version", "2.0")
    etree.SubElement(root, q(SAML2, "Issuer"), Format=_X509_SUBJECT).text = issuer
    subject = etree.SubElement(root, q(SAML2, "Subject"))
    etree.SubElement(subject, q(SAML2, "NameID"), NameQualifier=NAME_QUALIFIER).text = holder_id
    if billing_id:
        stmt = etree.SubElement(root, q(SAML2, "AttributeStatement"))
        attr = etree.SubElement(stmt, q(SAML2, "Attribute"), Name=_BILLING)
        value = etree.SubElement(attr, q(SAML2, "AttributeValue"), nsmap={"xs": XS, "xsi": XSI})
        value.set(q(XSI, "type"), "xs:string")
        value.text = billing_id
    return root


def signed_ps_assertion(
    *,
    key: rsa.RSAPrivateKey,
    chain: tuple[x509.Certificate, ...],
    assertion_id: str,
    now: dt.datetime,
    holder_id: str,
    billing_id: str | None,
) -> Any:
    """Build and sign the assertion with the card's key (blocks while the card signs: call off the loop)."""
    unsigned = build_ps_assertion(
        assertion_id=assertion_id, now=now, issuer=issuer_dn(chain[0]), holder_id=holder_id, billing_id=billing_id
    )
    return sign_vihf(unsigned, key, chain)
