"""SOAP 1.2 envelope checks, WS-Addressing headers, faults and answer envelopes (sans-IO).

Faults are shaped like the DMP's (notes §2: `soap:Sender` with a `soap:DMP...` subcode and a French
reason). Subcodes other than `DMPInvalidCertificate` are assumptions, listed in `FaultCode`.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from lxml import etree

from bridge.sim.dmp.constants import ADDRESSING_ANONYMOUS, NS

__all__ = [
    "FaultCode",
    "SoapFault",
    "SoapRequest",
    "build_envelope",
    "build_fault",
    "parse_envelope",
]

_SOAP = NS["soap"]
_WSA = NS["wsa"]


class FaultCode(enum.Enum):
    """SOAP fault subcodes (value) with the SOAP 1.2 code family (`sender`)."""

    # Seen in the wild (Dehempe notes): the VIHF signer certificate is not acceptable.
    INVALID_CERTIFICATE = "DMPInvalidCertificate"
    # Assumed names below (no public catalogue): VIHF missing/malformed/expired, bad signature.
    INVALID_VIHF = "DMPInvalidVIHF"
    INVALID_SIGNATURE = "DMPInvalidSignature"
    # The TLS client certificate does not match the VIHF signer in direct mode.
    CERTIFICATE_MISMATCH = "DMPCertificateMismatch"
    # Malformed, hostile (DTD/entities) or unreadable request.
    INVALID_REQUEST = "DMPInvalidRequest"
    # Standard WS-Addressing faults (SOAP 1.2 binding of WS-Addressing 1.0).
    ACTION_NOT_SUPPORTED = "wsa:ActionNotSupported"
    MISSING_HEADER = "wsa:MessageAddressingHeaderRequired"
    # The patient's DMP is closed (seen in TD1.4 notes).
    DMP_CLOSED = "DMPClosed"
    # Anything unexpected on our side.
    INTERNAL = "DMPInternalError"
    # The rights matrix (PDT-INF-526) refuses the transaction to this actor: PDT-INF-527 names this code.
    ACCESS_DENIED_BY_RIGHTS = "DMPAccessDeniedByRightsService"
    # Access refusals of the patient-level transactions (issue 10): assumed names (no public catalogue),
    # mapped by the client in bridge/dmp/refusals.py.
    PATIENT_NOT_FOUND = "DMPPatientNotFound"
    ACCESS_DENIED = "DMPAccessDenied"
    ACCESS_DENIED_BY_PATIENT = "DMPAccessDeniedByPatient"
    AUTHORIZATION_EXPIRED = "DMPAuthorizationExpired"
    NOT_ALLOWED_FOR_MES = "DMPNotAllowedForMesDmp"


@dataclass(frozen=True)
class SoapFault(Exception):
    """A fault to answer with; `version_mismatch` for a non-SOAP-1.2 envelope."""

    code: FaultCode
    reason: str
    version_mismatch: bool = False

    @property
    def http_status(self) -> int:
        """SOAP 1.2 HTTP binding: Sender faults are 400, the rest 500."""
        return 500 if self.code is FaultCode.INTERNAL else 400


@dataclass(frozen=True)
class SoapRequest:
    """What the simulator needs from an incoming envelope."""

    envelope: etree._Element
    header: etree._Element
    body_child: etree._Element
    action: str
    message_id: str


def _text(node: etree._Element | None) -> str:
    return (node.text or "").strip() if node is not None else ""


def parse_envelope(root: etree._Element) -> SoapRequest:
    """Check the envelope (SOAP 1.2, Header, one Body child) and the WS-Addressing headers."""
    if root.tag == f"{{{NS['soap11']}}}Envelope":
        raise SoapFault(
            FaultCode.INVALID_REQUEST, "Enveloppe SOAP 1.1 refusée : SOAP 1.2 attendu", version_mismatch=True
        )
    if root.tag != f"{{{_SOAP}}}Envelope":
        raise SoapFault(FaultCode.INVALID_REQUEST, "Le message n'est pas une enveloppe SOAP 1.2")
    header = root.find(f"{{{_SOAP}}}Header")
    body = root.find(f"{{{_SOAP}}}Body")
    if header is None or body is None:
        raise SoapFault(FaultCode.INVALID_REQUEST, "Enveloppe SOAP sans Header ou sans Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault(FaultCode.INVALID_REQUEST, "Le Body SOAP doit contenir exactement un élément")
    action_node = header.find(f"{{{_WSA}}}Action")
    if action_node is None or not _text(action_node):
        raise SoapFault(FaultCode.MISSING_HEADER, "En-tête WS-Addressing Action absent")
    message_id = _text(header.find(f"{{{_WSA}}}MessageID"))
    if not message_id:
        raise SoapFault(FaultCode.MISSING_HEADER, "En-tête WS-Addressing MessageID absent")
    reply_to = header.find(f"{{{_WSA}}}ReplyTo/{{{_WSA}}}Address")
    if reply_to is not None and _text(reply_to) != ADDRESSING_ANONYMOUS:
        raise SoapFault(FaultCode.INVALID_REQUEST, "ReplyTo doit être anonyme")
    return SoapRequest(root, header, children[0], _text(action_node), message_id)


def _header(action: str, relates_to: str | None) -> etree._Element:
    header = etree.Element(f"{{{_SOAP}}}Header", nsmap={"soap": _SOAP})
    for name, value in (
        ("Action", action),
        ("MessageID", f"urn:uuid:{uuid.uuid4()}"),
        ("To", ADDRESSING_ANONYMOUS),
        ("RelatesTo", relates_to),
    ):
        if value:
            etree.SubElement(header, f"{{{_WSA}}}{name}", nsmap={None: _WSA}).text = value
    return header


def build_envelope(action: str, relates_to: str | None, body_child: etree._Element) -> bytes:
    """A SOAP 1.2 answer with Action/MessageID/To/RelatesTo, as in the official sample responses."""
    env = etree.Element(f"{{{_SOAP}}}Envelope", nsmap={"soap": _SOAP})
    env.append(_header(action, relates_to))
    etree.SubElement(env, f"{{{_SOAP}}}Body").append(body_child)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def build_fault(fault: SoapFault, relates_to: str | None) -> bytes:
    """A SOAP 1.2 fault: Code/Value soap:Sender (or VersionMismatch) + Subcode + French Reason."""
    fault_el = etree.Element(f"{{{_SOAP}}}Fault", nsmap={"soap": _SOAP})
    code = etree.SubElement(fault_el, f"{{{_SOAP}}}Code")
    if fault.version_mismatch:
        etree.SubElement(code, f"{{{_SOAP}}}Value").text = "soap:VersionMismatch"
    else:
        family = "soap:Receiver" if fault.code is FaultCode.INTERNAL else "soap:Sender"
        etree.SubElement(code, f"{{{_SOAP}}}Value").text = family
        sub = etree.SubElement(etree.SubElement(code, f"{{{_SOAP}}}Subcode"), f"{{{_SOAP}}}Value")
        if fault.code.value.startswith("wsa:"):
            sub = _with_ns(sub, "wsa", _WSA)
            sub.text = fault.code.value
        else:
            sub.text = f"soap:{fault.code.value}"
    reason = etree.SubElement(etree.SubElement(fault_el, f"{{{_SOAP}}}Reason"), f"{{{_SOAP}}}Text")
    reason.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    reason.text = fault.reason
    return build_envelope("http://www.w3.org/2005/08/addressing/soap/fault", relates_to, fault_el)


def _with_ns(element: etree._Element, prefix: str, uri: str) -> etree._Element:
    # lxml cannot add a namespace declaration to an existing element: rebuild it with the prefix declared.
    parent = element.getparent()
    new = etree.Element(element.tag, nsmap={prefix: uri})
    if parent is not None:
        parent.replace(element, new)
    return new
