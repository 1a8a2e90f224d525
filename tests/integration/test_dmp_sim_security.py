"""DMP simulator refusals: mutual TLS, VIHF signature/certificate/attributes, WS-Addressing Action, hostile XML."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from bridge.crypto.pki import Issued, TestPki
from bridge.sim.dmp import DmpSimulator
from bridge.sim.dmp.authorizations import AuthorizationRow, State, record
from tests.integration.dmp_sim_support import (
    NS,
    SAMPLE_INS,
    DmpClient,
    Practitioner,
    build_vihf,
    client_context,
    requires_reference,
    sample_envelope,
    sign_vihf,
    with_vihf,
)

# Fixtures pki, doctors, sim.
pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(60)]


@pytest.fixture
async def client_a(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[DmpClient]:
    """Dr A over mutual TLS."""
    client = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    yield client
    await client.close()


def _rogue(subject: x509.Name) -> Issued:
    """A CA and a leaf outside the test IGC-Santé, the leaf with `subject`."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ROGUE CA")])
    ca = (
        x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, public_key=ca_key.public_key(),
                                serial_number=x509.random_serial_number(), not_valid_before=now - dt.timedelta(days=1),
                                not_valid_after=now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder(subject_name=subject, issuer_name=ca_name, public_key=key.public_key(),
                                serial_number=x509.random_serial_number(), not_valid_before=now - dt.timedelta(days=1),
                                not_valid_after=now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return Issued(leaf, key, (ca,))


async def _handshake(sim: DmpSimulator, ctx: ssl.SSLContext) -> None:
    # TLS 1.2: the server checks the client certificate inside the handshake, so a refusal fails here.
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", sim.port, ssl=ctx, server_hostname="localhost"), 10
    )
    writer.write(b"POST /si-dmp-server/v2/services/patients HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(100), 10)
    writer.close()
    if not data:
        raise ConnectionResetError("closed")


async def test_tls_refuses_client_without_certificate(sim: DmpSimulator, pki: TestPki, tmp_path: Path) -> None:
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(sim, client_context(pki, None, tmp_path))


async def test_tls_refuses_untrusted_client_certificate(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    rogue = _rogue(doctors[0].certs.auth.certificate.subject)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(sim, client_context(pki, rogue, tmp_path))


async def test_tls_is_1_2_with_dmp_suites_only(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    ctx = client_context(pki, doctors[0].certs.auth, tmp_path)
    _reader, writer = await asyncio.open_connection("127.0.0.1", sim.port, ssl=ctx, server_hostname="localhost")
    ssl_object = writer.get_extra_info("ssl_object")
    assert ssl_object.version() == "TLSv1.2"
    assert ssl_object.cipher()[0] in {
        "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    }  # fmt: skip
    writer.close()
    tls13 = client_context(pki, doctors[0].certs.auth, tmp_path)
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(sim, tls13)
    weak = client_context(pki, doctors[0].certs.auth, tmp_path)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA:AES256-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await _handshake(sim, weak)


async def test_td02_sample_accepted_with_a_valid_vihf(
    sim: DmpSimulator, client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    # Dr A authorised on the sample's patient, as the sample answer says (AUTORISATION VALIDE).
    record(sim.store, AuthorizationRow(SAMPLE_INS, doctors[0].name_id, State.VALID, False),
           ins=SAMPLE_INS, professional=doctors[0].name_id, action="AJOUT")  # fmt: skip
    body = with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), sign_vihf(doctors[0], SAMPLE_INS))
    answer = await client_a.post("patients", body)
    assert answer.status == 200, answer.raw
    assert answer.envelope.findtext(".//wsa:Action", namespaces=NS) == "urn:hl7-org:v3:PRPA_IN201308UV02"
    assert (
        answer.envelope.findtext(".//wsa:RelatesTo", namespaces=NS) == "urn:uuid:f2c3f93b-06e2-4333-b80d-4d0505c332aa"
    )
    assert answer.envelope.find(".//hl7:queryResponseCode", NS).get("code") == "OK"
    assert answer.envelope.find(".//hl7:attentionLine/hl7:value", NS).get("code") == "VALIDE"
    ids = {i.get("extension") for i in answer.envelope.iterfind(".//hl7:patient/hl7:id", NS)}
    assert SAMPLE_INS in ids


async def test_td02_unknown_patient_is_not_found(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    unknown = "185057800608491"  # valid key, not seeded
    envelope = sample_envelope("TD0.2_Test-dexistence_request.xml")
    envelope.find(".//hl7:patientIdentifier/hl7:value", NS).set("extension", unknown)
    answer = await client_a.post("patients", with_vihf(envelope, sign_vihf(doctors[0], unknown)))
    assert answer.status == 200
    assert answer.envelope.find(".//hl7:queryResponseCode", NS).get("code") == "NF"


async def test_unsigned_vihf_refused(client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    vihf = build_vihf(signer=None, issuer_dn="CN=x", name_id=doctors[0].name_id, ins=SAMPLE_INS)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:DMPInvalidSignature"


async def test_missing_vihf_refused(client_a: DmpClient) -> None:
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), None))
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:DMPInvalidVIHF"


async def test_tampered_vihf_refused(client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    vihf = sign_vihf(doctors[0], SAMPLE_INS)
    # Change the patient after signing: the reference digest no longer matches.
    value = vihf.find(
        ".//saml2:Attribute[@Name='urn:oasis:names:tc:xacml:2.0:resource:resource-id']/saml2:AttributeValue", NS
    )
    assert value is not None
    value.text = "279035121518989^^^&1.2.250.1.213.1.4.10&ISO^NH"
    envelope = sample_envelope("TD0.2_Test-dexistence_request.xml")
    envelope.find(".//hl7:patientIdentifier/hl7:value", NS).set("extension", "279035121518989")
    answer = await client_a.post("patients", with_vihf(envelope, vihf))
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:DMPInvalidSignature"


async def test_vihf_signed_outside_test_ca_refused(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    rogue = _rogue(doctors[0].certs.sign.certificate.subject)  # same DN, wrong issuer
    vihf = sign_vihf(doctors[0], SAMPLE_INS, signer=rogue)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:DMPInvalidCertificate"


async def test_vihf_of_another_card_holder_refused_in_direct_mode(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    vihf = sign_vihf(doctors[1], SAMPLE_INS)  # TLS is Dr A, VIHF is Dr B
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.fault_subcode() == "soap:DMPCertificateMismatch"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"issued": dt.datetime.now(dt.UTC) - dt.timedelta(days=1)}, "expiré"),
        ({"issued": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)}, "futur"),
        ({"omit": ["LPS_ID_HOMOLOGATION_DMP"]}, "LPS_ID_HOMOLOGATION_DMP"),
        ({"omit": ["Identifiant_Structure"]}, "Identifiant_Structure"),
        ({"omit": ["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"]}, "purposeofuse"),
        ({"roles": [("10", "1.2.250.1.71.1.2.7")]}, "spécialité"),
        ({"purpose": "pour_voir"}, "mode d'accès"),
        ({"mode": "INCONNU"}, "Authentification_mode"),
    ],
)
async def test_vihf_attributes_and_window_checked(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner], kwargs: dict[str, object], reason: str
) -> None:
    vihf = sign_vihf(doctors[0], SAMPLE_INS, **kwargs)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.fault_subcode() == "soap:DMPInvalidVIHF"
    assert reason in answer.envelope.findtext(".//soap:Reason/soap:Text", namespaces=NS)


