"""Shared helpers for the DMP wire-layer tests: a software RSA signer with a small CA, sample loading."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from bridge.dmp.codes import AuthMode, InsOid
from bridge.dmp.vihf import PatientIns, Role, VihfContext
from tests.conftest import SHARED
from tests.tls_peers import cert_name

# DMP_BRIDGE_SHARED lets a worktree outside /work/main point at the shared folder.
REFERENCE = Path(os.environ.get("DMP_BRIDGE_SHARED", str(SHARED))) / "reference" / "dmp"
MESSAGES = REFERENCE / "messages"
VIHF_SAMPLES = REFERENCE / "vihf"
TEMPLATES = REFERENCE / "templates"
SCHEMAS = REFERENCE / "wsdl" / "schema"

needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"official DMP reference material not found at {REFERENCE}"
)
needs_xmlsec1 = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 (Debian package) not installed")


@dataclass
class Signer:
    """A software signer: key, its certificate and the issuing CA (PEM files written for xmlsec1)."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    ca_cert: x509.Certificate
    cert_pem: Path
    ca_pem: Path


def vihf_context(**changes: Any) -> VihfContext:
    """A direct-mode VIHF context for a general practitioner and the test NIR; `changes` replace fields."""
    base: dict[str, Any] = {
        "assertion_id": "_1",
        "issue_instant": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "issuer_dn": "CN=x",
        "name_id": "899900063480",
        "auth_mode": AuthMode.DIRECTE,
        "structure_id": "499900063480001",
        "sector": "SA07",
        "roles": (Role(code="10", code_system="1.2.250.1.71.1.2.7", display_name="Médecin"),),
        "lps_name": "dmp-bridge",
        "lps_version": "0.1",
        "lps_homologation": "XXX",
        "patient": PatientIns(value="207058575627097", oid=InsOid.NIR_TEST),
    }
    base.update(changes)
    return VihfContext(**base)


def make_signer(directory: Path) -> Signer:
    """A CA and an end-entity signature certificate (2048-bit RSA), valid around now."""
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = cert_name("TEST AC IGC-SANTE", "IGC-SANTE TEST")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(cert_name("899900063480", "Médecin"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert_pem = directory / "signer.pem"
    ca_pem = directory / "ca.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return Signer(key, cert, ca_cert, cert_pem, ca_pem)


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signer]:
    """One software signer per test session (RSA key generation is slow)."""
    yield make_signer(tmp_path_factory.mktemp("dmp-signer"))


def sample_envelope(name: str) -> bytes:
    """The SOAP envelope of an official sample, MIME part headers and trailing parts removed."""
    data = (MESSAGES / name).read_bytes()
    start = data.find(b"<soap:Envelope")
    end = data.find(b"</soap:Envelope>") + len(b"</soap:Envelope>")
    return data[start:end]


def xmlsec1_verify(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's xmlsec1 --verify on a file with extra arguments."""
    return subprocess.run(
        ["xmlsec1", "--verify", *args, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def strip_ws(text: str) -> str:
    """Collapse whitespace for loose text comparisons."""
    return re.sub(r"\s+", " ", text).strip()


def sample_body(name: str) -> Any:
    """The first element of the SOAP Body of an official sample request (trusted local file)."""
    env = etree.fromstring(sample_envelope(name), etree.XMLParser(resolve_entities=False, no_network=True))
    body = next(c for c in env if etree.QName(c).localname == "Body")
    return next(c for c in body if isinstance(c.tag, str))


def template_request(name: str) -> Any:
    """A kit template (written without namespaces) moved into the ebRS namespaces it stands for."""
    root = etree.fromstring((TEMPLATES / name).read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
    rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    lcm = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
    for el in root.iter():
        if isinstance(el.tag, str) and "}" not in el.tag:
            el.tag = f"{{{lcm if el is root else rim}}}{el.tag}"
    return root


@pytest.fixture(scope="session")
def xds_schema() -> Any:
    """The official XDS.b repository schema (imports ebRS rim/rs/lcm/query): validates every XDS body."""
    if not SCHEMAS.is_dir():
        pytest.skip(f"official XSDs not found at {SCHEMAS}")
    return etree.XMLSchema(etree.parse(str(SCHEMAS / "IHE" / "XDS.b_DocumentRepository.xsd")))
