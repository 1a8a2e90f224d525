"""VIHF: layout against the official samples, signatures checked by signxml and by xmlsec1, cache."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml.verifier import SignatureConfiguration, XMLVerifier

from bridge.dmp.codes import AuthMode, Confidentiality, InsOid, PurposeOfUse, SignatureAlgorithm
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.ns import DS, SAML2, q
from bridge.dmp.vihf import PatientIns, Role, VihfContext, build_vihf, issuer_dn, parse_vihf, sign_vihf
from bridge.dmp.vihf_cache import VihfCache, VihfKey
from tests.unit._dmp_support import (
    VIHF_SAMPLES,
    Signer,
    needs_reference,
    needs_xmlsec1,
    signer,  # noqa: F401  (session fixture)
    xmlsec1_verify,
)
from tests.unit._xml_shape import parse_trusted, shape

NOW = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
DOCTOR = Role(code="10", code_system="1.2.250.1.71.1.2.7", display_name="Médecin")
GP = Role(code="SM26", code_system="1.2.250.1.71.4.2.5", display_name="Qualifié en Médecine Générale (SM)")


def context(mode: AuthMode = AuthMode.DIRECTE, **changes: Any) -> VihfContext:
    base: dict[str, Any] = {
        "assertion_id": "_ead25c4d-891c-48e1-8f3c-2b81e295e07f",
        "issue_instant": NOW,
        "issuer_dn": "CN=899900063480,OU=Médecin,O=TEST,C=FR",
        "name_id": "899900063480",
        "auth_mode": mode,
        "structure_id": "499900063480001",
        "sector": "SA07",
        "roles": (DOCTOR, GP),
        "lps_name": "LPS GIE-SV",
        "lps_version": "1",
        "lps_homologation": "NumAutorisation",
        "lps_id": "01.01.01.01",
        "patient": PatientIns(value="207058575627097", oid=InsOid.NIR_TEST),
        "authn_instant": NOW,
    }
    if mode is not AuthMode.DIRECTE:
        base["subject_id"] = "MAX LIBRE"
    base.update(changes)
    return VihfContext(**base)


def _sample(name: str) -> Any:
    return parse_trusted((VIHF_SAMPLES / name).read_bytes())


# The samples' RENFORCEE roles carry codeSystemName; ours only when given.
@needs_reference
@pytest.mark.parametrize(
    ("sample", "mode", "extra"),
    [
        ("VIHF_DIRECTE_unsigned.xml", AuthMode.DIRECTE, {}),
        ("VIHF_INDIRECTE_signed.xml", AuthMode.INDIRECTE, {}),
        (
            "VIHF_INDIRECTE_RENFORCEE_signed.xml",
            AuthMode.INDIRECTE_RENFORCEE,
            {
                "roles": (
                    Role(code="10", code_system="1.2.250.1.71.1.2.7", display_name="M", code_system_name="professions"),
                    Role(code="SM26", code_system="1.2.250.1.71.4.2.5", display_name="S", code_system_name="rpps"),
                )
            },
        ),
    ],
)
def test_unsigned_layout_matches_official_sample(sample: str, mode: AuthMode, extra: dict[str, Any]) -> None:
    ours = build_vihf(context(mode, **extra))
    theirs = _sample(sample)
    skip = frozenset({q(DS, "Signature")})
    assert shape(ours, skip=skip) == shape(theirs, skip=skip)


@needs_reference
def test_signed_layout_matches_official_directe_sample(signer: Signer) -> None:  # noqa: F811
    ours = sign_vihf(build_vihf(context()), signer.key, [signer.cert], SignatureAlgorithm.RSA_SHA1)
    assert shape(ours) == shape(_sample("VIHF_DIRECTE_signed.xml"))
    # Signature right after Issuer, as SAML requires and the samples show.
    assert [etree.QName(c).localname for c in ours][:3] == ["Issuer", "Signature", "Subject"]


@needs_reference
@pytest.mark.parametrize(
    "name", ["VIHF_DIRECTE_signed.xml", "VIHF_INDIRECTE_signed.xml", "VIHF_INDIRECTE_RENFORCEE_signed.xml"]
)
def test_official_samples_parse(name: str) -> None:
    ctx = parse_vihf(_sample(name))
    assert ctx.patient == PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)
    assert ctx.name_id == "899900063480"
    assert ctx.sector == "SA07"
    assert [r.code for r in ctx.roles] == ["10", "SM26"]
    assert ctx.purpose is PurposeOfUse.NORMAL
    assert ctx.vihf_version == "3.0"
    assert ctx.auth_mode.value in name


def test_parse_round_trip_all_fields() -> None:
    ctx = context(
        AuthMode.INDIRECTE_RENFORCEE,
        purpose=PurposeOfUse.BRIS_DE_GLACE,
        confidentiality=Confidentiality.INVISIBLE_REPRESENTANTS_LEGAUX,
        authn_context_decl="urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI",
        valid_until=NOW + dt.timedelta(hours=1),
    )
    assert parse_vihf(build_vihf(ctx)) == ctx


def test_secret_mode_and_emergency_values_on_the_wire() -> None:
    el = build_vihf(
        context(purpose=PurposeOfUse.CENTRE_15, confidentiality=Confidentiality.INVISIBLE_REPRESENTANTS_LEGAUX)
    )
    attrs = {a.get("Name"): a for a in el.iter(q(SAML2, "Attribute"))}
    conf = attrs["urn:oasis:names:tc:xspa:1.0:resource:patient:hl7:confidentiality-code"]
    assert conf[0].text == "INVISIBLE_REPRESENTANTS_LEGAUX^1.2.250.1.213.1.1.4.13"
    purpose = attrs["urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"][0][0]
    assert (purpose.get("code"), purpose.get("codeSystem")) == ("centre_15", "1.2.250.1.213.1.1.4.248")
    resource = attrs["urn:oasis:names:tc:xacml:2.0:resource:resource-id"][0].text
    assert resource == "207058575627097^^^&1.2.250.1.213.1.4.10&ISO^NH"


def test_production_nir_oid() -> None:
    assert PatientIns(value="279035121518989", oid=InsOid.NIR).cx() == "279035121518989^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert InsOid("1.2.250.1.213.1.4.9") is InsOid.NIA


def test_bad_values_refused() -> None:
    with pytest.raises(DmpInputError):
        AuthMode("SUPER")
    with pytest.raises(DmpParamsError):
        context(confidentiality=Confidentiality.MASQUE_PS)
    with pytest.raises(DmpParamsError):
        context(issue_instant=dt.datetime(2024, 1, 1))
    with pytest.raises(DmpParamsError):
        PatientIns(value="12^34", oid=InsOid.NIR)


def _verify_signxml(signed: Any, who: Signer, algorithm: SignatureAlgorithm) -> Any:
    pem = who.cert.public_bytes(serialization.Encoding.PEM).decode()
    from signxml.algorithms import DigestAlgorithm, SignatureMethod

    config = SignatureConfiguration(
        signature_methods=frozenset({SignatureMethod(algorithm.value)}),
        digest_algorithms=frozenset({DigestAlgorithm(algorithm.digest_uri)}),
    )
    return XMLVerifier().verify(etree.tostring(signed), x509_cert=pem, expect_config=config, id_attribute="ID")


@needs_xmlsec1
@pytest.mark.parametrize("algorithm", [SignatureAlgorithm.RSA_SHA256, SignatureAlgorithm.RSA_SHA1])
@pytest.mark.parametrize("mode", list(AuthMode))
def test_signature_verifies_with_signxml_and_xmlsec1(
    algorithm: SignatureAlgorithm,
    mode: AuthMode,
    signer: Signer,  # noqa: F811
    tmp_path: Path,
) -> None:
    ctx = context(mode, issuer_dn=issuer_dn(signer.cert))
    assert ctx.issuer_dn == "CN=899900063480,OU=Médecin,O=TEST,C=FR"
    signed = sign_vihf(build_vihf(ctx), signer.key, [signer.cert, signer.ca_cert], algorithm)
    result = _verify_signxml(signed, signer, algorithm)
    assert result.signed_xml.get("ID") == "_ead25c4d-891c-48e1-8f3c-2b81e295e07f"
    method = signed.find(f".//{q(DS, 'SignatureMethod')}")
    assert method.get("Algorithm") == algorithm.value
    path = tmp_path / "vihf.xml"
    path.write_bytes(etree.tostring(signed, encoding="utf-8"))
    proc = xmlsec1_verify(
        path, "--trusted-pem", str(signer.ca_pem), "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
    )
    assert proc.returncode == 0, proc.stderr
    assert "SignedInfo References (ok/all): 1/1" in proc.stdout + proc.stderr


@needs_xmlsec1
def test_tampered_vihf_fails_xmlsec1(signer: Signer, tmp_path: Path) -> None:  # noqa: F811
    signed = sign_vihf(build_vihf(context()), signer.key, [signer.cert])
    name_id = signed.find(f"{q(SAML2, 'Subject')}/{q(SAML2, 'NameID')}")
    name_id.text = "899900000000"
    path = tmp_path / "vihf.xml"
    path.write_bytes(etree.tostring(signed, encoding="utf-8"))
    proc = xmlsec1_verify(
        path, "--trusted-pem", str(signer.ca_pem), "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
    )
    assert proc.returncode != 0


def test_signing_twice_refused(signer: Signer) -> None:  # noqa: F811
    signed = sign_vihf(build_vihf(context()), signer.key, [signer.cert])
    with pytest.raises(DmpParamsError):
        sign_vihf(signed, signer.key, [signer.cert])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_signs_once_per_context_and_expires() -> None:
    clock = FakeClock()
    cache = VihfCache(lifetime=600, clock=clock)
    calls: list[int] = []

    def sign() -> Any:
        calls.append(1)
        return build_vihf(context())

    key = VihfKey("899900063480", "207058575627097", AuthMode.DIRECTE)
    first = cache.get_or_sign(key, sign)
    second = cache.get_or_sign(key, sign)
    assert len(calls) == 1
    assert first is not second and etree.tostring(first) == etree.tostring(second)
    cache.get_or_sign(VihfKey("899900063480", "279035121518989", AuthMode.DIRECTE), sign)
    assert len(calls) == 2
    clock.now += 601
    cache.get_or_sign(key, sign)
    assert len(calls) == 3
    cache.invalidate("899900063480")
    assert len(cache) == 0


def test_cache_handed_out_copy_is_independent() -> None:
    cache = VihfCache(lifetime=60, clock=FakeClock())
    key = VihfKey("1", None, AuthMode.INDIRECTE)
    cache.put(key, build_vihf(context(AuthMode.INDIRECTE)))
    taken = cache.get(key)
    holder = etree.Element("holder")
    holder.append(taken)
    again = cache.get(key)
    assert again is not None and again.getparent() is None
    assert copy.deepcopy(again).tag == q(SAML2, "Assertion")
