"""`dmp-bridge dmp-sim` as a process: URL and CA bundle printed, raw exchanges dumped, default test PKI."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from tests.integration.dmp_sim_support import (
    SAMPLE_INS,
    DmpClient,
    Practitioner,
    client_context,
    requires_reference,
    sample_envelope,
    server_files,
    sign_vihf,
    with_vihf,
)

# Fixtures pki, doctors.
pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(60)]

REPO = Path(__file__).resolve().parents[2]


async def _start(args: list[str], env: dict[str, str] | None = None) -> AsyncIterator[tuple[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "dmp-sim", "--port", "0", *args,
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        ca_line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert url_line.startswith("DMP simulator: https://127.0.0.1:"), url_line
        assert ca_line.startswith("CA bundle: "), ca_line
        yield url_line.split(": ", 1)[1].strip(), ca_line.split(": ", 1)[1].strip()
    finally:
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def _td02(url: str, ctx_pki: TestPki, dr: Practitioner, tmp_path: Path) -> None:
    client = DmpClient(url, client_context(ctx_pki, dr.certs.auth, tmp_path))
    try:
        body = with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), sign_vihf(dr, SAMPLE_INS))
        answer = await client.post("patients", body)
        assert answer.status == 200
    finally:
        await client.close()


async def test_dump_writes_numbered_requests_and_responses(
    pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    cert, key, ca = server_files(pki, tmp_path)
    dump = tmp_path / "dump"
    args = ["--data", str(tmp_path / "data"), "--dump", str(dump), "--cert", str(cert), "--key", str(key)]
    async for url, ca_printed in _start([*args, "--cafile", str(ca)]):
        assert ca_printed == str(ca)
        await _td02(url, pki, doctors[0], tmp_path)
        await _td02(url, pki, doctors[0], tmp_path)
    names = sorted(p.name for p in dump.iterdir())
    assert names == [
        "0001-TD0.2-request.http", "0001-TD0.2-response.http", "0002-TD0.2-request.http", "0002-TD0.2-response.http",
    ]  # fmt: skip
    request = (dump / "0001-TD0.2-request.http").read_bytes()
    assert request.startswith(
        b"POST /si-dmp-server/v2/services/patients HTTP/1.1\r\nContent-Type: application/soap+xml"
    )
    assert b"urn:hl7-org:v3:PRPA_IN201307UV02" in request
    response = (dump / "0001-TD0.2-response.http").read_bytes()
    assert response.startswith(b"HTTP/1.1 200\r\n") and b"PRPA_IN201308UV02" in response


async def test_defaults_to_the_test_pki(
    pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    # Reuse the session PKI as the user's test PKI (saves generating keys again).
    shutil.copytree(pki.directory, home / "data" / "test-pki")
    env = {**os.environ, "DMP_BRIDGE_HOME": str(home)}
    async for url, ca_printed in _start([], env):
        assert Path(ca_printed) == home / "data" / "test-pki" / "ca-bundle.pem"
        await _td02(url, pki, doctors[0], tmp_path)
    assert (home / "data" / "dmp-sim" / "dmp-sim.sqlite3").is_file()
