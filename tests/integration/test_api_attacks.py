"""Attacks on the local API (issue 13), kept as a regression suite: each asserts the refusal and that
another client's round trip stays under 100 ms while the attack runs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.api.methods import Handler, Registry, Scope, object_schema
from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore
from bridge.api.peer import peer_uid
from bridge.api.token import token_path
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.errors import BridgeError
from bridge.logs import setup_logging
from bridge.paths import data_dir
from tests.api_helpers import FakeApprover, PageKey, approved_page, open_ws, rpc, running_bridge
from tests.dmp_fixtures import dmp_pki  # noqa: F401  (fixture)

pytestmark = [pytest.mark.usefixtures("home"), pytest.mark.timeout(30)]

WEB = "https://dpi.example.fr"
ROUND_TRIP_BOUND = 0.1  # seconds: the bound on another client's round trip under attack


@pytest.fixture
async def bridge() -> AsyncIterator[Application]:
    async with running_bridge(BridgeConfig(port=0)) as app:
        yield app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def under_attack(
    session: aiohttp.ClientSession,
    app: Application,
    attack: Callable[[], Awaitable[None]],
    *,
    seconds: float = 1.0,
    probe_origin: str | None = None,
) -> None:
    """Repeat `attack` for `seconds` while another client measures round trips; their median stays under 100 ms."""
    if probe_origin is None:
        probe_ws = await open_ws(session, app, token=app.token)
    else:
        probe_ws = await open_ws(session, app, origin=probe_origin, key=approved_page(app, probe_origin))
    await rpc(probe_ws, "bridge.info")
    samples: list[float] = []
    over = asyncio.Event()

    async def probe() -> None:
        while not over.is_set():
            start = time.perf_counter()
            await rpc(probe_ws, "bridge.info")
            samples.append(time.perf_counter() - start)

    async def attacker() -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                await attack()
        finally:
            over.set()

    await asyncio.gather(probe(), attacker())
    await probe_ws.close()
    # A median over many samples: robust to one slow turn on a loaded machine, not to a stalled loop.
    assert len(samples) >= 5, samples
    assert statistics.median(samples) < ROUND_TRIP_BOUND, sorted(samples)[-5:]


def error_data(response: dict[str, Any]) -> dict[str, Any]:
    assert "error" in response, response
    return dict(response["error"]["data"])


# -- 1. proof of possession for web pages -----------------------------------------------------------


async def test_forged_origin_without_the_key_gets_nothing(bridge: Application, session: aiohttp.ClientSession) -> None:
    legit_key = approved_page(bridge, WEB)
    legit = await open_ws(session, bridge, origin=WEB, key=legit_key)
    assert "result" in await rpc(legit, "readers.list")
    attacker_key = PageKey()
    guarded = ("readers.list", "cps.read", "vitale.read", "cps.sign", "dmp.documents.find", "diagnostics.report")

    async def attack() -> None:
        # A local program (no browser forces it to be truthful) claims the approved origin's name.
        forged = await open_ws(session, bridge, origin=WEB)
        for method in guarded:
            assert error_data(await rpc(forged, method))["code"] == "ORIGIN_NOT_APPROVED", method
        # Its own key, validly signed: proven, but that key was never approved for the origin.
        assert (await attacker_key.prove(forged, WEB))["result"]["approved"] is False
        assert error_data(await rpc(forged, "cps.read"))["code"] == "ORIGIN_NOT_APPROVED"
        # The approved public key without its private half: the signature does not verify.
        challenge = (await rpc(forged, "pairing.challenge"))["result"]["challenge"]
        claim = {"publicKey": legit_key.spki, "signature": attacker_key.sign(WEB, challenge)}
        assert error_data(await rpc(forged, "pairing.prove", claim))["code"] == "UNAUTHORIZED"
        assert error_data(await rpc(forged, "readers.list"))["code"] == "ORIGIN_NOT_APPROVED"
        # The bridge's own origin (the diagnostics page, which lists approved origins) without its secret.
        own_page = await open_ws(session, bridge, origin=f"http://127.0.0.1:{bridge.port}")
        assert error_data(await rpc(own_page, "diagnostics.report"))["code"] == "ORIGIN_NOT_APPROVED"
        assert error_data(await rpc(own_page, "pairing.prove", {"pageSecret": "guess"}))["code"] == "UNAUTHORIZED"
        await own_page.close()
        await forged.close()

    await under_attack(session, bridge, attack)
    assert "result" in await rpc(legit, "readers.list")  # the real page was never disturbed
    await legit.close()


async def test_replayed_key_proof_is_refused(bridge: Application, session: aiohttp.ClientSession) -> None:
    key = approved_page(bridge, WEB)
    page = await open_ws(session, bridge, origin=WEB)
    challenge = (await rpc(page, "pairing.challenge"))["result"]["challenge"]
    proof = {"publicKey": key.spki, "signature": key.sign(WEB, challenge)}
    assert (await rpc(page, "pairing.prove", proof))["result"]["approved"] is True
    # A captured proof: on the same connection again (its challenge was consumed)...
    assert error_data(await rpc(page, "pairing.prove", proof))["detail"] == "no-challenge"
    # ...and on another connection, before and after that one asked for its own challenge.
    replay = await open_ws(session, bridge, origin=WEB)
    assert error_data(await rpc(replay, "pairing.prove", proof))["detail"] == "no-challenge"
    await rpc(replay, "pairing.challenge")
    assert error_data(await rpc(replay, "pairing.prove", proof))["detail"] == "key-proof"
    assert error_data(await rpc(replay, "readers.list"))["code"] == "ORIGIN_NOT_APPROVED"
    # A signature of this connection's challenge made for another origin proves nothing here.
    fresh = (await rpc(replay, "pairing.challenge"))["result"]["challenge"]
    elsewhere = {"publicKey": key.spki, "signature": key.sign("https://evil.example", fresh)}
    assert error_data(await rpc(replay, "pairing.prove", elsewhere))["detail"] == "key-proof"
    # Pairing needs a proven key: a name alone cannot even ask.
    assert error_data(await rpc(replay, "pairing.request"))["detail"] == "key-proof-required"
    assert "result" in await rpc(page, "readers.list")
    await replay.close()
    await page.close()


# -- 4. bounded work per frame ----------------------------------------------------------------------


async def test_quadratic_validation_frame_is_refused_at_once(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    ws = await open_ws(session, bridge, token=bridge.token)
    # 20,000 distinct objects (~400 KB): jsonschema's uniqueItems compared them pairwise, freezing the daemon.
    frame = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "dmp.documents.find",
            "params": {"patient": {"ins": "1234567890123"}, "statuses": [{"k": i} for i in range(20_000)]},
        }
    )

    async def attack() -> None:
        await ws.send_str(frame)
        answer = json.loads(await ws.receive_str())
        assert error_data(answer)["code"] == "INVALID_PARAMS"
        assert error_data(answer)["detail"] == "statuses: maxItems"

    await under_attack(session, bridge, attack)
    await ws.close()


async def test_every_schema_is_bounded(bridge: Application) -> None:
    for handler in bridge.registry:
        assert "uniqueItems" not in json.dumps(handler.params_schema), handler.name

    class Loose(Handler):
        name = "loose.call"
        summary = "An unbounded array."
        scopes = frozenset({Scope.PUBLIC})
        params_schema = object_schema({"items": {"type": "array", "items": {"type": "integer"}}})

        async def call(self, ctx: Any, params: dict[str, Any]) -> Any:
            return None

    with pytest.raises(ValueError, match="items: maxItems"):
        Registry([Loose()])
    # A string member without a declared length gets the default bound, visible in /openrpc.json.
    assert object_schema({"s": {"type": "string"}})["properties"]["s"]["maxLength"] == 1024


async def test_big_frames_from_unapproved_pages_are_cut_at_64_kb(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bridge.info", "params": {"pad": "x" * 1_000_000}})

    async def one_page() -> None:
        ws = await open_ws(session, bridge, origin=WEB)
        await ws.send_str(frame)
        answer = json.loads(await ws.receive_str())
        assert error_data(answer)["detail"] == "message-too-big"
        assert error_data(answer)["maxBytes"] == 64 * 1024
        closing = await ws.receive()
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        await ws.close()

    async def attack() -> None:
        await asyncio.gather(*(one_page() for _ in range(12)))

    await under_attack(session, bridge, attack)

    # Once approved, the page's connection gets the configured limit, without reconnecting.
    ws = await open_ws(session, bridge, origin=WEB, key=PageKey())
    pending = (await rpc(ws, "pairing.request"))["result"]
    bridge.pairing.approve(pending["code"])
    answer = await rpc(ws, "bridge.info", {"pad": "x" * 200_000})
    assert error_data(answer)["detail"] == "(params): unknown-member"
    await ws.close()


async def test_large_frames_beyond_the_daemon_budget_are_refused(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    ws = await open_ws(session, bridge, token=bridge.token)
    budget = bridge.server.budget
    budget.used = budget.limit  # as if other clients' documents were being decoded right now
    try:
        await ws.send_str(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bridge.info", "params": {"pad": "x" * 100_000}})
        )
        answer = json.loads(await ws.receive_str())  # id null: the frame was not even decoded
        assert error_data(answer)["detail"] == "server-busy"
        assert (await rpc(ws, "bridge.info"))["result"]["name"] == "dmp-bridge"  # small frames still pass
    finally:
        budget.used = 0
    answer = await rpc(ws, "bridge.info", {"pad": "x" * 100_000})
    assert error_data(answer)["detail"] == "(params): unknown-member"
    assert budget.used == 0
    await ws.close()


async def test_method_names_checked_before_stored_or_logged(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging(stream=stream)
    try:
        ws = await open_ws(session, bridge, token=bridge.token)
        huge = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "m" * 5_000_000})
        forged = "x\n2026-01-01 00:00:00 INFO bridge.api.pairing: origin approved: https://evil.example"

        async def attack() -> None:
            await ws.send_str(huge)
            assert error_data(json.loads(await ws.receive_str()))["detail"] == "method"
            assert error_data(await rpc(ws, forged))["detail"] == "method"
            assert error_data(await rpc(ws, "no.such.method"))["code"] == "NOT_FOUND"

        await under_attack(session, bridge, attack)
        recent = (await rpc(ws, "diagnostics.report"))["result"]["recentErrors"]
        assert recent and all(len(e["method"]) <= 64 for e in recent)
        await ws.close()
        # A log message with a newline stays on one line.
        logging.getLogger("bridge.test").warning("a %s", "b\norigin approved: https://evil.example")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = stream.getvalue().splitlines()
    assert not any(line.startswith("origin approved") for line in lines)
    assert not any("m" * 1000 in line for line in lines)
    # Hundreds of failed calls, one log line per kind of error per interval.
    # (At most one: an earlier test in this process may have used this interval's line.)
    assert sum("-> NOT_FOUND" in line for line in lines) <= 1, lines


# -- 2. one daemon per OS user, each on its own port -------------------------------------------------


async def test_unconfigured_port_is_the_users_first_free_candidate_and_the_cli_finds_it(
    session: aiohttp.ClientSession,
) -> None:
    from bridge.api.user_port import read_port_file

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    taken, mine = free_port(), free_port()
    # Another user's daemon already holds this user's first candidate.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", taken))
    squatter.listen()
    app = Application(BridgeConfig(port=None), data_dir=data_dir(), approver=FakeApprover())
    app.port_candidates = [taken, mine]
    try:
        await app.start(hosts=("127.0.0.1",))
        assert app.port == mine
        assert read_port_file(data_dir()) == mine
        # The CLI, with no --port and no port in config.toml, reads the port file.
        code, out, err = await cli("origins", "list", "--json")
        assert code == 0 and json.loads(out) == {"origins": []}, err
    finally:
        await app.stop()
        squatter.close()
    assert read_port_file(data_dir()) is None


# -- 7. files ---------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


async def cli(*args: str, home: Path | None = None, timeout: float = 15.0) -> tuple[int, str, str]:
    """Run `python -m bridge.cli ...` off the loop that serves the bridge; killed if it outlives `timeout`."""
    env = dict(os.environ)
    if home is not None:
        env["DMP_BRIDGE_HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


@as_root
async def test_planted_data_folder_refuses_start(
    bridge: Application, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    evil = PageKey()  # the planting user's own key, approved for its origin in the planted file
    planted_approvals = json.dumps(
        {"version": 2, "origins": {"https://evil.example": {"approvedAt": "x", "keys": [{"spki": evil.spki}]}}}
    )
    planted = victim / "data"
    planted.mkdir(parents=True)
    (planted / APPROVALS_FILENAME).write_text(planted_approvals)
    for path in (planted, planted / APPROVALS_FILENAME):
        os.chown(path, NOBODY, NOBODY)
    planted.chmod(0o755)
    outcomes: list[tuple[int, str, str]] = []

    async def attack() -> None:
        outcomes.append(await cli("run", "--no-tray", "--port", "0", home=victim, timeout=10))

    await under_attack(session, bridge, attack)
    for code, _out, err in outcomes:
        assert code != 0
        assert "Dossier non sûr" in err and "Unsafe folder" in err and str(NOBODY) in err, err
    # The same file planted inside the user's own folder approves nothing either.
    mine = data_dir() / APPROVALS_FILENAME
    mine.write_text(planted_approvals)
    os.chown(mine, NOBODY, NOBODY)
    assert not ApprovalStore(mine).is_approved("https://evil.example", evil.spki)


async def test_token_rotated_by_the_daemon_old_one_refused_at_once(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    old = bridge.token
    holder = await open_ws(session, bridge, token=old)
    tokens: list[str] = []

    async def attack() -> None:
        code, out, err = await cli("token", "--rotate", "--json", "--port", str(bridge.port))
        assert code == 0, err
        tokens.append(json.loads(out)["token"])

    await under_attack(session, bridge, attack, probe_origin=WEB)
    new = tokens[-1]
    assert new != old and bridge.token == new
    assert token_path(data_dir()).read_text().strip() == new
    closing = await holder.receive()
    assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4001
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_ws(session, bridge, token=old)
    assert info.value.status == 401
    fresh = await open_ws(session, bridge, token=new)
    assert (await rpc(fresh, "origins.list"))["result"]["origins"]
    await fresh.close()
    # A client holding a stale token gets a clear error, not a traceback.
    token_path(data_dir()).write_text(old + "\n")
    code, _out, err = await cli("origins", "list", "--port", str(bridge.port))
    assert code == 1 and "Traceback" not in err
    assert "Authentification locale refusée" in err and "token-mismatch" in err, err


# -- 6. pairing that cannot be flooded --------------------------------------------------------------


async def test_pairing_flood_locks_out_nobody(bridge: Application, session: aiohttp.ClientSession) -> None:
    approver: Any = bridge.approver
    approved = "https://approved.example"
    app_ws = await open_ws(session, bridge, origin=approved, key=approved_page(bridge, approved))
    flood = [await open_ws(session, bridge, origin=f"https://flood{i}.example", key=PageKey()) for i in range(40)]
    refusals: set[str] = set()

    async def attack() -> None:
        answers = await asyncio.gather(*(rpc(ws, "pairing.request") for ws in flood))
        for answer in answers:
            if "error" in answer:
                refusals.add(error_data(answer)["detail"])
        # An approved origin is never locked out by the flood.
        assert "result" in await rpc(app_ws, "readers.list")
        assert (await rpc(app_ws, "pairing.request"))["result"]["status"] == "approved"

    await under_attack(session, bridge, attack)
    assert refusals == {"too-many-pairing-requests"}
    assert len(bridge.pairing.pending()) == 16
    # The person is shown one request at a time, not forty.
    assert approver.requests.qsize() == 1
    # The flood ends (its pages go away): its requests go with it, and a new origin pairs at once.
    for ws in flood:
        await ws.close()
    legit = await open_ws(session, bridge, origin="https://legit.example", key=PageKey())
    answer = (await rpc(legit, "pairing.request"))["result"]
    assert answer["status"] == "pending"
    await rpc(legit, "bridge.info")  # a round trip: the last flood connections are closed server-side by now
    assert [p.origin for p in bridge.pairing.pending()] == ["https://legit.example"]
    shown = [approver.requests.get_nowait()[0] for _ in range(approver.requests.qsize())]
    # Each shown once its predecessor went away, one at a time; the legitimate one is on screen now.
    assert shown[-1].code == answer["code"]
    assert len({p.code for p in shown}) == len(shown)
    await legit.close()
    await app_ws.close()


async def test_pairing_rate_limited_per_origin(bridge: Application, session: aiohttp.ClientSession) -> None:
    origin = "https://churn.example"
    details: list[str] = []
    key = PageKey()
    for _ in range(5):
        # A page reconnecting in a loop: each request dies with its connection, so each would be new.
        ws = await open_ws(session, bridge, origin=origin, key=key)
        answer = await rpc(ws, "pairing.request")
        details.append(answer["result"]["status"] if "result" in answer else error_data(answer)["detail"])
        if "error" in answer:
            assert error_data(answer)["retryAfter"] >= 1
        await ws.close()
    assert details == ["pending"] * 3 + ["pairing-rate-limited"] * 2
    other = await open_ws(session, bridge, origin="https://other.example", key=PageKey())
    assert (await rpc(other, "pairing.request"))["result"]["status"] == "pending"
    await other.close()


# -- 3. PIN handling a script cannot abuse ----------------------------------------------------------

CPS_READER = "Virtual PCD 00 00"
PIN_UNIT = 0.3  # seconds: the test's delay unit after a first wrong PIN (1 s in the daemon)


@pytest.mark.pcsc
async def test_pin_exhaustion_from_a_page_no_longer_blocks_the_card(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    cards = PcscCardService(monitor, pin_delay_unit=PIN_UNIT)
    approver = FakeApprover()  # the person never answers the tray's last-try prompt
    async with running_bridge(monitor=monitor, cards=cards, approver=approver) as app:
        app.last_try_wait = 0.3  # 60 s in the daemon
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        page = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        codes: list[tuple[str, str | None]] = []
        elapsed: list[float] = []

        async def login(ws: Any, params: dict[str, Any]) -> dict[str, Any]:
            start = time.monotonic()
            answer = await rpc(ws, "cps.login", params, timeout=30)
            elapsed.append(time.monotonic() - start)
            return answer

        async def attack() -> None:
            # The sequence that blocked the card in 13 ms: two wrong PINs, the guarded try, then allowLastTry.
            for params in ({"pin": "0000"}, {"pin": "0000"}, {"pin": "0000"}, {"pin": "0000", "allowLastTry": True}):
                data = error_data(await login(page, params))
                codes.append((data["code"], data.get("detail")))
                assert data["code"] != "PIN_BLOCKED", data

        await under_attack(session, app, attack, seconds=0.5)
        assert codes[:4] == [
            ("PIN_INCORRECT", None),
            ("PIN_INCORRECT", None),
            ("PIN_LAST_TRY", None),
            ("PIN_LAST_TRY", "confirm-at-workstation"),
        ], codes
        # Growing delay across calls: the second wrong PIN waited one unit, the guarded try two.
        assert elapsed[1] >= PIN_UNIT * 0.9, elapsed
        assert elapsed[2] >= PIN_UNIT * 1.8, elapsed
        refusal = error_data(await rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}))
        assert "poste de travail" in refusal["message_fr"] and "workstation" in refusal["message_en"]
        # Each of the page's requests asked the person (who did not answer): the page's say-so spent nothing.
        assert approver.last_tries.qsize() >= 2
        read = (await rpc(local, "cps.read", timeout=30))["result"]
        assert read["pin"] == {"triesLeft": 1, "triesMax": 3, "blocked": False}
        # The person at the workstation (local token, as the CLI's --force-last-try) still may; it resets the delay.
        ok = (await rpc(local, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))["result"]
        assert (ok["authenticated"], ok["triesLeft"]) == (True, 3)
        assert cards._cps.throttle.delay(read["serial"]) == 0.0
        # The authentication key signs no arbitrary digest for a page; a local program still may.
        digest = {"data": base64.b64encode(b"d" * 32).decode(), "prehashed": True, "key": "authentication"}
        assert error_data(await rpc(page, "cps.sign", digest))["detail"] == "prehashed: local-programs-only"
        assert "signature" in (await rpc(local, "cps.sign", digest, timeout=30))["result"]
        await page.close()
        await local.close()


@pytest.mark.pcsc
async def test_last_try_is_spent_only_once_the_person_confirms_in_the_tray(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    import threading

    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    approver = FakeApprover()
    cards = PcscCardService(monitor, pin_delay_unit=0.05)
    async with running_bridge(monitor=monitor, cards=cards, approver=approver) as app:
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        page = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        # Not at the last try: nobody is asked, the page's login just runs.
        assert (await rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))["result"]
        assert approver.last_tries.empty()
        for _ in range(2):
            assert error_data(await rpc(local, "cps.login", {"pin": "0000"}, timeout=30))["code"] == "PIN_INCORRECT"

        async def page_asks_for_the_last_try(allowed: bool) -> dict[str, Any]:
            call = asyncio.create_task(rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))
            request, decide = await asyncio.wait_for(approver.last_tries.get(), 15)
            assert (request.origin, request.reader) == (WEB, CPS_READER)
            # While the person decides, the bridge serves the others (the card is not held).
            assert (await rpc(local, "cps.read", timeout=30))["result"]["pin"]["triesLeft"] == 1
            threading.Thread(target=decide, args=(allowed,)).start()  # the tray answers from its own thread
            return await call

        refused = error_data(await page_asks_for_the_last_try(False))
        assert (refused["code"], refused["detail"]) == ("PIN_LAST_TRY", "confirm-at-workstation")
        assert (await rpc(local, "cps.read", timeout=30))["result"]["pin"]["triesLeft"] == 1  # nothing spent
        confirmed = (await page_asks_for_the_last_try(True))["result"]
        assert (confirmed["authenticated"], confirmed["triesLeft"]) == (True, 3)
        await page.close()
        await local.close()


@pytest.mark.pcsc
async def test_cps_login_belongs_to_the_caller_that_entered_the_pin(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.cps_login_owner import acting_caller
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    async with running_bridge(monitor=monitor, cards=PcscCardService(monitor)) as app:
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        other_origin = "https://other-app.example"
        owner = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        other = await open_ws(session, app, origin=other_origin, key=approved_page(app, other_origin))
        data = {"data": base64.b64encode(b"prescription").decode()}
        assert (await rpc(owner, "cps.login", {"pin": "1234"}, timeout=30))["result"]["authenticated"] is True
        assert "signature" in (await rpc(owner, "cps.sign", data, timeout=30))["result"]

        async def attack() -> None:
            # Another approved application, and a local program, try to use the doctor's login.
            for ws in (other, local):
                refusal = error_data(await rpc(ws, "cps.sign", data, timeout=30))
                assert (refusal["code"], refusal["detail"]) == ("PIN_REQUIRED", "login-owned-by-another-caller")

        await under_attack(session, app, attack, seconds=0.5)
        # DIRECTE DMP calls hold the card through this same seam: refused for another caller too.
        with acting_caller(other_origin), pytest.raises(BridgeError) as info:
            async with app.locks.hold_shared(CPS_READER):
                pass
        assert info.value.detail == "login-owned-by-another-caller"
        with acting_caller(WEB):
            async with app.locks.hold_shared(CPS_READER):
                pass
        # Entering the PIN itself makes the login the other application's (and no longer the first's).
        assert (await rpc(other, "cps.login", {"pin": "1234"}, timeout=30))["result"]["authenticated"] is True
        assert "signature" in (await rpc(other, "cps.sign", data, timeout=30))["result"]
        assert error_data(await rpc(owner, "cps.sign", data, timeout=30))["code"] == "PIN_REQUIRED"
        # The person chose to share the login (config share_cps_login): every approved caller may use it.
        app.locks.login_owners.shared = True
        assert "signature" in (await rpc(owner, "cps.sign", data, timeout=30))["result"]
        await owner.close()
        await other.close()
        await local.close()


# -- 5. timeouts ------------------------------------------------------------------------------------


async def test_slowloris_sockets_are_cut_and_clients_get_through(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    bridge.server.guard.http_deadline = 0.5  # 10 s in the daemon
    request = f"GET /openrpc.json HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\nX-Pad: ".encode() + b"a" * 1000
    cut: list[float] = []

    async def slow_client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.port)
        start = time.monotonic()

        async def drip() -> None:
            # One header byte at a time, never finishing the header block (the attack's own pace).
            with contextlib.suppress(ConnectionError):
                for byte in request:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.05)

        dripping = asyncio.create_task(drip())
        try:
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(), 10) == b""
            cut.append(time.monotonic() - start)
        finally:
            dripping.cancel()
            writer.close()

    async def attack() -> None:
        slow = [asyncio.create_task(slow_client()) for _ in range(200)]
        # A legitimate client still gets its round trip while 200 sockets drip.
        ws = await open_ws(session, bridge, token=bridge.token)
        assert (await rpc(ws, "bridge.info"))["result"]["name"] == "dmp-bridge"
        await ws.close()
        async with session.get(f"http://127.0.0.1:{bridge.port}/openrpc.json") as response:
            assert response.status == 200
        await asyncio.gather(*slow)

    await under_attack(session, bridge, attack)
    assert len(cut) >= 200 and max(cut) < 5, max(cut)


REPO_ROOT = REPO


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_NOFILE and /proc/<pid>/fd: Linux")
async def test_drip_fed_dmp_answer_ends_at_the_deadline_and_blocks_nobody(
    session: aiohttp.ClientSession,
    dmp_pki: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    from bridge.dmp.codes import InsOid
    from bridge.service.dmp_config import DmpConfig
    from tests.dmp_fixtures import PATIENT, establishment
    from tests.faults import Fault, FaultProxy, SimProcess

    sim = SimProcess(dmp_pki, tmp_path / "sim")
    await sim.start()
    certs = establishment(dmp_pki)
    try:
        # Requests above 96 KB carry a document: only their answers drip (1 byte per 0.5 s; 5 s in the attack).
        async with FaultProxy(sim.port, 96 * 1024) as proxy:
            dmp = DmpConfig(
                url=sim.url.replace(f":{sim.port}/", f":{proxy.port}/"), ca_bundle=sim.ca_file,
                server_name="localhost", ins_oid=InsOid.NIR_TEST.value, default_mode="INDIRECTE",
                establishment_auth_p12=certs.auth_cli_p12, establishment_sign_p12=certs.sign_p12,
                establishment_p12_password_file=certs.auth_cli_p12.with_name("p12-password"),
                establishment_id="10B0127189", establishment_name="CLINIQUE DU TEST",
                practitioner_id="810012345678", practitioner_family="MARTIN", practitioner_given="PAUL",
                practitioner_specialty="SM54", call_timeout=2.0,
            )  # fmt: skip
            async with running_bridge(BridgeConfig(port=0, dmp=dmp)) as app:
                dripped = await open_ws(session, app, token=app.token)
                other = await open_ws(session, app, token=app.token)
                patient = {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M",
                           "birthDate": "19780314"}  # fmt: skip
                content = base64.b64encode(b"%PDF-1.4\n" + bytes(200 * 1024) + b"\n%%EOF\n").decode()
                submit = {"patient": patient, "content": content, "mimeType": "application/pdf", "title": "CR",
                          "typeCode": "11488-4"}  # fmt: skip
                assert "result" in await rpc(dripped, "dmp.documents.submit", submit, timeout=30)  # warm, stored
                proxy.fault = Fault.DRIP
                outcomes: list[tuple[str, float, float]] = []

                async def attack() -> None:
                    started = time.monotonic()
                    slow = asyncio.create_task(rpc(dripped, "dmp.documents.submit", submit, timeout=60))
                    await asyncio.wait_for(proxy.triggered.wait(), 15)
                    # Another caller's DMP call does not queue behind the dripping one.
                    begun = time.monotonic()
                    assert "result" in await rpc(other, "dmp.documents.find", {"patient": {"ins": PATIENT.value}})
                    found = time.monotonic() - begun
                    outcome = error_data(await slow)["code"]
                    outcomes.append((outcome, time.monotonic() - started, found))

                await under_attack(session, app, attack, seconds=0.1)  # one drip-fed call, ~2 s
                ((outcome, total, found),) = outcomes
                # Each byte arrives before any per-read timeout: only the call's total deadline (2 s) ends it.
                assert outcome == "DMP_OUTCOME_UNKNOWN"
                assert total < 2.0 + 3.0, total
                assert found < 2.0, found
    finally:
        sim.kill()


async def test_fd_exhaustion_refuses_new_connections_without_tracebacks(tmp_path: Path) -> None:
    import resource

    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "run",
        "--no-tray",
        "--port",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=low_fd_limit,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        banner = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        port = int(banner.split("http://127.0.0.1:")[1].split("/")[0])
        clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for _ in range(150):
            clients.append(await asyncio.open_connection("127.0.0.1", port))

        async def refused(reader: asyncio.StreamReader) -> bool:
            try:
                return await asyncio.wait_for(reader.read(), 4) == b""
            except ConnectionError:
                return True
            except TimeoutError:
                return False  # accepted and kept: it holds one of the daemon's descriptors

        outcomes = await asyncio.gather(*(refused(reader) for reader, _ in clients))
        # Beyond the descriptor limit, clients are refused at once instead of hanging in the backlog.
        assert sum(outcomes) >= 150 - 96, sum(outcomes)
        for _, writer in clients:
            writer.close()
        # Once they are gone, the daemon serves again.
        token = token_path(data_dir()).read_text().strip()
        async with aiohttp.ClientSession() as client:
            for _attempt in range(50):
                try:
                    ws = await client.ws_connect(
                        f"http://127.0.0.1:{port}/ws", headers={"Authorization": f"Bearer {token}"}
                    )
                    break
                except (aiohttp.ClientError, ConnectionError):
                    await asyncio.sleep(0.1)  # the daemon closes the last held sockets at its own pace
            start = time.perf_counter()
            assert (await rpc(ws, "bridge.info"))["result"]["name"] == "dmp-bridge"
            assert time.perf_counter() - start < ROUND_TRIP_BOUND
            await ws.close()
    finally:
        proc.terminate()
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 15)
    err = err_bytes.decode()
    assert "Traceback" not in err, err[-3000:]
    # One line per interval, not one per failed accept.
    assert 1 <= err.count("out of file descriptors") <= 3, err[-3000:]


# -- 2. same OS user only ---------------------------------------------------------------------------

_RAW_CLIENT = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), 5)
s.settimeout(5)
try:
    s.sendall(b"GET /openrpc.json HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\nConnection: close\\r\\n\\r\\n" % port)
    head = s.recv(12)
except ConnectionError:
    head = b""
print(head.decode() or "refused")
"""


