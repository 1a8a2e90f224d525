"""The test IGC-Santé PKI: shape of the certificates, chains, caching, PKCS#12 and openssl interop."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import os
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bridge.crypto.pki import (
    OID_CARD_SERIAL,
    OID_CARD_TYPE,
    OID_PROFESSION,
    OID_SPECIALTY,
    OID_TEST_POLICY,
    Issued,
    TestPki,
    card_serial_from_certificate,
)
from bridge.paths import data_dir

GP = {
    "last_name": "MEDECIN",
    "first_name": "PAUL",
    "national_id": "810012345678",
    "profession_code": "10",
    "specialty_code": "SM26",
    "card_type": "CPS",
}


def _verify_chain(issued: Issued) -> None:
    """Each certificate is signed by the next one, and the root by itself."""
    chain = (issued.certificate, *issued.chain)
    for child, parent in itertools.pairwise(chain):
        child.verify_directly_issued_by(parent)
    chain[-1].verify_directly_issued_by(chain[-1])


def _openssl_verify(pki: TestPki, issued: Issued, tmp_path: Path, purpose: str | None = None) -> str:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(issued.cert_pem())
    args = ["openssl", "verify", "-x509_strict", "-CAfile", str(pki.ca_bundle_path())]
    if purpose:
        args += ["-purpose", purpose]
    result = subprocess.run([*args, str(leaf)], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def test_hierarchy_names_and_ca_extensions(pki: TestPki) -> None:
    assert pki.root.subject == pki.root.issuer
    assert pki.root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "TEST AC RACINE IGC-SANTE STANDARD"
    ous = [a.value for a in pki.persons_ca.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    assert ous == ["0002 187512751", "IGC-SANTE TEST"]
    for ca in (pki.persons_ca, pki.orgs_ca):
        assert ca.chain == (pki.root,)
        bc = ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == 0
        _verify_chain(ca)
    bundle = x509.load_pem_x509_certificates(pki.ca_bundle_path().read_bytes())
    assert bundle == [pki.root, pki.persons_ca.certificate, pki.orgs_ca.certificate]


def test_person_certificates_have_the_igc_sante_shape(pki: TestPki) -> None:
    certs = pki.person("shape-gp", **GP, card_number="2600301752")  # type: ignore[arg-type]
    auth, sign = certs.auth.certificate, certs.sign.certificate
    assert auth.issuer == pki.persons_ca.certificate.subject
    # the multi-valued RDN {GN + SN + CN}
    last_rdn = list(auth.subject.rdns)[-1]
    assert {a.oid for a in last_rdn} == {NameOID.GIVEN_NAME, NameOID.SURNAME, NameOID.COMMON_NAME}
    assert auth.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "810012345678"
    assert auth.subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "Médecin"
    ku_auth = auth.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku_auth.critical and ku_auth.value.digital_signature and not ku_auth.value.content_commitment
    eku = auth.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    ku_sign = sign.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku_sign.critical and ku_sign.value.content_commitment and not ku_sign.value.digital_signature
    policies = auth.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [OID_TEST_POLICY]
    ext = {e.oid: e.value for e in auth.extensions}
    assert ext[OID_CARD_TYPE].value == bytes.fromhex("020100")  # type: ignore[attr-defined]
    assert ext[OID_PROFESSION].value == bytes.fromhex("02010a")  # type: ignore[attr-defined]
    assert ext[OID_SPECIALTY].value == bytes.fromhex("3006 0c04") + b"SM26"  # type: ignore[attr-defined]
    assert ext[OID_CARD_SERIAL].value == b"\x13\x15" + b"8025000001/2600301752"  # type: ignore[attr-defined]
    assert card_serial_from_certificate(auth) == "2600301752"
    assert certs.auth.key.key_size == 2048
    assert certs.auth.key.public_key().public_numbers() != certs.sign.key.public_key().public_numbers()
    _verify_chain(certs.auth)
    _verify_chain(certs.sign)


def test_cpe_certificate_carries_the_structure(pki: TestPki) -> None:
    certs = pki.person(
        "shape-cpe",
        last_name="SECRETAIRE",
        first_name="ANNE",
        national_id="30B0057881/CPET0002",
        profession_code="",
        specialty_code="",
        card_type="CPE",
        organization="HOPITAL DES 3 DAMES",
        structure_id="10B0057881",
        department="Paris (75)",
    )
    subject = certs.auth.certificate.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "HOPITAL DES 3 DAMES"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == "10B0057881"
    assert subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "Personnel santé ou social"
    ext = {e.oid: e.value for e in certs.auth.certificate.extensions}
    assert ext[OID_CARD_TYPE].value == bytes.fromhex("020102")  # type: ignore[attr-defined]
    assert OID_PROFESSION not in ext and OID_SPECIALTY not in ext


def test_client_verifier_accepts_the_auth_certificate(pki: TestPki) -> None:
    certs = pki.person("verify-gp", **GP)  # type: ignore[arg-type]
    verifier = verification.PolicyBuilder().store(verification.Store([pki.root])).build_client_verifier()
    verified = verifier.verify(certs.auth.certificate, [pki.persons_ca.certificate])
    assert verified.chain[-1] == pki.root


def test_server_certificate_for_the_simulator(pki: TestPki) -> None:
    issued = pki.server("dmp.sandbox.test")
    sans = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["dmp.sandbox.test"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([pki.root]))
        .build_server_verifier(verification.DNSName("dmp.sandbox.test"))
    )
    chain = verifier.verify(issued.certificate, [pki.orgs_ca.certificate])
    assert chain[-1] == pki.root
    assert issued.fullchain_pem() == issued.cert_pem() + pki.orgs_ca.cert_pem()


def test_openssl_verify_accepts_every_leaf(pki: TestPki, tmp_path: Path) -> None:
    person = pki.person("openssl-gp", **GP)  # type: ignore[arg-type]
    assert ": OK" in _openssl_verify(pki, person.auth, tmp_path, "sslclient")
    assert ": OK" in _openssl_verify(pki, person.sign, tmp_path, "smimesign")
    assert ": OK" in _openssl_verify(pki, pki.server("localhost"), tmp_path, "sslserver")
    est = pki.establishment("10B0127189", "CENTRE DE SANTE TEST")
    assert ": OK" in _openssl_verify(pki, est.auth_cli, tmp_path, "sslclient")
    assert ": OK" in _openssl_verify(pki, est.sign, tmp_path)


def test_expired_certificate_is_rejected_by_openssl(pki: TestPki, tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    certs = pki.person(
        "expired-gp", **GP, not_before=now - dt.timedelta(days=800), not_after=now - dt.timedelta(days=2)
    )  # type: ignore[arg-type]
    assert certs.auth.certificate.not_valid_after_utc < now
    assert "certificate has expired" in _openssl_verify(pki, certs.auth, tmp_path)


def test_material_is_cached_on_disk_and_reloaded(pki: TestPki) -> None:
    first = pki.person("cache-gp", **GP)  # type: ignore[arg-type]
    again = pki.person("cache-gp", **GP)  # type: ignore[arg-type]
    assert again.auth.certificate == first.auth.certificate
    reopened = TestPki.load_or_create(pki.directory)
    assert reopened.root == pki.root
    third = reopened.person("cache-gp", **GP)  # type: ignore[arg-type]
    assert third.sign.certificate == first.sign.certificate
    assert third.sign.key.private_numbers() == first.sign.key.private_numbers()
    # changing a parameter re-issues the certificate but keeps the card's key
    renamed = reopened.person("cache-gp", **{**GP, "last_name": "AUTRE"})  # type: ignore[arg-type]
    assert renamed.auth.certificate != first.auth.certificate
    assert renamed.auth.key.public_key().public_numbers() == first.auth.key.public_key().public_numbers()


def test_private_files_are_user_only(pki: TestPki) -> None:
    pki.person("perm-gp", **GP)  # type: ignore[arg-type]
    assert stat.S_IMODE(os.stat(pki.directory).st_mode) == 0o700
    for key_file in pki.directory.rglob("*.key.pem"):
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file


def test_establishment_pkcs12_opens_with_its_password(pki: TestPki) -> None:
    est = pki.establishment("10B0127189", "CENTRE DE SANTE TEST")
    key, cert, extra = pkcs12.load_key_and_certificates(est.auth_cli_p12.read_bytes(), est.p12_password)
    assert cert == est.auth_cli.certificate
    assert extra == list(est.auth_cli.chain)
    assert key is not None
    ou = est.sign.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert ou == "10B0127189"
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(est.sign_p12.read_bytes(), b"wrong")
    assert pki.establishment("10B0127189", "CENTRE DE SANTE TEST").p12_password == est.p12_password
    assert "p12_password" not in repr(est) and est.p12_password.decode() not in repr(est)


def test_keys_sign_and_certificates_verify(pki: TestPki) -> None:
    certs = pki.person("sig-gp", **GP)  # type: ignore[arg-type]
    signature = certs.sign.key.sign(b"data", padding.PKCS1v15(), hashes.SHA256())
    certs.sign.certificate.public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]


def test_default_location_is_the_data_dir(private_home: Path) -> None:
    # uses DMP_BRIDGE_HOME set by the autouse fixture: nothing lands in the real home
    pki = TestPki.load_or_create()
    assert pki.directory == data_dir() / "test-pki"
    assert str(pki.directory).startswith(str(private_home))


def test_refuses_path_like_identifiers(pki: TestPki) -> None:
    with pytest.raises(ValueError):
        pki.person("../evil", **GP)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pki.server("a/b")


def test_real_tls_handshake_with_server_and_client_certificates(pki: TestPki, tmp_path: Path) -> None:
    """OpenSSL (Python ssl) accepts the simulator's server certificate and a card's auth certificate."""
    server_cert = pki.server("localhost")
    person = pki.person("tls-gp", **GP)  # type: ignore[arg-type]
    files = {}
    for stem, issued in (("server", server_cert), ("client", person.auth)):
        (tmp_path / f"{stem}.pem").write_bytes(issued.fullchain_pem())
        (tmp_path / f"{stem}.key").write_bytes(issued.key_pem())
        files[stem] = (str(tmp_path / f"{stem}.pem"), str(tmp_path / f"{stem}.key"))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*files["server"])
    server_ctx.load_verify_locations(cafile=str(pki.ca_bundle_path()))
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the DMP speaks TLS 1.2
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_bundle_path()))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    client_ctx.load_cert_chain(*files["client"])
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, Any] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            seen["peer"] = tls.getpeercert()
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.recv(2) == b"ok"
            assert tls.version() == "TLSv1.2"
    finally:
        thread.join(timeout=10)
        listener.close()
    subject = dict(item for rdn in seen["peer"]["subject"] for item in rdn)
    assert subject["commonName"] == "810012345678"


def test_two_processes_creating_the_same_pki_agree(tmp_path: Path) -> None:
    """The file lock makes concurrent first uses (sandbox + tests) end with one root and one card key."""
    script = (
        "import sys; from pathlib import Path; from bridge.crypto.pki import TestPki\n"
        "from cryptography.hazmat.primitives.hashes import SHA256\n"
        "pki = TestPki.load_or_create(Path(sys.argv[1]))\n"
        "certs = pki.person('race', last_name='A', first_name='B', national_id='810000000009',"
        " profession_code='10', specialty_code='SM54', card_type='CPS')\n"
        "print(pki.root.fingerprint(SHA256()).hex(), certs.auth.certificate.serial_number)\n"
    )
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "pki")], cwd=root, stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(outputs) == 1, outputs


def test_reprs_carry_no_names_and_no_key(pki: TestPki) -> None:
    certs = pki.person("repr-gp", **GP)  # type: ignore[arg-type]
    text = repr(certs) + repr(certs.auth) + repr(pki)
    assert "MEDECIN" not in text and "PAUL" not in text and "PRIVATE" not in text
