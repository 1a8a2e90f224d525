"""The diagnostics page shows the feeding queue: counts per state, the oldest waiting job and why, the last
permanent failures with their French explanation (screenshot in tests/artifacts/outbox-diagnostics.png)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from bridge.api.client import LocalClient
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.feed.feed_config import FeedConfig
from tests.api_helpers import running_bridge
from tests.browser.helpers import ARTIFACTS
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim  # noqa: F401
from tests.feed.support import UNKNOWN_INS, cda, feed_dmp_config, patient_with, unique_id

pytestmark = pytest.mark.browser


async def test_diagnostics_page_shows_the_queue(
    browser: Any,
    dmp_sim: RunningSim,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    config = BridgeConfig(
        port=0, dmp=feed_dmp_config(dmp_sim.url, dmp_sim.ca_file, dmp_pki), feed=FeedConfig(enabled=True)
    )
    async with running_bridge(config) as app:
        assert app.feed is not None
        async with LocalClient(app.port, app.token) as client:
            for n, (ins, qualified) in enumerate([(PATIENT.value, False), (UNKNOWN_INS, True)]):
                uid = unique_id(n, 60)
                document = cda(uid) if ins == PATIENT.value else cda(uid, patient=patient_with(ins))
                params = {
                    "patient": {"ins": ins}, "content": base64.b64encode(document).decode(), "mimeType": "text/xml",
                    "title": "Compte rendu", "typeCode": "11488-4", "queue": True, "insQualified": qualified,
                }  # fmt: skip
                await client.call("dmp.documents.submit", params)
        page = await browser.new_page(viewport={"width": 1100, "height": 1100})
        await page.goto(f"http://127.0.0.1:{app.port}/")
        await page.wait_for_selector("body[data-ready=true]", timeout=10_000)
        # The failure arrives through dmp.outbox.changed: the page refreshes itself.
        await page.wait_for_function(
            "window.dmpBridgeDiagnostics?.report?.outbox?.counts?.failed === 1", timeout=30_000
        )
        await page.wait_for_selector("#outbox-failures td:nth-child(4):not(:empty)", timeout=10_000)
        text = await page.inner_text("#outbox-section")
        assert "INS non qualifiée : 1" in text and "en échec : 1" in text
        assert "Plus ancienne tâche en attente : n° 1" in text and "qualifiée" in text
        assert "Ce patient n'a pas de DMP pour cet INS" in text  # the DMP's refusal, explained
        assert PATIENT.value not in await page.content()  # no INS on the page
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "outbox-diagnostics.png"), full_page=True)
        await page.close()
