"""INSi messages without a socket: the client's requests against the official sample and the CNAM schemas,
the official answer read back, the fault table, the traits' alphabet, the CPS assertion, the simulator's
reading of the official sample and its answers against the RESULTAT schema."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from bridge.dmp.codes import InsOid
from bridge.errors import _MESSAGES, BridgeError, ErrorCode
from bridge.ins.assertion import signed_ps_assertion
from bridge.ins.faults import fault_error, outcome_error
from bridge.ins.messages import (
    InsiFault,
    LpsContext,
    Operation,
    VitaleQuery,
    build_request,
    parse_answer,
    traits_body,
    vitale_body,
)
from bridge.ins.model import CrCode, InsiOutcome, Traits, normalise_name
from bridge.sim.dmp.xmldsig import verify
from bridge.sim.insi.identities import IDENTITIES
from bridge.sim.insi.requests import NS, RequestError, parse_request, schema
from bridge.sim.insi.service import InsiFaultReply, InsiPolicy, answer, build_fault
from tests.unit._dmp_support import MESSAGES, Signer, needs_reference, signer, xmlsec1_verify  # noqa: F401
from tests.unit._xml_shape import parse_trusted, shape

SAMPLE_REQUEST = "WS_INS2_rechercherInsAvecTraitsIdentite_request.xml"
SAMPLE_RESPONSE = "WS_INS2_rechercherInsAvecTraitsIdentite_response.xml"
LPS = LpsContext(emitter="899900063480", idam="NumAutorisation", version="1.00.00",
                 instance="791e183f-6f66-4248-a312-5ed5cd4785d4", name="GIE")  # fmt: skip
NOW = dt.datetime(2021, 6, 16, 9, 39, 2, 4100, tzinfo=dt.UTC)
LAURENCE = Traits.from_input(birth_name="PATB-QUATRE", first_names="LAURENCE", sex="F", birth_date="1907-05-25")


def _request(assertion: object | None = None, traits: Traits = LAURENCE, first: str = "LAURENCE") -> bytes:
    return build_request(
        Operation.TRAITS, traits_body(traits, first), lps=LPS, now=NOW, message_id="uuid:0dfb8f66",
        bam_id="8a689655", lps_id="ecd08001", assertion=assertion,
    )  # fmt: skip


def _signature_free(root: etree._Element) -> etree._Element:
    for sig in root.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        sig.getparent().remove(sig)
    return root


@needs_reference
def test_traits_request_has_the_official_samples_structure(signer: Signer) -> None:  # noqa: F811
    assertion = signed_ps_assertion(
        key=signer.key, chain=(signer.cert,), assertion_id="_22d4376a", now=NOW,
        holder_id="899900063480", billing_id="991130972",
    )  # fmt: skip
    ours = _signature_free(etree.fromstring(_request(assertion)))
    official = _signature_free(parse_trusted((MESSAGES / SAMPLE_REQUEST).read_bytes()))
    assert shape(ours) == shape(official)
    # Same values where the sample's values are not data of the call.
    for path in ("soap:Header/wsa:Action", "soap:Body/recsans:RECSANSVITALE/recsans:NomNaissance",
                 "soap:Body/recsans:RECSANSVITALE/recsans:DateNaissance"):  # fmt: skip
        assert ours.findtext(path, namespaces=NS) == official.findtext(path, namespaces=NS)
    for tag in ("ctxbam:ContexteBAM", "ctxlps:ContexteLPS"):
        assert ours.find(f"soap:Header/{tag}", NS).get("Version") == official.find(f"soap:Header/{tag}", NS).get(
            "Version"
        )


def test_requests_validate_against_the_cnam_schemas() -> None:
    vitale = VitaleQuery(nir="1780375115012", key="01", holder_nir="1780375115012", holder_key="01",
                         birth_name="MARTIN", birth_date="1978-03-14", rank=1)  # fmt: skip
    for operation, body, xsd in (
        (Operation.TRAITS, traits_body(LAURENCE, "LAURENCE"), "INSi_RECSANS_INS.xsd"),
        (Operation.VITALE, vitale_body(vitale), "INSi_RECVITALE_INS.xsd"),
    ):
        data = build_request(operation, body, lps=LPS, now=NOW, message_id="uuid:1", bam_id="a", lps_id="b")
        root = etree.fromstring(data)
        header = root.find("soap:Header", NS)
        assert schema("ROOT_ctxbam_CTXBAM_V01_02.xsd").validate(etree.ElementTree(etree.fromstring(
            etree.tostring(header.find("ctxbam:ContexteBAM", NS)))))  # fmt: skip
        assert schema("ROOT_ctxlps_CTXLPS_V01_00.xsd").validate(etree.ElementTree(etree.fromstring(
            etree.tostring(header.find("ctxlps:ContexteLPS", NS)))))  # fmt: skip
        assert schema(xsd).validate(etree.ElementTree(etree.fromstring(etree.tostring(root.find("soap:Body", NS)[0]))))
        # The simulator reads it (it never imports the client's builders).
        parsed = parse_request(data)
        assert parsed.action == operation.action and parsed.assertion is None


@needs_reference
def test_the_simulator_accepts_the_official_sample_request_and_refuses_a_reordered_one() -> None:
    data = (MESSAGES / SAMPLE_REQUEST).read_bytes()
    parsed = parse_request(data)
    assert parsed.idam == "NumAutorisation" and parsed.emitter == "899900063480"
    assert parsed.assertion is not None
    swapped = data.replace(b"<add:MessageID>0dfb8f66-de74-4f30-ba83-bebde1239ebf</add:MessageID>", b"")
    swapped = swapped.replace(b"</urn1:ContexteLPS>", b"</urn1:ContexteLPS><add:MessageID>x</add:MessageID>")
    with pytest.raises(RequestError, match="ordre"):
        parse_request(swapped)
    lower = data.replace(b"<ins:NomNaissance>PATB-QUATRE", b"<ins:NomNaissance>Patb-Quatre")
    with pytest.raises(RequestError, match="majuscules"):
        parse_request(lower)


@needs_reference
def test_the_official_answer_reads_back_as_the_qualified_identity() -> None:
    outcome = parse_answer((MESSAGES / SAMPLE_RESPONSE).read_bytes())
    assert isinstance(outcome, InsiOutcome) and outcome.code is CrCode.FOUND and outcome.label == "OK"
    who = outcome.identity
    assert who is not None
    assert (who.ins, who.oid, who.kind) == ("207058575627097", InsOid.NIR, "INS-NIR")
    assert (who.birth_name, who.first_name, who.sex, who.birth_date, who.birth_place) == (
        "PATB-QUATRE", "LAURENCE", "F", "1907-05-25", "85756",
    )  # fmt: skip
    assert who.patient().cx() == "207058575627097^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert "PATB" not in repr(who) and "2070585756270" not in repr(who)  # never in a log line


def test_no_match_several_and_faults_map_to_their_own_codes() -> None:
    def envelope(body: str) -> bytes:
        return f'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>{body}</soap:Body></soap:Envelope>'.encode()

    cr = '<RESULTAT xmlns="http://www.cnamts.fr/INSiResultat"><CR><CodeCR>{}</CodeCR><LibelleCR>x</LibelleCR></CR></RESULTAT>'
    for code, expected in (("01", ErrorCode.INS_NOT_FOUND), ("02", ErrorCode.INS_MULTIPLE_MATCHES)):
        outcome = parse_answer(envelope(cr.format(code)))
        assert isinstance(outcome, InsiOutcome) and outcome.identity is None
        error = outcome_error(outcome.code)
        assert error is not None and error.code is expected and error.extra["insiCode"] == code
    assert outcome_error(CrCode.FOUND) is None
    with pytest.raises(BridgeError) as bad:
        parse_answer(envelope(cr.format("07")))
    assert bad.value.code is ErrorCode.INVALID_INPUT

    cases = [
        (InsiFaultReply("Sender", "siram_100", "desir_550", "L'accès par ce progiciel…"),
         ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED, "desir_550"),
        (InsiFaultReply("Sender", "siram_100", "SIM_AUTH", "auth"), ErrorCode.INSI_REFUSED, "SIM_AUTH"),
        (InsiFaultReply("Receiver", "siram_500", "SIM_UNAVAILABLE", "down"), ErrorCode.INSI_UNAVAILABLE,
         "SIM_UNAVAILABLE"),
    ]  # fmt: skip
    for reply, code, detail in cases:
        fault = parse_answer(build_fault(reply, "uuid:1"))
        assert isinstance(fault, InsiFault)
        error = fault_error(fault)
        assert (error.code, error.detail) == (code, detail)
    assert fault_error(InsiFault(code="Sender")).code is ErrorCode.INSI_REFUSED
    assert fault_error(InsiFault(code="Receiver")).code is ErrorCode.INSI_UNAVAILABLE


def test_every_insi_code_has_french_and_english_messages() -> None:
    for code in ErrorCode:
        if code.value.startswith(("INS_", "INSI_")):
            fr, en = _MESSAGES[code]
            assert fr and en and fr != en


@pytest.mark.parametrize(
    ("typed", "wire"),
    [
        ("Hélène-Françoise", "HELENE-FRANCOISE"),
        ("d’Orléans-Bragance", "D'ORLEANS-BRAGANCE"),
        ("  Jean   Pierre ", "JEAN PIERRE"),
        ("Œdipe", "OEDIPE"),
        ("NGUYEN--TRAN", "NGUYEN--TRAN"),
    ],
)
def test_names_are_put_in_the_referentials_alphabet(typed: str, wire: str) -> None:
    assert normalise_name(typed, "birthName") == wire


@pytest.mark.parametrize("typed", ["Jean2", "-Jean", "Jean-", "", "Jean---Paul", "李"])
def test_names_that_cannot_be_written_are_refused_before_any_call(typed: str) -> None:
    with pytest.raises(BridgeError) as bad:
        normalise_name(typed, "birthName")
    assert bad.value.code is ErrorCode.INVALID_PARAMS and bad.value.detail.startswith("birthName")


def test_first_names_are_tried_one_by_one_then_together() -> None:
    traits = Traits.from_input(
        birth_name="Legrand", first_names="Pierre Paul Jacques", sex="M", birth_date="1965-02-10"
    )
    assert traits.attempts() == ["PIERRE", "PAUL", "JACQUES", "PIERRE PAUL JACQUES"]
    assert LAURENCE.attempts() == ["LAURENCE"]
    with pytest.raises(BridgeError):
        Traits.from_input(birth_name="X", first_names="Y", sex="U", birth_date="1965-02-10")
    with pytest.raises(BridgeError):
        Traits.from_input(birth_name="X", first_names="Y", sex="M", birth_date="10/02/1965")
    assert Traits.from_input(birth_name="X", first_names="Y", sex="M", birth_date="1965-02-10",
                             birth_place="2A004").birth_place == "2A004"  # fmt: skip
    with pytest.raises(BridgeError) as place:
        Traits.from_input(birth_name="X", first_names="Y", sex="M", birth_date="1965-02-10", birth_place="ABCDE")
    assert place.value.detail == "birthPlace: 5-character COG code"


def test_the_cps_assertion_is_laid_out_like_the_sample_and_its_signature_verifies(
    signer: Signer,  # noqa: F811
    tmp_path: Path,
) -> None:
    assertion = signed_ps_assertion(key=signer.key, chain=(signer.cert,), assertion_id="_a1", now=NOW,
                                    holder_id="899900063480", billing_id="991130972")  # fmt: skip
    children = [etree.QName(c).localname for c in assertion]
    assert children == ["Issuer", "Signature", "Subject", "AttributeStatement"]
    name_id = assertion.find("saml:Subject/saml:NameID", NS)
    assert (name_id.get("NameQualifier"), name_id.text) == ("CPS", "899900063480")
    assert assertion.find("saml:AttributeStatement/saml:Attribute", NS).get("Name") == "identifiantFacturation"
    references = verify(assertion.find("{http://www.w3.org/2000/09/xmldsig#}Signature"), assertion, signer.cert)
    assert len(references) == 1 and references[0].element is assertion
    # An independent verifier agrees, and notices a changed holder.
    path = tmp_path / "assertion.xml"
    saml = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
    path.write_bytes(etree.tostring(assertion, encoding="utf-8"))
    proc = xmlsec1_verify(path, "--trusted-pem", str(signer.ca_pem), "--id-attr:ID", saml)
    assert proc.returncode == 0, proc.stderr
    name_id.text = "899900000000"
    path.write_bytes(etree.tostring(assertion, encoding="utf-8"))
    assert xmlsec1_verify(path, "--trusted-pem", str(signer.ca_pem), "--id-attr:ID", saml).returncode != 0


def test_the_simulators_answers_validate_against_the_resultat_schema() -> None:
    policy = InsiPolicy()
    checker = schema("INSi_RESULTAT_INS.xsd")
    for traits, first in (
        (Traits.from_input(birth_name="Legrand", first_names="Pierre", sex="M", birth_date="1965-02-10"), "PIERRE"),
        (Traits.from_input(birth_name="Dupont", first_names="Marie", sex="F", birth_date="1990-01-01"), "MARIE"),
        (Traits.from_input(birth_name="Nobody", first_names="X", sex="F", birth_date="1990-01-01"), "X"),
    ):
        data = answer(parse_request(_request(None, traits, first)), policy)
        resultat = etree.fromstring(data).find("soap:Body", NS)[0]
        assert checker.validate(etree.ElementTree(etree.fromstring(etree.tostring(resultat)))), checker.error_log
    assert len({p.ins for p in IDENTITIES}) == len(IDENTITIES)


def test_xsd_copies_are_the_cnam_ones() -> None:
    folder = Path(__file__).resolve().parents[2] / "bridge" / "sim" / "insi" / "xsd"
    names = sorted(p.name for p in folder.glob("*.xsd"))
    assert names == sorted(["INSi_RECSANS_INS.xsd", "INSi_RECVITALE_INS.xsd", "INSi_RESULTAT_INS.xsd",
                            "ROOT_ctxbam_CTXBAM_V01_02.xsd", "ROOT_ctxlps_CTXLPS_V01_00.xsd",
                            "schema_faultSOAP_V01_01.xsd"])  # fmt: skip