async def raw_client(port: int, host: str, *user: str) -> str:
    """Run a stdlib HTTP client (as `user` when given); its first answer bytes, or 'refused'."""
    proc = await asyncio.create_subprocess_exec(
        *user,
        "/usr/bin/python3",
        "-c",
        _RAW_CLIENT,
        host,
        str(port),
        cwd="/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 15)
    assert proc.returncode == 0, err
    return out.decode().strip()


@pytest.mark.skipif(
    os.geteuid() != 0 or not sys.platform.startswith("linux"), reason="runs a client as nobody: root on Linux"
)
async def test_another_os_user_is_refused_before_http(bridge: Application, session: aiohttp.ClientSession) -> None:
    nobody = ("runuser", "-u", "nobody", "--")
    answers: list[str] = []

    async def attack() -> None:
        answers.append(await raw_client(bridge.port, "127.0.0.1", *nobody))

    await under_attack(session, bridge, attack)
    assert answers and set(answers) == {"refused"}, answers
    # The daemon's own user is served.
    assert await raw_client(bridge.port, "127.0.0.1") == "HTTP/1.1 200"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/net/tcp{,6}: Linux")
@pytest.mark.parametrize(("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_peer_owner_found_over_ipv4_and_ipv6(family: socket.AddressFamily, host: str) -> None:
    try:
        listener = socket.socket(family)
        listener.bind((host, 0))
    except OSError:
        pytest.skip(f"{host} unavailable")
    with listener:
        listener.listen()
        with socket.socket(family) as client:
            client.connect(listener.getsockname()[:2])
            accepted, _ = listener.accept()
            with accepted:
                assert peer_uid(accepted) == os.geteuid()
