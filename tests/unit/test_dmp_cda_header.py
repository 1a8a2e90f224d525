"""A CDA passed through gives its metadata from its header; the caller's contradicting metadata is refused."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from bridge.dmp.cda_header import read_cda_metadata, ts_to_dtm
from bridge.dmp.codes import AuthMode, InsOid
from bridge.dmp.context import NewDocument, Practitioner
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.submission import describe_lot
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code
from tests.unit._dmp_support import MESSAGES, needs_reference

PATIENT = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
TYPE = Code("27899-4", "2.16.840.1.113883.6.1", "CR d'acte diagnostique (autre)")
NOW = dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC)
GP = Practitioner(
    national_id="899900063480", family="LIBRE", given="MAX", profession_code="10", specialty_code="SM26",
    structure_id="499900063480001", structure_name="CABINET DR LIBRE", sector="SA07", mode=AuthMode.DIRECTE,
)  # fmt: skip


def _sample() -> bytes:
    return (MESSAGES / "TD2.1-DocumentME2.xml").read_bytes()


def _doc(**changes: object) -> NewDocument:
    base = NewDocument(content=_sample(), mime_type="text/xml", title="", type_code=TYPE)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_hl7_times_become_utc_dtm_at_their_precision() -> None:
    assert ts_to_dtm("20190221133445+0100") == "20190221123445"
    assert ts_to_dtm("201902211334+0100") == "201902211234"
    assert ts_to_dtm("20190221") == "20190221"
    with pytest.raises(DmpInputError):
        ts_to_dtm("21/02/2019")


@needs_reference
def test_the_official_cda_header_as_metadata() -> None:
    header = read_cda_metadata(_sample())
    assert header.document_id == "1.2.250.1.999.1.1.7898.4.9956570902"
    assert (header.type_code.code, header.title) == ("27899-4", "Exemple de Document CDA R2 non Structure")
    assert (header.creation_time, header.service_start, header.service_stop) == ("20190221123445", "20190221", None)
    assert [p.id for p, _ in header.authors] == ["899900063480"]
    assert header.legal_authenticator is not None and header.legal_authenticator.id == "899900063480"
    assert header.patient == PATIENT and header.confidentiality == "N"


@needs_reference
def test_a_passed_through_cda_is_registered_with_its_own_header() -> None:
    # The old bridge registered the title, dates, author and legal authenticator of its own defaults.
    other = dataclasses.replace(GP, national_id="810000000001", family="AUTRE", given="ALAIN")
    lot = describe_lot(other, PATIENT, [_doc()], NOW, lambda: "1.2.3")
    [entry] = lot.entries
    assert entry.unique_id == "1.2.250.1.999.1.1.7898.4.9956570902"
    assert entry.title == "Exemple de Document CDA R2 non Structure"
    assert (entry.creation_time, entry.service_start, entry.service_stop) == (
        "20190221123445", "20190221", "20190221",
    )  # fmt: skip
    assert [a.person.id for a in entry.authors] == ["899900063480"]
    assert entry.legal_authenticator is not None and entry.legal_authenticator.id == "899900063480"
    assert entry.type_code.code == "27899-4"
    # The caller's own situation is used when the caller is the CDA's author.
    [mine] = describe_lot(GP, PATIENT, [_doc()], NOW, lambda: "1.2.3").entries
    assert mine.authors[0].specialty == GP.author().specialty


@needs_reference
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "Un autre titre"}, "title"),
        ({"type_code": Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation")}, "typeCode"),
    ],
)
def test_metadata_contradicting_the_header_is_refused(changes: dict[str, object], field: str) -> None:
    with pytest.raises(DmpParamsError) as refused:
        describe_lot(GP, PATIENT, [_doc(**changes)], NOW, lambda: "1.2.3")
    assert (refused.value.detail or "").startswith(field)


@needs_reference
def test_a_cda_of_another_patient_is_refused() -> None:
    someone = PatientIns(value="180017505601289", oid=InsOid.NIR_TEST)
    with pytest.raises(DmpParamsError) as refused:
        describe_lot(GP, someone, [_doc()], NOW, lambda: "1.2.3")
    assert (refused.value.detail or "").startswith("patient")


def test_a_generated_cda_and_its_metadata_agree() -> None:
    """The N1 wrapper's header read back gives the metadata the bridge registers (nothing to contradict)."""
    from bridge.dmp.cda import CdaPatient

    identity = CdaPatient(ins=PATIENT, family="PAT", given="DOMINIQUE", gender="F", birth_date="19790328")
    pdf = NewDocument(
        content=b"%PDF-1.4\n%%EOF\n", mime_type="application/pdf", title="Compte rendu",
        type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation"), patient_identity=identity,
    )  # fmt: skip
    lot = describe_lot(GP, PATIENT, [pdf], NOW, lambda: "1.2.250.1.999.3.1", {0: "1.2.250.1.999.3.0"})
    [entry], [stored] = lot.entries, lot.stored
    header = read_cda_metadata(stored)
    assert (header.document_id, header.title, header.type_code.code) == (entry.unique_id, entry.title, "11488-4")
    assert header.creation_time == entry.creation_time == "20261207180000"
    assert (header.service_start, header.service_stop) == (entry.service_start, entry.service_stop)
    assert [p.id for p, _ in header.authors] == [a.person.id for a in entry.authors]
    assert header.legal_authenticator == entry.legal_authenticator and header.patient == PATIENT
    # A replacement names its parent (relatedDocument RPLC) and its version.
    from bridge.xmlsafe import parse_xml

    root = parse_xml(stored)
    hl7 = "{urn:hl7-org:v3}"
    related = root.find(f"{hl7}relatedDocument")
    assert related is not None and related.get("typeCode") == "RPLC"
    assert related.find(f"{hl7}parentDocument/{hl7}id").get("root") == "1.2.250.1.999.3.0"
    assert root.find(f"{hl7}versionNumber").get("value") == "2"
