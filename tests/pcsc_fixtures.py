"""Fixtures shared by the PC/SC layer's integration tests (import them into a test module to use them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bridge.sim.pcscd import PrivatePcscd

__all__ = ["restartable_pcscd"]


@pytest.fixture
def restartable_pcscd(pcscd: PrivatePcscd | None) -> Iterator[PrivatePcscd]:
    """The private pcscd, which the test may stop, start or restart; it is running again afterwards."""
    if pcscd is None:
        pytest.skip("the system pcscd is not ours to restart")
    try:
        yield pcscd
    finally:
        if pcscd.process is None or pcscd.process.poll() is not None:
            pcscd.start()