async def test_vihf_with_bad_ins_key_refused(client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    bad = SAMPLE_INS[:-2] + "11"
    vihf = sign_vihf(doctors[0], bad)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.fault_subcode() == "soap:DMPInvalidVIHF"
    assert "clé NIR" in answer.envelope.findtext(".//soap:Reason/soap:Text", namespaces=NS)


async def test_wrong_action_refused(client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    envelope = sample_envelope("TD0.2_Test-dexistence_request.xml")
    envelope.find(".//wsa:Action", NS).text = "urn:ihe:iti:2007:RegistryStoredQuery"
    answer = await client_a.post("patients", with_vihf(envelope, sign_vihf(doctors[0], SAMPLE_INS)))
    assert answer.status == 400
    assert answer.fault_subcode() == "wsa:ActionNotSupported"


async def test_billion_laughs_refused_with_a_fault(client_a: DmpClient) -> None:
    lol = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(
            b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10)
        )
        + b']><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol9;</soap:Body></soap:Envelope>'
    )
    answer = await client_a.post("registry", lol)
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:DMPInvalidRequest"


async def test_soap11_envelope_gets_version_mismatch(client_a: DmpClient) -> None:
    body = (
        b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header/><e:Body><x/></e:Body></e:Envelope>'
    )
    answer = await client_a.post("registry", body)
    assert answer.fault_subcode() == "soap:VersionMismatch"


