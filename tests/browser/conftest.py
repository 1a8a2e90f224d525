"""Fixtures of the browser tests: a private DMP_BRIDGE_HOME and one real Chromium per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import CHROMIUM, LAUNCH_ARGS

__all__ = ["browser", "home"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's bridge keeps its token and approvals in its own temporary home."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium driven by Playwright (skipped where it is not installed)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
