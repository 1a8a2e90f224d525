"""Nothing lost, nothing doubled: 200 documents fed through the real daemon (`dmp-bridge run`, its own
process) by HL7v2 over MLLP, the hot folder and the JSON-RPC API (`queue: true`), while

- the daemon is killed with SIGKILL at random moments (at least 20 times) and started again;
- the TCP connection to the DMP is cut in the middle of uploads (a proxy), for a while;
- the simulator (its own process) answers 5xx, times out, and drops answers after storing, for a while.

The test plays the DPI: it sends each HL7 message again until it gets its ACK AA, and acknowledges
each feeding acknowledgement (ZAM^Z01); the API caller sends again with the same uniqueId until it gets
a job id. Afterwards each of the 200 uniqueIds is stored exactly once by the simulator, every HL7
message got its ACK and a positive feeding acknowledgement, and the outbox shows 200 jobs sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bridge.api.client import LocalClient
from bridge.api.token import client_token
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.sim.dmp.store import PatientRow
from tests.dmp_fixtures import ESTABLISHMENT_ID, PATIENT, establishment
from tests.faults import Fault, FaultProxy, SimProcess, free_port
from tests.feed.dpi import DpiAckServer, oru, send
from tests.feed.support import cda, unique_id

pytestmark = pytest.mark.timeout(300)

REPO = Path(__file__).resolve().parents[2]
N_HL7, N_HOT, N_API = 70, 65, 65
KILLS = 20
RUN = 77


@dataclass
class Daemon:
    """`dmp-bridge run` in its own process, with DMP_BRIDGE_HOME `home`."""

    home: Path
    port: int
    proc: subprocess.Popen[str] | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)
    starts: int = 0
    kills: int = 0

    async def start(self) -> None:
        """Start and wait for its "listening" line (the outbox, worker and MLLP listener are up by then)."""
        env = {**os.environ, "DMP_BRIDGE_HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "run", "--no-tray", "--port", str(self.port)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 60)
        assert line.startswith("dmp-bridge"), line
        self.starts += 1
        self.up.set()

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut of the process would."""
        self.up.clear()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None
            self.kills += 1

    def stop(self) -> None:
        """SIGTERM at the end."""
        self.up.clear()
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


def _config(home: Path, pki: TestPki, dmp_url: str, ca: Path, mllp: int, dpi: int, hot: Path) -> None:
    certs = establishment(pki)
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text(
        f"""
[dmp]
url = "{dmp_url}"
ca_bundle = "{ca}"
server_name = "localhost"
ins_oid = "{InsOid.NIR_TEST.value}"
default_mode = "INDIRECTE"
establishment_auth_p12 = "{certs.auth_cli_p12}"
establishment_sign_p12 = "{certs.sign_p12}"
establishment_p12_password_file = "{certs.auth_cli_p12.with_name("p12-password")}"
establishment_id = "{ESTABLISHMENT_ID}"
establishment_name = "CLINIQUE DU TEST"
practitioner_id = "810012345678"
practitioner_family = "MARTIN"
practitioner_given = "PAUL"
practitioner_specialty = "SM54"
call_timeout = 3
io_timeout = 3

[feed]
enabled = true
workers = 4
mllp_port = {mllp}
dpi_ack_port = {dpi}
hot_folder = "{hot}"
hot_folder_interval = 0.2
retry_base = 0.05
retry_cap = 0.5
""",
        "utf-8",
    )


async def _hl7_producer(daemon: Daemon, mllp: int, messages: list[tuple[str, bytes]], acked: set[str]) -> None:
    """The DPI: each message again until its ACK AA (a crash may eat the message or its ACK)."""
    for control, message in messages:
        while control not in acked:
            await daemon.up.wait()
            try:
                (ack,) = await asyncio.wait_for(send(mllp, message), 15)
            except Exception:  # the daemon died under the message: send it again
                continue
            if str(ack.extract_field("MSA", 1, 1)) == "AA":
                acked.add(control)


async def _api_producer(daemon: Daemon, token: str, docs: list[tuple[str, bytes]], jobs: dict[str, int]) -> None:
    """A web app with `queue: true`: the same uniqueId again until it gets a job id."""
    for uid, content in docs:
        while uid not in jobs:
            await daemon.up.wait()
            params = {
                "patient": {"ins": PATIENT.value}, "content": base64.b64encode(content).decode(),
                "mimeType": "text/xml", "title": "Compte rendu", "typeCode": "11488-4", "uniqueId": uid,
                "queue": True, "insQualified": True,
            }  # fmt: skip
            try:
                async with LocalClient(daemon.port, token) as client:
                    result = await asyncio.wait_for(client.call("dmp.documents.submit", params), 15)
            except Exception:  # the daemon died under the call: same uniqueId again
                continue
            jobs[uid] = result["jobId"]


def _drop(hot: Path, name: str, content: bytes) -> None:
    part = hot / f".{name}.part"
    part.write_bytes(content)
    os.replace(part, hot / name)  # the atomic hand-over the README asks for


