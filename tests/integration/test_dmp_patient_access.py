"""The patient's DMP (TD0.2 status, TD0.3 authorisation, TD1.6 professionals) through the service layer,
against the real simulator over mutual TLS: each state of the DMP and of the authorisation, each refusal of
the rights matrix on both sides (the bridge refuses before sending; the simulator refuses what is sent
anyway), and every request on the wire checked against the official XSD / WSDL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from bridge.cards.cps_data import Situation
from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.codes import AuthMode, InsOid, PurposeOfUse
from bridge.dmp.context import DmpCredentials
from bridge.dmp.endpoints import Transaction
from bridge.dmp.patient_access import AuthorizationAction, AuthorizationState, DmpState, build_set_authorization
from bridge.dmp.patient_admin import AdminData, build_close
from bridge.dmp.patient_lists import DateType, ListMode
from bridge.dmp.patient_search import Traits
from bridge.dmp.rights import Actor, Operation, Verdict
from bridge.dmp.vihf import PatientIns
from bridge.dmp.webps import WebPsPage
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DirectIdentity, DmpContext, DmpService
from bridge.service.dmp_config import DmpConfig
from bridge.service.dmp_patient import PatientAccess, author_of
from bridge.sim.dmp.authorizations import set_mes
from tests.dmp_fixtures import RunningSim, dmp_pki, establishment, simulator  # noqa: F401
from tests.unit._dmp_support import REFERENCE, SCHEMAS, sample_body
from tests.unit._xml_shape import shape

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not SCHEMAS.is_dir(), reason=f"official XSDs not found at {SCHEMAS}"),
]

SAMPLE = PatientIns(value="207058575627097", oid=InsOid.NIR_TEST)  # GP authorised + médecin traitant, non-MES
TROIS = PatientIns(value="279035121518989", oid=InsOid.NIR_TEST)  # nobody authorised, MES
MARTIN = PatientIns(value="178037511501201", oid=InsOid.NIR_TEST)  # GP expired, GP2 blocked
CLOSED = PatientIns(value="164063155504440", oid=InsOid.NIR_TEST)
NO_DMP = PatientIns(value="185057800608491", oid=InsOid.NIR_TEST)
GP, GP2 = "810012345678", "810098765432"


class Caller:
    """A context key (stands for one WebSocket connection)."""


class CardSource:
    """DIRECTE identities of test cards (software keys from the test IGC-Santé), one per national id."""

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self.current = GP
        self.profession = "10"

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """The identity of the card 'inserted' now (`current`, `profession`)."""
        specialty = "SM54" if self.profession == "10" else ""
        profile = f"pa-{self.current.replace('/', '_')}-{self.profession or 'cpe'}"
        certs = self.pki.person(
            profile, last_name="TEST", first_name="DOC", national_id=self.current,
            profession_code=self.profession, specialty_code=specialty, card_type="CPS" if self.profession else "CPE",
        )  # fmt: skip
        auth, sign = certs.auth, certs.sign
        creds = DmpCredentials(
            f"cps:{self.current}:{self.profession}", ClientIdentity((auth.certificate, *auth.chain[:-1]), auth.key),
            sign.key, (sign.certificate, *sign.chain[:-1]),
        )  # fmt: skip
        situation = Situation(
            index=0, number=1, practice_mode="L", profession_code=self.profession, specialty_code=specialty,
            structure_id_type="4", structure_id="499900000001", structure_name="CABINET TEST",
            activity_sector="SA07", billing=None,
        )  # fmt: skip
        return DirectIdentity(creds, self.current, "TEST", "DOC", self.profession, specialty, (situation,))


@pytest.fixture
async def env(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[tuple[PatientAccess, CardSource, RunningSim, Path]]:  # noqa: F811
    tls, data, dumps = tmp_path / "tls", tmp_path / "data", tmp_path / "dumps"
    for d in (tls, data):
        d.mkdir()
    sim = simulator(dmp_pki, tls, data, dump_dir=dumps)
    await sim.start()
    certs = establishment(dmp_pki)
    config = DmpConfig(
        url=sim.url, ca_bundle=dmp_pki.ca_bundle_path(), server_name="localhost", ins_oid=InsOid.NIR_TEST.value,
        establishment_auth_p12=certs.auth_cli_p12, establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=certs.auth_cli_p12.parent / "p12-password", establishment_id="10B0127189",
        establishment_name="CLINIQUE DU TEST", practitioner_id=GP, practitioner_specialty="SM54",
        webps_url="https://webps.example.test",
    )  # fmt: skip
    cards = CardSource(dmp_pki)
    service = DmpService(config, direct=cards)
    try:
        yield PatientAccess(service), cards, RunningSim(sim, dmp_pki.ca_bundle_path(), data), dumps
    finally:
        await service.aclose()
        await sim.stop()


def _requests(dumps: Path, transaction: str) -> list[Any]:
    """The SOAP Body children of the requests of one transaction the simulator received."""
    out = []
    for path in sorted(dumps.glob(f"*-{transaction}-request.http")):
        envelope = etree.fromstring(path.read_bytes().split(b"\r\n\r\n", 1)[1])
        out.append(envelope.find("{http://www.w3.org/2003/05/soap-envelope}Body")[0])
    return out


def _wsdl_schema(name: str) -> Any:
    wsdl = etree.parse(str(REFERENCE / "wsdl" / "wsdl" / name))
    return etree.XMLSchema(wsdl.find(".//{http://www.w3.org/2001/XMLSchema}schema"))


async def _code(coro: Any) -> ErrorCode:
    with pytest.raises(BridgeError) as refused:
        await coro
    return refused.value.code


async def test_status_of_each_kind_of_dmp(env: Any) -> None:
    access, cards, _, dumps = env
    who = Caller()
    sample = await access.status(who, SAMPLE)
    assert (sample.status.dmp, sample.status.authorization) == (DmpState.EXISTS, AuthorizationState.VALID)
    assert sample.status.treating_physician is True and sample.status.mes is False
    assert sample.actor is Actor.MEDECIN_TRAITANT
    rights = dict(sample.rights)
    # Non-MES DMP: TD1.3b/TD1.4 left to the DMP (note 10); the médecin traitant may remove himself as MT.
    assert rights[Operation.TD1_4] is Verdict.CONDITIONAL
    assert rights[Operation.TD0_3_REMOVE_MT] is Verdict.ALLOWED

    trois = await access.status(who, TROIS)
    assert (trois.status.authorization, trois.status.mes, trois.actor) == (AuthorizationState.NONE, True, Actor.MEDECIN)
    assert dict(trois.rights)[Operation.TD1_4] is Verdict.REFUSED  # MES DMP: closed only from Mon espace santé
    assert (await access.status(who, MARTIN)).status.authorization is AuthorizationState.EXPIRED
    assert (await access.status(who, CLOSED)).status.dmp is DmpState.CLOSED
    unknown = await access.status(who, NO_DMP)
    assert (unknown.status.dmp, unknown.status.authorization) == (DmpState.UNKNOWN, None)
    cards.current = GP2
    assert (await access.status(Caller(), MARTIN)).status.authorization is AuthorizationState.BLOCKED

    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "HL7V3/NE2009/multicacheschemas/PRPA_IN201307UV02.xsd")))
    sent = _requests(dumps, "TD0.2")
    assert len(sent) == 6
    for body in sent:
        schema.assertValid(body)


async def test_declare_list_and_remove_an_authorisation(env: Any) -> None:
    access, cards, sim, dumps = env
    who = Caller()
    cards.current = "810000000077"
    # The patient's agreement is the caller's to record: without it nothing is sent.
    assert await _code(access.authorize(who, TROIS, AuthorizationAction.DECLARE, patient_agreement=False)) is (
        ErrorCode.INVALID_PARAMS
    )
    assert _requests(dumps, "TD0.3") == []
    assert await access.authorize(who, TROIS, AuthorizationAction.DECLARE, patient_agreement=True) == (
        "Autorisation ajoutée"
    )
    assert (await access.status(who, TROIS)).status.authorization is AuthorizationState.VALID
    again = await access.authorize(who, TROIS, AuthorizationAction.DECLARE, patient_agreement=True)
    assert again == "Autorisation déjà présente aucune action effectuée"
    listed = await access.professionals(who, TROIS, ListMode.ALL)
    assert [(p.national_id, p.blocked, p.specialities) for p in listed] == [("810000000077", False, ("G15_10/SM54",))]
    assert await access.authorize(who, TROIS, AuthorizationAction.REMOVE, patient_agreement=False) == (
        "Autorisation supprimée"
    )
    assert (await access.status(who, TROIS)).status.authorization is AuthorizationState.NONE
    history = sim.sim.store.select("SELECT action FROM authorization_history WHERE ins=? ORDER BY seq", (TROIS.value,))
    assert [h[0] for h in history] == ["AJOUT", "SUPPRESSION"]

    schema = _wsdl_schema("Habilitations.wsdl")
    for body in _requests(dumps, "TD0.3") + _requests(dumps, "TD1.6"):
        schema.assertValid(body)


async def test_blocked_expired_closed_unknown_each_have_their_code(env: Any) -> None:
    access, cards, _, _ = env
    declare = AuthorizationAction.DECLARE
    # An expired authorisation is renewed by declaring it again.
    assert await access.authorize(Caller(), MARTIN, declare, patient_agreement=True) == "Autorisation ajoutée"
    cards.current = GP2
    assert await _code(access.authorize(Caller(), MARTIN, declare, patient_agreement=True)) is (
        ErrorCode.BLOCKED_BY_PATIENT
    )
    blocked = await access.professionals(Caller(), MARTIN, ListMode.BLOCKED)
    assert [(p.national_id, p.blocked) for p in blocked] == [(GP2, True)]
    assert await _code(access.authorize(Caller(), CLOSED, declare, patient_agreement=True)) is ErrorCode.DMP_CLOSED
    assert await _code(access.authorize(Caller(), NO_DMP, declare, patient_agreement=True)) is ErrorCode.DMP_UNKNOWN


async def test_the_treating_physician_removes_himself(env: Any) -> None:
    access, _, sim, _ = env
    who = Caller()
    assert await access.authorize(who, SAMPLE, AuthorizationAction.REMOVE_TREATING, patient_agreement=False) == (
        "Médecin traitant supprimé"
    )
    status = await access.status(who, SAMPLE)
    assert (status.status.treating_physician, status.status.authorization) == (False, AuthorizationState.VALID)
    # No longer MT: the simulator's matrix refuses « se supprimer MT » to a plain médecin.
    refused = await _code(access.authorize(who, SAMPLE, AuthorizationAction.REMOVE_TREATING, patient_agreement=False))
    assert refused is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    set_mes(sim.sim.store, SAMPLE.value, True)
    assert (await access.status(who, SAMPLE)).status.mes is True


async def test_matrix_refusals_before_sending_and_by_the_simulator(env: Any) -> None:
    access, cards, _, dumps = env
    service = access.dmp
    declare = AuthorizationAction.DECLARE
    # Bris de glace: « se déclarer autorisé » is « non » for a médecin; nothing leaves the bridge.
    glass = Caller()
    service.set_context(glass, DmpContext(mode=AuthMode.DIRECTE, purpose=PurposeOfUse.BRIS_DE_GLACE))
    assert await _code(access.authorize(glass, TROIS, declare, patient_agreement=True)) is (
        ErrorCode.NOT_PERMITTED_FOR_ACTOR
    )
    assert await _code(access.professionals(glass, TROIS, ListMode.ALL)) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    # Establishment certificate: no TD0.3 declaration, no TD1.6, no Web PS.
    clinic = Caller()
    service.set_context(clinic, DmpContext(mode=AuthMode.INDIRECTE))
    assert await _code(access.authorize(clinic, TROIS, declare, patient_agreement=True)) is (
        ErrorCode.NOT_PERMITTED_FOR_ACTOR
    )
    assert await _code(access.professionals(clinic, TROIS, ListMode.ALL)) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    assert await _code(access.webps(clinic, TROIS, WebPsPage.DOCUMENTS)) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    # Centre 15: a médecin may not remove his authorisation; the certificate in régulation has no TD0.4.
    samu = Caller()
    service.set_context(samu, DmpContext(mode=AuthMode.DIRECTE, purpose=PurposeOfUse.CENTRE_15))
    assert await _code(access.authorize(samu, TROIS, AuthorizationAction.REMOVE, patient_agreement=False)) is (
        ErrorCode.NOT_PERMITTED_FOR_ACTOR
    )
    regulation = Caller()
    service.set_context(regulation, DmpContext(mode=AuthMode.INDIRECTE, purpose=PurposeOfUse.CENTRE_15))
    assert await _code(access.authorized(regulation, TROIS, "20200101000000", DateType.LAST_AUTHORIZATION)) is (
        ErrorCode.NOT_PERMITTED_FOR_ACTOR
    )
    # The certificate in bris de glace is no column of the sheet: even TD0.2 is refused.
    glass_clinic = Caller()
    service.set_context(glass_clinic, DmpContext(mode=AuthMode.INDIRECTE, purpose=PurposeOfUse.BRIS_DE_GLACE))
    assert await _code(access.status(glass_clinic, TROIS)) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    # A non-médecin may not remove himself as médecin traitant.
    cards.profession = "60"
    assert await _code(
        access.authorize(Caller(), TROIS, AuthorizationAction.REMOVE_TREATING, patient_agreement=False)
    ) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    assert _requests(dumps, "TD0.3") == [] and _requests(dumps, "TD1.6") == []

    # Sent anyway (a client without the matrix): the simulator refuses as the DMP does.
    cards.profession = "10"
    async with service.using(glass) as (client, practitioner):
        refused = await _code(client.transact(Transaction.TD0_3, practitioner, TROIS, build_set_authorization(declare)))
    assert refused is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    assert len(_requests(dumps, "TD0.3")) == 1


async def test_webps_links(env: Any) -> None:
    access, _, _, _ = env
    url = await access.webps(Caller(), SAMPLE, WebPsPage.DOCUMENTS)
    assert url == "https://webps.example.test/AccesDirect/Documents/207058575627097"
    dashboard = await access.webps(Caller(), None, WebPsPage.DASHBOARD)
    assert dashboard == "https://webps.example.test/AccesDirect/TableauDeBord"
    assert await _code(access.webps(Caller(), None, WebPsPage.DOCUMENTS)) is ErrorCode.INVALID_PARAMS


async def test_administrative_data_update_and_close_a_non_mes_dmp(env: Any) -> None:
    access, _, sim, dumps = env
    who = Caller()
    data = await access.admin(who, SAMPLE)
    assert (data.family, data.city, data.opposition_bris_de_glace) == ("PATB-QUATRE", "Paris", False)
    changed = await access.update_admin(
        who, SAMPLE, {"city": "Lyon", "postal_code": "69001", "opposition_bris_de_glace": True}
    )
    assert changed.city == "Lyon"
    again = await access.admin(who, SAMPLE)
    assert (again.city, again.postal_code, again.opposition_bris_de_glace) == ("Lyon", "69001", True)
    assert again.telecoms == data.telecoms  # what was not changed is sent back as it was
    assert await _code(access.update_admin(who, SAMPLE, {"closed": True})) is ErrorCode.INVALID_PARAMS

    await access.close(who, SAMPLE)
    assert (await access.status(who, SAMPLE)).status.dmp is DmpState.CLOSED
    assert sim.sim.store.patient(SAMPLE.value).status == "closed"
    assert await _code(access.close(who, SAMPLE)) is ErrorCode.DMP_CLOSED

    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "HL7V3/NE2009/multicacheschemas/PRPA_IN201314UV02.xsd")))
    sent = _requests(dumps, "TD1.3b-TD1.4")
    assert len(sent) == 3  # update, close, close again (refused by the DMP: DMPClosed)
    for body in sent:
        schema.assertValid(body)


async def test_a_mes_dmp_is_neither_updated_nor_closed(env: Any) -> None:
    access, _, sim, dumps = env
    who = Caller()
    assert (await access.admin(who, TROIS)).family == "PAT-TROIS"
    assert await _code(access.close(who, TROIS)) is ErrorCode.DMP_MANAGED_BY_MES
    assert await _code(access.update_admin(who, TROIS, {"city": "Lyon"})) is ErrorCode.DMP_MANAGED_BY_MES
    assert _requests(dumps, "TD1.3b-TD1.4") == []  # refused before sending
    # Sent anyway: the simulator applies note (10) itself.
    async with access.dmp.using(who) as (client, practitioner):
        ids = PatientAccess._ids(client)
        del ids["query_id"]
        body = build_close(TROIS, AdminData(family="PAT-TROIS", given="DOMINIQUE"), author_of(practitioner), **ids)
        assert await _code(client.transact(Transaction.TD1_4, practitioner, TROIS, body)) is (
            ErrorCode.DMP_MANAGED_BY_MES
        )
    assert sim.sim.store.patient(TROIS.value).status == "active"


async def test_authorized_dmps_with_their_date_filters(env: Any) -> None:
    access, cards, _, dumps = env
    who = Caller()
    listed = await access.authorized(who, SAMPLE, "20200101000000", DateType.LAST_AUTHORIZATION)
    assert [(d.identifiers, d.treating_physician) for d in listed] == [
        ((("1.2.250.1.213.1.4.10", SAMPLE.value),), True)
    ]
    assert await access.authorized(who, SAMPLE, "20300101000000", DateType.LAST_AUTHORIZATION) == ()
    await access.authorize(who, TROIS, AuthorizationAction.DECLARE, patient_agreement=True)
    listed = await access.authorized(who, SAMPLE, "20200101000000", DateType.LAST_AUTHORIZATION)
    assert {d.family for d in listed} == {"PATB-QUATRE", "PAT-TROIS"}
    assert await access.authorized(who, SAMPLE, "20200101000000", DateType.LAST_DOCUMENT) == ()  # no document yet
    # The establishment certificate: new authorisations only (note 3), refused before sending otherwise.
    clinic = Caller()
    access.dmp.set_context(clinic, DmpContext(mode=AuthMode.INDIRECTE))
    assert await _code(access.authorized(clinic, SAMPLE, "20200101000000", DateType.LAST_DOCUMENT)) is (
        ErrorCode.NOT_PERMITTED_FOR_ACTOR
    )
    assert len(await access.authorized(clinic, SAMPLE, "20200101000000", DateType.LAST_AUTHORIZATION)) == 2
    # A CPE names the professional of its structure (note 2).
    cards.current, cards.profession = "30B0057881/CPET0002", ""
    assert await _code(access.authorized(Caller(), SAMPLE, "20200101000000", DateType.LAST_AUTHORIZATION)) is (
        ErrorCode.INVALID_PARAMS
    )
    schema = _wsdl_schema("PatientsSpecific.wsdl")
    sent = _requests(dumps, "TD0.4")
    assert len(sent) == 5  # four by the GP, one by the certificate; none for the refusals
    for body in sent:
        schema.assertValid(body)


async def test_search_without_ins_in_regulation(env: Any) -> None:
    access, _, _, dumps = env
    # Normal access: the matrix keeps TD0.5 for régulation (and the certificate in régulation).
    assert await _code(access.search(Caller(), SAMPLE, Traits(family="LEFEBVRE"))) is ErrorCode.NOT_PERMITTED_FOR_ACTOR
    assert _requests(dumps, "TD0.5") == []
    samu = Caller()
    access.dmp.set_context(samu, DmpContext(mode=AuthMode.DIRECTE, purpose=PurposeOfUse.CENTRE_15))
    many = await access.search(samu, SAMPLE, Traits(family="lefèbvre"))
    assert (len(many.candidates), many.total, many.remaining) == (10, 12, 2)  # the DMP's limit: refine
    one = await access.search(samu, SAMPLE, Traits(family="LEFEBVRE", given="luc b"))
    assert [(c.given, c.ins_oid) for c in one.candidates] == [("LUC-B", "1.2.250.1.213.1.4.10")]
    none = await access.search(samu, SAMPLE, Traits(family="INCONNU"))
    assert (none.candidates, none.total) == ((), 0)
    # The official XSD set lacks PRPA_MT201306UV02 (TD0.5 cannot be validated): the family-only search must have
    # the official sample's structure exactly.
    sent = _requests(dumps, "TD0.5")
    assert len(sent) == 3
    assert shape(sent[0]) == shape(sample_body("TD0.5_Recherche-dun-patient-sans-INS_request.xml"))
