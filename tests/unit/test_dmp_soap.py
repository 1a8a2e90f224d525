"""SOAP envelope, MTOM/XOP and DMP fault reading: layout against the official samples, hostile input refused."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

from bridge.dmp.codes import InsOid, ResponseStatus, WsaAction
from bridge.dmp.endpoints import Transaction, encode_request
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.mtom import MtomPart, build_mtom, parse_mtom
from bridge.dmp.ns import EBRS_RS, SAML2, SOAP12, q
from bridge.dmp.soap import build_envelope, envelope_bytes, parse_registry_response, parse_soap_response
from bridge.dmp.transactions import find_documents, retrieve_document_set
from bridge.dmp.vihf import PatientIns, build_vihf
from bridge.dmp.xds_parse import parse_retrieve_response
from bridge.errors import BridgeError, ErrorCode
from tests.unit._dmp_support import MESSAGES, needs_reference, sample_envelope, vihf_context
from tests.unit._xml_shape import parse_trusted, shape

PATIENT = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
MSG_ID = "urn:uuid:b9b2834a-0e3f-4029-aea8-f0e09ec951d7"
NO_VIHF = frozenset({q(SAML2, "Assertion")})


def vihf() -> Any:
    return build_vihf(vihf_context(patient=PATIENT))


@needs_reference
def test_find_documents_envelope_matches_td31_sample() -> None:
    ours = build_envelope(
        find_documents(PATIENT), action=WsaAction.REGISTRY_STORED_QUERY.value, message_id=MSG_ID, vihf=vihf()
    )
    theirs = parse_trusted(sample_envelope("TD3.1_Recherche-de-document_request.xml"))
    assert shape(ours, skip=NO_VIHF) == shape(theirs, skip=NO_VIHF)
    # Values too: the same patient and status filters as the sample.
    ours_values = [v.text for v in ours.iter("{*}Value")]
    theirs_values = [v.text for v in theirs.iter("{*}Value")]
    assert ours_values == theirs_values


@needs_reference
def test_retrieve_envelope_matches_td32_sample() -> None:
    ours = build_envelope(
        retrieve_document_set(["1.2.250.1.999.1.1.7898.1.995657292"]),
        action=WsaAction.RETRIEVE_DOCUMENT_SET.value,
        message_id=MSG_ID,
        vihf=vihf(),
    )
    theirs = parse_trusted(sample_envelope("TD3.2_Consultation-dun-document_request.xml"))
    assert shape(ours, skip=NO_VIHF) == shape(theirs, skip=NO_VIHF)


def test_envelope_header_order_and_values() -> None:
    env = build_envelope(
        etree.Element("x"), action="urn:a", message_id=MSG_ID, vihf=vihf(), to="https://dmp.example/registry"
    )
    header = env[0]
    assert [etree.QName(h).localname for h in header] == ["MessageID", "To", "ReplyTo", "Action", "Security"]
    assert header[1].text == "https://dmp.example/registry"
    assert header[3].get("mustUnderstand") == "true"
    assert len(header[4]) == 1 and header[4][0].tag == q(SAML2, "Assertion")
    with pytest.raises(ValueError):
        build_envelope(etree.Element("x"), action="a", message_id="123", vihf=None)


@needs_reference
@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("TD2.1_Alimentation_response.xml", "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"),
        ("TD3.3c_Supprimer-un-document_response.xml", "urn:ihe:iti:2010:UpdateDocumentSet-Response"),
        ("TD3.3d_Archiver-un-document_response.xml", "urn:ihe:iti:2010:UpdateDocumentSet-Response"),
    ],
)
def test_registry_responses_of_samples(name: str, action: str) -> None:
    resp = parse_soap_response((MESSAGES / name).read_bytes(), "application/soap+xml")
    assert resp.fault is None and resp.action == action and resp.relates_to
    result = parse_registry_response(resp.body)
    assert result.ok and result.fault() is None


FAULT = b"""<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><soap:Fault>
<soap:Code><soap:Value>soap:Sender</soap:Value><soap:Subcode><soap:Value>soap:DMPInvalidCertificate</soap:Value>
</soap:Subcode></soap:Code><soap:Reason><soap:Text xml:lang="fr">Le certificat ayant sign\xc3\xa9 le VIHF est invalide
</soap:Text></soap:Reason><soap:Detail><d>Not a valid signature certificate</d></soap:Detail></soap:Fault></soap:Body>
</soap:Envelope>"""


def test_soap12_fault_becomes_dmp_fault_value_and_error() -> None:
    resp = parse_soap_response(FAULT, "application/soap+xml; charset=utf-8")
    fault = resp.fault
    assert fault is not None
    assert (fault.code, fault.subcode) == ("Sender", "DMPInvalidCertificate")
    assert fault.reason.startswith("Le certificat")
    assert fault.detail == "Not a valid signature certificate"
    err = fault.to_error()
    assert isinstance(err, BridgeError) and err.code is ErrorCode.DMP_AUTHENTICATION_REFUSED
    assert err.to_data()["dmpCode"] == "DMPInvalidCertificate"


FAILURE = b"""<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>
<rs:RegistryResponse xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
 status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"><rs:RegistryErrorList>
