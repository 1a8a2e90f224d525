"""DMP simulator end to end by raw SOAP: submit, find, retrieve, mask, hide, archive, delete, replace, restart."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.sim.dmp import DmpSimulator
from tests.integration.dmp_sim_support import (
    NS,
    DmpClient,
    Practitioner,
    client_context,
    requires_reference,
    sample_envelope,
    sign_vihf,
    sim_config,
    started,
    with_vihf,
)
from tests.integration.dmp_sim_xds import (
    APPROVED,
    ARCHIVED,
    DELETED,
    DEPRECATED,
    confidentiality_of,
    find,
    retrieve,
    set_status,
    set_visibility,
    submit,
    unique_id_of,
)

# Fixtures pki, doctors, sim.
pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(120)]

INS = "180017505601289"  # seeded test patient


@pytest.fixture
async def clients(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[tuple[DmpClient, DmpClient]]:
    """Dr A and Dr B, each over mutual TLS with their own card certificate."""
    a = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    b = DmpClient(sim.url, client_context(pki, doctors[1].certs.auth, tmp_path))
    yield a, b
    await a.close()
    await b.close()


def _only(entries: list[etree._Element]) -> etree._Element:
    assert len(entries) == 1, entries
    return entries[0]


async def test_full_document_lifecycle(
    clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    (client_a, client_b), (dr_a, dr_b) = clients, doctors
    sent = await submit(client_a, dr_a, INS)
    assert sent.answer.status == 200 and sent.answer.registry_status() == "Success", sent.answer.errors()
    assert sent.answer.envelope.findtext(".//wsa:Action", namespaces=NS) == (
        "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    )

    # TD3.1: found with registry metadata (status, version, hash, size).
    entry = _only(await find(client_a, dr_a, INS))
    assert unique_id_of(entry) == sent.doc_uid
    assert entry.get("status") == APPROVED
    slots = {s.get("name"): s.findtext(".//rim:Value", namespaces=NS) for s in entry.iterfind("rim:Slot", NS)}
    assert slots["hash"] == hashlib.sha1(sent.cda).hexdigest()
    assert slots["size"] == str(len(sent.cda))
    assert slots["repositoryUniqueId"] == "1.2.250.1.213.4.1.1.1.2"

    # TD3.2: byte-identical content, MTOM, xop:Include pointing at the part.
    got = await retrieve(client_a, dr_a, INS, sent.doc_uid)
    assert got.registry_status() == "Success"
    href = got.envelope.find(".//xop:Include", NS).get("href")
    assert got.content_type.startswith("multipart/related")
    ((cid, content),) = got.attachments.items()
    assert href == "cid:" + cid.replace(":", "%3A")
    assert content == sent.cda

    # Dr B sees it too, until Dr A masks it to professionals (TD3.3a).
    _only(await find(client_b, dr_b, INS))
    masked = await set_visibility(client_a, dr_a, INS, entry, add=("MASQUE_PS",))
    assert masked.registry_status() == "Success", masked.errors()
    assert await find(client_b, dr_b, INS) == []
    refused = await retrieve(client_b, dr_b, INS, sent.doc_uid)
    assert refused.registry_status() == "Failure" and refused.error_codes() == ["XDSDocumentUniqueIdError"]
    v2 = _only(await find(client_a, dr_a, INS))
    assert "MASQUE_PS" in confidentiality_of(v2)
    assert v2.find("rim:VersionInfo", NS).get("versionName") == "2"
    assert v2.get("lid") == entry.get("lid") and v2.get("id") != entry.get("id")
    old = _only(await find(client_a, dr_a, INS, (DEPRECATED,)))
    assert old.get("id") == entry.get("id") and old.get("status") == DEPRECATED
    _only(await find(client_a, dr_a, INS, patient=True))  # the patient still sees a document masked to professionals
    assert await find(client_b, dr_b, INS, (APPROVED, DEPRECATED)) == []  # no leak through the old version

    # A stale PreviousVersion is refused.
    stale = await set_visibility(client_a, dr_a, INS, v2, remove=("MASQUE_PS",), previous="1")
    assert stale.error_codes() == ["XDSMetadataVersionError"]

    # Hiding from the patient after submission has no transaction (TD3.3b only makes visible).
    hide = await set_visibility(client_a, dr_a, INS, v2, add=("INVISIBLE_PATIENT",), remove=("MASQUE_PS",))
    assert hide.error_codes() == ["XDSMetadataUpdateError"]
    # A new version that drops metadata the current one has is refused, not completed (kit template_masquage).
    for dropped in ("hash", "size", "repositoryUniqueId"):
        partial = await set_visibility(client_a, dr_a, INS, v2, remove=("MASQUE_PS",), drop_slots=(dropped,))
        assert partial.error_codes() == ["XDSMetadataUpdateError"], dropped
    # Unmask (TD3.3a): Dr B sees it again.
    unmasked = await set_visibility(client_a, dr_a, INS, v2, remove=("MASQUE_PS",))
    assert unmasked.registry_status() == "Success", unmasked.errors()
    v3 = _only(await find(client_b, dr_b, INS))
    assert confidentiality_of(v3) == {"N"}

    # Archive / unarchive (TD3.3d).
    current = str(v3.get("id"))
    wrong = await set_status(client_a, dr_a, INS, current, ARCHIVED, APPROVED)
    assert wrong.error_codes() == ["XDSMetadataUpdateError"]
    archived = await set_status(client_a, dr_a, INS, current, APPROVED, ARCHIVED)
    assert archived.registry_status() == "Success", archived.errors()
    assert await find(client_a, dr_a, INS) == []
    assert _only(await find(client_a, dr_a, INS, (ARCHIVED,))).get("status") == ARCHIVED
    assert (await retrieve(client_a, dr_a, INS, sent.doc_uid)).registry_status() == "Success"
    back = await set_status(client_a, dr_a, INS, current, ARCHIVED, APPROVED)
    assert back.registry_status() == "Success"
    _only(await find(client_a, dr_a, INS))

    # Delete (TD3.3c): only the author (PDT-INF-526 note (8)); then gone for everyone.
    not_author = await set_status(client_b, dr_b, INS, current, APPROVED, DELETED)
    assert not_author.fault_subcode().endswith("DMPAccessDeniedByRightsService")
    deleted = await set_status(client_a, dr_a, INS, current, APPROVED, DELETED)
    assert deleted.registry_status() == "Success", deleted.errors()
    assert await find(client_a, dr_a, INS, (APPROVED, ARCHIVED)) == []
    assert (await retrieve(client_a, dr_a, INS, sent.doc_uid)).error_codes() == ["XDSDocumentUniqueIdError"]


async def test_replacement_deprecates_the_old_version(
    clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    client_a, dr_a = clients[0], doctors[0]
    first = await submit(client_a, dr_a, INS)
    old = _only(await find(client_a, dr_a, INS))
    second = await submit(client_a, dr_a, INS, replaces=str(old.get("id")))
    assert second.answer.registry_status() == "Success", second.answer.raw[:2000]
    assert unique_id_of(_only(await find(client_a, dr_a, INS))) == second.doc_uid
    assert unique_id_of(_only(await find(client_a, dr_a, INS, (DEPRECATED,)))) == first.doc_uid
    again = await submit(client_a, dr_a, INS, replaces=str(old.get("id")))
    assert again.answer.error_codes() == ["XDSRegistryMetadataError"]  # a Deprecated version cannot be replaced


async def test_masked_at_submission_is_hidden_from_other_professionals(
    clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    (client_a, client_b), (dr_a, dr_b) = clients, doctors
    sent = await submit(client_a, dr_a, INS, extra_conf=("MASQUE_PS",))
    assert sent.answer.registry_status() == "Success"
    _only(await find(client_a, dr_a, INS))
    assert await find(client_b, dr_b, INS) == []


async def test_xades_digest_mismatch_refused(
    clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    sent = await submit(clients[0], doctors[0], INS, tamper=True)
    assert sent.answer.registry_status() == "Failure"
    assert sent.answer.error_codes() == ["XDSRegistryMetadataError"]
    context = sent.answer.envelope.find(".//rs:RegistryError", NS).get("codeContext")
    assert "empreinte" in context


async def test_documents_survive_a_restart(
    pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    config = sim_config(pki, tmp_path / "sim")
    dr_a = doctors[0]
    async for running in started(config):
        client = DmpClient(running.url, client_context(pki, dr_a.certs.auth, tmp_path))
        sent = await submit(client, dr_a, INS)
        assert sent.answer.registry_status() == "Success"
        await client.close()
    async for running in started(config):
        client = DmpClient(running.url, client_context(pki, dr_a.certs.auth, tmp_path))
        assert unique_id_of(_only(await find(client, dr_a, INS))) == sent.doc_uid
        got = await retrieve(client, dr_a, INS, sent.doc_uid)
        assert list(got.attachments.values()) == [sent.cda]
        await client.close()


async def test_get_documents_and_object_refs(
    clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    client_a, dr_a = clients[0], doctors[0]
    sent = await submit(client_a, dr_a, INS)
    entry = _only(await find(client_a, dr_a, INS))
    env = sample_envelope("TD3.1_Recherche-de-document_request.xml")
    query = env.find(".//rim:AdhocQuery", NS)
    assert query is not None
    query.set("id", "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4")  # GetDocuments
    for slot in query.findall("rim:Slot", NS):
        query.remove(slot)
    slot = etree.SubElement(query, f"{{{NS['rim']}}}Slot", name="$XDSDocumentEntryUniqueId")
    etree.SubElement(
        etree.SubElement(slot, f"{{{NS['rim']}}}ValueList"), f"{{{NS['rim']}}}Value"
    ).text = f"('{sent.doc_uid}')"
    option = env.find(".//query:ResponseOption", NS)
    assert option is not None
    got = await client_a.post("registry", with_vihf(env, sign_vihf(dr_a, INS)))
    assert [e.get("id") for e in got.envelope.iter(f"{{{NS['rim']}}}ExtrinsicObject")] == [entry.get("id")]
    option.set("returnType", "ObjectRef")
    refs = await client_a.post("registry", with_vihf(env, sign_vihf(dr_a, INS)))
    assert [e.get("id") for e in refs.envelope.iter(f"{{{NS['rim']}}}ObjectRef")] == [entry.get("id")]
    query.set("id", "urn:uuid:00000000-0000-0000-0000-000000000000")
    unknown = await client_a.post("registry", with_vihf(env, sign_vihf(dr_a, INS)))
    assert unknown.error_codes() == ["XDSUnknownStoredQuery"]


async def test_dump_names_each_transaction(
    pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    dr_a = doctors[0]
    async for running in started(sim_config(pki, tmp_path / "sim", dump)):
        client = DmpClient(running.url, client_context(pki, dr_a.certs.auth, tmp_path))
        sent = await submit(client, dr_a, INS)
        entry = _only(await find(client, dr_a, INS))
        await retrieve(client, dr_a, INS, sent.doc_uid)
        await set_visibility(client, dr_a, INS, entry, add=("INVISIBLE_PATIENT",))
        current = _only(await find(client, dr_a, INS))
        await set_status(client, dr_a, INS, str(current.get("id")), APPROVED, ARCHIVED)
        await set_status(client, dr_a, INS, str(current.get("id")), ARCHIVED, DELETED)
        await client.close()
    stems = sorted({p.name.rsplit("-", 1)[0] for p in dump.iterdir()})
    assert stems == [
        "0001-TD2.1",
        "0002-TD3.1",
        "0003-TD3.2",
        "0004-TD3.3ab",
        "0005-TD3.1",
        "0006-TD3.3d",
        "0007-TD3.3c",
    ]
    retrieved = (dump / "0003-TD3.2-response.http").read_bytes()
    assert retrieved.startswith(b"HTTP/1.1 200\r\nContent-Type: multipart/related") and sent.cda in retrieved
