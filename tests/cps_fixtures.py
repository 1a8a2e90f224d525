"""Fixtures shared by the CPS, test-PKI and card-key tests (import them into a test module or conftest)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki

__all__ = ["pki", "private_home"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    """The test PKI, generated once per session (RSA key generation is the slow part)."""
    return TestPki.load_or_create(tmp_path_factory.mktemp("test-pki"))


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A per-test DMP_BRIDGE_HOME: nothing is written in the real per-user folders."""
    home = tmp_path / "home"
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(home))
    yield home
