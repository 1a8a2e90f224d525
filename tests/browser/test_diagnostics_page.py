"""The helpdesk's diagnostics page in Chromium: lights, explanations, the DMP test, staleness, the report.

Screenshots of each situation go to tests/artifacts/diagnostics-*.png.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.pcsc.monitor import MonitorState, ReaderMonitor
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps4 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeMonitor, Row, running_bridge
from tests.browser.helpers import ARTIFACTS, READERS
from tests.conftest import wait_card_state
from tests.dmp_fixtures import RunningSim, dmp_pki, dmp_sim  # noqa: F401

pytestmark = pytest.mark.browser


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _open(browser: Any, port: int) -> Any:
    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.wait_for_selector("body[data-ready=true]", timeout=10_000)
    return page


async def _light(page: Any, section: str) -> str:
    return str(await page.get_attribute(f"#sec-{section}", "data-light"))


async def test_pcsc_outage_unreachable_dmp_and_a_stopped_bridge(browser: Any, dmp_pki: TestPki) -> None:  # noqa: F811
    monitor = FakeMonitor([Row(READERS[0], False, None)])
    monitor.state = MonitorState.PCSC_UNAVAILABLE
    dmp = DmpConfig(
        url=f"https://127.0.0.1:{_closed_port()}/si-dmp-server/v2/services", ca_bundle=dmp_pki.ca_bundle_path()
    )
    async with running_bridge(BridgeConfig(port=0, dmp=dmp), monitor=monitor) as app:
        app.errors.record("dmp.documents.find", "DMP_UNREACHABLE")
        page = await _open(browser, app.port)
        await page.wait_for_selector("#sec-dmp[data-light=problem]", timeout=30_000)
        text = await page.inner_text("body")
        assert await _light(page, "pcsc") == "problem"
        assert "pcscd) ne répond pas" in text and "systemctl restart pcscd" in text
        assert "ne répond pas (connexion refusée ou impossible)" in text and "pare-feu" in text
        # A recent error is explained, not a bare code.
        assert "Le service DMP est injoignable" in text and "teste l'accès au DMP" in text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "diagnostics-outages.png"), full_page=True)

        await app.server.stop()  # the bridge goes away: the page must not keep looking current
        await page.wait_for_selector("body[data-stale=true]", timeout=15_000)
        banner = await page.inner_text("#offline")
        assert "Le pont ne répond plus" in banner and "dmp-bridge run" in banner
        assert await _light(page, "bridge") == "problem"
        report = await page.evaluate("window.dmpBridgeDiagnostics.reportText()")
        assert "PONT ARRÊTÉ" in report and "[problem] Service carte à puce" in report
        assert "pare-feu" in report
        await page.screenshot(path=str(ARTIFACTS / "diagnostics-stale.png"), full_page=True)
        await page.close()


@pytest.fixture
async def monitor(slots: list[VirtualSlot]) -> Any:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    watcher = ReaderMonitor()
    yield watcher
    await watcher.stop()


@pytest.mark.pcsc
async def test_expired_cps_and_a_reachable_dmp(
    browser: Any,
    monitor: ReaderMonitor,
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    dmp = DmpConfig(url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost")
    async with running_bridge(BridgeConfig(port=0, dmp=dmp), monitor=monitor, cards=PcscCardService(monitor)) as app:
        await asyncio.to_thread(slots[0].insert, create_card("expired", dmp_pki))
        await asyncio.to_thread(wait_card_state, READERS[0], True)
        page = await _open(browser, app.port)
        await page.wait_for_function("window.dmpBridgeDiagnostics.report?.readers?.[0]?.cardPresent", timeout=15_000)
        await page.wait_for_selector("#sec-readers[data-light=problem]", timeout=15_000)
        await page.wait_for_selector("#sec-dmp[data-light]:not([data-light=unknown])", timeout=30_000)
        text = await page.inner_text("body")
        assert "expirée le" in text and "renouvellement" in text
        assert "Carte CPS (carte de professionnel de santé, CPS4)" in text
        assert "son certificat est reconnu" in text  # the simulator's chain checks out
        dmp_lights = await page.eval_on_selector_all("#dmp li .light", "ls => ls.map(l => l.dataset.light)")
        assert dmp_lights[:4] == ["ok", "ok", "ok", "ok"]
        report = await page.evaluate("window.dmpBridgeDiagnostics.reportText()")
        assert "expirée le" in report
        for personal in ("MARTIN", "PAUL", "810012345678"):
            assert personal not in report and personal not in text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "diagnostics-expired.png"), full_page=True)
        await page.close()
