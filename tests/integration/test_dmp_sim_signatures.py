"""The simulator matches the XAdES SigningCertificate to the signer (digest and IssuerSerial), and the
bridge's own profiles (official sample: RSA-SHA1 with the chain; DRIMbox-like: signer only; SHA-256)
are all accepted."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.dmp.cda import CdaPatient
from bridge.dmp.client import DmpClient as BridgeClient
from bridge.dmp.codes import InsOid, SignatureAlgorithm
from bridge.dmp.context import NewDocument
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xades import XadesProfile
from bridge.dmp.xds_model import Code
from bridge.sim.dmp import DmpSimulator
from tests.dmp_fixtures import direct_credentials, direct_practitioner, settings_for
from tests.integration.dmp_sim_support import DmpClient, Practitioner, client_context, requires_reference
from tests.integration.dmp_sim_xds import submit

pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(120)]

INS = "180017505601289"


@pytest.fixture
async def client(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[DmpClient]:
    """Dr A over mutual TLS."""
    c = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    yield c
    await c.close()


async def test_signing_certificate_must_name_the_signer(
    client: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    dr_a, dr_b = doctors
    ok = await submit(client, dr_a, INS)
    assert ok.answer.registry_status() == "Success", ok.answer.errors()
    # Signed by Dr A, SigningCertificate naming Dr B's certificate: the old simulator did not look.
    other = await submit(client, dr_a, INS, xades_options={"named": dr_b.certs.sign.certificate})
    assert other.answer.error_codes() == ["XDSRegistryMetadataError"]
    assert "SigningCertificate" in other.answer.errors()[0][1]
    # The right digest without the IssuerSerial is refused too.
    bare = await submit(client, dr_a, INS, xades_options={"issuer_serial": False})
    assert bare.answer.error_codes() == ["XDSRegistryMetadataError"]


@pytest.mark.parametrize("algorithm", list(SignatureAlgorithm))
@pytest.mark.parametrize("whole_chain", [True, False])
async def test_the_bridges_profiles_are_accepted(
    sim: DmpSimulator, pki: TestPki, algorithm: SignatureAlgorithm, whole_chain: bool
) -> None:
    """The bridge's own XAdES (bridge.dmp.xades) under each profile, through its client."""
    settings = dataclasses.replace(
        settings_for(sim.url, pki.ca_bundle_path()), xades=XadesProfile(algorithm, whole_chain)
    )
    patient = PatientIns(value=INS, oid=InsOid.NIR_TEST)
    identity = CdaPatient(ins=patient, family="MARTIN", given="JEAN", gender="M", birth_date="19780314")
    doc = NewDocument(
        content=b"%PDF-1.4\n%%EOF\n", mime_type="application/pdf", title="CR",
        type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR de consultation"), patient_identity=identity,
    )  # fmt: skip
    async with BridgeClient(settings, direct_credentials(pki)) as bridge:
        result = await bridge.submit(direct_practitioner(), patient, [doc])
    assert len(result.unique_ids) == 1
