"""Shared pieces of the DMP client/service tests: one test PKI, the real DMP simulator over TLS, credentials.

Import the fixtures into a test module (`from tests.dmp_fixtures import dmp_pki, dmp_sim  # noqa: F401`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from bridge.crypto.pki import EstablishmentCerts, TestPki
from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust
from bridge.dmp.cda import CdaPatient
from bridge.dmp.codes import AuthMode, InsOid
from bridge.dmp.context import PRACTICE_ETABLISSEMENT, DmpCredentials, DmpSettings, Practitioner
from bridge.dmp.vihf import PatientIns
from bridge.sim.dmp import DmpSimulator, SimConfig
from bridge.sim.dmp.store import PatientRow

__all__ = [
    "ESTABLISHMENT_ID",
    "PATIENT",
    "PATIENT_IDENTITY",
    "RunningSim",
    "SoftwareCps",
    "direct_credentials",
    "direct_practitioner",
    "dmp_pki",
    "dmp_sim",
    "establishment",
    "establishment_credentials",
    "indirect_practitioner",
    "server_files",
    "settings_for",
    "simulator",
]

ESTABLISHMENT_ID = "10B0127189"
#: The insured person of the virtual Vitale card "famille" (first beneficiary).
PATIENT = PatientIns(value="178037511501201", oid=InsOid.NIR_TEST)
PATIENT_IDENTITY = CdaPatient(ins=PATIENT, family="MARTIN", given="JEAN", gender="M", birth_date="19780314")
_SEED = (PatientRow(PATIENT.value, InsOid.NIR_TEST.value, "active", "MARTIN", "JEAN", "19780314", "M"),)


@dataclass
class RunningSim:
    """A started simulator, its CA bundle and data folder."""

    sim: DmpSimulator
    ca_file: Path
    data_dir: Path

    @property
    def url(self) -> str:
        """Services base URL."""
        return self.sim.url


@pytest.fixture(scope="session")
def dmp_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """One test IGC-Santé for the session (RSA key generation is the slow part)."""
    return TestPki.load_or_create(tmp_path_factory.mktemp("dmp-pki"))


def establishment(pki: TestPki) -> EstablishmentCerts:
    """The establishment of the indirect-mode tests."""
    return pki.establishment(ESTABLISHMENT_ID, "CLINIQUE DU TEST")


def establishment_credentials(pki: TestPki) -> DmpCredentials:
    """Indirect mode: AUTH_CLI for TLS, the SIGN (cachet) certificate for VIHF and XAdES, from the PKCS#12s."""
    certs = establishment(pki)
    tls = ClientIdentity.from_pkcs12(certs.auth_cli_p12.read_bytes(), certs.p12_password)
    sign = ClientIdentity.from_pkcs12(certs.sign_p12.read_bytes(), certs.p12_password)
    return DmpCredentials("establishment", tls, sign.key, sign.chain)


def indirect_practitioner(
    national_id: str = "810012345678", family: str = "MARTIN", given: str = "PAUL"
) -> Practitioner:
    """A physician working in the establishment (indirect mode: the establishment vouches)."""
    return Practitioner(
        national_id=national_id,
        family=family,
        given=given,
        profession_code="10",
        specialty_code="SM54",
        structure_id=ESTABLISHMENT_ID,
        structure_name="CLINIQUE DU TEST",
        sector="SA01",
        mode=AuthMode.INDIRECTE,
        practice_setting=PRACTICE_ETABLISSEMENT,
    )


def direct_credentials(
    pki: TestPki, national_id: str = "810012345678", family: str = "MARTIN", given: str = "PAUL"
) -> DmpCredentials:
    """DIRECTE mode with software keys shaped like a CPS médecin's (auth key for TLS, sign key for VIHF/XAdES).

    The rights matrix refuses metadata search, retrieval, masking and archiving to the establishment
    certificate: tests of those operations act as a physician with a card, without the card's latency.
    """
    certs = pki.person(
        f"direct-{national_id}", last_name=family, first_name=given, national_id=national_id,
        profession_code="10", specialty_code="SM54", card_type="CPS",
    )  # fmt: skip
    tls = ClientIdentity((certs.auth.certificate, *certs.auth.chain[:-1]), certs.auth.key)
    return DmpCredentials(f"cps:{national_id}", tls, certs.sign.key, (certs.sign.certificate, *certs.sign.chain[:-1]))


