"""ITI-57 new versions keep everything: the bridge's client masks a document another LPS registered with
metadata the client's model does not hold (second author, referenceIdList, a slot of its own), and every
slot, classification and external identifier is the same before and after, only the visibility changed.
The old client's new version (model rebuilt, hash/size/repositoryUniqueId/status/version dropped) is
refused by the simulator instead of being completed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AuthMode, Confidentiality, InsOid
from bridge.dmp.context import CONTENT_TYPE_DEFAULT, DmpCredentials, Practitioner, signed_vihf
from bridge.dmp.endpoints import Transaction, encode_request
from bridge.dmp.http import HttpsClient
from bridge.dmp.soap import parse_registry_response, parse_soap_response
from bridge.dmp.transactions import update_visibility, with_visibility
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import SubmissionSet, hl7_dtm
from bridge.sim.dmp import DmpSimulator
from bridge.xmlsafe import parse_xml
from tests.dmp_fixtures import settings_for
from tests.integration import dmp_sim_support as support
from tests.integration.dmp_sim_xds import submit

pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [support.requires_reference, pytest.mark.timeout(120)]

INS = "180017505601289"  # seeded test patient of the simulator tests
PATIENT = PatientIns(value=INS, oid=InsOid.NIR_TEST)
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"


def _bridge_side(pki: TestPki, dr: support.Practitioner) -> tuple[DmpCredentials, Practitioner]:
    auth, sign = dr.certs.auth, dr.certs.sign
    creds = DmpCredentials(
        "cps:roundtrip", ClientIdentity((auth.certificate, *auth.chain[:-1]), auth.key), sign.key,
        (sign.certificate, *sign.chain[:-1]),
    )  # fmt: skip
    who = Practitioner(
        national_id=dr.name_id, family="MEDECIN", given="ALICE", profession_code="10", specialty_code="SM26",
        structure_id="499900063480001", structure_name="CABINET", sector="SA07", mode=AuthMode.DIRECTE,
    )  # fmt: skip
    return creds, who


def _shape(xml: bytes) -> dict[str, object]:
    """Everything an ITI-57 version must keep, without the ids the registry assigns to each version."""
    el = parse_xml(xml)

    def slots(node: etree._Element) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(
            sorted(
                (s.get("name", ""), tuple(v.text or "" for v in s.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")))
                for s in node.iterfind(f"{{{RIM}}}Slot")
            )
        )

    classes = Counter(
        (c.get("classificationScheme"), c.get("nodeRepresentation"), slots(c))
        for c in el.iterfind(f"{{{RIM}}}Classification")
    )
    return {
        "attributes": {k: el.get(k) for k in ("lid", "mimeType", "objectType", "status")},
        "slots": slots(el),
        "name": etree.tostring(el.find(f"{{{RIM}}}Name")),
        "classifications": Counter({k: n for k, n in classes.items() if k[0] != CONFIDENTIALITY}),
        "confidentiality": sorted(k[1] or "" for k in classes.elements() if k[0] == CONFIDENTIALITY),
        "external_ids": sorted(
            (e.get("identificationScheme"), e.get("value")) for e in el.iterfind(f"{{{RIM}}}ExternalIdentifier")
        ),
    }


async def test_masking_keeps_every_slot_classification_and_identifier(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[support.Practitioner, support.Practitioner], tmp_path: Path
) -> None:
    dr_a = doctors[0]
    raw = support.DmpClient(sim.url, support.client_context(pki, dr_a.certs.auth, tmp_path))
    try:
        sent = await submit(raw, dr_a, INS, extra_metadata=True)
    finally:
        await raw.close()
    assert sent.answer.registry_status() == "Success", sent.answer.errors()
    settings = settings_for(sim.url, pki.ca_bundle_path())
    creds, who = _bridge_side(pki, dr_a)
    async with DmpClient(settings, creds) as client:
        before = await client.get_by_unique_id(who, PATIENT, sent.doc_uid)
        assert before is not None and before.registry_xml is not None
        assert len(before.authors) == 2 and b"referenceIdList" in before.registry_xml

        # The old client's new version: the model rebuilt, registry slots and status dropped -> refused.
        changed = with_visibility(before, add=[Confidentiality.MASQUE_PS])
        old_style = dataclasses.replace(
            changed, status=None, version=None, hash=None, size=None, repository_unique_id=None, registry_xml=None
        )
        now = dt.datetime.now(dt.UTC)
        lot = SubmissionSet(
            entry_id="SubmissionSet01", unique_id=f"1.2.250.1.999.7.1.1.{now:%H%M%S%f}", source_id="1.2.250.1.999.7.1",
            patient=PATIENT, submission_time=hl7_dtm(now), content_type=CONTENT_TYPE_DEFAULT, authors=(who.author(),),
        )  # fmt: skip
        body = update_visibility(lot, old_style, before.version or "1")
        vihf = signed_vihf(who, PATIENT, creds, settings, now=now, assertion_id="old-style")
        content_type, data = encode_request(body, transaction=Transaction.TD3_3, message_id="urn:uuid:3", vihf=vihf)
        async with HttpsClient(settings.endpoint(creds.tls)) as http:
            response = await http.post(settings.path("registry"), data, content_type)
        refused = parse_registry_response(parse_soap_response(response.body, response.header("content-type")).body)
        fault = refused.fault()
        assert fault is not None and fault.dmp_code == "XDSMetadataUpdateError"

        # The bridge's own new version: accepted, and nothing but the visibility changed.
        await client.set_visibility(who, PATIENT, sent.doc_uid, hidden_from_professionals=True)
        after = await client.get_by_unique_id(who, PATIENT, sent.doc_uid)
    assert after is not None and after.registry_xml is not None
    assert after.version == str(int(before.version or "1") + 1)
    shape_before, shape_after = _shape(before.registry_xml), _shape(after.registry_xml)
    codes_before = shape_before["confidentiality"]
    assert isinstance(codes_before, list)
    assert shape_after["confidentiality"] == sorted([*codes_before, "MASQUE_PS"])
    for key in ("attributes", "slots", "name", "classifications", "external_ids"):
        assert shape_after[key] == shape_before[key], key
