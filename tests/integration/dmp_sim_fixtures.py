"""Pytest fixtures of the DMP simulator tests (loaded with `pytest_plugins`, never imported directly)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.sim.dmp import DmpSimulator
from tests.integration.dmp_sim_support import Practitioner, make_practitioners, sim_config, started

__all__ = ["doctors", "pki", "sim"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The test IGC-Santé for these tests (generated once per session)."""
    return TestPki.load_or_create(tmp_path_factory.mktemp("dmp-sim-pki"))


@pytest.fixture(scope="session")
def doctors(pki: TestPki) -> tuple[Practitioner, Practitioner]:
    """Dr A (author) and Dr B (another professional)."""
    return make_practitioners(pki)


@pytest.fixture
async def sim(pki: TestPki, tmp_path: Path) -> AsyncIterator[DmpSimulator]:
    """A running simulator with a fresh data folder."""
    async for running in started(sim_config(pki, tmp_path / "sim")):
        yield running
