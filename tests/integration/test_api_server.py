"""The bridge's HTTP/WebSocket server on a real loopback port: each refusal, then proof it stays healthy."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.api.token import load_or_create_token
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.errors import BridgeError, ErrorCode
from bridge.paths import data_dir
from tests.api_helpers import PageKey, open_ws, rpc, running_bridge

REPO = Path(__file__).resolve().parents[2]
WEB = "https://dpi.example.fr"


pytestmark = pytest.mark.usefixtures("home")


@pytest.fixture
async def bridge() -> AsyncIterator[Application]:
    async with running_bridge(BridgeConfig(port=0, max_message_size=64 * 1024)) as app:
        yield app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def assert_healthy(session: aiohttp.ClientSession, app: Application) -> None:
    """The daemon still answers a fresh local client."""
    ws = await open_ws(session, app, token=app.token)
    response = await rpc(ws, "bridge.info")
    assert response["result"]["name"] == "dmp-bridge"
    await ws.close()


def error_data(response: dict[str, Any]) -> dict[str, Any]:
    assert "error" in response, response
    return dict(response["error"]["data"])


async def cli(*args: str) -> tuple[int, str, str]:
    """Run `python -m bridge.cli ...` without blocking the loop that serves the bridge."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        cwd=REPO,
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_wrong_host_refused_on_http_and_ws(bridge: Application, session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{bridge.port}"
    async with session.get(url + "/", headers={"Host": f"evil.example:{bridge.port}"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["detail"] == "bad-host"
    async with session.get(url + "/sdk/dmp-bridge.js", headers={"Host": "rebind.example"}) as resp:
        assert resp.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_ws(session, bridge, origin=WEB, host=f"rebind.example:{bridge.port}")
    assert info.value.status == 403
    async with session.get(url + "/") as resp:
        assert resp.status == 200
        assert "Diagnostic" in await resp.text()
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    await assert_healthy(session, bridge)


async def test_foreign_origin_gets_only_public_methods(bridge: Application, session: aiohttp.ClientSession) -> None:
    async with session.get(f"http://127.0.0.1:{bridge.port}/", headers={"Origin": WEB}) as resp:
        assert resp.status == 403
    ws = await open_ws(session, bridge, origin=WEB)
    info = await rpc(ws, "bridge.info")
    assert info["result"]["approved"] is False
    for method in ("readers.list", "cps.read", "origins.list", "diagnostics.report"):
        response = await rpc(ws, method)
        assert response["error"]["code"] == -32001
        assert error_data(response)["code"] == "ORIGIN_NOT_APPROVED"
    # Same connection still works.
    assert (await rpc(ws, "bridge.info"))["result"]["version"]
    await ws.close()
    await assert_healthy(session, bridge)


async def test_origin_null_refused(bridge: Application, session: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_ws(session, bridge, origin="null")
    assert info.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await open_ws(session, bridge, origin="null", token=bridge.token)
    await assert_healthy(session, bridge)


async def test_missing_or_wrong_token_refused(bridge: Application, session: aiohttp.ClientSession) -> None:
    for token in (None, "wrong", bridge.token + "x"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await open_ws(session, bridge, token=token)
        assert info.value.status == 401
    async with session.get(f"http://127.0.0.1:{bridge.port}/ws", headers={"Upgrade": "websocket"}) as resp:
        body = await resp.json()
        assert body["error"]["code"] == "UNAUTHORIZED"
        assert body["error"]["detail"] == "bad-token"
        assert bridge.token not in json.dumps(body)
    await assert_healthy(session, bridge)


async def test_token_with_foreign_origin_is_still_unapproved(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    ws = await open_ws(session, bridge, origin=WEB, token=bridge.token)
    assert error_data(await rpc(ws, "origins.pending"))["code"] == "ORIGIN_NOT_APPROVED"
    await ws.close()


async def test_oversized_message(bridge: Application, session: aiohttp.ClientSession) -> None:
    ws = await open_ws(session, bridge, token=bridge.token)
    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bridge.info", "params": {"x": "A" * 70_000}}))
    message = await ws.receive(timeout=10)
    assert message.type is aiohttp.WSMsgType.TEXT
    data = json.loads(message.data)["error"]["data"]
    assert data["code"] == "INVALID_INPUT" and data["detail"] == "message-too-big" and data["maxBytes"] == 64 * 1024
    closing = await ws.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert ws.close_code == 1009
    await assert_healthy(session, bridge)


async def test_default_limit_accepts_a_20mb_document(session: aiohttp.ClientSession) -> None:
    async with running_bridge() as app:
        ws = await open_ws(session, app, token=app.token)
        blob = "A" * (28 * 1024 * 1024)  # 20 MB in base64 plus margin
        response = await rpc(ws, "cps.sign", {"data": blob}, timeout=60)
        # Reaches the handler (no card service wired here), i.e. the frame was accepted and parsed.
        assert error_data(response)["code"] == "UNSUPPORTED_CARD"
        await ws.close()


async def test_malformed_json_unknown_method_invalid_params(
    bridge: Application, session: aiohttp.ClientSession
) -> None:
    ws = await open_ws(session, bridge, token=bridge.token)
    await ws.send_str("{this is not json")
    parse = json.loads(await ws.receive_str(timeout=10))
    assert parse["id"] is None and parse["error"]["code"] == -32700
    await ws.send_str('[{"jsonrpc":"2.0","id":1,"method":"bridge.info"}]')
    batch = json.loads(await ws.receive_str(timeout=10))
    assert batch["error"]["code"] == -32600 and batch["error"]["data"]["detail"] == "batch-unsupported"
    unknown = await rpc(ws, "cps.format")
    assert unknown["error"]["code"] == -32601 and error_data(unknown)["code"] == "NOT_FOUND"
    invalid = await rpc(ws, "cps.login", {"pin": "12x4567"})
    assert invalid["error"]["code"] == -32602
    assert error_data(invalid) == {
        "code": "INVALID_PARAMS",
        "message_fr": "Paramètres invalides.",
        "message_en": "Invalid parameters.",
        "hint_fr": "Corrigez la valeur nommée dans le détail, puis recommencez.",
        "hint_en": "Fix the value named in the detail, then try again.",
        "detail": "pin: pattern",
    }
    assert "12x4567" not in json.dumps(invalid)
    await ws.send_bytes(b"\x00\x01")
    binary = json.loads(await ws.receive_str(timeout=10))
    assert binary["error"]["data"]["detail"] == "binary-frame"
    # The same connection carries on.
    assert (await rpc(ws, "readers.list"))["result"] == {"pcsc": "unavailable", "readers": []}
    await ws.close()
    report = await _diagnostics(session, bridge)
    codes = [e["code"] for e in report["recentErrors"]]
    assert codes[:4] == ["INVALID_INPUT", "INVALID_INPUT", "NOT_FOUND", "INVALID_PARAMS"]


async def _diagnostics(session: aiohttp.ClientSession, app: Application) -> dict[str, Any]:
    ws = await open_ws(session, app, origin=f"http://127.0.0.1:{app.port}", page_secret=app.server.page_secret)
    response = await rpc(ws, "diagnostics.report")
    await ws.close()
    return dict(response["result"])


async def test_own_page_is_diagnostics_only(bridge: Application, session: aiohttp.ClientSession) -> None:
    own = f"http://localhost:{bridge.port}"
    # Its Origin alone (which any local program can send) gives nothing: the served secret does.
    forged = await open_ws(session, bridge, origin=own)
    assert error_data(await rpc(forged, "diagnostics.report"))["code"] == "ORIGIN_NOT_APPROVED"
    bad = await rpc(forged, "pairing.prove", {"pageSecret": "not-the-secret"})
    assert error_data(bad)["code"] == "UNAUTHORIZED"
    assert error_data(await rpc(forged, "readers.list"))["code"] == "ORIGIN_NOT_APPROVED"
    await forged.close()
    async with session.get(f"http://127.0.0.1:{bridge.port}/") as resp:
        assert bridge.server.page_secret in await resp.text()  # served in the page (same-user programs only)
        assert resp.headers["Cache-Control"] == "no-store"
    ws = await open_ws(session, bridge, origin=own, page_secret=bridge.server.page_secret)
    assert (await rpc(ws, "readers.list"))["result"]["pcsc"] == "unavailable"
    report = (await rpc(ws, "diagnostics.report"))["result"]
    assert report["bridge"]["port"] == bridge.port
    assert error_data(await rpc(ws, "pairing.request"))["detail"] == "own-origin"
    assert bridge.token not in json.dumps(report)
    for method in ("cps.read", "origins.pending", "origins.approve"):
        assert (
            error_data(await rpc(ws, method, {"code": "123456"} if method == "origins.approve" else {}))["code"]
            == "UNAUTHORIZED"
        )
    await ws.close()


async def test_public_resources_and_lna_preflight(bridge: Application, session: aiohttp.ClientSession) -> None:
    base = f"http://127.0.0.1:{bridge.port}"
    async with session.get(base + "/sdk/dmp-bridge.js", headers={"Origin": WEB}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/javascript")
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "export async function connect" in await resp.text()
    async with session.options(
        base + "/sdk/dmp-bridge.js",
        headers={
            "Origin": WEB,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
            "Access-Control-Request-Local-Network": "true",
        },
    ) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Private-Network"] == "true"
        assert resp.headers["Access-Control-Allow-Local-Network"] == "true"
    async with session.get(base + "/openrpc.json") as resp:
        doc = await resp.json()
        assert doc["servers"][0]["url"] == f"ws://127.0.0.1:{bridge.port}/ws"
    async with session.get(base + "/sdk/dmp-bridge.d.ts") as resp:
        assert "export declare function connect" in await resp.text()


async def test_pairing_end_to_end_through_cli(bridge: Application, session: aiohttp.ClientSession) -> None:
    key = PageKey()
    ws = await open_ws(session, bridge, origin=WEB, key=key)
    other_tab = await open_ws(session, bridge, origin=WEB, key=key)  # same browser profile: same key
    answer = (await rpc(ws, "pairing.request"))["result"]
    assert answer["status"] == "pending" and answer["expiresIn"] == 300
    assert len(answer["code"]) == 6 and answer["code"] == bridge.pairing.pending()[0].code
    code, out, err = await cli("origins", "pending", "--json", "--port", str(bridge.port))
    assert code == 0, err
    pending = json.loads(out)["pending"]
    assert [(p["origin"], p["requestId"]) for p in pending] == [(WEB, answer["requestId"])]
    code, out, err = await cli("origins", "approve", pending[0]["code"], "--port", str(bridge.port))
    assert code == 0, err
    assert WEB in out
    notes: list[dict[str, Any]] = []
    response = await rpc(ws, "readers.list", notes=notes)
    # The notification was sent before the CLI returned, so it precedes this response.
    assert notes[0] == {
        "jsonrpc": "2.0",
        "method": "pairing.approved",
        "params": {"requestId": answer["requestId"], "origin": WEB},
    }
    assert response["result"] == {"pcsc": "unavailable", "readers": []}
    assert (await rpc(other_tab, "readers.list"))["result"]["pcsc"] == "unavailable"
    again = (await rpc(ws, "pairing.request"))["result"]
    assert again["status"] == "approved"
    # Revocation through the CLI takes effect on the open connection.
    code, out, err = await cli("origins", "revoke", WEB, "--port", str(bridge.port))
    assert code == 0, err
    assert error_data(await rpc(ws, "readers.list"))["code"] == "ORIGIN_NOT_APPROVED"
    code, out, _ = await cli("origins", "list", "--json", "--port", str(bridge.port))
    assert json.loads(out) == {"origins": []}
    await ws.close()
    await other_tab.close()
    # Pairing again after revocation: a new request, and the same key works once approved.
    ws = await open_ws(session, bridge, origin=WEB, key=key)
    answer = (await rpc(ws, "pairing.request"))["result"]
    assert answer["status"] == "pending"
    bridge.pairing.approve(answer["code"])
    assert (await rpc(ws, "readers.list"))["result"]["pcsc"] == "unavailable"
    await ws.close()


async def test_pairing_denied_reaches_requester(bridge: Application, session: aiohttp.ClientSession) -> None:
    key = PageKey()
    ws = await open_ws(session, bridge, origin=WEB, key=key)
    answer = (await rpc(ws, "pairing.request"))["result"]
    code_ = bridge.pairing.pending()[0].code
    rc, _, err = await cli("origins", "deny", code_, "--port", str(bridge.port))
    assert rc == 0, err
    notes: list[dict[str, Any]] = []
    await rpc(ws, "bridge.info", notes=notes)
    assert notes[0]["method"] == "pairing.denied" and notes[0]["params"]["requestId"] == answer["requestId"]
    assert not bridge.store.is_approved(WEB, key.spki)


async def test_cli_offline_fallback(home: Path) -> None:
    from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore

    key = PageKey()
    ApprovalStore(data_dir() / APPROVALS_FILENAME).approve(WEB, key.spki)
    code, out, _ = await cli("origins", "list", "--json", "--port", "1")
    assert code == 0 and json.loads(out)["origins"][0]["origin"] == WEB
    code, _, err = await cli("origins", "pending", "--port", "1")
    assert code == 8 and "pont n'est pas démarré" in err and "dmp-bridge run" in err
    code, _, _ = await cli("origins", "revoke", WEB, "--port", "1")
    assert code == 0
    assert not ApprovalStore(data_dir() / APPROVALS_FILENAME).is_approved(WEB, key.spki)


async def test_token_command_prints_private_token(home: Path) -> None:
    code, out, _ = await cli("token", "--json")
    assert code == 0
    printed = json.loads(out)
    assert printed["token"] == load_or_create_token(data_dir())
    assert oct(Path(printed["file"]).stat().st_mode & 0o777) == "0o600"


async def test_port_in_use_names_the_holder(bridge: Application) -> None:
    code, _, err = await cli("run", "--no-tray", "--port", str(bridge.port))
    assert code == 4
    assert f"port {bridge.port}" in err.lower() and f"PID {os.getpid()}" in err


async def test_daemon_process_runs_without_pcscd(home: Path) -> None:
    """`dmp-bridge run` as a real process, with the PC/SC client pointed at a socket that does not exist."""
    import socket

    from bridge.api.client import LocalClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(home / "no-pcscd.comm"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "run",
        "--no-tray",
        "--port",
        str(port),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"http://127.0.0.1:{port}/" in line
        async with LocalClient(port, load_or_create_token(data_dir())) as client:
            assert await client.call("readers.list") == {"pcsc": "unavailable", "readers": []}
            with pytest.raises(BridgeError) as info:
                await client.call("cps.read")
            assert info.value.code is ErrorCode.NO_READER
        # Headless: the pairing code goes to the log, where the person (or `origins pending`) finds it.
        async with aiohttp.ClientSession() as session:
            page = await session.ws_connect(f"http://127.0.0.1:{port}/ws", headers={"Origin": WEB})
            await PageKey().prove(page, WEB)
            await rpc_simple(page, "pairing.request")
            assert proc.stderr is not None
            async with asyncio.timeout(15):
                while "pairing request" not in (line := (await proc.stderr.readline()).decode()):
                    pass
            code = line.split("code ")[1].split()[0]
            async with LocalClient(port, load_or_create_token(data_dir())) as client:
                pending = await client.call("origins.pending")
            assert [(p["origin"], p["code"]) for p in pending["pending"]] == [(WEB, code)]
            await page.close()
        if _has_ipv6_loopback():
            async with aiohttp.ClientSession() as session, session.get(f"http://[::1]:{port}/openrpc.json") as resp:
                assert resp.status == 200  # also listening on the IPv6 loopback
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]


async def rpc_simple(ws: aiohttp.ClientWebSocketResponse, method: str) -> dict[str, Any]:
    """One request, its response."""
    await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}))
    return dict(json.loads(await ws.receive_str(timeout=10)))


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_stop_closes_open_connections_promptly(session: aiohttp.ClientSession) -> None:
    async with running_bridge() as app:
        ws = await open_ws(session, app, token=app.token)
        await rpc(ws, "bridge.info")
        await asyncio.wait_for(app.stop(), 5)  # aiohttp alone would wait up to 60 s for the handler
        message = await ws.receive(timeout=5)
        # The close frame says why; the client's own reply finds the socket gone, which is expected.
        assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "bridge stopping")
