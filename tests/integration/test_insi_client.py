"""The INSi client against the INSi simulator over mutual TLS: the CNDA-style cases, both ways of
authenticating (CPS with its signed assertion, INSI-AUTO / INSI-MANU certificate), and the refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.codes import InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.ins.client import CpsSigner, InsiClient, InsiCredentials
from bridge.ins.model import Traits
from bridge.sim.insi.requests import NS, schema
from tests.dmp_fixtures import dmp_pki, establishment  # noqa: F401
from tests.insi_fixtures import LPS, RunningInsi, establishment_client, insi_settings, insi_sim  # noqa: F401


def traits(name: str, first: str, sex: str, birth: str, place: str | None = None) -> Traits:
    """Traits as a person types them."""
    return Traits.from_input(birth_name=name, first_names=first, sex=sex, birth_date=birth, birth_place=place)


def cps_client(pki: TestPki, insi: RunningInsi, national_id: str = "810012345678") -> InsiClient:
    """A client with a CPS's keys (software keys of the test PKI standing for the card's)."""
    certs = pki.person("insi-gp", last_name="MARTIN", first_name="PAUL", national_id=national_id,
                       profession_code="10", specialty_code="SM54", card_type="CPS")  # fmt: skip
    tls = ClientIdentity((certs.auth.certificate, *certs.auth.chain), certs.auth.key)
    signer = CpsSigner(key=certs.sign.key, chain=(certs.sign.certificate, *certs.sign.chain), holder_id=national_id,
                       billing_id="991130972")  # fmt: skip
    return InsiClient(insi_settings(insi.url, insi.ca_file), InsiCredentials(label="cps", tls=tls, signer=signer))


async def test_cnda_cases_with_the_insi_auto_certificate(insi_sim: RunningInsi, dmp_pki: TestPki) -> None:  # noqa: F811
    client = establishment_client(dmp_pki, insi_sim)
    try:
        found = await client.search(traits("Patb-Quatre", "Laurence", "F", "1907-05-25"))
        assert (found.ins, found.oid, found.birth_place) == ("207058575627097", InsOid.NIR, "85756")
        # Diacritics, apostrophe, hyphens: typed as on the identity document.
        accented = await client.search(traits("d’Orléans-Bragance", "Hélène-Françoise Marie", "F", "1985-03-13"))
        assert (accented.birth_name, accented.first_names) == ("D'ORLEANS-BRAGANCE", "HELENE-FRANCOISE MARIE")
        # Several first names: the first alone finds the person in one call.
        insi_sim.sim.seen.clear()
        several = await client.search(traits("Legrand", "Pierre Paul Jacques", "M", "1965-02-10"))
        assert several.first_names == "PIERRE PAUL JACQUES" and insi_sim.sim.seen == ["00"]
        assert several.history == (("165026912345504", InsOid.NIR_TEST.value),)
        # Typed in another order: PAUL, PIERRE... the second call finds.
        insi_sim.sim.seen.clear()
        await client.search(traits("Legrand", "Paul Pierre", "M", "1965-02-10"))
        assert insi_sim.sim.seen == ["01", "00"]
        nia = await client.search(traits("Okafor", "Chidi", "M", "1995-07-12"))
        assert (nia.kind, nia.oid) == ("INS-NIA", InsOid.NIA)

        with pytest.raises(BridgeError) as none:
            await client.search(traits("Inconnu", "Personne", "F", "2000-01-01"))
        assert none.value.code is ErrorCode.INS_NOT_FOUND and none.value.extra["insiCode"] == "01"
        with pytest.raises(BridgeError) as many:
            await client.search(traits("Dupont", "Marie", "F", "1990-01-01"))
        assert many.value.code is ErrorCode.INS_MULTIPLE_MATCHES
        # The birth place lifts the ambiguity only when it differs; here both share it: still several.
        with pytest.raises(BridgeError):
            await client.search(traits("Dupont", "Marie", "F", "1990-01-01", "75056"))

        # Every request went out valid against the CNAM schemas, without a Security header (certificate mode).
        for data in client.last_requests:
            root = etree.fromstring(data)
            assert root.find("soap:Header/wsse:Security", NS) is None
            body = etree.fromstring(etree.tostring(root.find("soap:Body", NS)[0]))
            assert schema("INSi_RECSANS_INS.xsd").validate(etree.ElementTree(body))
    finally:
        await client.aclose()


async def test_verify_an_ins_against_the_traits(insi_sim: RunningInsi, dmp_pki: TestPki) -> None:  # noqa: F811
    client = establishment_client(dmp_pki, insi_sim, cn="INSI-MANU")
    try:
        legrand = traits("Legrand", "Pierre", "M", "1965-02-10")
        assert (await client.verify("165026912345603", legrand)).ins == "165026912345603"
        # An earlier INS of the same person still designates them (the current one comes back).
        assert (await client.verify("165026912345504", legrand)).ins == "165026912345603"
        with pytest.raises(BridgeError) as mismatch:
            await client.verify("207058575627097", legrand)
        assert mismatch.value.code is ErrorCode.INS_MISMATCH
    finally:
        await client.aclose()


async def test_cps_mode_sends_an_assertion_signed_by_the_card(insi_sim: RunningInsi, dmp_pki: TestPki) -> None:  # noqa: F811
    client = cps_client(dmp_pki, insi_sim)
    try:
        found = await client.search(traits("Martin", "Jean", "M", "1978-03-14"))
        assert found.ins == "178037511501201"
        root = etree.fromstring(client.last_requests[0])
        name_id = root.find("soap:Header/wsse:Security/saml:Assertion/saml:Subject/saml:NameID", NS)
        assert (name_id.get("NameQualifier"), name_id.text) == ("CPS", "810012345678")
    finally:
        await client.aclose()


async def test_refusals_have_their_own_codes(insi_sim: RunningInsi, dmp_pki: TestPki, tmp_path: Path) -> None:  # noqa: F811
    laurence = traits("Patb-Quatre", "Laurence", "F", "1907-05-25")
    # An establishment certificate that is not INSI-AUTO/MANU, and no assertion: refused.
    certs = establishment(dmp_pki)
    auth_cli = ClientIdentity.from_pkcs12(certs.auth_cli_p12.read_bytes(), certs.p12_password)
    other = InsiClient(insi_settings(insi_sim.url, insi_sim.ca_file), InsiCredentials(label="x", tls=auth_cli))
    # A CPS whose assertion names someone else than the card holder.
    liar = cps_client(dmp_pki, insi_sim)
    liar = InsiClient(liar.settings, dataclasses.replace(
        liar.credentials, signer=dataclasses.replace(liar.credentials.signer, holder_id="899999999999")))  # type: ignore[arg-type]  # fmt: skip
    # Unknown software authorisation number.
    unknown = establishment_client(dmp_pki, insi_sim)
    unknown = InsiClient(dataclasses.replace(unknown.settings, lps=dataclasses.replace(LPS, idam="INCONNU")),
                         unknown.credentials)  # fmt: skip
    try:
        for client, code, detail in (
            (other, ErrorCode.INSI_REFUSED, "SIM_AUTH"),
            (liar, ErrorCode.INSI_REFUSED, "SIM_AUTH"),
            (unknown, ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED, "desir_550"),
        ):
            with pytest.raises(BridgeError) as refused:
                await client.search(laurence)
            assert (refused.value.code, refused.value.detail) == (code, detail)

        good = establishment_client(dmp_pki, insi_sim)
        insi_sim.sim.set_unavailable(True)
        with pytest.raises(BridgeError) as down:
            await good.search(laurence)
        assert down.value.code is ErrorCode.INSI_UNAVAILABLE
        insi_sim.sim.set_unavailable(False)
        assert (await good.search(laurence)).ins == "207058575627097"
        # The service goes away for real: INSI_UNAVAILABLE, nothing else.
        await insi_sim.sim.stop()
        with pytest.raises(BridgeError) as gone:
            await good.search(laurence)
        assert gone.value.code is ErrorCode.INSI_UNAVAILABLE
        await good.aclose()
    finally:
        for client in (other, liar, unknown):
            await client.aclose()
