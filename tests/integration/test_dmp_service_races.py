"""DmpService under concurrency, against the real simulator: parallel first calls share one client built
once, and a client replaced by a new login is closed only when its last call is over."""

from __future__ import annotations

import asyncio

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards.cps_data import Situation
from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid
from bridge.dmp.context import DmpCredentials
from bridge.errors import BridgeError
from bridge.service.dmp import DirectIdentity, DmpContext, DmpService
from bridge.service.dmp_config import DmpConfig
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim, establishment  # noqa: F401
from tests.faults import Fault, FaultProxy
from tests.tls_peers import CountingKey

APPROVED = [AvailabilityStatus.APPROVED]


class Caller:
    """A context key (stands for one WebSocket connection)."""


def _indirect_config(sim: RunningSim, pki: TestPki, url: str | None = None) -> DmpConfig:
    certs = establishment(pki)
    return DmpConfig(
        url=url or sim.url, ca_bundle=sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value,
        default_mode="INDIRECTE", establishment_auth_p12=certs.auth_cli_p12, establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=certs.auth_cli_p12.parent / "p12-password", establishment_id="10B0127189",
        establishment_name="CLINIQUE DU TEST", practitioner_id="810012345678", practitioner_family="MARTIN",
        practitioner_given="PAUL", practitioner_specialty="SM54",
    )  # fmt: skip


class RacingSource:
    """A DIRECTE source like the card service's under a race: a fresh identity object per call, built from
    the same card keys (after a yield to the loop); `relogin()` switches to new key objects."""

    def __init__(self, pki: TestPki) -> None:
        self.certs = pki.person(
            "race-gp", last_name="COURSE", first_name="ANNE", national_id="810000000088",
            profession_code="10", specialty_code="SM54", card_type="CPS",
        )  # fmt: skip
        self.relogin()

    def relogin(self) -> None:
        """A new cps.login: same card, new key objects (the card service builds them per session)."""
        # A new authentication key object is enough for new credentials (the signing key stays as is:
        # CountingKey signs prehashed digests only, as the TLS handshake asks).
        self.keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey] = (CountingKey(self.certs.auth.key), self.certs.sign.key)

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """A new DirectIdentity each time (as two racing first calls get)."""
        await asyncio.sleep(0)
        auth, sign = self.certs.auth, self.certs.sign
        creds = DmpCredentials(
            "cps:race", ClientIdentity((auth.certificate, *auth.chain[:-1]), self.keys[0]), self.keys[1],
            (sign.certificate, *sign.chain[:-1]),
        )  # fmt: skip
        situation = Situation(
            index=0, number=1, practice_mode="L", profession_code="10", specialty_code="SM54",
            structure_id_type="4", structure_id="499900000001", structure_name="CABINET TEST",
            activity_sector="SA07", billing=None,
        )  # fmt: skip
        return DirectIdentity(creds, "810000000088", "COURSE", "ANNE", "10", "SM54", (situation,))


async def test_parallel_first_calls_share_one_client_indirect(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    service = DmpService(_indirect_config(dmp_sim, dmp_pki))
    try:
        results = await asyncio.gather(
            # A reference query: what the establishment certificate may ask (PDT-INF-526 note (5)).
            *(service.find_references(Caller(), PATIENT, "1.2.250.1.999.1") for _ in range(20)),
            return_exceptions=True,
        )
    finally:
        await service.aclose()
    errors = [
        f"{r.code.value}: {r.detail}" if isinstance(r, BridgeError) else repr(r)
        for r in results
        if isinstance(r, BaseException)
    ]
    assert errors == []  # before: INTERNAL ("cannot schedule new futures after shutdown") for most of them


async def test_parallel_first_calls_after_a_login_direct(dmp_sim: RunningSim, dmp_pki: TestPki) -> None:  # noqa: F811
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    service = DmpService(config, direct=RacingSource(dmp_pki))
    callers = [Caller() for _ in range(12)]
    for caller in callers:
        service.set_context(caller, DmpContext(mode=AuthMode.DIRECTE))
    try:
        results = await asyncio.gather(
            *(service.find(c, PATIENT, APPROVED, []) for c in callers), return_exceptions=True
        )
    finally:
        await service.aclose()
    assert [r for r in results if isinstance(r, BaseException)] == []


async def test_a_new_login_does_not_close_a_call_in_flight(
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    async with FaultProxy(dmp_sim.sim.port, 1) as proxy:
        url = dmp_sim.url.replace(f":{dmp_sim.sim.port}/", f":{proxy.port}/")
        config = DmpConfig(url=url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value)
        source = RacingSource(dmp_pki)
        service = DmpService(config, direct=source)
        first, second = Caller(), Caller()
        for caller in (first, second):
            service.set_context(caller, DmpContext(mode=AuthMode.DIRECTE))
        try:
            proxy.fault = Fault.HOLD_RESPONSE  # threshold 1: every answer is held until released
            slow = asyncio.create_task(service.find(first, PATIENT, APPROVED, []))
            await asyncio.wait_for(proxy.triggered.wait(), 10)
            source.relogin()  # new keys: a new client; the old one still serves `slow`
            proxy.fault = Fault.PASS  # `slow`'s answer stays held; new connections pass
            # The new login's call neither waits for the old client nor closes it under `slow`.
            assert await asyncio.wait_for(service.find(second, PATIENT, APPROVED, []), 10) == ()
            assert not slow.done()
            proxy.release.set()
            assert await asyncio.wait_for(slow, 10) == ()
        finally:
            await service.aclose()
