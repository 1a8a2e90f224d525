"""XDS.b metadata and transactions: official samples as oracles (layout, values), official XSDs, round trips."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from lxml import etree

from bridge.dmp.codes import (
    AssociationType,
    AvailabilityStatus,
    Confidentiality,
    DocFormat,
    InsOid,
    StoredQuery,
)
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.mtom import MtomPart, inline_xop
from bridge.dmp.ns import EBRS_QUERY, EBRS_RIM, XDSB, q
from bridge.dmp.transactions import (
    find_documents,
    get_documents,
    provide_and_register,
    retrieve_document_set,
    update_availability_status,
    update_visibility,
    with_visibility,
)
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import (
    Author,
    Code,
    DocumentEntry,
    Institution,
    Person,
    SubmissionSet,
    confidentiality_code,
    format_code,
    hl7_dtm,
    new_unique_id,
)
from bridge.dmp.xds_parse import (
    parse_query_response,
    parse_retrieve_response,
    parse_submit_objects,
)
from tests.unit._dmp_support import (
    MESSAGES,
    needs_reference,
    sample_body,
    template_request,
    xds_schema,  # noqa: F401  (session fixture)
)
from tests.unit._xml_shape import parse_trusted, shape_set

PATIENT = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
DR = Person("899900063480", "MAX", "LIBRE")
CABINET = Institution("CABINET DR LIBRE", "499900063480001")
AUTHOR = Author(DR, (CABINET,), Code("G15_10/SM26", "1.2.250.1.213.1.1.4.5", "Médecin - Qualifié en MG (SM)"))
# The ITI-57 samples omit registryObject/classifiedObject where the XSD requires them; ours carry them.
LOOSE = frozenset({"registryObject", "classifiedObject"})


def loosen(shapes: set[tuple[str, tuple[str, ...]]]) -> set[tuple[str, tuple[str, ...]]]:
    return {(path, tuple(a for a in attrs if a not in LOOSE)) for path, attrs in shapes}


def entry(**changes: Any) -> DocumentEntry:
    base: dict[str, Any] = {
        "entry_id": "Document01",
        "unique_id": "1.2.250.1.999.1.1.7898.3.1622814651504",
        "patient": PATIENT,
        "mime_type": "text/xml",
        "title": "CR de consultation",
        "class_code": Code("10", "1.2.250.1.213.1.1.4.1", "Compte rendu"),
        "type_code": Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation"),
        "format_code": format_code(DocFormat.PDF),
        "facility_type": Code("SA07", "1.2.250.1.71.4.2.4", "Cabinet individuel"),
        "practice_setting": Code("AMBULATOIRE", "1.2.250.1.213.1.1.4.9", "Ambulatoire"),
        "authors": (AUTHOR,),
        "confidentiality": (
            confidentiality_code(Confidentiality.NORMAL),
            confidentiality_code(Confidentiality.INVISIBLE_PATIENT),
        ),
        "creation_time": "20240506070809",
        "service_start": "20240506070000",
        "service_stop": "20240506073000",
        "legal_authenticator": DR,
        "source_patient_id": "0456789999^^^&1.2.250.1.999.1.1.7898.2&ISO^PI",
        "source_patient_info": ("PID-5|DUPONT^JEANNE^^^^^L", "PID-7|19790328", "PID-8|F"),
        "comments": "commentaire",
    }
    base.update(changes)
    return DocumentEntry(**base)


def lot(**changes: Any) -> SubmissionSet:
    base: dict[str, Any] = {
        "entry_id": "SubmissionSet01",
        "unique_id": "1.2.250.1.999.1.1.7898.1.1622814651504",
        "source_id": "1.2.250.1.999.1.1.7898",
        "patient": PATIENT,
        "submission_time": "20240506070900",
        "content_type": Code("04", "1.2.250.1.213.2.2", "Hospitalisation de jour"),
        "authors": (AUTHOR,),
        "title": "lot",
        "comments": "Compte rendu test",
    }
    base.update(changes)
    return SubmissionSet(**base)


def assert_valid(schema: Any, el: Any) -> None:
    assert schema.validate(el), str(schema.error_log)


@needs_reference
def test_provide_and_register_rebuilt_from_td21_sample(xds_schema: Any) -> None:  # noqa: F811
    sample = sample_body("TD2.1_Alimentation_request.xml")
    objects = parse_submit_objects(sample)
    [submission] = objects.submission_sets
    assert [e.entry_id for e in objects.entries] == ["DocumentME2", "Signature01"]
    cids = {"DocumentME2": "doc1@bridge", "Signature01": "sig1@bridge"}
    ours = provide_and_register(submission, objects.entries, cids, signature_entry_id="Signature01")
    # Layout: the same elements, attributes, slot names, schemes and association types as the sample.
    assert shape_set(ours) == shape_set(sample)
    # Values: what we emit reads back exactly as the sample reads.
    assert parse_submit_objects(ours) == objects
    parts = [MtomPart("doc1@bridge", "text/xml", b"<a/>"), MtomPart("sig1@bridge", "text/xml", b"<b/>")]
    assert_valid(xds_schema, inline_xop(ours, parts))


def test_provide_and_register_round_trip_with_replacement(xds_schema: Any) -> None:  # noqa: F811
    doc = entry(event_codes=(Code("H33", "2.16.840.1.113883.6.3", "Décollement"),))
    ours = provide_and_register(
        lot(), [doc], {"Document01": "d1@x"}, replaces={"Document01": "urn:uuid:7953af1a-ba1c-11eb-816f-0050569e422e"}
    )
    parsed = parse_submit_objects(ours)
    assert parsed.entries == (doc,)
    assert parsed.submission_sets == (lot(),)
    kinds = [(a.type, a.source, a.target) for a in parsed.associations]
    assert kinds == [
        (AssociationType.HAS_MEMBER, "SubmissionSet01", "Document01"),
        (AssociationType.RPLC, "Document01", "urn:uuid:7953af1a-ba1c-11eb-816f-0050569e422e"),
    ]
    assert parsed.associations[0].slot("SubmissionSetStatus") == ("Original",)
    docs = ours.findall(q(XDSB, "Document"))
    assert [d.get("id") for d in docs] == ["Document01"]
    assert_valid(xds_schema, inline_xop(ours, [MtomPart("d1@x", "text/xml", b"<a/>")]))


def test_provide_and_register_argument_checks() -> None:
    with pytest.raises(DmpParamsError):
        provide_and_register(lot(), [entry()], {})
    with pytest.raises(DmpParamsError):
        provide_and_register(lot(), [entry(), entry()], {"Document01": "a@b"})
    with pytest.raises(DmpParamsError):
        provide_and_register(lot(), [entry()], {"Document01": "a@b"}, replaces={"Document01": "1.2.3"})
    with pytest.raises(DmpParamsError):
        provide_and_register(lot(), [entry()], {"Document01": "a@b"}, signature_entry_id="nope")


def test_find_documents_filters(xds_schema: Any) -> None:  # noqa: F811
    el = find_documents(
        PATIENT,
        statuses=(AvailabilityStatus.APPROVED, AvailabilityStatus.ARCHIVED),
        confidentiality=(confidentiality_code(Confidentiality.MASQUE_PS),),
        type_codes=(Code("11488-4", "2.16.840.1.113883.6.1"),),
        creation_from="20240101000000",
    )
    assert_valid(xds_schema, el)
    adhoc = el.find(q(EBRS_RIM, "AdhocQuery"))
    assert adhoc.get("id") == StoredQuery.FIND_DOCUMENTS.value
    slots = {s.get("name"): s.findtext(f"{{{EBRS_RIM}}}ValueList/{{{EBRS_RIM}}}Value") for s in adhoc}
    assert slots["$XDSDocumentEntryPatientId"] == "'207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH'"
    assert slots["$XDSDocumentEntryStatus"] == (
        "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved','urn:asip:ci-sis:2010:StatusType:Archived')"
    )
    assert slots["$XDSDocumentEntryConfidentialityCode"] == "('MASQUE_PS^^1.2.250.1.213.1.1.4.13')"
    assert slots["$XDSDocumentEntryTypeCode"] == "('11488-4^^2.16.840.1.113883.6.1')"
    assert slots["$XDSDocumentEntryCreationTimeFrom"] == "20240101000000"
    with pytest.raises(DmpParamsError):
        find_documents(PATIENT, statuses=())
    with pytest.raises(DmpParamsError):
        find_documents(PATIENT, creation_from="2024-01-01")


def test_get_documents_and_retrieve(xds_schema: Any) -> None:  # noqa: F811
    by_uid = get_documents(unique_ids=["1.2.3.4", "1.2.3.5"])
    assert_valid(xds_schema, by_uid)
    value = by_uid.findtext(f".//{{{EBRS_RIM}}}Value")
    assert value == "('1.2.3.4','1.2.3.5')"
    assert_valid(xds_schema, get_documents(entry_uuids=["urn:uuid:7953af1a-ba1c-11eb-816f-0050569e422e"]))
    with pytest.raises(DmpParamsError):
        get_documents()
    retrieve = retrieve_document_set(["1.2.250.1.999.1.1.7898.1.995657292"])
    assert_valid(xds_schema, retrieve)
    with pytest.raises(DmpParamsError):
        retrieve_document_set(["urn:uuid:7953af1a-ba1c-11eb-816f-0050569e422e"])


@needs_reference
@pytest.mark.parametrize(
    ("name", "new"),
    [
        ("TD3.3c_Supprimer-un-document_request.xml", AvailabilityStatus.DELETED),
        ("TD3.3d_Archiver-un-document_request.xml", AvailabilityStatus.ARCHIVED),
    ],
)
def test_status_update_matches_sample(name: str, new: AvailabilityStatus, xds_schema: Any) -> None:  # noqa: F811
    sample = sample_body(name)
    objects = parse_submit_objects(sample)
    [submission] = objects.submission_sets
    [assoc] = objects.associations
    original = AvailabilityStatus(assoc.slot("OriginalStatus")[0])  # TD3.3c deletes an archived document
    ours = update_availability_status(submission, assoc.target, original, new)
    assert loosen(shape_set(ours)) == loosen(shape_set(sample))
    mine = parse_submit_objects(ours)
    assert mine.submission_sets == objects.submission_sets
    assert mine.associations == objects.associations
    # Unlike the sample (README: invalid against lcm.xsd), ours validates.
    assert_valid(xds_schema, ours)


def test_status_update_checks() -> None:
    with pytest.raises(DmpParamsError):
        update_availability_status(lot(), "1.2.3", AvailabilityStatus.APPROVED, AvailabilityStatus.ARCHIVED)
    with pytest.raises(DmpParamsError):
        update_availability_status(lot(), "urn:uuid:1", AvailabilityStatus.APPROVED, AvailabilityStatus.APPROVED)


@needs_reference
def test_visibility_update_matches_masquage_template(xds_schema: Any) -> None:  # noqa: F811
    template = template_request("template_masquage.xml")
    objects = parse_submit_objects(template)
    [submission] = objects.submission_sets
    [registered] = objects.entries
    [assoc] = objects.associations
    assert Confidentiality.MASQUE_PS in registered.visibility
    unmasked = with_visibility(registered, remove=[Confidentiality.MASQUE_PS])
    assert Confidentiality.MASQUE_PS not in unmasked.visibility
    masked = with_visibility(unmasked, add=[Confidentiality.MASQUE_PS])
    ours = update_visibility(submission, masked, assoc.slot("PreviousVersion")[0])
    assert loosen(shape_set(ours)) == loosen(shape_set(template))
    mine = parse_submit_objects(ours)
    [new_entry] = mine.entries
    assert new_entry.logical_id == registered.logical_id and new_entry.entry_id == "Document01"
    assert new_entry.visibility == registered.visibility
    assert mine.associations[0].slot("PreviousVersion") == ("5",)
    assert_valid(xds_schema, ours)


def test_visibility_helpers() -> None:
    e = entry(logical_id="urn:uuid:4f196ae8-5549-11e9-9478-0050569e422e", version="1")
    hidden = with_visibility(e, add=[Confidentiality.MASQUE_PS, Confidentiality.INVISIBLE_REPRESENTANTS_LEGAUX])
    assert hidden.visibility == {
        Confidentiality.MASQUE_PS,
        Confidentiality.INVISIBLE_PATIENT,
        Confidentiality.INVISIBLE_REPRESENTANTS_LEGAUX,
    }
    shown = with_visibility(hidden, remove=[Confidentiality.INVISIBLE_PATIENT])
    assert Confidentiality.INVISIBLE_PATIENT not in shown.visibility
    assert shown.confidentiality[0].code == "N"
    with pytest.raises(DmpParamsError):
        with_visibility(e, remove=[Confidentiality.NORMAL])
    with pytest.raises(DmpParamsError):
        update_visibility(lot(), entry(), "1")


@needs_reference
def test_large_td31_response_parses() -> None:
    data = (MESSAGES / "TD3.1_Recherche-de-document_response.xml").read_bytes()
    from bridge.dmp.soap import parse_soap_response

    resp = parse_soap_response(data, "application/soap+xml")
    result = parse_query_response(resp.body)
    assert result.registry.ok
    assert len(result.entries) == 21
    first = result.entries[0]
    assert first.logical_id == "urn:uuid:7953af1a-ba1c-11eb-816f-0050569e422e"
    assert first.unique_id == "1.2.250.1.999.1.1.7898.1.995657292"
    assert first.patient == PATIENT
    assert first.status is AvailabilityStatus.APPROVED and first.version == "1"
    assert first.visibility == {Confidentiality.INVISIBLE_PATIENT}
    assert first.type_code.code == "27899-4" and first.class_code.code == "10"
    assert first.authors[0].person.id == "899900063480"
    assert first.authors[0].institutions[0].id == "10B0127189"
    assert first.size == 2768 and first.hash == "af326fb44feb720121d2c277ce10f87407818089"
    assert all(e.repository_unique_id == "1.2.250.1.213.4.1.1.1.2" for e in result.entries)
    # Entries from the registry go straight back into a visibility update.
    body = update_visibility(lot(), with_visibility(first, add=[Confidentiality.MASQUE_PS]), first.version or "1")
    assert parse_submit_objects(body).entries[0].logical_id == first.logical_id


@needs_reference
def test_a_legacy_ins_c_entry_does_not_break_a_td31_answer() -> None:
    from bridge.dmp.soap import parse_soap_response

    data = (MESSAGES / "TD3.1_Recherche-de-document_response.xml").read_bytes()
    nir = PATIENT.cx().split("^")[0]
    # One old entry still carries the patient's INS-C (the whole parse used to fail on it).
    legacy = b"2604169384716523146^^^&amp;1.2.250.1.213.1.4.2&amp;ISO^INS-C"
    start = data.index(b'value="' + nir.encode()) + len(b'value="')
    end = data.index(b'"', start)
    data = data[:start] + legacy + data[end:]
    result = parse_query_response(parse_soap_response(data, "application/soap+xml").body)
    assert len(result.entries) == 21
    olds = [e for e in result.entries if e.patient.legacy]
    assert len(olds) == 1 and olds[0].patient.oid is InsOid.INS_C
    assert olds[0].patient.cx() == "2604169384716523146^^^&1.2.250.1.213.1.4.2&ISO^INS-C"
    with pytest.raises(DmpInputError):
        PatientIns.from_cx("2604169384716523146^^^&1.2.250.1.213.1.4.10&ISO^INS-C")  # type and authority disagree


def test_retrieve_response_inline_base64() -> None:
    xml = f"""<x:RetrieveDocumentSetResponse xmlns:x="{XDSB}" xmlns:rs="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0">
      <rs:RegistryResponse status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>
      <x:DocumentResponse><x:RepositoryUniqueId>1.2</x:RepositoryUniqueId>
      <x:DocumentUniqueId>1.2.3</x:DocumentUniqueId><x:mimeType>text/plain</x:mimeType>
      <x:Document>aGVs
      bG8=</x:Document></x:DocumentResponse></x:RetrieveDocumentSetResponse>"""
    result = parse_retrieve_response(etree.fromstring(xml.encode()))
    assert result.documents[0].content == b"hello"
    with pytest.raises(DmpInputError):
        parse_retrieve_response(etree.Element(q(EBRS_QUERY, "AdhocQueryResponse")))


def test_composite_values() -> None:
    assert DR.xcn() == "899900063480^MAX^LIBRE^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    assert Person.from_xcn(DR.xcn()) == DR
    assert CABINET.xon() == "CABINET DR LIBRE^^^^^&1.2.250.1.71.4.2.2&ISO^IDNST^^^499900063480001"
    assert Institution.from_xon(CABINET.xon()) == CABINET
    assert PatientIns.from_cx("207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH^^20100907") == PATIENT
    with pytest.raises(DmpParamsError):
        Person("1", "DUPONT^X")
    with pytest.raises(DmpInputError):
        PatientIns.from_cx("0456789999^^^&1.2.250.1.999.1.1.7898.2&ISO^PI")
    with pytest.raises(DmpInputError):
        PatientIns.from_cx("207058575627097^^^&1.2.3.4&ISO^NH")


def test_unique_ids_and_times() -> None:
    now = dt.datetime(2021, 6, 4, 13, 50, 51, 504000, tzinfo=dt.UTC)
    assert new_unique_id("1.2.250.1.999.1.1.7898", 1, now=now) == "1.2.250.1.999.1.1.7898.1.1622814651504"
    assert new_unique_id("1.2.250.1.999.1.1.7898", 3, now=now, counter=2) == "1.2.250.1.999.1.1.7898.3.1622814651504002"
    with pytest.raises(DmpParamsError):
        new_unique_id("1.02.3", 1, now=now)
    with pytest.raises(DmpParamsError):
        new_unique_id("1." + "9" * 60, 1, now=now)
    assert hl7_dtm(dt.datetime(2024, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == "20240101000000"
    with pytest.raises(DmpParamsError):
        hl7_dtm(dt.datetime(2024, 1, 1))


def test_unknown_status_in_answer_refused() -> None:
    el = etree.fromstring(
        (
            f'<q:AdhocQueryResponse xmlns:q="{EBRS_QUERY}" xmlns:r="{EBRS_RIM}" '
            'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"><r:RegistryObjectList>'
            '<r:Association id="a" associationType="urn:bogus" sourceObject="s" targetObject="t"/>'
            "</r:RegistryObjectList></q:AdhocQueryResponse>"
        ).encode()
    )
    with pytest.raises(DmpInputError):
        parse_query_response(el)


def test_entries_are_values() -> None:
    e = entry()
    assert dataclasses.replace(e) == e and hash(e.patient) == hash(PATIENT)


def test_parse_trusted_helper_reads_samples() -> None:
    assert parse_trusted(b"<a/>").tag == "a"


def test_reprs_carry_no_patient_data() -> None:
    text = repr(
        (
            entry(),
            lot(),
            PATIENT,
            DR,
            parse_submit_objects(provide_and_register(lot(), [entry()], {"Document01": "a@b"})),
        )
    )
    for secret in ("207058575627097", "DUPONT", "JEANNE", "MAX", "LIBRE", "CR de consultation", "commentaire"):
        assert secret not in text
