"""CPS, test PKI and card-key unit tests: one test PKI per session, a private home for every test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cps_fixtures import pki, private_home

__all__ = ["pki", "private_home"]


@pytest.fixture(autouse=True)
def _always_private_home(private_home: Path) -> Path:
    """Never write in the real per-user folders, even by accident."""
    return private_home
