"""DmpClient against the real DMP simulator over mutual TLS (DIRECTE with software CPS keys,
INDIRECTE with the establishment certificates where the rights matrix allows it)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.crypto.card_key import CardRsaPrivateKey
from bridge.crypto.pki import TestPki
from bridge.dmp.cda import CdaHeader, wrap_unstructured
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AvailabilityStatus, Confidentiality, DocFormat, PurposeOfUse
from bridge.dmp.context import MAX_WRAPPED_BYTES, DmpCredentials, DmpSettings, NewDocument, Practitioner, signed_vihf
from bridge.dmp.endpoints import Transaction, encode_request
from bridge.dmp.http import HttpsClient
from bridge.dmp.soap import parse_soap_response
from bridge.dmp.transactions import find_documents
from bridge.dmp.vihf import VihfContext, build_vihf, issuer_dn, sign_vihf
from bridge.dmp.xds_model import Code
from bridge.dmp.xds_parse import parse_query_response
from bridge.errors import BridgeError, ErrorCode
from bridge.sim.dmp.server import PATIENT_VIEW_HEADER
from bridge.xmlsafe import parse_xml
from tests.dmp_fixtures import (  # noqa: F401  (fixtures)
    PATIENT,
    PATIENT_IDENTITY,
    RunningSim,
    direct_credentials,
    direct_practitioner,
    dmp_pki,
    dmp_sim,
    establishment_credentials,
    indirect_practitioner,
    settings_for,
)

LOINC_CR = Code("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation")
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def _pdf_doc(**extra: object) -> NewDocument:
    return NewDocument(
        content=PDF, mime_type="application/pdf", title="Consultation", type_code=LOINC_CR,
        patient_identity=PATIENT_IDENTITY, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def _body(cda: bytes) -> bytes:
    text = parse_xml(cda).findtext(".//{urn:hl7-org:v3}nonXMLBody/{urn:hl7-org:v3}text")
    assert text is not None
    return base64.b64decode(text)


async def test_submit_find_retrieve_mask_archive_delete(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    # Metadata search, retrieval, masking and archiving are a card holder's (PDT-INF-526): DIRECTE.
    settings = settings_for(dmp_sim.url, dmp_sim.ca_file)
    author, other = direct_practitioner(), direct_practitioner("810098765432", "DURAND", "JEANNE")
    other_creds = direct_credentials(dmp_pki, "810098765432", "DURAND", "JEANNE")
    async with (
        DmpClient(settings, direct_credentials(dmp_pki)) as client,
        DmpClient(settings, other_creds) as other_client,
    ):
        result = await client.submit(author, PATIENT, [_pdf_doc()])
        (uid,) = result.unique_ids
        assert uid.startswith("1.2.250.1.999.7.1.3.")

        found = await client.find(author, PATIENT)
        assert [e.unique_id for e in found] == [uid]
        assert found[0].type_code.code == "11488-4"

        doc = await client.retrieve(author, PATIENT, uid)
        assert doc.content == result.stored[0]
        assert _body(doc.content) == PDF

        entry = await client.set_visibility(author, PATIENT, uid, hidden_from_professionals=True)
        assert Confidentiality.MASQUE_PS in entry.visibility
        assert [e.unique_id for e in await client.find(author, PATIENT)] == [uid]
        assert await other_client.find(other, PATIENT) == ()
        await client.set_visibility(author, PATIENT, uid, hidden_from_professionals=False)
        assert [e.unique_id for e in await other_client.find(other, PATIENT)] == [uid]

        # Hiding from the patient after submission has no transaction (only TD3.3b, make visible).
        with pytest.raises(BridgeError) as hide:
            await client.set_visibility(author, PATIENT, uid, hidden_from_patient=True)
        assert hide.value.code is ErrorCode.INVALID_PARAMS

        await client.set_status(author, PATIENT, uid, AvailabilityStatus.ARCHIVED)
        assert await client.find(author, PATIENT) == ()
        archived = await client.find(author, PATIENT, statuses=[AvailabilityStatus.ARCHIVED])
        assert [e.unique_id for e in archived] == [uid]
        await client.set_status(author, PATIENT, uid, AvailabilityStatus.APPROVED)
        assert [e.unique_id for e in await client.find(author, PATIENT)] == [uid]

        with pytest.raises(BridgeError) as refused:
            await other_client.delete(other, PATIENT, uid)
        # Own documents only (note (8)), the médecin traitant included: refused before sending.
        assert refused.value.code is ErrorCode.NOT_PERMITTED_FOR_ACTOR
        assert refused.value.extra["reason"] == "(8)"
        await client.delete(author, PATIENT, uid)
        assert await client.find(author, PATIENT) == ()
        # One full handshake: the second endpoint and later calls resume or reuse it.
        assert client.handshakes >= 1


async def test_indirect_mode_feeds_finds_references_and_deletes(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    """The establishment certificate feeds, finds a document's reference (ObjectRef) and deletes it; the
    matrix refuses it metadata search, retrieval, masking and archiving before anything is sent."""
    settings = settings_for(dmp_sim.url, dmp_sim.ca_file)
    who = indirect_practitioner()
    async with DmpClient(settings, establishment_credentials(dmp_pki)) as client:
        (uid,) = (await client.submit(who, PATIENT, [_pdf_doc()])).unique_ids
        sent = client.timings.request_bytes
        for refused_call in (
            client.find(who, PATIENT),
            client.get_by_unique_id(who, PATIENT, uid),
            client.retrieve(who, PATIENT, uid),
            client.set_visibility(who, PATIENT, uid, hidden_from_professionals=True),
            client.set_status(who, PATIENT, uid, AvailabilityStatus.ARCHIVED),
        ):
            with pytest.raises(BridgeError) as refused:
                await refused_call
            assert refused.value.code is ErrorCode.NOT_PERMITTED_FOR_ACTOR
            assert refused.value.extra["accessMode"] == "normal"
            assert refused.value.extra["transaction"] in {"TD3.1", "TD3.2", "TD3.3a", "TD3.3d"}
        assert client.timings.request_bytes == sent  # refused before sending
        refs = await client.find_references(who, PATIENT, uid)
        assert len(refs) == 1 and refs[0].startswith("urn:uuid:")
        located = await client.locate(who, PATIENT, uid)
        assert located is not None and located.entry_uuid == refs[0]
        assert located.status is AvailabilityStatus.APPROVED
        assert await client.find_references(who, PATIENT, "1.2.250.1.999.7.1.3.404") == ()
        await client.delete(who, PATIENT, uid)
        assert await client.find_references(who, PATIENT, uid) == ()
        with pytest.raises(BridgeError) as gone:
            await client.delete(who, PATIENT, uid)
        assert gone.value.code is ErrorCode.NOT_FOUND


class CountingKey(CardRsaPrivateKey):
    """A software key behind the card-key interface, counting private-key operations (card signatures)."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.count = 0

        def sign_digest(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
            self.count += 1
            return key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))

        super().__init__(key.public_key(), sign_digest, label="counting")


