"""Real Chromium: a page from another origin pairs with the bridge through the SDK and calls it;
the diagnostics page renders (screenshot in tests/artifacts/diagnostics.png).

Chrome's Local Network Access does not apply here (the test page and the bridge are both loopback, the
same address space); the launch flag disabling its checks only guards against prompts in future
versions. A real web app is public and HTTPS: Chrome >= 142 asks the person for the
"loopback-network" (alias "local-network-access") permission on first use, so the app must call
`connect()` from a user gesture; managed fleets can pre-allow it with the LocalNetworkAccessAllowedForUrls
policy. Safari does not allow ws://127.0.0.1 from an HTTPS page at all.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge.app import Application
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import CardInserted, CardRemoved, FakeMonitor, Row, approved_page, running_bridge
from tests.browser.helpers import ARTIFACTS, READERS, cli, serve_page
from tests.conftest import wait_card_state
from tests.scripted_card import AtrOnlyCard

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("home")]

PAGE = """<!doctype html><meta charset="utf-8"><title>DPI de test</title>
<script type="module">
import { connect } from "http://127.0.0.1:%(port)d/sdk/dmp-bridge.js";
window.events = [];
window.errors = [];
window.start = async () => {
  const bridge = await connect({ url: "ws://127.0.0.1:%(port)d/ws" });
  window.bridge = bridge;
  for (const name of ["card.inserted", "card.removed", "readers.changed"]) {
    bridge.on(name, (params) => window.events.push({ name, params }));
  }
  try { await bridge.readersList(); } catch (err) { window.errors.push(err.code); }
  window.pairing = bridge.pair({ onPending: (answer) => { window.pending = answer; } });
  return true;
};
window.ready = true;
</script>
"""


async def pair_from_page(page: Any, app: Application, origin: str) -> None:
    """Start pairing in the page, approve through the CLI as the person would, wait for the notification."""
    await page.goto(origin + "/")
    await page.wait_for_function("window.ready === true")
    await page.evaluate("window.start()")
    await page.wait_for_function("window.pending !== undefined", timeout=10_000)
    assert await page.evaluate("window.errors") == ["ORIGIN_NOT_APPROVED"]
    code, out = await cli("origins", "pending", "--json", "--port", str(app.port))
    assert code == 0
    (pending,) = json.loads(out)["pending"]
    assert pending["origin"] == origin
    assert pending["requestId"] == await page.evaluate("window.pending.requestId")
    assert pending["code"] == await page.evaluate("window.pending.code")
    code, _ = await cli("origins", "approve", pending["code"], "--port", str(app.port))
    assert code == 0
    decision = await page.evaluate("window.pairing")
    assert decision == {"requestId": pending["requestId"], "origin": origin}


async def test_page_from_another_origin_pairs_calls_and_gets_events(browser: Any) -> None:
    monitor = FakeMonitor([Row("Virtual PCD 00 00", False, None), Row("Virtual PCD 00 01", False, None)])
    async with running_bridge(monitor=monitor) as app, serve_page(PAGE % {"port": app.port}) as origin:
        page = await browser.new_page()
        await pair_from_page(page, app, origin)
        info = await page.evaluate("window.bridge.info()")
        assert info["name"] == "dmp-bridge" and info["port"] == app.port and info["approved"] is True
        listing = await page.evaluate("window.bridge.readersList()")
        assert [r["name"] for r in listing["readers"]] == ["Virtual PCD 00 00", "Virtual PCD 00 01"]
        monitor.emit(CardInserted("Virtual PCD 00 01", bytes.fromhex("3B7F96")))
        await page.wait_for_function("window.events.some(e => e.name === 'card.inserted')")
        monitor.emit(CardRemoved("Virtual PCD 00 01"))
        await page.wait_for_function("window.events.some(e => e.name === 'card.removed')")
        names = [e["name"] for e in await page.evaluate("window.events")]
        assert names == ["card.inserted", "readers.changed", "card.removed", "readers.changed"]
        inserted = (await page.evaluate("window.events"))[0]["params"]
        assert inserted == {"reader": "Virtual PCD 00 01", "atr": "3B7F96"}
        # An unknown method is a clear BridgeError in the page.
        code = await page.evaluate("window.bridge.call('nope').catch(e => [e.name, e.code, e.rpcCode])")
        assert code == ["BridgeError", "NOT_FOUND", -32601]
        await page.close()


CONNECT = """async (port) => {
  const sdk = await import(`http://127.0.0.1:${port}/sdk/dmp-bridge.js`);
  const bridge = await sdk.connect({ url: `ws://127.0.0.1:${port}/ws` });
  window.bridge = bridge;
  window.states = [];
  bridge.on("connection", (e) => window.states.push(e.state));
  const listing = await bridge.readersList().then((r) => r.pcsc, (e) => e.code);
  return [bridge.approved, listing];
}"""

STORED_KEY = """() => new Promise((resolve, reject) => {
  const open = indexedDB.open("dmp-bridge");
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const get = open.result.transaction("keys").objectStore("keys").get("pairing");
    get.onsuccess = () => resolve([get.result.privateKey.extractable, get.result.privateKey.algorithm.namedCurve]);
  };
})"""


async def test_key_kept_in_the_profile_reconnects_and_a_cleared_profile_pairs_again(browser: Any) -> None:
    async with running_bridge() as app, serve_page(PAGE % {"port": app.port}) as origin:
        first = await browser.new_context()
        page = await first.new_page()
        await pair_from_page(page, app, origin)
        (entry,) = app.store.list()
        assert len(entry.keys) == 1
        assert await page.evaluate("window.bridge.keyFingerprint") == entry.keys[0].to_json()["fingerprint"]
        # The private key is a non-extractable P-256 CryptoKey in the origin's IndexedDB.
        assert await page.evaluate(STORED_KEY) == [False, "P-256"]
        # A new page load in the same profile proves the stored key: approved at once, no pairing.
        await page.reload()
        await page.wait_for_function("window.ready === true")
        assert await page.evaluate(CONNECT, app.port) == [True, "unavailable"]
        # The bridge drops the connection: the SDK reconnects and proves the key again by itself.
        for ws in list(app.server._sockets.values()):
            await ws.close()
        await page.wait_for_function("window.states.includes('open')", timeout=15_000)
        assert (await page.evaluate("window.bridge.readersList()"))["pcsc"] == "unavailable"
        # A cleared profile (another context: empty IndexedDB) has a new key: pairing needed again...
        second = await browser.new_context()
        fresh = await second.new_page()
        await fresh.goto(origin + "/")
        await fresh.wait_for_function("window.ready === true")
        assert await fresh.evaluate(CONNECT, app.port) == [False, "ORIGIN_NOT_APPROVED"]
        # ...while the first profile's key keeps working until, and after, the new one is approved.
        assert (await page.evaluate("window.bridge.readersList()"))["pcsc"] == "unavailable"
        await fresh.evaluate(
            "() => { window.pairing = window.bridge.pair({ onPending: (a) => { window.pending = a; } }); }"
        )
        await fresh.wait_for_function("window.pending !== undefined")
        code, _ = await cli("origins", "approve", await fresh.evaluate("window.pending.code"), "--port", str(app.port))
        assert code == 0
        await fresh.evaluate("window.pairing")
        assert (await fresh.evaluate("window.bridge.readersList()"))["pcsc"] == "unavailable"
        assert (await page.evaluate("window.bridge.readersList()"))["pcsc"] == "unavailable"
        assert len(app.store.list()[0].keys) == 2
        # Revoking the origin cuts both profiles at once.
        code, _ = await cli("origins", "revoke", origin, "--port", str(app.port))
        assert code == 0
        for tab in (page, fresh):
            assert await tab.evaluate("window.bridge.readersList().catch((e) => e.code)") == "ORIGIN_NOT_APPROVED"
        await first.close()
        await second.close()


DISCOVER = """async ([port, ports]) => {
  const sdk = await import(`http://127.0.0.1:${port}/sdk/dmp-bridge.js`);
  try {
    const bridge = await sdk.connect({ ports, retry: { attempts: 1 } });
    return [(await bridge.info()).port, bridge.url];
  } catch (e) {
    return [e.code, e.data.detail];
  }
}"""


async def test_sdk_finds_this_users_bridge_among_the_candidate_ports(browser: Any) -> None:
    async with running_bridge() as app, serve_page(PAGE % {"port": app.port}) as origin:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]  # nothing listens there once closed
        not_a_bridge = int(origin.rsplit(":", 1)[1])  # an HTTP server: no WebSocket, no bridge.info
        page = await browser.new_page()
        await page.goto(origin + "/")
        await page.wait_for_function("window.ready === true")
        found = await page.evaluate(DISCOVER, [app.port, [closed, not_a_bridge, app.port]])
        assert found == [app.port, f"ws://127.0.0.1:{app.port}/ws"]
        assert await page.evaluate(DISCOVER, [app.port, [closed, not_a_bridge]]) == ["BRIDGE_UNREACHABLE", "no-port"]
        await page.close()


async def test_sdk_reports_bridge_not_running(browser: Any) -> None:
    async with running_bridge() as app, serve_page(PAGE % {"port": app.port}) as origin:
        page = await browser.new_page()
        await page.goto(origin + "/")
        await page.wait_for_function("window.ready === true")
        result = await page.evaluate(
            """async (port) => {
                  const sdk = await import(`http://127.0.0.1:${port}/sdk/dmp-bridge.js`);
                  try { await sdk.connect({ url: "ws://127.0.0.1:9/ws", retry: { attempts: 2, initialDelay: 10 } }); }
                  catch (e) { return [e.code, e.messageFr.length > 0]; }
                  return null;
                }""",
            app.port,
        )
        assert result == ["BRIDGE_UNREACHABLE", True]
        await page.close()


async def test_diagnostics_page_renders(browser: Any) -> None:
    monitor = FakeMonitor(
        [Row("Virtual PCD 00 00", True, bytes.fromhex("3BAC00402A")), Row("Virtual PCD 00 01", False, None)]
    )
    async with running_bridge(monitor=monitor) as app:
        approved_page(app, "https://dpi.example.fr")
        app.errors.record("cps.login", "PIN_INCORRECT")
        base = f"http://127.0.0.1:{app.port}"
        context = await browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)
        await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        page = await context.new_page()
        await page.goto(base + "/")
        await page.wait_for_selector("body[data-ready=true]", timeout=10_000)
        text = await page.inner_text("body")
        assert "Virtual PCD 00 00" in text and "3BAC00402A" in text
        assert "https://dpi.example.fr" in text and "PIN_INCORRECT" in text
        assert "Connecté" in text
        assert app.token not in await page.content()
        await page.click("#copy")
        await page.wait_for_selector("#copied:not(:empty)")
        copied = await page.evaluate("navigator.clipboard.readText()")
        assert '"version": "0.1.0"' in copied and "3BAC00402A" in copied and app.token not in copied
        await page.click("#lang")
        assert "Readers and cards" in await page.inner_text("body")
        monitor.emit(CardRemoved("Virtual PCD 00 00"))
        await page.wait_for_function(
            "window.dmpBridgeDiagnostics.report && !window.dmpBridgeDiagnostics.report.readers[0].cardPresent"
        )
        await context.close()


@pytest.fixture
async def monitor(slots: list[VirtualSlot]) -> AsyncIterator[ReaderMonitor]:
    for reader in READERS:  # a card from a previous test may not be noticed gone yet
        await asyncio.to_thread(wait_card_state, reader, False)
    watcher = ReaderMonitor()
    yield watcher
    await watcher.stop()


@pytest.mark.pcsc
async def test_real_card_events_reach_the_paired_page(
    browser: Any, monitor: ReaderMonitor, slots: list[VirtualSlot]
) -> None:
    async with (
        running_bridge(monitor=monitor, cards=PcscCardService(monitor)) as app,
        serve_page(PAGE % {"port": app.port}) as origin,
    ):
        page = await browser.new_page()
        await pair_from_page(page, app, origin)
        listing = await page.evaluate("window.bridge.readersList()")
        assert listing == {
            "pcsc": "available",
            "readers": [{"name": name, "cardPresent": False, "atr": None, "kind": None} for name in READERS],
        }
        await asyncio.to_thread(slots[1].insert, AtrOnlyCard("3B021450"))
        await page.wait_for_function("window.events.some(e => e.name === 'card.inserted')", timeout=15_000)
        inserted = [e["params"] for e in await page.evaluate("window.events") if e["name"] == "card.inserted"]
        assert inserted == [{"reader": READERS[1], "atr": "3B021450"}]

        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        await page.wait_for_function(
            "window.events.filter(e => e.name === 'card.inserted').length === 2", timeout=15_000
        )
        read = await page.evaluate("window.bridge.cpsRead()")
        assert read["pin"]["triesLeft"] == 3

        diagnostics = await browser.new_page(viewport={"width": 1100, "height": 760})
        await diagnostics.goto(f"http://127.0.0.1:{app.port}/")
        await diagnostics.wait_for_selector("body[data-ready=true]", timeout=10_000)
        text = await diagnostics.inner_text("body")
        until = read["certificates"]["authentication"]["notAfter"][:10]
        assert "3B021450" in text and f"valide jusqu'au {until[8:10]}/{until[5:7]}/{until[:4]}" in text
        assert "MARTIN" not in text
        # An unrecognised card is not green: its row carries a warning light and what to check.
        lights = await diagnostics.eval_on_selector_all(
            "#readers tr", "rows => rows.map(r => [...r.querySelectorAll('.light')].map(l => l.dataset.light))"
        )
        assert lights == [["ok"], ["warning"]]
        assert "Carte non reconnue" in text and "puce vers le haut" in text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await diagnostics.screenshot(path=str(ARTIFACTS / "diagnostics.png"), full_page=True)

        await asyncio.to_thread(slots[1].remove)
        await page.wait_for_function("window.events.some(e => e.name === 'card.removed')", timeout=15_000)
        removed = [e["params"] for e in await page.evaluate("window.events") if e["name"] == "card.removed"]
        assert removed == [{"reader": READERS[1]}]
        listing = await page.evaluate("window.bridge.readersList()")
        assert [r["cardPresent"] for r in listing["readers"]] == [True, False]
        await diagnostics.close()
        await page.close()


async def test_sdk_reconnects_and_keeps_listeners(browser: Any) -> None:
    """The bridge restarts (same port, same approvals): the SDK reconnects and old listeners get new events."""
    import socket

    from bridge.config import BridgeConfig

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    first = FakeMonitor([Row("Virtual PCD 00 00", False, None)])
    async with (
        running_bridge(BridgeConfig(port=port), monitor=first) as app,
        serve_page(PAGE % {"port": app.port}) as origin,
    ):
        page = await browser.new_page()
        await pair_from_page(page, app, origin)
        await page.evaluate(
            # `; true`: Playwright would call a function result (here, the unsubscribe function).
            "window.states = []; window.bridge.on('connection', (s) => window.states.push(s.state)); true"
        )
        await app.stop()
        await page.wait_for_function("window.states.includes('reconnecting')", timeout=10_000)
        second = FakeMonitor([Row("Virtual PCD 00 00", False, None)])
        async with running_bridge(BridgeConfig(port=port), monitor=second):
            await page.wait_for_function("window.states.includes('open')", timeout=15_000)
            second.emit(CardInserted("Virtual PCD 00 00", bytes.fromhex("3B021450")))
            await page.wait_for_function("window.events.some(e => e.name === 'card.inserted')", timeout=10_000)
            info = await page.evaluate("window.bridge.info()")
            assert info["approved"] is True
        await page.close()
