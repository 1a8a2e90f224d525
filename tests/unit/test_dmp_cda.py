"""CDA R2 level-1 wrapper against the kit template and the TD2.1 sample document; CDA pass-through checks."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from bridge.dmp.cda import CdaHeader, CdaPatient, cda_time, wrap_unstructured
from bridge.dmp.cda_header import read_cda_metadata
from bridge.dmp.codes import DocFormat, InsOid
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code, Institution, Person
from bridge.errors import BridgeError, ErrorCode
from bridge.xmlsafe import parse_xml
from tests.unit._dmp_support import MESSAGES, TEMPLATES, needs_reference
from tests.unit._xml_shape import parse_trusted, shape

WHEN = dt.datetime(2019, 2, 21, 13, 34, 45, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def header(**changes: object) -> CdaHeader:
    base: dict[str, object] = {
        "document_id": "1.2.250.1.999.1.1.7898.4.9956570902",
        "type_code": Code("27899-4", "2.16.840.1.113883.6.1", "CR d'acte diagnostique (autre)"),
        "title": "Exemple de Document CDA R2 non Structure",
        "effective_time": WHEN,
        "patient": CdaPatient(
            ins=PatientIns(value="207058575627097", oid=InsOid.NIR_TEST),
            family="PAT-TROIS",
            given="DOMINIQUE",
            gender="F",
            birth_date="19790328",
            local_id=("0456789999", "1.2.250.1.999.1.1.7898.2"),
        ),
        "author": Person("899900063480", "MAX", "LIBRE"),
        "author_prefix": "Dr.",
        "custodian": Institution("CABINET DR LIBRE", "499900063480001"),
        "facility": Code("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
        "service_event": Code("BACA008", "1.2.250.1.213.2.5", "suture sourcil"),
    }
    base.update(changes)
    return CdaHeader(**base)  # type: ignore[arg-type]


@needs_reference
@pytest.mark.parametrize("reference", [TEMPLATES / "template_CDA.xml", MESSAGES / "TD2.1-DocumentME2.xml"])
def test_layout_matches_kit_template_and_sample(reference: object) -> None:
    ours = parse_xml(wrap_unstructured(header(), b"hello", DocFormat.TEXT))
    theirs = parse_trusted(reference.read_bytes())  # type: ignore[attr-defined]
    assert shape(ours) == shape(theirs)


def test_wrapped_content_and_header_values() -> None:
    pdf = b"%PDF-1.4\n\x00\x01binary"
    data = wrap_unstructured(header(), pdf, DocFormat.PDF)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = parse_xml(data)
    text = root.find(".//{urn:hl7-org:v3}nonXMLBody/{urn:hl7-org:v3}text")
    assert text.get("mediaType") == "application/pdf" and text.get("representation") == "B64"
    assert base64.b64decode(text.text) == pdf
    ids = [
        (i.get("root"), i.get("extension")) for i in root.iterfind(".//{urn:hl7-org:v3}patientRole/{urn:hl7-org:v3}id")
    ]
    assert ids == [("1.2.250.1.213.1.4.10", "207058575627097"), ("1.2.250.1.999.1.1.7898.2", "0456789999")]
    assert root.find("{urn:hl7-org:v3}effectiveTime").get("value") == "20190221133445+0100"
    info = read_cda_metadata(data)
    assert info.document_id == "1.2.250.1.999.1.1.7898.4.9956570902"
    assert info.type_code.code == "27899-4" and info.media_type == "application/pdf" and info.confidentiality == "N"
    assert "PAT-TROIS" not in repr(header().patient)


@needs_reference
def test_official_document_reads_as_cda() -> None:
    info = read_cda_metadata((MESSAGES / "TD2.1-DocumentME2.xml").read_bytes())
    assert info.document_id == "1.2.250.1.999.1.1.7898.4.9956570902"
    assert info.media_type == "text/plain"


def test_formats_and_bad_inputs() -> None:
    assert DocFormat.for_media_type("application/pdf; name=x") is DocFormat.PDF
    assert DocFormat.for_media_type("image/tiff") is DocFormat.TIFF
    with pytest.raises(DmpInputError):
        DocFormat.for_media_type("application/zip")
    with pytest.raises(DmpParamsError):
        wrap_unstructured(header(), b"", DocFormat.TEXT)
    with pytest.raises(DmpParamsError):
        cda_time(dt.datetime(2024, 1, 1))
    with pytest.raises(DmpParamsError):
        CdaPatient(
            ins=PatientIns(value="207058575627097", oid=InsOid.NIR_TEST),
            family="X",
            given="Y",
            gender="X",
            birth_date="1979",
        )
    with pytest.raises(DmpInputError):
        read_cda_metadata(b"<html/>")
    with pytest.raises(DmpInputError):
        read_cda_metadata(b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2"/></ClinicalDocument>')


def test_hostile_cda_refused() -> None:
    xxe = (
        b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3">&e;</ClinicalDocument>'
    )
    with pytest.raises(BridgeError) as info:
        read_cda_metadata(xxe)
    assert info.value.code is ErrorCode.INVALID_INPUT
