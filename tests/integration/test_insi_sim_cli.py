"""`dmp-bridge insi-sim` as a process: URL, CA bundle and IDAM printed; an INSI-AUTO client of the default
test PKI gets an identity, an unknown IDAM is refused; SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.errors import BridgeError, ErrorCode
from bridge.ins.client import InsiClient, InsiCredentials
from bridge.ins.model import Traits
from tests.insi_fixtures import ESTABLISHMENT, LPS, insi_settings

REPO = Path(__file__).resolve().parents[2]


async def test_insi_sim_serves_the_default_test_pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "insi-sim", "--port", "0", "--idam", LPS.idam,
        cwd=REPO, env=dict(os.environ), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip() for _ in range(3)]
        assert lines[0].startswith("INSi simulator: https://127.0.0.1:") and lines[0].endswith("/lps"), lines
        assert lines[2] == f"IDAM: {LPS.idam}"
        url, ca_file = lines[0].split(": ", 1)[1], Path(lines[1].split(": ", 1)[1])
        from bridge.paths import data_dir

        pki = TestPki.load_or_create(data_dir() / "test-pki")
        assert pki.ca_bundle_path() == ca_file
        _, p12, password = pki.insi_certificate(*ESTABLISHMENT, cn="INSI-AUTO")
        tls = ClientIdentity.from_pkcs12(p12.read_bytes(), password)
        client = InsiClient(insi_settings(url, ca_file), InsiCredentials(label="auto", tls=tls))
        laurence = Traits.from_input(birth_name="PATB-QUATRE", first_names="LAURENCE", sex="F", birth_date="1907-05-25")
        try:
            assert (await client.search(laurence)).ins == "207058575627097"
        finally:
            await client.aclose()
        other = InsiClient(insi_settings(url, ca_file, dataclasses.replace(LPS, idam="AUTRE")), client.credentials)
        try:
            with pytest.raises(BridgeError) as refused:
                await other.search(laurence)
            assert refused.value.code is ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED
        finally:
            await other.aclose()
    finally:
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
