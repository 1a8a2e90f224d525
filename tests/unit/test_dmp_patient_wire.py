"""TD0.2 / TD0.3 built and read without I/O: official samples, official XSD/WSDL, and the refusal table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from lxml import etree

from bridge.dmp.codes import InsOid
from bridge.dmp.failures import DmpFault
from bridge.dmp.patient_access import (
    AuthorizationAction,
    AuthorizationState,
    DmpState,
    build_set_authorization,
    build_status_query,
    parse_set_authorization,
    parse_status,
)
from bridge.dmp.patient_admin import (
    AdminData,
    Author,
    build_admin_query,
    build_close,
    build_update,
    parse_admin,
    parse_registration_answer,
)
from bridge.dmp.patient_lists import DateType, build_authorized_query, parse_authorized
from bridge.dmp.patient_search import Traits, build_search, parse_search
from bridge.dmp.refusals import REFUSALS, error_code_for
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode
from tests.unit._dmp_support import REFERENCE, SCHEMAS, needs_reference, sample_body
from tests.unit._xml_shape import shape

PATIENT = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
NOW = dt.datetime(2021, 5, 19, 17, 45, 7, tzinfo=dt.UTC)
HL7 = "urn:hl7-org:v3"


def _status_query() -> Any:
    return build_status_query(
        PATIENT, oid_root="1.3.6.1.4.1.48364", lps_name="LPS GIE-SV", message_id="m-1", query_id="q-1", now=NOW
    )


def _schema(path: str) -> Any:
    if not SCHEMAS.is_dir():
        pytest.skip(f"official XSDs not found at {SCHEMAS}")
    return etree.XMLSchema(etree.parse(str(SCHEMAS / path)))


def _wsdl_schema(name: str) -> Any:
    wsdl = etree.parse(str(REFERENCE / "wsdl" / "wsdl" / name))
    schema = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}schema")
    return etree.XMLSchema(schema)


def _no_comments(el: Any) -> Any:
    copy = etree.fromstring(etree.tostring(el))
    for comment in copy.xpath("//comment()"):
        comment.getparent().remove(comment)
    return copy


@needs_reference
def test_status_query_has_the_sample_shape_and_validates() -> None:
    built = _status_query()
    sample = _no_comments(sample_body("TD0.2_Test-dexistence_request.xml"))
    assert shape(built) == shape(sample)
    _schema("HL7V3/NE2009/multicacheschemas/PRPA_IN201307UV02.xsd").assertValid(built)
    value = built.find(f".//{{{HL7}}}patientIdentifier/{{{HL7}}}value")
    assert (value.get("root"), value.get("extension")) == (InsOid.NIR_TEST.value, PATIENT.value)
    assert built.find(f".//{{{HL7}}}reasonCode").get("code") == "TEST_EXST"


@needs_reference
def test_status_answer_of_the_sample() -> None:
    status = parse_status(sample_body("TD0.2_Test-dexistence_response.xml"))
    assert status.dmp is DmpState.EXISTS
    assert status.authorization is AuthorizationState.VALID
    assert status.treating_physician is True
    assert status.mes is False  # RATTACHEMENT_ENS false: not associated with Mon espace santé
    assert status.web_access_open is True
    identity = (status.family, status.given, status.gender, status.birth_date)
    assert identity == ("patb-quatre", "LAURENCE", "M", "19070525")
    assert "LAURENCE" not in repr(status)


@needs_reference
def test_status_answers_not_found_closed_and_blocked() -> None:
    sample = sample_body("TD0.2_Test-dexistence_response.xml")
    not_found = etree.fromstring(etree.tostring(sample))
    not_found.find(f".//{{{HL7}}}queryResponseCode").set("code", "NF")
    assert parse_status(not_found).dmp is DmpState.UNKNOWN
    closed = etree.fromstring(etree.tostring(sample))
    closed.find(f".//{{{HL7}}}patient/{{{HL7}}}statusCode").set("code", "terminated")
    blocked = closed.find(f"{{{HL7}}}attentionLine/{{{HL7}}}value")
    blocked.set("code", "INTERDIT")
    status = parse_status(closed)
    assert (status.dmp, status.authorization) == (DmpState.CLOSED, AuthorizationState.BLOCKED)
    blocked.set("code", "PEUT-ETRE")
    with pytest.raises(BridgeError) as bad:
        parse_status(closed)
    assert bad.value.code is ErrorCode.INVALID_INPUT


@needs_reference
@pytest.mark.parametrize(
    ("action", "role"),
    [(AuthorizationAction.DECLARE, None), (AuthorizationAction.REMOVE, None),
     (AuthorizationAction.REMOVE_TREATING, "MEDECIN_TRAITANT")],
)  # fmt: skip
def test_set_authorization_matches_sample_and_wsdl(action: AuthorizationAction, role: str | None) -> None:
    built = build_set_authorization(action)
    _wsdl_schema("Habilitations.wsdl").assertValid(built)
    ns = "urn:si-dmp-habilitations"
    assert built.findtext(f"{{{ns}}}action") == action.wire[0]
    assert built.findtext(f"{{{ns}}}role") == role
    if action is AuthorizationAction.DECLARE:
        assert shape(built) == shape(sample_body("TD0.3_Mise-a-jour-de-lautorisation_request.xml"))


@needs_reference
def test_set_authorization_answer() -> None:
    answer = sample_body("TD0.3_Mise-a-jour-de-lautorisation_response.xml")
    assert parse_set_authorization(answer) == "Autorisation déjà présente aucune action effectuée"
    answer.find(".//{urn:si-dmp-habilitations}status").text = "DMPAccessDeniedByPatient"
    with pytest.raises(BridgeError) as refused:
        parse_set_authorization(answer)
    assert refused.value.code is ErrorCode.BLOCKED_BY_PATIENT
    assert refused.value.to_data()["dmpCode"] == "DMPAccessDeniedByPatient"


@pytest.mark.parametrize(
    ("dmp_code", "expected"),
    [
        ("XDSUnknownPatientId", ErrorCode.DMP_UNKNOWN),
        ("soap:DMPClosed", ErrorCode.DMP_CLOSED),
        ("DMPAccessDenied", ErrorCode.DMP_NOT_AUTHORIZED),
        ("DMPAccessDeniedByPatient", ErrorCode.BLOCKED_BY_PATIENT),
        ("DMPAuthorizationExpired", ErrorCode.DMP_AUTHORIZATION_EXPIRED),
        ("XDSDocumentUniqueIdError", ErrorCode.DOCUMENT_UNKNOWN),
        ("XDSDuplicateUniqueIdInRegistry", ErrorCode.DOCUMENT_ALREADY_EXISTS),
        ("XDSMissingDocument", ErrorCode.DMP_REQUEST_REFUSED),
        ("DMPNotAllowedForMesDmp", ErrorCode.DMP_MANAGED_BY_MES),
        ("DMPInvalidCertificate", ErrorCode.DMP_AUTHENTICATION_REFUSED),
        ("XDSMetadataUpdateError", ErrorCode.DMP_FAULT),
        ("SomethingNew", ErrorCode.DMP_FAULT),
    ],
)
def test_refusal_table(dmp_code: str, expected: ErrorCode) -> None:
    assert error_code_for(dmp_code) is expected
    error = DmpFault(code="Sender", subcode=dmp_code).to_error()
    data = error.to_data()
    assert (data["code"], data["dmpCode"]) == (expected.value, dmp_code)


def test_every_mapped_code_has_its_own_french_and_english_message() -> None:
    generic = BridgeError(ErrorCode.DMP_FAULT).message_fr
    messages = {code: BridgeError(code) for code in set(REFUSALS.values())}
    for code, error in messages.items():
        assert error.message_fr != generic and error.message_en, code
    assert len({e.message_fr for e in messages.values()}) == len(messages)


# -- TD1.3a / TD1.3b / TD1.4 -------------------------------------------------------------------------

AUTHOR = Author(
    national_id="899900063480", family="LIBRE", given="MAX", specialty_code="SM26",
    specialty_label="Qualifié en Médecine Générale (SM)", structure_id="499900063480001",
    structure_name="CABINET DR LIBRE",
)  # fmt: skip
IDS: dict[str, Any] = {"oid_root": "1.3.6.1.4.1.48364", "lps_name": "LPS GIE-SV", "message_id": "m-1", "now": NOW}


def _gdp_schema(name: str) -> Any:
    return _schema(f"HL7V3/NE2009/multicacheschemas/{name}.xsd")


def _without_nils(el: Any) -> Any:
    """A sample without the xsi:nil placeholders the GIE tool leaves (TD1.3a) and without comments."""
    copy = _no_comments(el)
    for node in copy.xpath("//*[@xsi:nil='true']", namespaces={"xsi": "http://www.w3.org/2001/XMLSchema-instance"}):
        if etree.QName(node).localname not in {"attentionLine", "dataSource"}:
            node.getparent().remove(node)
    return copy


@needs_reference
def test_admin_query_matches_sample_and_validates() -> None:
    built = build_admin_query(PATIENT, query_id="q-1", **IDS)
    _gdp_schema("PRPA_IN201307UV02").assertValid(built)
    assert shape(built) == shape(_without_nils(sample_body("TD1.3a_Consultation_request.xml")))
    assert built.find(f".//{{{HL7}}}reasonCode").get("code") == "CNSLT_DATA"


@needs_reference
def test_admin_answer_of_the_sample() -> None:
    data = parse_admin(sample_body("TD1.3a_Consultation_response.xml"))
    assert (data.family, data.given, data.birth_date, data.closed) == ("patb-quatre", "LAURENCE", "19070525", False)
    assert data.telecoms == (("", "mailto:alain@gmail.com"), ("MC", "tel:0102030405"))
    assert (data.street, data.postal_code, data.city) == (("1, rue du Chat qui pêche",), "75005", "Paris")
    assert (data.opposition_bris_de_glace, data.opposition_acces_urgence) == (False, False)
    assert data.representatives == (("REPLEG", "Jean"),)
    assert "LAURENCE" not in repr(data)


@needs_reference
def test_update_and_close_match_samples_and_validate() -> None:
    data = AdminData(
        family="patb-quatre", given="LAURENCE", prefix="M", gender="F", birth_date="19790328",
        telecoms=(("HP", "tel:0123456789"), ("MC", "tel:0607080901"), ("", "mailto:dominque.pattrois@mail.com")),
        street=("20 rue des edelweiss",), postal_code="75005", city="Paris", country="France",
    )  # fmt: skip
    update = build_update(PATIENT, data, AUTHOR, **IDS)
    _gdp_schema("PRPA_IN201314UV02").assertValid(update)
    sample = _no_comments(sample_body("TD1.3b_Modification_request.xml"))
    # The sample lacks the organisation's contactParty that the XSD requires (the TD1.4 sample has it).
    assert [p for p in shape(update) if "attentionLine" not in p[0] and "contactParty" not in p[0]] == shape(sample)
    close = build_close(PATIENT, AdminData(family="patb-quatre", given="LAURENCE", prefix="M"), AUTHOR, **IDS)
    _gdp_schema("PRPA_IN201314UV02").assertValid(close)
    sample_close = _no_comments(sample_body("TD1.4_Fermer_request.xml"))
    # The sample writes family before given: same elements, order aside.
    assert sorted(shape(close)) == sorted(shape(sample_close))


@needs_reference
def test_registration_answers() -> None:
    assert parse_registration_answer(sample_body("TD1.4_Fermer_response.xml")) is None
    assert parse_registration_answer(sample_body("TD1.3b_Modification_response.xml")) is None
    refused = sample_body("TD1.4_Fermer_response.xml")
    message = refused[0]
    message.tag = f"{{{HL7}}}PRPA_IN201316UV02"
    ack = message.find(f"{{{HL7}}}acknowledgement")
    ack.set("typeCode", "AE")
    etree.SubElement(etree.SubElement(ack, f"{{{HL7}}}acknowledgementDetail"), f"{{{HL7}}}code", code="DMPClosed")
    with pytest.raises(BridgeError) as closed:
        parse_registration_answer(refused)
    assert closed.value.code is ErrorCode.DMP_CLOSED


# -- TD0.4 / TD0.5 -----------------------------------------------------------------------------------


@needs_reference
def test_authorized_query_matches_sample_and_wsdl() -> None:
    built = build_authorized_query("20101010202010", DateType.LAST_DOCUMENT)
    _wsdl_schema("PatientsSpecific.wsdl").assertValid(built)
    assert shape(built) == shape(sample_body("TD0.4_Liste-des-DMP-autorises_request.xml"))
    with pytest.raises(BridgeError):
        build_authorized_query("2010", DateType.LAST_DOCUMENT)


@needs_reference
def test_authorized_answer_of_the_sample() -> None:
    dmps = parse_authorized(sample_body("TD0.4_Liste-des-DMP-autorises_response.xml"))
    assert [(d.family, d.treating_physician) for d in dmps] == [("PAT-TROIS", False), ("patb-quatre", True)]
    assert dmps[1].identifiers[1] == ("1.2.250.1.213.1.4.10", "207058575627097")
    assert dmps[0].last_add == "20210525134735"


@needs_reference
def test_search_matches_sample_and_reads_its_answer() -> None:
    built = build_search(Traits(family="DECHAINE"), query_id="q-1", **IDS)
    assert shape(built) == shape(sample_body("TD0.5_Recherche-dun-patient-sans-INS_request.xml"))
    full = build_search(Traits(family="DECHAINE", given="IRENE", gender="F", birth_date="19570628", city="SECLIN"),
                        query_id="q-2", **IDS)  # fmt: skip
    names = [etree.QName(p).localname for p in full.find(f".//{{{HL7}}}parameterList")]
    assert names == [
        "livingSubjectAdministrativeGender", "livingSubjectBirthTime", "livingSubjectName", "patientAddress",
    ]  # fmt: skip
    result = parse_search(sample_body("TD0.5_Recherche-dun-patient-sans-INS_response.xml"))
    (found,) = result.candidates
    assert (found.ins, found.family, found.birth_family) == ("157069329642881", "ENCHAINE", "DECHAINE")
    assert found.match == 100
    assert (result.total, result.remaining) == (1, 0)
