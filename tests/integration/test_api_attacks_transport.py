"""Attacks below the API and on its deadlines (issue 13, points 2 and 5): slowloris, a drip-fed DMP answer,
file-descriptor exhaustion, another OS user. Each asserts the refusal and that another client's round trip
stays under 100 ms meanwhile (where a client can run)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.api.peer import peer_uid
from bridge.api.token import token_path
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.paths import data_dir
from tests.api_helpers import open_ws, rpc, running_bridge
from tests.attack_helpers import REPO, ROUND_TRIP_BOUND, error_data, under_attack
from tests.dmp_fixtures import dmp_pki  # noqa: F401  (fixture)

pytestmark = [pytest.mark.usefixtures("home"), pytest.mark.timeout(30)]


@pytest.fixture
async def bridge() -> AsyncIterator[Application]:
    async with running_bridge(BridgeConfig(port=0)) as app:
        yield app


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


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
                          "typeCode": "11488-4", "insQualified": True}  # fmt: skip
                assert "result" in await rpc(dripped, "dmp.documents.submit", submit, timeout=30)  # warm, stored
                proxy.fault = Fault.DRIP
                outcomes: list[tuple[str, float, float]] = []

                async def attack() -> None:
                    started = time.monotonic()
                    slow = asyncio.create_task(rpc(dripped, "dmp.documents.submit", submit, timeout=60))
                    await asyncio.wait_for(proxy.triggered.wait(), 15)
                    # Another caller's DMP call does not queue behind the dripping one.
                    begun = time.monotonic()
                    # (a reference lookup, what the establishment may do: it answers that the document is unknown)
                    unknown = {"patient": {"ins": PATIENT.value}, "uniqueId": "1.2.250.1.999.1"}
                    assert error_data(await rpc(other, "dmp.documents.delete", unknown))["code"] == "NOT_FOUND"
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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_NOFILE and /proc/<pid>/fd: Linux")
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
        cwd=REPO,
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