async def test_vihf_signed_once_per_patient_context(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    base = direct_credentials(dmp_pki)
    key = CountingKey(base.signing_key)
    creds = DmpCredentials("counting", base.tls, key, base.signing_chain)
    author = direct_practitioner()
    async with DmpClient(settings_for(dmp_sim.url, dmp_sim.ca_file), creds) as client:
        result = await client.submit(author, PATIENT, [_pdf_doc()])
        assert key.count == 2  # the XAdES of the lot, the VIHF
        await client.find(author, PATIENT)
        await client.retrieve(author, PATIENT, result.unique_ids[0])
        await client.set_status(author, PATIENT, result.unique_ids[0], AvailabilityStatus.ARCHIVED)
        assert key.count == 2  # same practitioner, patient and mode: the cached VIHF
        emergency = dataclasses.replace(author, purpose=PurposeOfUse.BRIS_DE_GLACE)
        await client.find(emergency, PATIENT, statuses=[AvailabilityStatus.ARCHIVED])
        assert key.count == 3  # another access mode is another VIHF
        # Two endpoints (registry, repository), one TLS session: the second handshake resumes it.
        assert (client.handshakes, client.resumed_handshakes) == (2, 1)


async def test_wrapped_content_size_is_bounded(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    async with DmpClient(settings_for(dmp_sim.url, dmp_sim.ca_file), establishment_credentials(dmp_pki)) as client:
        big = dataclasses.replace(_pdf_doc(), content=b"%PDF" + bytes(MAX_WRAPPED_BYTES))
        with pytest.raises(BridgeError) as refused:
            await client.submit(indirect_practitioner(), PATIENT, [big])
        assert refused.value.code is ErrorCode.INVALID_PARAMS
        assert client.handshakes == 0  # refused before any network access


async def test_cda_pass_through_and_replacement(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    author = direct_practitioner()
    header = CdaHeader(
        document_id="1.2.250.1.999.7.1.3.42",
        type_code=LOINC_CR,
        title="CR déjà en CDA",
        effective_time=dt.datetime.now(dt.UTC),
        patient=PATIENT_IDENTITY,
        author=author.person(),
        custodian=author.institution(),
        facility=author.facility(),
    )
    cda = wrap_unstructured(header, b"compte rendu en texte", DocFormat.TEXT)
    async with DmpClient(settings_for(dmp_sim.url, dmp_sim.ca_file), direct_credentials(dmp_pki)) as client:
        first = await client.submit(
            author, PATIENT, [NewDocument(content=cda, mime_type="text/xml", title="", type_code=LOINC_CR)]
        )
        assert first.unique_ids == ("1.2.250.1.999.7.1.3.42",)
        assert (await client.retrieve(author, PATIENT, "1.2.250.1.999.7.1.3.42")).content == cda
        (entry,) = await client.find(author, PATIENT)
        assert entry.format_code.code == DocFormat.TEXT.value and entry.title == "CR déjà en CDA"

        second = await client.submit(author, PATIENT, [_pdf_doc()], replaces={0: "1.2.250.1.999.7.1.3.42"})
        assert [e.unique_id for e in await client.find(author, PATIENT)] == list(second.unique_ids)
        assert await client.get_by_unique_id(author, PATIENT, "1.2.250.1.999.7.1.3.42") is None


async def _raw_find(settings: DmpSettings, creds: DmpCredentials, who: Practitioner, return_type: str) -> Any:
    """A FindDocuments sent past the client's rights check (what the client used to send): the SOAP answer."""
    vihf = signed_vihf(who, PATIENT, creds, settings, now=dt.datetime.now(dt.UTC), assertion_id="raw")
    content_type, body = encode_request(
        find_documents(PATIENT, return_type=return_type), transaction=Transaction.TD3_1, message_id="urn:uuid:2",
        vihf=vihf,
    )  # fmt: skip
    async with HttpsClient(settings.endpoint(creds.tls)) as http:
        response = await http.post(settings.path("registry"), body, content_type)
    return parse_soap_response(response.body, response.header("content-type"))


async def test_simulator_refuses_metadata_search_to_the_establishment(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    settings, creds = settings_for(dmp_sim.url, dmp_sim.ca_file), establishment_credentials(dmp_pki)
    who = indirect_practitioner()
    leaf = await _raw_find(settings, creds, who, "LeafClass")
    assert leaf.fault is not None and leaf.fault.dmp_code.endswith("DMPAccessDeniedByRightsService")
    refs = await _raw_find(settings, creds, who, "ObjectRef")
    assert refs.fault is None and parse_query_response(refs.body).registry.ok


async def _patient_sees(settings: DmpSettings, creds: DmpCredentials, unique_id: str) -> bool:
    """Ask the simulator's patient view (its `X-DMP-Sim-Viewer: patient` header) whether a document shows."""
    author = direct_practitioner()
    ctx = VihfContext(
        assertion_id="_patient-view", issue_instant=dt.datetime.now(dt.UTC),
        issuer_dn=issuer_dn(creds.signing_chain[0]),
        name_id=author.national_id, auth_mode=author.mode, structure_id=author.structure_id, sector=author.sector,
        roles=author.roles(), lps_name="T", lps_version="1", lps_homologation="T", patient=PATIENT,
    )  # fmt: skip
    vihf = sign_vihf(build_vihf(ctx), creds.signing_key, creds.signing_chain)
    content_type, body = encode_request(
        find_documents(PATIENT), transaction=Transaction.TD3_1, message_id="urn:uuid:1", vihf=vihf
    )
    async with HttpsClient(settings.endpoint(creds.tls)) as http:
        response = await http.post(
            settings.path("registry"), body, content_type, headers=[(PATIENT_VIEW_HEADER, "patient")]
        )
    answer = parse_soap_response(response.body, response.header("content-type"))
    return unique_id in {e.unique_id for e in parse_query_response(answer.body).entries}


async def test_hidden_from_patient_in_the_patient_view(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    # Hidden from the patient at submission, then made visible (TD3.3b): the only way the DMP offers.
    settings, creds = settings_for(dmp_sim.url, dmp_sim.ca_file), direct_credentials(dmp_pki)
    author = direct_practitioner()
    async with DmpClient(settings, creds) as client:
        (uid,) = (await client.submit(author, PATIENT, [_pdf_doc(hidden_from_patient=True)])).unique_ids
        assert not await _patient_sees(settings, creds, uid)
        assert [e.unique_id for e in await client.find(author, PATIENT)] == [uid]  # professionals still see it
        await client.set_visibility(author, PATIENT, uid, hidden_from_patient=False)
        assert await _patient_sees(settings, creds, uid)


async def test_the_medecin_traitant_is_left_to_the_dmp(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    """Archiving another's document is the MT's right, which only the DMP knows: the client sends it, the
    simulator decides with its own MT data, and its refusal comes back as NOT_PERMITTED_FOR_ACTOR."""
    settings = settings_for(dmp_sim.url, dmp_sim.ca_file)
    author, other = direct_practitioner(), direct_practitioner("810098765432", "DURAND", "JEANNE")
    async with (
        DmpClient(settings, direct_credentials(dmp_pki)) as client,
        DmpClient(settings, direct_credentials(dmp_pki, "810098765432", "DURAND", "JEANNE")) as other_client,
    ):
        (uid,) = (await client.submit(author, PATIENT, [_pdf_doc()])).unique_ids
        with pytest.raises(BridgeError) as refused:
            await other_client.set_status(other, PATIENT, uid, AvailabilityStatus.ARCHIVED)
        assert refused.value.code is ErrorCode.NOT_PERMITTED_FOR_ACTOR
        assert refused.value.extra["dmpCode"].endswith("DMPAccessDeniedByRightsService")
        dmp_sim.sim.store.set_medecin_traitant(PATIENT.value, other.national_id)
        assert (
            await other_client.set_status(other, PATIENT, uid, AvailabilityStatus.ARCHIVED)
            is AvailabilityStatus.APPROVED
        )
