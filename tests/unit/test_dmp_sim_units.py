"""Sans-IO pieces of the DMP simulator: INS keys, MTOM reading, SOAP faults, XML-DSig on the official sample."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from bridge.sim.dmp.constants import InsOid
from bridge.sim.dmp.ins import InsError, parse_ins_cx, valid_nir
from bridge.sim.dmp.mime import build_mtom, parse_body
from bridge.sim.dmp.soap import FaultCode, SoapFault, build_fault
from bridge.sim.dmp.xmldsig import SignatureError, signer_certificate, verify
from bridge.xmlsafe import parse_xml

MESSAGES = Path("/work/shared/reference/dmp/messages")
requires_reference = pytest.mark.skipif(not MESSAGES.is_dir(), reason="official DMP samples not present")


@pytest.mark.parametrize("nir", ["207058575627097", "279035121518989", "180017505601289"])
def test_sample_and_seed_nirs_have_valid_keys(nir: str) -> None:
    assert valid_nir(nir)


@pytest.mark.parametrize("nir", ["207058575627098", "20705857562709", "007058575627097", "2070585756270AB"])
def test_bad_nirs_refused(nir: str) -> None:
    assert not valid_nir(nir)


def test_corsica_department_key() -> None:
    # 2A counts as 19 in the key computation.
    base = "185032A001123"
    key = 97 - int(base.replace("2A", "19")) % 97
    assert valid_nir(f"{base}{key:02d}")
    assert not valid_nir(f"{base}{(key % 97) + 1:02d}")


def test_ins_cx() -> None:
    ins = parse_ins_cx("207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH^^20100907")
    assert ins.value == "207058575627097" and ins.oid is InsOid.NIR_TEST
    assert ins.cx() == "207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH"
    with pytest.raises(InsError):
        parse_ins_cx("1164485058822081751070^^^&1.2.250.1.213.1.4.2&ISO^INS-C")  # legacy INS-C
    with pytest.raises(InsError):
        parse_ins_cx("207058575627097^^^&1.2.3&ISO^NH")


@requires_reference
def test_mtom_reads_the_official_td21_capture() -> None:
    data = (MESSAGES / "TD2.1_Alimentation_request.xml").read_bytes()
    message = parse_body(
        'multipart/related; type="application/xop+xml"; boundary="----=_Part_9_20030738.1554380517598"; '
        'start="<rootpart@soapui.org>"',
        data,
    )
    assert message.mtom
    assert set(message.attachments) == {"WS_DMP_TD2.1-DocumentME2.xml", "WS_DMP_TD2.1-SignatureXades.xml"}
    assert message.attachments["WS_DMP_TD2.1-SignatureXades.xml"].endswith(b"</Signature>")
    assert parse_xml(message.envelope).tag.endswith("Envelope")


def test_mtom_round_trip_is_byte_identical() -> None:
    content = b"\x00\r\n--binary\r\n\xff" * 100
    ctype, body = build_mtom(b"<e/>", "urn:a", [("doc-1@x", "application/pdf", content)])
    message = parse_body(ctype, body)
    assert message.envelope == b"<e/>" and message.attachments == {"doc-1@x": content}


def test_fault_shape() -> None:
    root = etree.fromstring(build_fault(SoapFault(FaultCode.INVALID_VIHF, "VIHF expiré"), "urn:uuid:1"))
    ns = {"s": "http://www.w3.org/2003/05/soap-envelope", "a": "http://www.w3.org/2005/08/addressing"}
    assert root.findtext("s:Body/s:Fault/s:Code/s:Value", namespaces=ns) == "soap:Sender"
    assert root.findtext("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=ns) == "soap:DMPInvalidVIHF"
    assert root.findtext("s:Body/s:Fault/s:Reason/s:Text", namespaces=ns) == "VIHF expiré"
    assert root.findtext("s:Header/a:RelatesTo", namespaces=ns) == "urn:uuid:1"


@requires_reference
def test_official_xades_sample_verifies_and_tampering_is_caught() -> None:
    # A real IGC-Santé test card signature: default ds namespace, C14N with comments, RSA-SHA1.
    data = (MESSAGES / "TD2.1-SignatureXades.xml").read_bytes()
    root = parse_xml(data)
    refs = verify(root, root, signer_certificate(root))
    assert [r.uri for r in refs] == ["#IHEManifest", "#S0-SignedProperties"]
    tampered = parse_xml(data.replace(b"9956570902", b"9956570903"))
    with pytest.raises(SignatureError):
        verify(tampered, tampered, signer_certificate(tampered))


def test_seed_patients_have_valid_nirs_and_cover_the_vitale_profiles() -> None:
    import json

    from bridge.sim.dmp.patients import SEED_PATIENTS

    assert all(valid_nir(p.ins) for p in SEED_PATIENTS)
    seeded = {p.ins for p in SEED_PATIENTS}
    profiles = Path(__file__).resolve().parents[2] / "bridge" / "sim" / "profiles"
    for profile in profiles.glob("vitale-*.json"):
        for beneficiary in json.loads(profile.read_text())["beneficiaries"]:
            if "nir" in beneficiary:  # a beneficiary may have no NIR template at all
                assert beneficiary["nir"] in seeded, profile.name
