"""`dmp-bridge sandbox` feeds the DMP as the README says: its summary names the HL7v2 (MLLP) port and the
hot folder; an ORU^R01 sent there and a CDA dropped in the folder reach the simulator, and the
diagnostics report shows the queue."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import aiohttp
import pytest

from bridge.api.client import call_daemon
from bridge.api.token import token_path
from tests.feed.dpi import oru, send
from tests.feed.support import cda
from tests.sandbox_process import running_sandbox


async def _sent(port: int, token: str, count: int) -> dict[str, int]:
    """Wait on dmp.outbox.changed until `count` jobs are sent; the counts."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"http://127.0.0.1:{port}/ws", headers=headers) as ws,
    ):
        async with asyncio.timeout(60):
            for request in range(1, 10_000):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": request, "method": "diagnostics.report"}))
                while (message := json.loads(await ws.receive_str())).get("id") != request:
                    pass
                counts: dict[str, int] = message["result"]["outbox"]["counts"]
                if counts["sent"] >= count:
                    return counts
                while json.loads(await ws.receive_str()).get("method") != "dmp.outbox.changed":
                    pass
    raise AssertionError("unreachable")


@pytest.mark.pcsc
@pytest.mark.skipif(os.geteuid() != 0, reason="the private pcscd needs root")
async def test_sandbox_feeds_from_mllp_and_the_hot_folder(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as sandbox:
        text = sandbox.summary
        mllp = re.search(r"HL7v2 \(MLLP\) : 127\.0\.0\.1:(\d+)", text)
        depot = re.search(r"Dossier de dépôt : (\S+)", text)
        assert mllp is not None and depot is not None, text
        token = token_path(tmp_path / "data").read_text().strip()
        (ack,) = await send(int(mllp.group(1)), oru("SANDBOX-1", cda("1.2.250.1.999.7.1.3.90.1")))
        assert str(ack.extract_field("MSA", 1, 1)) == "AA"
        folder = Path(depot.group(1))
        part = folder / ".cr.xml.part"
        part.write_bytes(cda("1.2.250.1.999.7.1.3.90.2"))
        os.replace(part, folder / "cr.xml")
        counts = await _sent(sandbox.port, token, 2)
        assert counts["failed"] == 0
        report = await call_daemon(sandbox.port, token, "diagnostics.report")
        assert report["outbox"]["counts"]["sent"] == 2 and report["outbox"]["lastFailures"] == []