def direct_practitioner(national_id: str = "810012345678", family: str = "MARTIN", given: str = "PAUL") -> Practitioner:
    """A physician with a CPS working in the establishment (DIRECTE: the card vouches)."""
    return Practitioner(
        national_id=national_id,
        family=family,
        given=given,
        profession_code="10",
        specialty_code="SM54",
        structure_id=ESTABLISHMENT_ID,
        structure_name="CLINIQUE DU TEST",
        sector="SA01",
        mode=AuthMode.DIRECTE,
        practice_setting=PRACTICE_ETABLISSEMENT,
    )


class SoftwareCps:
    """A DIRECTE source for DmpService (what the card service gives after cps.login) with software keys: the
    reader name picks the physician ("A": 810012345678 MARTIN PAUL, "B": 810098765432 DURAND JEANNE), so a
    daemon test acts as card holders without virtual cards (the rights matrix's metadata operations)."""

    PEOPLE: ClassVar[dict[str, tuple[str, str, str]]] = {
        "A": ("810012345678", "MARTIN", "PAUL"),
        "B": ("810098765432", "DURAND", "JEANNE"),
    }

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        # One credentials object per card, as one login gives: the service keeps one client per card.
        self._creds: dict[str, DmpCredentials] = {}

    async def direct_identity(self, reader: str | None) -> Any:
        """The DirectIdentity of the physician "in" `reader` (default "A")."""
        from bridge.cards.cps_data import Situation
        from bridge.service.dmp import DirectIdentity

        national_id, family, given = self.PEOPLE[reader or "A"]
        if national_id not in self._creds:
            made = await asyncio.to_thread(direct_credentials, self.pki, national_id, family, given)
            self._creds.setdefault(national_id, made)
        creds = self._creds[national_id]
        situation = Situation(
            index=0, number=1, practice_mode="S", profession_code="10", specialty_code="SM54",
            structure_id_type="1", structure_id=ESTABLISHMENT_ID, structure_name="CLINIQUE DU TEST",
            activity_sector="SA01", billing=None,
        )  # fmt: skip
        return DirectIdentity(creds, national_id, family, given, "10", "SM54", (situation,))


def settings_for(url: str, ca_file: Path) -> DmpSettings:
    """Client settings for a simulator URL."""
    return DmpSettings(
        base_url=url,
        trust=ServerTrust.from_pem_file(ca_file),
        oid_root="1.2.250.1.999.7.1",
        lps_name="DMP-BRIDGE",
        lps_version="0.1",
        lps_homologation="TEST-HOMOLOGATION",
        server_name="localhost",
    )


def server_files(pki: TestPki, directory: Path) -> tuple[Path, Path, Path]:
    """Server fullchain, key and CA bundle files for the simulator (a "localhost" certificate from `pki`)."""
    server = pki.server("localhost")
    cert, key = directory / "server.pem", directory / "server.key"
    cert.write_bytes(server.fullchain_pem())
    key.write_bytes(server.key_pem())
    return cert, key, pki.ca_bundle_path()


def simulator(
    pki: TestPki,
    tls_dir: Path,
    data_dir: Path,
    patients: Iterable[PatientRow] = _SEED,
    dump_dir: Path | None = None,
) -> DmpSimulator:
    """A simulator, not started yet: mutual TLS with `pki`, its data in `data_dir`, `patients` seeded."""
    cert, key, ca = server_files(pki, tls_dir)
    sim = DmpSimulator(SimConfig(data_dir=data_dir, cert_file=cert, key_file=key, ca_file=ca, dump_dir=dump_dir))
    sim.store.seed_patients(patients)
    return sim


@pytest.fixture
async def dmp_sim(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[RunningSim]:
    """The real DMP simulator on a free loopback port, mutual TLS with the session's test PKI."""
    tls = tmp_path / "sim-tls"
    tls.mkdir()
    data = tmp_path / "sim-data"
    data.mkdir()
    sim = simulator(dmp_pki, tls, data)
    await sim.start()
    try:
        yield RunningSim(sim, dmp_pki.ca_bundle_path(), data)
    finally:
        await sim.stop()


def utc(*args: int) -> dt.datetime:
    """A UTC datetime."""
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]
