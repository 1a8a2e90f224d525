"""Fault scenarios of the DMP client against the real simulator: a process killed and restarted for real,
and a fault-injecting TCP proxy in between (refuse, stall, cut the upload, drop or hold the answer).

Each scenario asserts the error code, the time to it, and what the simulator stored (exactly once or not
at all, as the caller was told). `FAULT-REPORT` lines (pytest -s) give the figures of the closing note.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AuthMode, InsOid
from bridge.dmp.context import DmpCredentials, DmpSettings, NewDocument, Practitioner
from bridge.dmp.xds_model import Code
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_config import DmpConfig
from tests.api_helpers import FakeApprover
from tests.dmp_fixtures import (  # noqa: F401  (fixtures)
    PATIENT,
    PATIENT_IDENTITY,
    dmp_pki,
    establishment,
    establishment_credentials,
    indirect_practitioner,
    settings_for,
)
from tests.faults import Fault, FaultProxy, SimProcess
from tests.tls_peers import CountingKey

LOINC_CR = Code("11488-4", "2.16.840.1.113883.6.1", "Compte rendu de consultation")
#: Well above a TLS handshake and a read request: a request this big carries a document.
THRESHOLD = 96 * 1024


def _pdf(size: int, seed: int = 0) -> bytes:
    body = bytes((i * 7 + seed) % 256 for i in range(size))
    return b"%PDF-1.4\n" + body + b"\n%%EOF\n"


def _doc(size: int = 256 * 1024, seed: int = 0, unique_id: str | None = None) -> NewDocument:
    return NewDocument(
        content=_pdf(size, seed), mime_type="application/pdf", title="Consultation", type_code=LOINC_CR,
        patient_identity=PATIENT_IDENTITY, unique_id=unique_id,
    )  # fmt: skip


def _report(scenario: str, code: str, seconds: float, stored: int) -> None:
    print(f"FAULT-REPORT {scenario}: code={code} time={seconds:.2f}s stored={stored}")


def _direct(pki: TestPki) -> tuple[DmpCredentials, Practitioner, CountingKey]:
    """DIRECTE credentials shaped like a CPS (auth key for TLS, sign key for VIHF/XAdES), TLS signatures counted."""
    certs = pki.person(
        "faults-gp", last_name="FAUTE", first_name="ALAIN", national_id="810000000077",
        profession_code="10", specialty_code="SM54", card_type="CPS",
    )  # fmt: skip
    tls_key = CountingKey(certs.auth.key)
    tls = ClientIdentity((certs.auth.certificate, *certs.auth.chain[:-1]), tls_key)
    creds = DmpCredentials("cps:faults", tls, certs.sign.key, (certs.sign.certificate, *certs.sign.chain[:-1]))
    practitioner = Practitioner(
        national_id="810000000077", family="FAUTE", given="ALAIN", profession_code="10", specialty_code="SM54",
        structure_id="499900000001", structure_name="CABINET TEST", sector="SA07", mode=AuthMode.DIRECTE,
    )  # fmt: skip
    return creds, practitioner, tls_key


@pytest.fixture
async def sim(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[SimProcess]:  # noqa: F811
    """The simulator as its own process (killed at the end)."""
    proc = SimProcess(dmp_pki, tmp_path / "sim")
    await proc.start()
    try:
        yield proc
    finally:
        proc.kill()


def _settings(sim: SimProcess, port: int | None = None, **changes: float) -> DmpSettings:
    url = sim.url if port is None else sim.url.replace(f":{sim.port}/", f":{port}/")
    return dataclasses.replace(settings_for(url, sim.ca_file), **changes)  # type: ignore[arg-type]


# -- 1. TLS sessions that heal -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["INDIRECTE", "DIRECTE"])
async def test_tls_session_heals_after_a_simulator_restart(sim: SimProcess, dmp_pki: TestPki, mode: str) -> None:  # noqa: F811
    if mode == "DIRECTE":
        creds, who, tls_key = _direct(dmp_pki)
    else:
        base = establishment_credentials(dmp_pki)
        tls_key = CountingKey(base.tls.key)
        creds = dataclasses.replace(base, tls=ClientIdentity(base.tls.chain, tls_key))
        who = indirect_practitioner()
    async with DmpClient(_settings(sim), creds) as client:
        await client.find(who, PATIENT)
        await client.submit(who, PATIENT, [_doc(4096)])
        assert tls_key.sign_calls == 1  # one full handshake, the other endpoint resumed it
        await sim.restart()  # SIGKILL: new process, new ticket keys, no session cache
        started = time.monotonic()
        assert await client.find(who, PATIENT)
        result = await client.submit(who, PATIENT, [_doc(4096, seed=1)])
        elapsed = time.monotonic() - started
    # The stale session was refused and replaced by one full handshake (one new signature), at once.
    assert tls_key.sign_calls == 2
    assert elapsed < 5
    assert sim.stored(result.unique_ids[0]) == 1
    _report(f"simulator restart ({mode})", "OK", elapsed, sim.stored(result.unique_ids[0]))


def test_a_session_is_not_offered_past_its_age() -> None:
    now = [1000.0]
    cache = TlsSessionCache(max_age=300, clock=lambda: now[0])

    class Session:
        def valid(self) -> bool:
            return True

    from bridge.crypto.tls_endpoint import ServerTrust, TlsEndpoint

    endpoint = TlsEndpoint("127.0.0.1", 1, ServerTrust(()))
    session = Session()
    cache.put(endpoint, session, ())
    now[0] += 299
    cache.put(endpoint, session, ())  # a resumption keeps the session's original age
    assert cache.get(endpoint) is not None
    now[0] += 2
    assert cache.get(endpoint) is None and len(cache) == 0


# -- 2. at most once -----------------------------------------------------------------------------


async def test_a_submission_whose_answer_is_lost_is_not_sent_again(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with (
        FaultProxy(sim.port, THRESHOLD) as proxy,
        DmpClient(_settings(sim, proxy.port), establishment_credentials(dmp_pki)) as client,
    ):
        who = indirect_practitioner()
        await client.submit(who, PATIENT, [_doc(4096)])  # the repository connection is now kept alive
        proxy.fault = Fault.DROP_RESPONSE
        chosen = "1.2.250.1.999.7.1.3.424242.1"
        started = time.monotonic()
        with pytest.raises(BridgeError) as err:
            await client.submit(who, PATIENT, [_doc(unique_id=chosen)])
        elapsed = time.monotonic() - started
        proxy.fault = Fault.PASS
        # The caller can check before retrying: the document is there, once.
        found = await client.get_by_unique_id(who, PATIENT, chosen)
    assert err.value.code is ErrorCode.DMP_OUTCOME_UNKNOWN
    assert err.value.extra["uniqueId"] == chosen and err.value.extra["transaction"] == "TD2.1"
    assert proxy.uploads == 1  # the old client sent it a second time behind the caller's back
    assert sim.stored(chosen) == 1 and found is not None
    assert elapsed < 5
    _report("answer lost after upload", err.value.code.value, elapsed, sim.stored(chosen))


async def test_an_upload_cut_midway_stores_nothing_and_says_so(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with (
        FaultProxy(sim.port, THRESHOLD) as proxy,
        DmpClient(_settings(sim, proxy.port), establishment_credentials(dmp_pki)) as client,
    ):
        who = indirect_practitioner()
        proxy.fault = Fault.CUT_UPLOAD
        chosen = "1.2.250.1.999.7.1.3.424242.2"
        started = time.monotonic()
        with pytest.raises(BridgeError) as err:
            await client.submit(who, PATIENT, [_doc(2 * 1024 * 1024, unique_id=chosen)])
        elapsed = time.monotonic() - started
    # Either the client saw its upload fail (not delivered: DMP_UNREACHABLE) or it had handed every byte
    # to the network (then it cannot know: DMP_OUTCOME_UNKNOWN with the uniqueId); never a false "stored".
    assert err.value.code in (ErrorCode.DMP_UNREACHABLE, ErrorCode.DMP_OUTCOME_UNKNOWN)
    if err.value.code is ErrorCode.DMP_OUTCOME_UNKNOWN:
        assert err.value.extra["uniqueId"] == chosen
    assert sim.stored(chosen) == 0
    assert elapsed < 5
    _report("upload cut midway", err.value.code.value, elapsed, sim.stored(chosen))


async def test_a_refused_connection_is_unreachable_at_once(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with FaultProxy(sim.port, THRESHOLD) as proxy:
        proxy.fault = Fault.REFUSE
        async with DmpClient(_settings(sim, proxy.port), establishment_credentials(dmp_pki)) as client:
            started = time.monotonic()
            with pytest.raises(BridgeError) as err:
                await client.submit(indirect_practitioner(), PATIENT, [_doc()])
            elapsed = time.monotonic() - started
    assert err.value.code is ErrorCode.DMP_UNREACHABLE
    assert sim.stored() == 0 and elapsed < 2
    _report("connection refused", err.value.code.value, elapsed, sim.stored())


# -- 3 and 4. a slow call blocks nobody; deadlines -------------------------------------------------


async def test_one_slow_submission_does_not_block_another(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with (
        FaultProxy(sim.port, THRESHOLD) as proxy,
        DmpClient(_settings(sim, proxy.port), establishment_credentials(dmp_pki)) as client,
    ):
        who = indirect_practitioner()
        proxy.fault = Fault.HOLD_RESPONSE
        slow = asyncio.create_task(client.submit(who, PATIENT, [_doc()]))
        await asyncio.wait_for(proxy.triggered.wait(), 10)  # its answer is held by the proxy
        started = time.monotonic()
        quick = await asyncio.wait_for(client.submit(who, PATIENT, [_doc(4096, seed=3)]), 10)
        elapsed = time.monotonic() - started
        assert not slow.done()
        proxy.release.set()
        first = await asyncio.wait_for(slow, 10)
    assert sim.stored(quick.unique_ids[0]) == 1 and sim.stored(first.unique_ids[0]) == 1
    assert elapsed < 3
    _report("second submit behind a held one", "OK", elapsed, sim.stored(quick.unique_ids[0]))


async def test_a_held_answer_ends_at_the_deadline_as_outcome_unknown(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with FaultProxy(sim.port, THRESHOLD) as proxy:
        settings = _settings(sim, proxy.port, call_timeout=2.0)
        async with DmpClient(settings, establishment_credentials(dmp_pki)) as client:
            proxy.fault = Fault.HOLD_RESPONSE
            started = time.monotonic()
            with pytest.raises(BridgeError) as err:
                await asyncio.wait_for(client.submit(indirect_practitioner(), PATIENT, [_doc()]), 10)
            elapsed = time.monotonic() - started
    assert err.value.code is ErrorCode.DMP_OUTCOME_UNKNOWN
    uid = err.value.extra["uniqueId"]
    assert "deadline" in (err.value.detail or "")
    assert 1.9 < elapsed < 3.5
    assert sim.stored(uid) == 1
    _report("answer held past the deadline (submit)", err.value.code.value, elapsed, sim.stored(uid))


async def test_a_stalled_handshake_is_timeout_at_the_deadline(sim: SimProcess, dmp_pki: TestPki) -> None:  # noqa: F811
    async with FaultProxy(sim.port, THRESHOLD) as proxy:
        proxy.fault = Fault.STALL
        settings = _settings(sim, proxy.port, call_timeout=1.5)
        async with DmpClient(settings, establishment_credentials(dmp_pki)) as client:
            started = time.monotonic()
            with pytest.raises(BridgeError) as err:
                await asyncio.wait_for(client.find(indirect_practitioner(), PATIENT), 10)
            elapsed = time.monotonic() - started
    assert err.value.code is ErrorCode.TIMEOUT
    assert err.value.extra["stage"] == "tls-handshake" and (err.value.detail or "").startswith("TD3.1")
    assert 1.4 < elapsed < 2.5
    _report("DMP silent (handshake stalls), find", err.value.code.value, elapsed, sim.stored())


# -- 7. the codes each fault gives a JSON-RPC caller -------------------------------------------------


async def test_each_fault_gives_its_code_through_json_rpc(
    sim: SimProcess,
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon in front of the proxy: per fault, the code a caller sees (never INTERNAL) and what was stored."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    from bridge.paths import data_dir

    certs = establishment(dmp_pki)
    password = certs.auth_cli_p12.with_name("p12-password")
    async with FaultProxy(sim.port, THRESHOLD) as proxy:
        dmp = DmpConfig(
            url=sim.url.replace(f":{sim.port}/", f":{proxy.port}/"), ca_bundle=sim.ca_file, server_name="localhost",
            ins_oid=InsOid.NIR_TEST.value, default_mode="INDIRECTE", establishment_auth_p12=certs.auth_cli_p12,
            establishment_sign_p12=certs.sign_p12, establishment_p12_password_file=password,
            establishment_id="10B0127189", establishment_name="CLINIQUE DU TEST", practitioner_id="810012345678",
            practitioner_family="MARTIN", practitioner_given="PAUL", practitioner_specialty="SM54", call_timeout=2.0,
        )  # fmt: skip
        app = Application(BridgeConfig(port=0, dmp=dmp), data_dir=data_dir(), approver=FakeApprover())
        await app.start(hosts=("127.0.0.1",))
        try:
            async with LocalClient(app.port, app.token) as client:
                seen: dict[str, tuple[str, float, int]] = {}
                for n, fault in enumerate(
                    [Fault.PASS, Fault.DROP_RESPONSE, Fault.CUT_UPLOAD, Fault.REFUSE, Fault.STALL]
                ):
                    proxy.fault = fault
                    uid = f"1.2.250.1.999.7.1.3.5150.{n + 1}"
                    params = {
                        "patient": {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M",
                                    "birthDate": "19780314"},
                        "content": base64.b64encode(_pdf(256 * 1024, n)).decode(), "mimeType": "application/pdf",
                        "title": "CR", "typeCode": "11488-4", "uniqueId": uid, "insQualified": True,
                    }  # fmt: skip
                    started = time.monotonic()
                    try:
                        await asyncio.wait_for(client.call("dmp.documents.submit", params), 15)
                        code = "OK"
                    except BridgeError as exc:
                        code = exc.code.value
                        if exc.code is ErrorCode.DMP_OUTCOME_UNKNOWN:
                            assert exc.extra["uniqueId"] == uid
                    seen[fault.value] = (code, time.monotonic() - started, sim.stored(uid))
                proxy.fault = Fault.PASS
                await sim.restart()
                started = time.monotonic()
                await asyncio.wait_for(client.call("dmp.documents.find", {"patient": {"ins": PATIENT.value}}), 15)
                seen["simulator restart"] = ("OK", time.monotonic() - started, 0)
        finally:
            await app.stop()
    for name, (code, seconds, stored) in seen.items():
        _report(f"JSON-RPC submit, {name}", code, seconds, stored)
    assert {k: v[0] for k, v in seen.items()} == {
        "pass": "OK",
        "drop-response": "DMP_OUTCOME_UNKNOWN",
        "cut-upload": seen["cut-upload"][0]
        if seen["cut-upload"][0] in ("DMP_UNREACHABLE", "DMP_OUTCOME_UNKNOWN")
        else "?",
        "refuse": "DMP_UNREACHABLE",
        "stall": "TIMEOUT",
        "simulator restart": "OK",
    }
    assert {k: v[2] for k, v in seen.items()} == {
        "pass": 1, "drop-response": 1, "cut-upload": 0, "refuse": 0, "stall": 0, "simulator restart": 0
    }  # fmt: skip
    assert all(seconds < 3.5 for _, seconds, _ in seen.values())
