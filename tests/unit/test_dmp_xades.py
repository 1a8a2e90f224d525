"""XAdES submission-set signature: layout of the official sample, xmlsec1 verification, manifest digests,
signature DocumentEntry, and a whole TD2.1 lot (CDA + signature + metadata + MTOM) read back."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from bridge.dmp.cda import CdaHeader, CdaPatient, wrap_unstructured
from bridge.dmp.cda_header import read_cda_metadata
from bridge.dmp.codes import AssociationType, DocFormat, InsOid, SignatureAlgorithm, WsaAction
from bridge.dmp.failures import DmpParamsError
from bridge.dmp.mtom import MtomPart, build_mtom, parse_mtom, resolve_xop
from bridge.dmp.ns import DS, XADES111, XDSB, q
from bridge.dmp.soap import build_envelope, envelope_bytes
from bridge.dmp.transactions import provide_and_register
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xades import SignedDocument, XadesProfile, build_xades_signature, document_digest, signature_entry
from bridge.dmp.xds_model import Author, Code, DocumentEntry, Institution, Person, SubmissionSet, format_code
from bridge.dmp.xds_parse import parse_submit_objects
from bridge.xmlsafe import parse_xml
from tests.unit._dmp_support import (
    MESSAGES,
    Signer,
    needs_reference,
    needs_xmlsec1,
    sample_body,
    signer,  # noqa: F401  (session fixture)
    xmlsec1_verify,
)
from tests.unit._xml_shape import parse_trusted, shape_set

NOW = dt.datetime(2024, 5, 6, 9, 10, 11, 250000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
PATIENT = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
CDA = b'<?xml version="1.0"?>\n<!-- c --><ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.3"/></ClinicalDocument>'
XMLSEC_IDS = (
    "--id-attr:Id",
    "http://www.w3.org/2000/09/xmldsig#:Manifest",
    "--id-attr:Id",
    "http://uri.etsi.org/01903/v1.1.1#:SignedProperties",
    "--ignore-manifests",
)


def sign(who: Signer, algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256, content: bytes = CDA) -> Any:
    return build_xades_signature(
        signature_id="0421d1cc-b27b-4b0d-bab2-7ebcd54d47f6",
        submission_set_unique_id="1.2.250.1.999.1.1.7898.1.1",
        documents=[SignedDocument("1.2.250.1.999.1.1.7898.3.1", content)],
        signing_time=NOW,
        key=who.key,
        cert_chain=[who.cert, who.ca_cert],
        profile=XadesProfile(algorithm),
    )


def verify(tmp_path: Path, who: Signer, data: bytes) -> Any:
    path = tmp_path / "sig.xml"
    path.write_bytes(data)
    return xmlsec1_verify(path, "--trusted-pem", str(who.ca_pem), *XMLSEC_IDS)


@needs_reference
def test_layout_matches_official_xades_sample(signer: Signer) -> None:  # noqa: F811
    ours = parse_xml(etree.tostring(sign(signer, SignatureAlgorithm.RSA_SHA1)))
    theirs = parse_trusted((MESSAGES / "TD2.1-SignatureXades.xml").read_bytes())
    assert shape_set(ours) == shape_set(theirs)
    props = ours.find(f".//{q(XADES111, 'SignedSignatureProperties')}")
    assert props.findtext(q(XADES111, "SigningTime")) == "2024-05-06T09:10:11.250+02:00"
    serials = [e.text for e in props.iter(q(DS, "X509SerialNumber"))]
    assert serials == [str(signer.cert.serial_number), str(signer.ca_cert.serial_number)]


@needs_xmlsec1
@pytest.mark.parametrize("algorithm", list(SignatureAlgorithm))
def test_xmlsec1_verifies_signed_info(algorithm: SignatureAlgorithm, signer: Signer, tmp_path: Path) -> None:  # noqa: F811
    proc = verify(tmp_path, signer, etree.tostring(sign(signer, algorithm)))
    assert proc.returncode == 0, proc.stderr
    assert "SignedInfo References (ok/all): 2/2" in proc.stdout + proc.stderr


@needs_xmlsec1
def test_tampered_signed_properties_fail(signer: Signer, tmp_path: Path) -> None:  # noqa: F811
    data = etree.tostring(sign(signer)).replace(b"2024-05-06T09:10:11", b"2025-05-06T09:10:11")
    assert verify(tmp_path, signer, data).returncode != 0


def test_manifest_digests_cover_documents(signer: Signer) -> None:  # noqa: F811
    sig = parse_xml(etree.tostring(sign(signer)))
    refs = sig.findall(f".//{q(DS, 'Manifest')}/{q(DS, 'Reference')}")
    assert [r.get("URI") for r in refs] == ["urn:oid:1.2.250.1.999.1.1.7898.1.1", "urn:oid:1.2.250.1.999.1.1.7898.3.1"]
    assert refs[0].findtext(q(DS, "DigestValue")) == "AA=="
    doc = SignedDocument("1.2.250.1.999.1.1.7898.3.1", CDA)
    assert refs[1].findtext(q(DS, "DigestValue")) == document_digest(doc, SignatureAlgorithm.RSA_SHA256)
    # Comments count (c14n with comments), the XML declaration does not.
    changed = SignedDocument(doc.unique_id, CDA.replace(b"<!-- c -->", b"<!-- d -->"))
    sha256 = SignatureAlgorithm.RSA_SHA256
    assert document_digest(changed, sha256) != document_digest(doc, sha256)
    same = SignedDocument(doc.unique_id, CDA.replace(b'<?xml version="1.0"?>\n', b""))
    assert document_digest(same, sha256) == document_digest(doc, sha256)
    raw = SignedDocument("1.2", b"%PDF-1.4", xml=False)
    expected = base64.b64encode(hashlib.sha1(b"%PDF-1.4").digest()).decode()
    assert document_digest(raw, SignatureAlgorithm.RSA_SHA1) == expected


def test_argument_checks(signer: Signer) -> None:  # noqa: F811
    with pytest.raises(DmpParamsError):
        build_xades_signature(
            signature_id="s",
            submission_set_unique_id="1.2",
            documents=[],
            signing_time=NOW,
            key=signer.key,
            cert_chain=[signer.cert],
        )
    with pytest.raises(DmpParamsError):
        build_xades_signature(
            signature_id="s",
            submission_set_unique_id="1.2",
            documents=[SignedDocument("1.3", CDA)],
            signing_time=dt.datetime(2024, 1, 1),
            key=signer.key,
            cert_chain=[signer.cert],
        )


DR = Person("899900063480", "MAX", "LIBRE")
AUTHOR = Author(
    DR,
    (Institution("CABINET DR LIBRE", "499900063480001"),),
    Code("G15_10/SM26", "1.2.250.1.213.1.1.4.5", "Médecin - Qualifié en Médecine Générale (SM)"),
)
SA01 = Code("SA01", "1.2.250.1.71.4.2.4", "Etablissement public de santé")
ETAB = Code("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9", "Etablissement de santé")


@needs_reference
def test_signature_entry_matches_td21_sample() -> None:
    sample = parse_submit_objects(sample_body("TD2.1_Alimentation_request.xml"))
    theirs = next(e for e in sample.entries if e.entry_id == "Signature01")
    ours = signature_entry(
        entry_id="Signature01",
        unique_id="1.2.250.1.999.1.1.7898.4.1622814651504",
        patient=PATIENT,
        authors=(AUTHOR,),
        legal_authenticator=DR,
        time="20210604135051",
        facility_type=SA01,
        practice_setting=ETAB,
    )
    # The sample's sourcePatientId carries a date suffix (^^20100907); ours is the plain INS CX.
    assert dataclasses.replace(ours, source_patient_id=theirs.source_patient_id) == theirs


@needs_xmlsec1
def test_whole_td21_lot_reads_back(signer: Signer, tmp_path: Path) -> None:  # noqa: F811
    patient = CdaPatient(ins=PATIENT, family="DUPONT", given="JEANNE", gender="F", birth_date="19790328")
    header = CdaHeader(
        document_id="1.2.250.1.999.1.1.7898.3.2",
        type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation"),
        title="Consultation",
        effective_time=NOW,
        patient=patient,
        author=DR,
        custodian=AUTHOR.institutions[0],
        facility=Code("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
    )
    pdf = b"%PDF-1.4 fake pdf \x00\xff"
    cda = wrap_unstructured(header, pdf, DocFormat.PDF)
    info = read_cda_metadata(cda)
    doc = DocumentEntry(
        entry_id="Document01",
        unique_id=info.document_id,
        patient=PATIENT,
        mime_type="text/xml",
        title=info.title,
        class_code=Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        type_code=info.type_code,
        format_code=format_code(DocFormat.PDF),
        facility_type=SA01,
        practice_setting=ETAB,
        authors=(AUTHOR,),
        creation_time="20240506071011",
        legal_authenticator=DR,
    )
    ss_uid = "1.2.250.1.999.1.1.7898.1.2"
    xades = etree.tostring(
        build_xades_signature(
            signature_id="sig-2",
            submission_set_unique_id=ss_uid,
            documents=[SignedDocument(doc.unique_id, cda)],
            signing_time=NOW,
            key=signer.key,
            cert_chain=[signer.cert],
        ),
        encoding="utf-8",
    )
    sig = signature_entry(
        entry_id="Signature01",
        unique_id="1.2.250.1.999.1.1.7898.4.2",
        patient=PATIENT,
        authors=(AUTHOR,),
        legal_authenticator=DR,
        time="20240506071011",
        facility_type=SA01,
        practice_setting=ETAB,
    )
    submission = SubmissionSet(
        entry_id="SubmissionSet01",
        unique_id=ss_uid,
        source_id="1.2.250.1.999.1.1.7898",
        patient=PATIENT,
        submission_time="20240506071011",
        content_type=Code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"),
        authors=(AUTHOR,),
    )
    body = provide_and_register(
        submission,
        [doc, sig],
        {"Document01": "doc1@dmp-bridge", "Signature01": "sig1@dmp-bridge"},
        signature_entry_id="Signature01",
    )
    envelope = build_envelope(
        body,
        action=WsaAction.PROVIDE_AND_REGISTER.value,
        message_id="urn:uuid:b3745a7c-4d1a-4cfd-a752-536197e4ac7a",
        vihf=None,
    )
    content_type, wire = build_mtom(
        envelope_bytes(envelope),
        [MtomPart("doc1@dmp-bridge", "text/xml", cda), MtomPart("sig1@dmp-bridge", "text/xml", xades)],
        boundary="MIMEBoundary_dmpbridge_1",
        root_id="root@dmp-bridge",
        action=WsaAction.PROVIDE_AND_REGISTER.value,
    )
    # The receiving side: MIME, SOAP, metadata, document bytes, signature.
    message = parse_mtom(wire, content_type)
    received = parse_xml(message.root.data)
    request = received.find(f".//{q(XDSB, 'ProvideAndRegisterDocumentSetRequest')}")
    objects = parse_submit_objects(request)
    assert objects.entries == (doc, sig)
    assert AssociationType.SIGNS in {a.type for a in objects.associations}
    contents = {d.get("id"): resolve_xop(d, message.parts) for d in request.findall(q(XDSB, "Document"))}
    assert contents == {"Document01": cda, "Signature01": xades}
    wrapped = parse_xml(contents["Document01"]).findtext(".//{urn:hl7-org:v3}text")
    assert base64.b64decode(wrapped) == pdf
    assert verify(tmp_path, signer, contents["Signature01"]).returncode == 0