async def test_unknown_service_path_is_404(client_a: DmpClient) -> None:
    answer_status = 0
    async with client_a.session.post(f"{client_a.base_url}/nowhere", data=b"<x/>") as response:
        answer_status = response.status
    assert answer_status == 404


def test_rogue_helper_really_is_untrusted(pki: TestPki, doctors: tuple[Practitioner, Practitioner]) -> None:
    from bridge.sim.dmp.trust import TrustError, TrustStore

    store = TrustStore.from_pem_file(pki.ca_bundle_path())
    store.verify(doctors[0].certs.sign.certificate)
    with pytest.raises(TrustError):
        store.verify(_rogue(doctors[0].certs.sign.certificate.subject).certificate)
    assert etree is not None


async def test_indirect_mode_with_an_establishment_certificate(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    org = pki.establishment("10B0127189", "CLINIQUE DES TESTS")
    client = DmpClient(sim.url, client_context(pki, org.auth_cli, tmp_path))
    try:
        vihf = build_vihf(
            signer=org.sign,
            issuer_dn=org.sign.certificate.subject.rfc4514_string(),
            name_id=doctors[0].name_id,
            ins=SAMPLE_INS,
            mode="INDIRECTE",
            structure="10B0127189",
        )
        answer = await client.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
        assert answer.status == 200, answer.errors()
        # Another structure than the establishment certificate's (OU): the old simulator took any.
        elsewhere = build_vihf(
            signer=org.sign,
            issuer_dn=org.sign.certificate.subject.rfc4514_string(),
            name_id=doctors[0].name_id,
            ins=SAMPLE_INS,
            mode="INDIRECTE",
        )
        refused = await client.post(
            "patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), elsewhere)
        )
        assert refused.fault_subcode() == "soap:DMPInvalidVIHF" and "Identifiant_Structure" in refused.errors()[0][1]
        no_subject = build_vihf(
            signer=org.sign,
            issuer_dn=org.sign.certificate.subject.rfc4514_string(),
            name_id=doctors[0].name_id,
            ins=SAMPLE_INS,
            mode="INDIRECTE",
            omit=["urn:oasis:names:tc:xspa:1.0:subject:subject-id"],
            structure="10B0127189",
        )
        refused = await client.post(
            "patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), no_subject)
        )
        assert refused.fault_subcode() == "soap:DMPInvalidVIHF"
    finally:
        await client.close()


async def test_vihf_signed_with_the_authentication_key_refused(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    vihf = sign_vihf(doctors[0], SAMPLE_INS, signer=doctors[0].certs.auth)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.fault_subcode() == "soap:DMPInvalidCertificate"
    assert "Not a valid signature certificate" in answer.errors()[0][1]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name_id": "899900000099"}, "NameID"),  # another person than the card holder
        ({"roles": (("21", "1.2.250.1.71.1.2.7"), ("SM26", "1.2.250.1.71.4.2.5"))}, "profession"),  # not the card's
        ({"roles": (("10", "1.2.250.1.71.1.2.7"), ("SM99", "1.2.250.1.71.4.2.5"))}, "SM99"),  # outside TRE_R01
    ],
)
async def test_vihf_values_must_match_the_card_and_the_value_sets(
    client_a: DmpClient, doctors: tuple[Practitioner, Practitioner], changes: dict[str, object], says: str
) -> None:
    vihf = sign_vihf(doctors[0], SAMPLE_INS, **changes)
    answer = await client_a.post("patients", with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), vihf))
    assert answer.fault_subcode() == "soap:DMPInvalidVIHF", answer.errors()
    assert says in answer.errors()[0][1]