@pytest.fixture
async def world(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[tuple[SimProcess, FaultProxy, DpiAckServer]]:
    """The simulator process with its knobs file, the proxy in front of it, the DPI's acknowledgement endpoint."""
    seed = [PatientRow(PATIENT.value, PATIENT.oid.value, "active", "MARTIN", "JEAN", "19780314", "M")]
    sim = SimProcess(dmp_pki, tmp_path / "sim", seed, faults=tmp_path / "sim" / "faults.json")
    await sim.start()
    try:
        async with FaultProxy(sim.port, upload_threshold=24 * 1024) as proxy, DpiAckServer() as dpi:
            yield sim, proxy, dpi
    finally:
        sim.kill()


async def test_200_documents_survive_kills_cuts_and_faults(
    world: tuple[SimProcess, FaultProxy, DpiAckServer], dmp_pki: TestPki, tmp_path: Path
) -> None:
    sim, proxy, dpi = world
    rng = random.Random(12)
    home, hot = tmp_path / "home", tmp_path / "depot"
    hot.mkdir()
    mllp = free_port()
    url = sim.url.replace(f":{sim.port}/", f":{proxy.port}/")
    _config(home, dmp_pki, url, sim.ca_file, mllp, dpi.port, hot)
    daemon = Daemon(home, free_port())
    # Documents of 24-40 KiB: each upload crosses the proxy's threshold (cuts happen mid-upload).
    docs = {
        unique_id(n, RUN): cda(unique_id(n, RUN), size=24 * 1024 + rng.randrange(16 * 1024), seed=n) for n in range(200)
    }
    uids = list(docs)
    hl7_docs = [(f"MSG{n:04d}", oru(f"MSG{n:04d}", docs[u])) for n, u in enumerate(uids[:N_HL7])]
    api_docs = [(u, docs[u]) for u in uids[N_HL7 : N_HL7 + N_API]]
    hot_docs = uids[N_HL7 + N_API :]
    acked: set[str] = set()
    jobs: dict[str, int] = {}

    await daemon.start()
    token = client_token(home / "data")
    producers = [
        asyncio.create_task(_hl7_producer(daemon, mllp, hl7_docs, acked)),
        asyncio.create_task(_api_producer(daemon, token, api_docs, jobs)),
    ]
    started = time.monotonic()
    knobs = sim.faults
    assert knobs is not None
    try:
        for n, uid in enumerate(hot_docs):
            _drop(hot, f"doc{n:03d}.xml", docs[uid])
        # The kill loop: random lifetimes; faults switched on and off by phases.
        while daemon.kills < KILLS or not all(t.done() for t in producers):
            phase = daemon.kills % 10
            proxy.fault = Fault.CUT_UPLOAD if phase in (2, 3) else Fault.PASS
            if phase in (5, 6):
                knobs.write_text(json.dumps({"error_rate": 0.3, "drop_rate": 0.2, "latency": 0.01}))
            elif phase == 7:
                knobs.write_text(json.dumps({"timeout_rate": 0.3, "timeout_seconds": 4}))
            else:
                knobs.write_text("{}")
            await asyncio.sleep(rng.uniform(0.2, 1.5))  # a random moment to crash: the scenario, not a wait
            daemon.kill()
            await daemon.start()
            if time.monotonic() - started > 200:
                break
        for task in producers:
            await asyncio.wait_for(task, 60)
        # Healed: the last start drains the outbox.
        proxy.fault = Fault.PASS
        knobs.write_text("{}")
        async with aiohttp.ClientSession() as session:
            await _drained(session, daemon, token)
        await asyncio.wait_for(_all_acknowledged(dpi, {c for c, _ in hl7_docs}), 60)
        async with LocalClient(daemon.port, token) as client:
            summary = (await client.call("dmp.outbox.list", {"limit": 1}))["summary"]
    finally:
        for task in producers:
            task.cancel()
        daemon.stop()
    with contextlib.closing(sqlite3.connect(f"file:{home / 'data' / 'outbox.sqlite3'}?mode=ro", uri=True)) as db:
        retried = db.execute("SELECT COUNT(*) FROM jobs WHERE attempts > 1").fetchone()[0]
        checked = db.execute("SELECT COUNT(*) FROM jobs WHERE result LIKE '%alreadyRegistered%'").fetchone()[0]
    print(
        f"FEED-CRASH-REPORT retried-jobs={retried} found-already-registered={checked} kills={daemon.kills} "
        f"starts={daemon.starts} proxied-connections={proxy.connections} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert daemon.kills >= KILLS and retried > 0
    assert acked == {c for c, _ in hl7_docs} and set(jobs) == {u for u, _ in api_docs}
    assert summary["counts"]["sent"] == 200 and summary["counts"]["failed"] == 0
    assert {u: sim.stored(u) for u in uids} == dict.fromkeys(uids, 1)
    assert sim.stored() == 2 * 200  # each lot stores its document and its XAdES signature: 200 lots, no more
    assert dpi.outcomes() == dict.fromkeys((c for c, _ in hl7_docs), "Y")
    assert sorted(p.name for p in (hot / "done").glob("*.xml")) == [f"doc{n:03d}.xml" for n in range(N_HOT)]


async def _drained(session: aiohttp.ClientSession, daemon: Daemon, token: str) -> None:
    """Wait on dmp.outbox.changed notifications until every job is sent (the outbox says so)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.ws_connect(f"http://127.0.0.1:{daemon.port}/ws", headers=headers) as ws:
        deadline = time.monotonic() + 120
        request = 0
        while True:
            request += 1
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": request, "method": "dmp.outbox.list",
                                          "params": {"limit": 1}}))  # fmt: skip
            counts: dict[str, int] | None = None
            while True:
                message = json.loads(await asyncio.wait_for(ws.receive_str(), deadline - time.monotonic()))
                if message.get("id") == request:
                    counts = message["result"]["summary"]["counts"]
                    break
            if counts["sent"] == 200 and sum(counts.values()) == 200:
                return
            # Something still moves: wait for the next change before asking again.
            while True:
                message = json.loads(await asyncio.wait_for(ws.receive_str(), deadline - time.monotonic()))
                if message.get("method") == "dmp.outbox.changed":
                    break


async def _all_acknowledged(dpi: DpiAckServer, controls: set[str]) -> None:
    while set(dpi.outcomes()) != controls:
        dpi.changed.clear()
        if set(dpi.outcomes()) == controls:
            return
        await dpi.changed.wait()
