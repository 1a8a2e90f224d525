"""XML namespaces of the DMP wire format (SOAP, WS-Addressing, SAML, ebXML RegRep, IHE XDS.b, XML-DSig, XAdES)."""

from __future__ import annotations

__all__ = [
    "DS",
    "EBRS_LCM",
    "EBRS_QUERY",
    "EBRS_RIM",
    "EBRS_RS",
    "HL7",
    "SAML2",
    "SOAP11",
    "SOAP12",
    "WSA",
    "WSSE",
    "XADES111",
    "XDSB",
    "XML",
    "XOP",
    "XS",
    "XSI",
    "q",
]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
SAML2 = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XADES111 = "http://uri.etsi.org/01903/v1.1.1#"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML = "http://www.w3.org/XML/1998/namespace"
HL7 = "urn:hl7-org:v3"
XOP = "http://www.w3.org/2004/08/xop/include"
EBRS_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
EBRS_RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
EBRS_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
EBRS_QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"


def q(ns: str, local: str) -> str:
    """Clark notation `{ns}local` used by lxml."""
    return f"{{{ns}}}{local}"
