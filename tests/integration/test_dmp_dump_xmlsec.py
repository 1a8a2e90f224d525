"""Independent check of what goes on the wire: xmlsec1 verifies the VIHF and the XAdES signature of a
submitted lot, read back from the simulator's `--dump` files (the exact bytes the client sent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.dmp.client import DmpClient
from bridge.dmp.context import NewDocument
from bridge.dmp.mtom import parse_mtom
from bridge.dmp.xds_model import Code
from bridge.xmlsafe import parse_xml
from tests.dmp_fixtures import (  # noqa: F401  (fixtures)
    PATIENT,
    PATIENT_IDENTITY,
    dmp_pki,
    establishment_credentials,
    indirect_practitioner,
    settings_for,
    simulator,
)

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="xmlsec1 (Debian package) not installed")

SAML_ID = ("--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
XADES_IDS = (
    "--id-attr:Id", "http://www.w3.org/2000/09/xmldsig#:Manifest",
    "--id-attr:Id", "http://uri.etsi.org/01903/v1.1.1#:SignedProperties",
    "--ignore-manifests",
)  # fmt: skip
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"


def _xmlsec1(path: Path, trust: tuple[str, ...], *ids: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["xmlsec1", "--verify", *trust, *ids, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


async def test_dumped_lot_verifies_with_xmlsec1(dmp_pki: TestPki, tmp_path: Path) -> None:  # noqa: F811
    dump = tmp_path / "dump"
    (tmp_path / "tls").mkdir()
    (tmp_path / "data").mkdir()
    sim = simulator(dmp_pki, tmp_path / "tls", tmp_path / "data", dump_dir=dump)
    await sim.start()
    try:
        doc = NewDocument(
            content=PDF, mime_type="application/pdf", title="Consultation", patient_identity=PATIENT_IDENTITY,
            type_code=Code("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation"),
        )  # fmt: skip
        creds = establishment_credentials(dmp_pki)
        async with DmpClient(settings_for(sim.url, dmp_pki.ca_bundle_path()), creds) as client:
            await client.submit(indirect_practitioner(), PATIENT, [doc])
    finally:
        await sim.stop()

    requests = sorted(dump.glob("*TD2.1*-request.http"))
    assert len(requests) == 1, sorted(p.name for p in dump.iterdir())
    head, body = requests[0].read_bytes().split(b"\r\n\r\n", 1)
    content_type = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-type:")
    )
    message = parse_mtom(body, content_type)

    # Trust: the test IGC-Santé root only; the establishment's CA is an untrusted intermediate.
    root, orgs = tmp_path / "root.pem", tmp_path / "orgs.pem"
    root.write_bytes(dmp_pki.root.public_bytes(serialization.Encoding.PEM))
    orgs.write_bytes(dmp_pki.orgs_ca.cert_pem())
    trust = ("--trusted-pem", str(root), "--untrusted-pem", str(orgs))

    envelope = tmp_path / "envelope.xml"
    envelope.write_bytes(message.root.data)
    vihf = _xmlsec1(envelope, trust, *SAML_ID)
    assert vihf.returncode == 0, vihf.stderr

    signatures = [p for p in message.parts.values() if b"QualifyingProperties" in p.data]
    assert len(signatures) == 1
    xades = tmp_path / "xades.xml"
    xades.write_bytes(signatures[0].data)
    verified = _xmlsec1(xades, trust, *XADES_IDS)
    assert verified.returncode == 0, verified.stderr

    # Tampering with the signed VIHF is caught by the same verifier (the check can fail).
    tree = parse_xml(message.root.data)
    name_id = tree.find(".//{urn:oasis:names:tc:SAML:2.0:assertion}NameID")
    assert name_id is not None
    name_id.text = "899999999999"
    envelope.write_bytes(etree.tostring(tree))
    assert _xmlsec1(envelope, trust, *SAML_ID).returncode != 0
