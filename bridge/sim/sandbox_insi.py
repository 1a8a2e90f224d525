"""The sandbox's INSi side: the INSi simulator on the test PKI, the daemon's `[insi]` settings pointing at it.

Like `bridge.sim.sandbox` for the DMP: built in memory from the loaded config (config.toml is never
written); the simulator trusts the virtual CPS cards and the sandbox establishment's INSI-AUTO
certificate (same test IGC-Santé), and the daemon trusts the simulator's server certificate. The
software authorisation number is the one the simulator knows (`SANDBOX_IDAM`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.service.insi_config import InsiConfig
from bridge.sim.insi import InsiPolicy, InsiSimConfig, InsiSimulator
from bridge.sim.sandbox import SANDBOX_ESTABLISHMENT_ID, SANDBOX_ESTABLISHMENT_NAME

__all__ = ["SANDBOX_IDAM", "SandboxInsi", "sandbox_insi_config"]

SANDBOX_IDAM = "DMP-BRIDGE-TEST-IDAM"
_SERVER_NAME = "localhost"


@dataclass
class SandboxInsi:
    """The INSi simulator of the sandbox: its TLS files from the test PKI."""

    work_dir: Path
    pki: TestPki
    port: int = 0
    host: str = "127.0.0.1"
    #: Software authorisation numbers the simulator knows (default: the sandbox's).
    idams: frozenset[str] = frozenset({SANDBOX_IDAM})
    simulator: InsiSimulator | None = None

    @property
    def url(self) -> str:
        """The service URL (once started)."""
        if self.simulator is None:
            raise RuntimeError("INSi simulator not started")
        return self.simulator.url

    async def start(self) -> None:
        """Write the server's TLS files and serve on `host` (port 0 = any free port)."""
        server = self.pki.server(_SERVER_NAME)
        tls = self.work_dir / "tls"
        tls.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key = tls / "server-fullchain.pem", tls / "server.key.pem"
        cert.write_bytes(server.fullchain_pem())
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(server.key_pem())
        config = InsiSimConfig(
            cert_file=cert,
            key_file=key,
            ca_file=self.pki.ca_bundle_path(),
            host=self.host,
            port=self.port,
            policy=InsiPolicy(idams=self.idams),
        )
        self.simulator = InsiSimulator(config)
        await self.simulator.start()

    async def stop(self) -> None:
        """Stop serving."""
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None

    def insi_config(self, base: InsiConfig) -> InsiConfig:
        """`base` pointed at this simulator (see `sandbox_insi_config`)."""
        return sandbox_insi_config(base, url=self.url, pki=self.pki)


def sandbox_insi_config(base: InsiConfig, *, url: str, pki: TestPki) -> InsiConfig:
    """The `[insi]` settings of the sandbox: the simulator's URL and trust, its IDAM, and the sandbox
    establishment's INSI-AUTO certificate for calls without a card. Other keys keep `base`'s values.
    """
    _, p12, _ = pki.insi_certificate(SANDBOX_ESTABLISHMENT_ID, SANDBOX_ESTABLISHMENT_NAME, cn="INSI-AUTO")
    return dataclasses.replace(
        base,
        url=url,
        establishment_url=url,
        ca_bundle=pki.ca_bundle_path(),
        server_name=_SERVER_NAME,
        idam=SANDBOX_IDAM,
        certificate_p12=p12,
        certificate_p12_password_file=p12.parent / "p12-password",
    )