<rs:RegistryError errorCode="XDSDocumentUniqueIdError" codeContext="Document inconnu"
 severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error" location="x"/>
<rs:RegistryError errorCode="W1" codeContext="w" severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"/>
</rs:RegistryErrorList></rs:RegistryResponse></soap:Body></soap:Envelope>"""


def test_registry_failure_error_list() -> None:
    resp = parse_soap_response(FAILURE)
    result = parse_registry_response(resp.body)
    assert result.status is ResponseStatus.FAILURE and not result.ok
    assert [e.error_code for e in result.errors] == ["XDSDocumentUniqueIdError", "W1"]
    assert [e.is_error for e in result.errors] == [True, False]
    fault = result.fault()
    assert fault is not None and fault.dmp_code == "XDSDocumentUniqueIdError"
    assert fault.to_error().detail == "XDSDocumentUniqueIdError"


def test_unknown_registry_status_refused() -> None:
    el = etree.Element(q(EBRS_RS, "RegistryResponse"), status="urn:bogus")
    with pytest.raises(DmpInputError):
        parse_registry_response(el)


def _mtom_answer(root: bytes, parts: list[MtomPart]) -> tuple[str, bytes]:
    return build_mtom(root, parts, boundary="uuid:0a1b2c3d-MIMEBoundary", root_id="root.message@cxf.apache.org")


@needs_reference
def test_mtom_retrieve_response_resolves_xop_part() -> None:
    envelope = (MESSAGES / "TD3.2_Consultation-dun-document_response.xml").read_bytes()
    cid = "b857abb7-a2c3-4db8-bd69-d5ff76826e72-2@urn:ihe:iti:xds-b:2007"
    document = b'<?xml version="1.0"?>\r\n<ClinicalDocument xmlns="urn:hl7-org:v3"/>\r\n--not-the-boundary\r\n'
    content_type, body = _mtom_answer(envelope, [MtomPart(cid, "application/octet-stream", document)])
    resp = parse_soap_response(body, content_type)
    assert resp.fault is None
    result = parse_retrieve_response(resp.body, resp.attachments)
    assert result.registry.ok
    [doc] = result.documents
    assert doc.document_unique_id == "1.2.250.1.999.1.1.7898.1.995657292"
    assert doc.mime_type == "text/xml" and doc.content == document
    assert "ClinicalDocument" not in repr(doc)


def test_mtom_fault_is_read() -> None:
    content_type, body = _mtom_answer(FAULT, [])
    resp = parse_soap_response(body, content_type)
    assert resp.fault is not None and resp.fault.subcode == "DMPInvalidCertificate"


def test_mtom_round_trip_and_headers() -> None:
    parts = [MtomPart("doc1@bridge", "text/xml", b"<a/>"), MtomPart("doc2@bridge", "application/pdf", b"%PDF\x00\xff")]
    content_type, body = build_mtom(b"<root/>", parts, boundary="MIME_b1", root_id="root@bridge", action="urn:x")
    assert content_type.startswith('multipart/related; type="application/xop+xml"; boundary="MIME_b1"')
    assert 'start="<root@bridge>"' in content_type and 'start-info="application/soap+xml"' in content_type
    message = parse_mtom(body, content_type)
    assert message.root.data == b"<root/>" and message.root.content_id == "root@bridge"
    assert message.parts == {p.content_id: p for p in parts}


def test_mtom_bad_input() -> None:
    with pytest.raises(DmpParamsError):
        build_mtom(b"<r/>", [MtomPart("a@b", "text/plain", b"x--B1y")], boundary="B1", root_id="r@b")
    with pytest.raises(DmpParamsError):
        build_mtom(b"<r/>", [], boundary="bad boundary\r\n", root_id="r@b")
    with pytest.raises(DmpInputError):
        parse_mtom(b"--B1\r\nContent-ID: <r>\r\n\r\n<r/>", 'multipart/related; boundary="B1"')
    with pytest.raises(DmpInputError):
        parse_mtom(b"nothing", "multipart/related")


HOSTILE = [
    b'<!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><soap:Envelope xmlns:soap="'
    + SOAP12.encode()
    + b'"><soap:Body>&x;</soap:Body></soap:Envelope>',
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    b"<lolz>&lol2;</lolz>",
    b"<soap:Envelope xmlns:soap='" + SOAP12.encode() + b"'><soap:Body><unclosed></soap:Body></soap:Envelope>",
]


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_answers_refused(data: bytes) -> None:
    with pytest.raises(BridgeError) as info:
        parse_soap_response(data, "application/soap+xml")
    assert info.value.code is ErrorCode.INVALID_INPUT
    content_type, body = _mtom_answer(data, [])
    with pytest.raises(BridgeError):
        parse_soap_response(body, content_type)


def test_oversized_and_non_soap_answers_refused() -> None:
    with pytest.raises(BridgeError):
        parse_soap_response(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1000)
    with pytest.raises(DmpInputError):
        parse_soap_response(b"<html><body>proxy error</body></html>")


def test_envelope_bytes_is_utf8_without_declaration() -> None:
    data = envelope_bytes(build_envelope(etree.Element("x"), action="a", message_id=MSG_ID, vihf=vihf()))
    assert data.startswith(b"<soap:Envelope") and "Médecin".encode() in data


@needs_reference
def test_header_matches_td02_sample() -> None:
    ours = build_envelope(
        etree.Element("{urn:hl7-org:v3}PRPA_IN201307UV02"),
        action=WsaAction.PRPA_IN201307UV02.value,
        message_id=MSG_ID,
        vihf=vihf(),
    )
    theirs = parse_trusted(sample_envelope("TD0.2_Test-dexistence_request.xml"))
    assert shape(ours[0], skip=NO_VIHF) == shape(theirs[0], skip=NO_VIHF)


def test_encode_request_plain_and_mtom() -> None:
    content_type, data = encode_request(
        find_documents(PATIENT), transaction=Transaction.TD3_1, message_id=MSG_ID, vihf=vihf()
    )
    assert content_type == 'application/soap+xml; charset=UTF-8; action="urn:ihe:iti:2007:RegistryStoredQuery"'
    resp = parse_soap_response(data, content_type)
    assert resp.action == "urn:ihe:iti:2007:RegistryStoredQuery"
    assert Transaction.TD3_1.endpoint.path == "registry" and Transaction.TD2_1.endpoint.path == "repository"
    part = MtomPart("d@b", "text/xml", b"<doc/>")
    content_type, data = encode_request(
        etree.Element("{urn:ihe:iti:xds-b:2007}ProvideAndRegisterDocumentSetRequest"),
        transaction=Transaction.TD2_1,
        message_id=MSG_ID,
        vihf=vihf(),
        parts=[part],
        boundary="MIMEb1",
    )
    assert content_type.startswith("multipart/related")
    message = parse_mtom(data, content_type)
    assert message.parts["d@b"].data == b"<doc/>"
    with pytest.raises(ValueError):
        encode_request(etree.Element("x"), transaction=Transaction.TD2_1, message_id=MSG_ID, vihf=None)
