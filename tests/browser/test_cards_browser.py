"""Real Chromium: a page from another origin pairs with the bridge and drives the virtual CPS and Vitale cards.

The chain is the product's: SDK `/sdk/dmp-bridge.js` in the page -> WebSocket JSON-RPC -> Application ->
PcscCardService -> pcscd -> vpcd -> virtual cards. The person's approval arrives through the approver
(what the tray calls), as the pairing prompt would give it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover, running_bridge
from tests.browser.helpers import READERS, serve_page
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki

__all__ = ["pki"]

pytestmark = [pytest.mark.browser, pytest.mark.pcsc, pytest.mark.usefixtures("home")]

PAGE = """<!doctype html><meta charset="utf-8"><title>Logiciel de cabinet (test)</title>
<script type="module">
import { connect } from "http://127.0.0.1:%(port)d/sdk/dmp-bridge.js";
window.start = async () => {
  window.bridge = await connect({ url: "ws://127.0.0.1:%(port)d/ws" });
  window.pairing = window.bridge.pair({ onPending: (answer) => { window.pending = answer; } });
  return true;
};
window.failure = (promise) => promise.then(() => null, (e) => ({ code: e.code, data: e.data }));
window.ready = true;
</script>
"""


async def test_paired_page_reads_cps_and_vitale(browser: Any, slots: list[VirtualSlot], pki: TestPki) -> None:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    sessions = PcscCardService(monitor)
    approver = FakeApprover()
    async with running_bridge(BridgeConfig(port=0), monitor=monitor, cards=sessions, approver=approver) as app:
        try:
            events = monitor.subscribe()
            await asyncio.to_thread(slots[0].insert, create_card("gp", pki))
            await asyncio.to_thread(slots[1].insert, make_card("vitale", "famille"))
            seen: set[str] = set()
            async with asyncio.timeout(15):
                while seen != set(READERS):
                    event = await events.get()
                    if type(event).__name__ == "CardInserted":
                        seen.add(event.reader)
            async with serve_page(PAGE % {"port": app.port}) as origin:
                page = await browser.new_page()
                await page.goto(origin + "/")
                await page.wait_for_function("window.ready === true")
                await page.evaluate("window.start()")
                # Before approval the page may not touch the cards.
                refused = await page.evaluate("window.failure(window.bridge.cpsRead())")
                assert refused["code"] == "ORIGIN_NOT_APPROVED"
                pending, decide = await asyncio.wait_for(approver.requests.get(), 10)
                assert pending.origin == origin
                decide(True)  # the person approves at the workstation
                decision = await page.evaluate("window.pairing")
                assert decision["origin"] == origin

                read = await page.evaluate("window.bridge.cpsRead()")
                assert read["cardType"] == "CPS" and read["holder"]["lastName"] == "MARTIN"
                assert read["pin"]["triesLeft"] == 3 and read["certificates"]["signature"]["der"]
                wrong = await page.evaluate("window.failure(window.bridge.cpsLogin({ pin: '9999' }))")
                assert (wrong["code"], wrong["data"]["triesLeft"]) == ("PIN_INCORRECT", 2)
                login = await page.evaluate("window.bridge.cpsLogin({ pin: '1234' })")
                assert login["authenticated"] is True and login["triesLeft"] == 3
                assert [s["activitySector"] for s in login["situations"]] == ["SA07", "SA05"]

                vitale = await page.evaluate("window.bridge.vitaleRead()")
                assert len(vitale["beneficiaries"]) == 3
                assert all(b["cardNir"] and b["lastName"] for b in vitale["beneficiaries"])
                assert [b["nir"] is not None for b in vitale["beneficiaries"]] == [True, True, False]
                await page.close()
        finally:
            await sessions.close()
