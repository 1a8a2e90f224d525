"""SOAP 1.2 envelopes with WS-Addressing and the VIHF, and reading of DMP answers (body, faults).

The header is laid out as in the official samples: MessageID, To, ReplyTo (anonymous), Action, then
`wsse:Security` holding the VIHF alone. `mustUnderstand` is written unqualified on ReplyTo and Action,
exactly as the samples (captured from accepted exchanges) do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bridge.dmp.codes import ResponseStatus
from bridge.dmp.failures import DmpFault, DmpInputError, RegistryError
from bridge.dmp.mtom import MtomPart, parse_mtom
from bridge.dmp.ns import EBRS_RS, SOAP11, SOAP12, WSA, WSSE, XML, q
from bridge.xmlsafe import parse_xml

__all__ = [
    "ANONYMOUS",
    "RegistryResult",
    "SoapResponse",
    "build_envelope",
    "envelope_bytes",
    "parse_fault",
    "parse_registry_response",
    "parse_soap_response",
]

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"


def build_envelope(
    body: Any,
    *,
    action: str,
    message_id: str,
    vihf: Any | None,
    to: str | None = None,
    soap_ns: str = SOAP12,
) -> Any:
    """Wrap a body element in a SOAP envelope with the WS-Addressing headers and the VIHF."""
    if not message_id.startswith("urn:uuid:"):
        raise ValueError("message_id must be a urn:uuid: URN")
    env = etree.Element(q(soap_ns, "Envelope"), nsmap={"soap": soap_ns})
    header = etree.SubElement(env, q(soap_ns, "Header"))
    etree.SubElement(header, q(WSA, "MessageID"), nsmap={None: WSA}).text = message_id
    to_el = etree.SubElement(header, q(WSA, "To"), nsmap={None: WSA})
    if to:
        to_el.text = to
    reply = etree.SubElement(header, q(WSA, "ReplyTo"), nsmap={None: WSA})
    reply.set("mustUnderstand", "true")
    etree.SubElement(reply, q(WSA, "Address")).text = ANONYMOUS
    action_el = etree.SubElement(header, q(WSA, "Action"), nsmap={None: WSA})
    action_el.set("mustUnderstand", "true")
    action_el.text = action
    if vihf is not None:
        security = etree.SubElement(header, q(WSSE, "Security"), nsmap={"wsse": WSSE})
        security.append(vihf)
    etree.SubElement(env, q(soap_ns, "Body")).append(body)
    return env


def envelope_bytes(envelope: Any) -> bytes:
    """UTF-8 bytes of an envelope, without XML declaration (as the samples)."""
    return bytes(etree.tostring(envelope, encoding="utf-8", xml_declaration=False))


@dataclass(frozen=True)
class SoapResponse:
    """A parsed DMP answer: the envelope, the first body child, a fault if any, and MTOM attachments."""

    envelope: Any
    body: Any | None
    fault: DmpFault | None
    attachments: dict[str, MtomPart] = field(default_factory=dict)
    action: str | None = None
    relates_to: str | None = None


def _soap_ns(envelope: Any) -> str:
    ns = etree.QName(envelope).namespace
    if etree.QName(envelope).localname != "Envelope" or ns not in (SOAP12, SOAP11):
        raise DmpInputError("answer is not a SOAP envelope")
    return str(ns)


def _texts(el: Any) -> str:
    return " ".join(t.strip() for t in el.itertext() if t.strip())


def parse_fault(envelope: Any) -> DmpFault | None:
    """The SOAP fault of an envelope as a DmpFault (SOAP 1.2 Code/Subcode/Reason/Detail, or SOAP 1.1)."""
    ns = _soap_ns(envelope)
    fault = envelope.find(f"{q(ns, 'Body')}/{q(ns, 'Fault')}")
    if fault is None:
        return None
    if ns == SOAP12:
        code = fault.findtext(f"{q(ns, 'Code')}/{q(ns, 'Value')}") or ""
        subcode = fault.findtext(f"{q(ns, 'Code')}/{q(ns, 'Subcode')}/{q(ns, 'Value')}")
        reasons = fault.findall(f"{q(ns, 'Reason')}/{q(ns, 'Text')}")
        reason = next((r.text or "" for r in reasons if r.get(q(XML, "lang"), "").startswith("fr")), None)
        if reason is None:
            reason = reasons[0].text or "" if reasons else ""
        detail_el = fault.find(q(ns, "Detail"))
    else:
        code = fault.findtext("faultcode") or ""
        subcode = None
        reason = fault.findtext("faultstring") or ""
        detail_el = fault.find("detail")
    errors: tuple[RegistryError, ...] = ()
    if detail_el is not None:
        for rr in detail_el.iter(q(EBRS_RS, "RegistryResponse")):
            errors = parse_registry_response(rr).errors
    return DmpFault(
        code=_local(code.strip()),
        subcode=_local(subcode.strip()) if subcode else None,
        reason=reason.strip(),
        detail=_texts(detail_el)[:500] if detail_el is not None else None,
        errors=errors,
    )


def _local(qname_text: str) -> str:
    # "soap:Sender" → "Sender"; the prefix is meaningless without its scope.
    return qname_text.split(":", 1)[1] if ":" in qname_text and "://" not in qname_text else qname_text


@dataclass(frozen=True)
class RegistryResult:
    """An ebRS RegistryResponse: status and its RegistryError list."""

    status: ResponseStatus
    errors: tuple[RegistryError, ...] = ()

    @property
    def ok(self) -> bool:
        """True on Success (warnings allowed)."""
        return self.status is ResponseStatus.SUCCESS

    def fault(self) -> DmpFault | None:
        """A DmpFault for a failed response (None on success)."""
        if self.ok and not any(e.is_error for e in self.errors):
            return None
        return DmpFault(code="RegistryFailure", subcode=None, reason=self.status.value, errors=self.errors)


def parse_registry_response(el: Any) -> RegistryResult:
    """Parse an element carrying an ebRS status and RegistryErrorList (RegistryResponse, AdhocQueryResponse…)."""
    status = ResponseStatus(el.get("status", ""))
    errors = tuple(
        RegistryError(
            error_code=e.get("errorCode", ""),
            code_context=e.get("codeContext", ""),
            severity=e.get("severity", ""),
            location=e.get("location"),
        )
        for e in el.findall(f"{q(EBRS_RS, 'RegistryErrorList')}/{q(EBRS_RS, 'RegistryError')}")
    )
    return RegistryResult(status=status, errors=errors)


def parse_soap_response(data: bytes, content_type: str | None = None, *, max_bytes: int | None = None) -> SoapResponse:
    """Parse a DMP HTTP answer body (plain SOAP or MTOM multipart) into a SoapResponse."""
    attachments: dict[str, MtomPart] = {}
    xml = data
    if content_type and content_type.lower().lstrip().startswith("multipart/"):
        message = parse_mtom(data, content_type)
        xml = message.root.data
        attachments = message.parts
    envelope = parse_xml(xml) if max_bytes is None else parse_xml(xml, max_bytes=max_bytes)
    ns = _soap_ns(envelope)
    body = envelope.find(q(ns, "Body"))
    if body is None:
        raise DmpInputError("SOAP envelope has no Body")
    first = next((c for c in body if isinstance(c.tag, str)), None)
    header = envelope.find(q(ns, "Header"))
    action = relates = None
    if header is not None:
        action = header.findtext(q(WSA, "Action"))
        relates = header.findtext(q(WSA, "RelatesTo"))
    return SoapResponse(
        envelope=envelope,
        body=first,
        fault=parse_fault(envelope),
        attachments=attachments,
        action=action.strip() if action else None,
        relates_to=relates.strip() if relates else None,
    )
