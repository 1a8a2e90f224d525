"""The sandbox's DMP side: the DMP simulator on the test PKI, the daemon's `[dmp]` settings pointing at it.

`dmp-bridge sandbox` starts a `SandboxDmp` beside the daemon. The settings are built in memory from the
loaded config (`sandbox_dmp_config`): the user's config.toml is never written. The simulator and the
virtual cards share one test IGC-Santé (`TestPki.load_or_create()`, in data_dir()/test-pki), so the
simulator trusts the cards' certificates and the daemon trusts the simulator's server certificate.
The establishment of the indirect modes gets its certificates from the same PKI.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.service.dmp_config import DmpConfig
from bridge.sim.dmp import DmpSimulator, SimConfig

__all__ = [
    "SANDBOX_ESTABLISHMENT_ID",
    "SANDBOX_ESTABLISHMENT_NAME",
    "SANDBOX_PRACTITIONER",
    "SandboxDmp",
    "sandbox_dmp_config",
]

SANDBOX_ESTABLISHMENT_ID = "10B0127189"
SANDBOX_ESTABLISHMENT_NAME = "CLINIQUE DU BAC A SABLE"
# The name in the simulator's server certificate (its SAN also holds IP 127.0.0.1).
_SERVER_NAME = "localhost"


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


@dataclass
class SandboxDmp:
    """The DMP simulator of the sandbox: its folder, TLS files from the test PKI, optional exchange dumps."""

    work_dir: Path
    pki: TestPki
    port: int = 0
    dump_dir: Path | None = None
    simulator: DmpSimulator | None = None

    @property
    def url(self) -> str:
        """Services base URL (once started)."""
        if self.simulator is None:
            raise RuntimeError("simulator not started")
        return self.simulator.url

    @property
    def ca_file(self) -> Path:
        """Trust anchors of the test PKI (the daemon's `ca_bundle`)."""
        return self.pki.ca_bundle_path()

    def _tls_files(self) -> tuple[Path, Path]:
        server = self.pki.server(_SERVER_NAME)
        tls = self.work_dir / "tls"
        tls.mkdir(parents=True, exist_ok=True, mode=0o700)
        cert, key = tls / "server-fullchain.pem", tls / "server.key.pem"
        cert.write_bytes(server.fullchain_pem())
        _write_private(key, server.key_pem())
        return cert, key

    async def start(self) -> None:
        """Write the server's TLS files and serve on 127.0.0.1 (port 0 = any free port)."""
        cert, key = self._tls_files()
        self.simulator = DmpSimulator(
            SimConfig(
                data_dir=self.work_dir,
                cert_file=cert,
                key_file=key,
                ca_file=self.ca_file,
                port=self.port,
                dump_dir=self.dump_dir,
            )
        )
        await self.simulator.start()

    async def stop(self) -> None:
        """Stop serving and close its database."""
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None

    def dmp_config(self, base: DmpConfig) -> DmpConfig:
        """`base` pointed at this simulator (see `sandbox_dmp_config`)."""
        return sandbox_dmp_config(base, url=self.url, ca_file=self.ca_file, pki=self.pki)


#: (national id, family, given, specialty) of the sandbox's indirect-mode physician (profession 10, médecin).
SANDBOX_PRACTITIONER = ("810099990001", "DURAND", "CLAIRE", "SM04")  # SM04: cardiologie


def sandbox_dmp_config(base: DmpConfig, *, url: str, ca_file: Path, pki: TestPki) -> DmpConfig:
    """The `[dmp]` settings of the sandbox: the simulator's URL and trust, the test INS authority, and the
    sandbox establishment (certificates of the test PKI) for the indirect modes. Other keys keep `base`'s values.
    """
    certs = pki.establishment(SANDBOX_ESTABLISHMENT_ID, SANDBOX_ESTABLISHMENT_NAME)
    return dataclasses.replace(
        base,
        url=url,
        ca_bundle=ca_file,
        server_name=_SERVER_NAME,
        ins_oid=InsOid.NIR_TEST.value,
        establishment_auth_p12=certs.auth_cli_p12,
        establishment_sign_p12=certs.sign_p12,
        establishment_p12_password_file=certs.auth_cli_p12.parent / "p12-password",
        establishment_id=SANDBOX_ESTABLISHMENT_ID,
        establishment_name=SANDBOX_ESTABLISHMENT_NAME,
        # Who acts in the indirect modes when the caller names nobody: a hospital physician of the
        # sandbox establishment (so `dmp-bridge dmp … --mode INDIRECTE` works out of the box).
        practitioner_id=base.practitioner_id or SANDBOX_PRACTITIONER[0],
        practitioner_family=base.practitioner_family or SANDBOX_PRACTITIONER[1],
        practitioner_given=base.practitioner_given or SANDBOX_PRACTITIONER[2],
        practitioner_specialty=base.practitioner_specialty or SANDBOX_PRACTITIONER[3],
    )
