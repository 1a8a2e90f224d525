"""The official sample requests, with a VIHF signed by a test card, against the simulator.

Each is accepted, or answered with the functional error its content calls for (documents of the
sample DMP do not exist here; the sample's own XAdES was made with a real IGC-Santé test card).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.sim.dmp import DmpSimulator
from tests.integration.dmp_sim_support import (
    MESSAGES,
    NS,
    SAMPLE_INS,
    DmpClient,
    Practitioner,
    client_context,
    multipart,
    requires_reference,
    sample_envelope,
    sample_part,
    sign_vihf,
    with_vihf,
    xades_signature,
)
from tests.integration.dmp_sim_xds import CDA_CID, TD21, XADES_CID

# Fixtures pki, doctors, sim.
pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(60)]

SAMPLE_SS_UID = "1.2.250.1.999.1.1.7898.1.1622814651504"
SAMPLE_DOC_UID = "1.2.250.1.999.1.1.7898.3.1622814651504"


@pytest.fixture
async def client(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[DmpClient]:
    """Dr A over mutual TLS."""
    c = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    yield c
    await c.close()


def _td21_as_captured() -> tuple[str, bytes]:
    data = (MESSAGES / TD21).read_bytes()
    return (
        'multipart/related; type="application/xop+xml"; boundary="----=_Part_9_20030738.1554380517598"; '
        'start="<rootpart@soapui.org>"; start-info="application/soap+xml"',
        data,
    )


async def test_td21_capture_is_soap11_and_gets_version_mismatch(client: DmpClient) -> None:
    ctype, body = _td21_as_captured()
    answer = await client.post("repository", body, ctype)
    assert answer.status == 400
    assert answer.fault_subcode() == "soap:VersionMismatch"


async def test_td21_sample_with_its_own_xades_is_refused(
    client: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    # SOAP 1.2 envelope, our VIHF, the sample's documents and XAdES as published.
    envelope = with_vihf(sample_envelope(TD21), sign_vihf(doctors[0], SAMPLE_INS))
    parts = [(CDA_CID, sample_part(TD21, CDA_CID)), (XADES_CID, sample_part(TD21, XADES_CID))]
    ctype, body = multipart(envelope, parts)
    answer = await client.post("repository", body, ctype)
    assert answer.status == 200
    assert answer.registry_status() == "Failure"
    ((code, context),) = answer.errors()
    assert code == "XDSRegistryMetadataError" and "Signature XAdES" in context


async def test_official_samples_accepted_in_sequence(
    client: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    dr_a = doctors[0]
    # TD2.1: the sample as published, re-signed (XAdES) by our test card for its own uniqueIds.
    cda = sample_part(TD21, CDA_CID)
    xades = xades_signature(dr_a.certs.sign, SAMPLE_SS_UID, [(SAMPLE_DOC_UID, cda)])
    envelope = with_vihf(sample_envelope(TD21), sign_vihf(dr_a, SAMPLE_INS))
    ctype, body = multipart(envelope, [(CDA_CID, cda), (XADES_CID, xades)])
    submitted = await client.post("repository", body, ctype)
    assert submitted.registry_status() == "Success", submitted.errors()
    again = await client.post("repository", body, ctype)
    assert again.error_codes() == ["XDSDuplicateUniqueIdInRegistry"]

    # TD3.1: FindDocuments of the sample's patient, Approved -> our document.
    found = await client.post(
        "registry", with_vihf(sample_envelope("TD3.1_Recherche-de-document_request.xml"), sign_vihf(dr_a, SAMPLE_INS))
    )
    assert found.registry_status() == "Success"
    assert found.envelope.find(".//query:AdhocQueryResponse", NS).get("totalResultCount") == "1"
    entry = found.envelope.find(".//rim:ExtrinsicObject", NS)
    assert entry is not None and entry.get("status") == "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"

    # TD3.2: the sample asks for a document of the real test DMP -> XDSDocumentUniqueIdError (MTOM answer).
    retrieved = await client.post(
        "repository",
        with_vihf(sample_envelope("TD3.2_Consultation-dun-document_request.xml"), sign_vihf(dr_a, SAMPLE_INS)),
    )
    assert retrieved.content_type.startswith("multipart/related")
    assert retrieved.error_codes() == ["XDSDocumentUniqueIdError"]

    # TD3.3c / TD3.3d: the samples target entryUUIDs of the real test DMP -> unresolved reference.
    for name in ("TD3.3c_Supprimer-un-document_request.xml", "TD3.3d_Archiver-un-document_request.xml"):
        updated = await client.post("registry", with_vihf(sample_envelope(name), sign_vihf(dr_a, SAMPLE_INS)))
        assert (
            updated.envelope.findtext(".//wsa:Action", namespaces=NS) == "urn:ihe:iti:2010:UpdateDocumentSet-Response"
        )
        assert updated.error_codes() == ["UnresolvedReferenceException"], name

    # TD3.3d on our document: the sample's shape with our entryUUID archives it.
    archive = sample_envelope("TD3.3d_Archiver-un-document_request.xml")
    archive.find(".//rim:Association", NS).set("targetObject", entry.get("id"))
    archived = await client.post("registry", with_vihf(archive, sign_vihf(dr_a, SAMPLE_INS)))
    assert archived.registry_status() == "Success", archived.errors()


async def test_incomplete_metadata_refused(client: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    dr_a = doctors[0]
    env = sample_envelope(TD21)
    doc = next(e for e in env.iter(f"{{{NS['rim']}}}ExtrinsicObject") if e.get("id") == "DocumentME2")
    class_code = next(
        c for c in doc.iterfind("rim:Classification", NS) if c.get("classificationScheme").endswith("e362475b143a")
    )
    doc.remove(class_code)
    cda = sample_part(TD21, CDA_CID)
    xades = xades_signature(dr_a.certs.sign, SAMPLE_SS_UID, [(SAMPLE_DOC_UID, cda)])
    ctype, body = multipart(with_vihf(env, sign_vihf(dr_a, SAMPLE_INS)), [(CDA_CID, cda), (XADES_CID, xades)])
    answer = await client.post("repository", body, ctype)
    ((code, context),) = answer.errors()
    assert code == "XDSRegistryMetadataError" and "classCode" in context


async def test_patient_mismatch_and_closed_dmp(client: DmpClient, doctors: tuple[Practitioner, Practitioner]) -> None:
    dr_a = doctors[0]
    # VIHF for another patient than the query's.
    other = await client.post(
        "registry",
        with_vihf(sample_envelope("TD3.1_Recherche-de-document_request.xml"), sign_vihf(dr_a, "279035121518989")),
    )
    assert other.error_codes() == ["XDSPatientIdDoesNotMatch"]
    # A closed DMP (seed patient) answers DMPClosed.
    closed = "164063155504440"
    envelope = sample_envelope("TD3.1_Recherche-de-document_request.xml")
    value = envelope.find(".//rim:Slot[@name='$XDSDocumentEntryPatientId']/rim:ValueList/rim:Value", NS)
    assert value is not None
    value.text = f"'{closed}^^^&1.2.250.1.213.1.4.10&ISO^NH'"
    answer = await client.post("registry", with_vihf(envelope, sign_vihf(dr_a, closed)))
    assert answer.fault_subcode() == "soap:DMPClosed"
