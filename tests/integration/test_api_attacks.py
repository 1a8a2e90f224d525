"""Attacks on the local API (issue 13), kept as a regression suite: each asserts the refusal and that
another client's round trip stays under 100 ms while the attack runs. Proof of possession, per-user
port, bounded frames, pairing floods and files here; PIN handling in test_api_attacks_pin.py, timeouts
and other OS users in test_api_attacks_transport.py."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.api.methods import Handler, Registry, Scope, object_schema
from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore
from bridge.api.token import token_path
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.logs import setup_logging
from bridge.paths import data_dir
from tests.api_helpers import FakeApprover, PageKey, approved_page, open_ws, rpc, running_bridge
from tests.attack_helpers import WEB, cli, error_data, under_attack

pytestmark = [pytest.mark.usefixtures("home"), pytest.mark.timeout(30)]


@pytest.fixture
async def bridge() -> AsyncIterator[Application]:
    async with running_bridge(BridgeConfig(port=0)) as app:
        yield app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


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

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


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
    assert code == 8 and "Traceback" not in err  # exit family: the bridge refused this program
    assert "Authentification locale refusée" in err and "jeton local a changé" in err, err


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
