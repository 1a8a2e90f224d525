"""The outbox seen and steered: `dmp.documents.submit` with `queue: true`, `dmp.outbox.*`, the
`dmp.outbox.changed` notifications, the CLI `dmp-bridge outbox …` against the daemon, the tray notice on
a permanent failure; the daemon runs in-process with the real simulator behind it."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.feed.feed_config import FeedConfig
from tests.api_helpers import FakeApprover, open_ws, rpc, running_bridge
from tests.dmp_fixtures import PATIENT, RunningSim
from tests.feed.support import UNKNOWN_INS, cda, feed_dmp_config, patient_with, unique_id

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def daemon(
    dmp_sim: RunningSim, dmp_pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Application, FakeApprover]]:
    """The daemon with feeding enabled (no MLLP, no hot folder), the simulator behind."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    config = BridgeConfig(
        port=0,
        dmp=feed_dmp_config(dmp_sim.url, dmp_sim.ca_file, dmp_pki),
        feed=FeedConfig(enabled=True, retry_base=0.05, retry_cap=0.2),
    )
    ui = FakeApprover()
    async with running_bridge(config, approver=ui) as app:
        yield app, ui


def _cli(app: Application, *args: str) -> tuple[int, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "outbox", *args, "--json", "--port", str(app.port)],
        cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None


def _params(uid: str, *, qualified: bool, ins: str = PATIENT.value) -> dict[str, Any]:
    document = cda(uid) if ins == PATIENT.value else cda(uid, patient=patient_with(ins))
    return {
        "patient": {"ins": ins}, "content": base64.b64encode(document).decode(), "mimeType": "text/xml",
        "title": "Compte rendu", "typeCode": "11488-4", "queue": True, "insQualified": qualified,
    }  # fmt: skip


async def _until(ws: aiohttp.ClientWebSocketResponse, job_id: int, state: str) -> dict[str, Any]:
    """The dmp.outbox.changed notification of `job_id` reaching `state`."""
    async with asyncio.timeout(30):
        while True:
            message = json.loads(await ws.receive_str())
            params = message.get("params", {})
            if message.get("method") == "dmp.outbox.changed" and (params.get("id"), params["state"]) == (job_id, state):
                return dict(params)


async def test_queue_follow_retry_and_cancel_through_api_and_cli(
    daemon: tuple[Application, FakeApprover], dmp_sim: RunningSim
) -> None:
    app, _ = daemon
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, app, token=app.token)
        uid = unique_id(1, 40)
        queued = (await rpc(ws, "dmp.documents.submit", _params(uid, qualified=False)))["result"]
        assert queued["uniqueId"] == uid and queued["state"] == "unqualified"
        job_id = queued["jobId"]
        # Queued twice (a caller that lost the answer): the same job.
        again = (await rpc(ws, "dmp.documents.submit", {**_params(uid, qualified=False), "uniqueId": uid}))["result"]
        assert again["jobId"] == job_id

        code, listed = await asyncio.to_thread(_cli, app, "list")
        assert code == 0 and [j["id"] for j in listed["jobs"]] == [job_id]
        assert listed["summary"]["counts"]["unqualified"] == 1
        assert "qualifiée" in listed["jobs"][0]["message_fr"]

        code, refused = await asyncio.to_thread(_cli, app, "retry", str(job_id))
        assert code == 1 and refused["error"]["code"] == "INVALID_PARAMS"
        code, retried = await asyncio.to_thread(_cli, app, "retry", str(job_id), "--ins-qualified")
        assert code == 0 and retried["state"] == "queued"
        sent = await _until(ws, job_id, "sent")
        assert sent["result"]["uniqueId"] == uid

        other = (await rpc(ws, "dmp.documents.submit", _params(unique_id(2, 40), qualified=False)))["result"]
        code, cancelled = await asyncio.to_thread(_cli, app, "cancel", str(other["jobId"]))
        assert code == 0 and cancelled["state"] == "cancelled"
        code, again_cancel = await asyncio.to_thread(_cli, app, "cancel", str(job_id))
        assert code == 1 and again_cancel["error"]["code"] == "INVALID_PARAMS"  # sent: too late

        missing = await rpc(ws, "dmp.outbox.get", {"id": 999999})
        assert missing["error"]["data"]["code"] == "NOT_FOUND"
        await ws.close()
    db = dmp_sim.sim.store._db
    assert db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (uid,)).fetchone()[0] == 1


async def test_permanent_failure_reaches_the_tray_and_the_summary(daemon: tuple[Application, FakeApprover]) -> None:
    app, ui = daemon
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, app, token=app.token)
        params = _params(unique_id(3, 40), qualified=True, ins=UNKNOWN_INS)
        job_id = (await rpc(ws, "dmp.documents.submit", params))["result"]["jobId"]
        failed = await _until(ws, job_id, "failed")
        assert failed["reason"] == "DMP_UNKNOWN" and failed["message_fr"]
        title, message = await asyncio.wait_for(ui.notices.get(), 10)
        assert title == "Alimentation du DMP" and str(job_id) in message
        summary = (await rpc(ws, "dmp.outbox.list", {"states": ["failed"]}))["result"]["summary"]
        assert summary["counts"]["failed"] == 1 and summary["lastFailures"][0]["id"] == job_id
        await ws.close()


async def test_cli_submit_queue(daemon: tuple[Application, FakeApprover], tmp_path: Path, dmp_sim: RunningSim) -> None:
    """`dmp-bridge dmp submit FILE --queue --ins-qualified`: a job id at once, then the worker sends it."""
    app, _ = daemon
    uid = unique_id(4, 40)
    path = tmp_path / "cr.xml"
    path.write_bytes(cda(uid))
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, app, token=app.token)
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bridge.cli", "dmp", "submit", str(path), "--ins", PATIENT.value, "--queue",
             "--ins-qualified", "--json", "--port", str(app.port)],
            cwd=REPO, env=dict(os.environ), capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        queued = json.loads(proc.stdout)
        assert queued["uniqueId"] == uid and queued["state"] == "queued"
        sent = await _until(ws, queued["jobId"], "sent")
        assert sent["origin"] == "api"
        await ws.close()
    db = dmp_sim.sim.store._db
    assert db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (uid,)).fetchone()[0] == 1
