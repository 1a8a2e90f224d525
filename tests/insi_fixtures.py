"""Shared pieces of the INSi tests: the INSi simulator over mutual TLS on the session's test PKI, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust
from bridge.ins.client import InsiClient, InsiCredentials, InsiSettings
from bridge.ins.messages import LpsContext
from bridge.sim.insi import InsiSimConfig, InsiSimulator

__all__ = ["IDAM", "LPS", "RunningInsi", "establishment_client", "insi_settings", "running_insi"]

IDAM = "DMP-BRIDGE-TEST-IDAM"
LPS = LpsContext(
    emitter="10B0127189", idam=IDAM, version="0.1", instance="5f0e4c1a-0000-4000-8000-000000000001", name="DMP-BRIDGE"
)
ESTABLISHMENT = ("10B0127189", "CLINIQUE DU TEST")


@dataclass
class RunningInsi:
    """A started INSi simulator and its CA bundle."""

    sim: InsiSimulator
    ca_file: Path

    @property
    def url(self) -> str:
        """The service URL."""
        return self.sim.url


def insi_settings(url: str, ca_file: Path, lps: LpsContext = LPS) -> InsiSettings:
    """Client settings for a simulator URL."""
    return InsiSettings(url=url, trust=ServerTrust.from_pem_file(ca_file), lps=lps, server_name="localhost")


def establishment_client(pki: TestPki, insi: RunningInsi, cn: str = "INSI-AUTO") -> InsiClient:
    """A client authenticated by the establishment's INSI-AUTO / INSI-MANU certificate (no card)."""
    _, p12, password = pki.insi_certificate(*ESTABLISHMENT, cn=cn)
    tls = ClientIdentity.from_pkcs12(p12.read_bytes(), password)
    return InsiClient(insi_settings(insi.url, insi.ca_file), InsiCredentials(label=cn, tls=tls))


async def running_insi(pki: TestPki, directory: Path) -> AsyncIterator[RunningInsi]:
    """Start an INSi simulator with a "localhost" server certificate of `pki`; stop it afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    server = pki.server("localhost")
    cert, key = directory / "server.pem", directory / "server.key"
    cert.write_bytes(server.fullchain_pem())
    key.write_bytes(server.key_pem())
    sim = InsiSimulator(InsiSimConfig(cert_file=cert, key_file=key, ca_file=pki.ca_bundle_path()))
    await sim.start()
    try:
        yield RunningInsi(sim, pki.ca_bundle_path())
    finally:
        await sim.stop()


@pytest.fixture
async def insi_sim(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[RunningInsi]:
    """The INSi simulator on a free loopback port (needs the `dmp_pki` fixture of tests.dmp_fixtures)."""
    async for running in running_insi(dmp_pki, tmp_path / "insi-tls"):
        yield running
