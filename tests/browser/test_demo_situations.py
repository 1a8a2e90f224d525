"""The demo page in real situations, in real Chromium: cards pulled and put back, wrong PINs, a last try,
patient switches, the smart-card service and the bridge going away, a 15 MB upload, the documents list.

The pieces are the end-to-end test's (private pcscd with virtual cards, DMP and INSi simulators over mutual
TLS, the real daemon, the demo page on its own port); the bridge here can be stopped and started again on
the same port, and the CPS profile is chosen per test. Pairing is approved through the test's approver.
Screenshots: tests/artifacts/demo-*.png.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.demo import DemoServer
from bridge.paths import data_dir
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.dmp_config import DmpConfig
from bridge.service.insi_config import InsiConfig
from bridge.sim.cps4 import create_card
from bridge.sim.pcscd import PrivatePcscd
from bridge.sim.registry import make_card
from bridge.sim.sandbox import SandboxDmp
from bridge.sim.sandbox_insi import SandboxInsi
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover
from tests.browser.helpers import ARTIFACTS, READERS
from tests.conftest import wait_card_state
from tests.dmp_fixtures import dmp_pki  # noqa: F401
from tests.pcsc_fixtures import restartable_pcscd

__all__ = ["restartable_pcscd"]  # a fixture used by name

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]

JEAN_INS = "178037511501201"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
#: The gp card's second situation d'exercice (slot 2): a health centre, identified by its FINESS-like id.
CENTRE_INDEX, CENTRE_ID = 2, "10B0123456"


@dataclass
class World:
    """The running pieces; the bridge can be stopped and started again on its port."""

    config: BridgeConfig
    approver: FakeApprover
    page_url: str
    dump: Path
    app: Application | None = None
    pieces: list[Any] = field(default_factory=list)

    async def start_bridge(self) -> None:
        """Start the daemon (again) on the configured port, with the approvals kept in its data folder."""
        self.app = Application(self.config, data_dir=data_dir(), approver=self.approver, monitor=ReaderMonitor())
        await self.app.start(hosts=("127.0.0.1",))

    async def stop_bridge(self) -> None:
        """Stop the daemon for real (its port closes, the page's WebSocket drops)."""
        if self.app is not None:
            await self.app.stop()
            self.app = None


async def make_world(
    cps: str, slots: list[VirtualSlot], pki: TestPki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """The sandbox's pieces with the CPS profile `cps` in reader 0 and the family Vitale card in reader 1."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    for reader in READERS:  # a card from a previous test may not be noticed gone yet
        await asyncio.to_thread(wait_card_state, reader, False)
    sim = SandboxDmp(tmp_path / "dmp-sim", pki, dump_dir=tmp_path / "dump")
    await sim.start()
    insi = SandboxInsi(tmp_path / "insi-sim", pki)
    await insi.start()
    config = BridgeConfig(
        port=0,
        dmp=await asyncio.to_thread(sim.dmp_config, DmpConfig()),
        insi=await asyncio.to_thread(insi.insi_config, InsiConfig()),
    )
    world = World(config, FakeApprover(), "", tmp_path / "dump")
    await world.start_bridge()
    assert world.app is not None
    world.config = BridgeConfig(port=world.app.port, dmp=config.dmp, insi=config.insi)  # a restart keeps the port
    page_server = DemoServer(world.app.port, 0)
    await page_server.start()
    world.page_url = page_server.url
    try:
        await asyncio.to_thread(slots[0].insert, create_card(cps, pki))
        await asyncio.to_thread(slots[1].insert, make_card("vitale", "famille"))
        for reader in READERS:
            await asyncio.to_thread(wait_card_state, reader, True)
        yield world
    finally:
        await page_server.stop()
        await world.stop_bridge()
        await insi.stop()
        await sim.stop()


@pytest.fixture
async def world(
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    """The demo with the GP's CPS (two situations d'exercice)."""
    async for w in make_world("gp", slots, dmp_pki, tmp_path, monkeypatch):
        yield w


@pytest.fixture
async def last_try_world(
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[World]:
    """The demo with a CPS that has one PIN try left."""
    async for w in make_world("last-try", slots, dmp_pki, tmp_path, monkeypatch):
        yield w


async def open_page(browser: Any, world: World) -> tuple[Any, Any, list[str]]:
    """A fresh browser context on the demo page: (context, page, uncaught page errors)."""
    context = await browser.new_context(viewport={"width": 1100, "height": 1300})
    page = await context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    await page.goto(world.page_url)
    await page.wait_for_selector("body[data-ready=true]")
    return context, page, failures


async def pair(page: Any, world: World) -> None:
    """Connect the page and approve its pairing as the person at the workstation would."""
    await page.click("#connect")
    _pending, decide = await asyncio.wait_for(world.approver.requests.get(), 15)
    decide(True)
    await page.wait_for_selector("#step-bridge[data-state=done]", timeout=15_000)


async def choose(page: Any, nth: int) -> None:
    """Read the Vitale card (if not listed yet) and choose its `nth` beneficiary."""
    if not await page.query_selector(".beneficiary"):
        await page.click("#read-vitale")
        await page.wait_for_selector(".beneficiary")
    await page.click(f".beneficiary >> nth={nth}")


async def login(page: Any, pin: str = "1234") -> None:
    """Enter the PIN and wait for the identified view."""
    await page.fill("#pin", pin)
    await page.click("#login")
    await page.wait_for_selector("#step-cps[data-state=done]", timeout=30_000)


async def jean_documents(page: Any, world: World) -> None:
    """Pair, choose JEAN, log in, qualify his INS, declare the authorisation: his (empty) documents list."""
    await pair(page, world)
    await choose(page, 0)
    await login(page)
    await page.click("#ins-search")
    await page.wait_for_selector(f"#ins-identity[data-ins='{JEAN_INS}']", timeout=30_000)
    await page.wait_for_selector("body[data-authorization=expired]", timeout=20_000)
    await page.check("#patient-agreed")
    await page.click("#declare")
    await page.wait_for_selector("body[data-documents='0']", timeout=20_000)


async def upload(page: Any, name: str, data: bytes, title: str, timeout: float = 30_000) -> str:
    """Submit `data` through the page's form; the new document's uniqueId once the list shows it."""
    before = int(await page.get_attribute("body", "data-documents") or "0")
    await page.set_input_files("#file", {"name": name, "mimeType": "application/pdf", "buffer": data})
    await page.fill("#title", title)
    await page.click("#submit")
    await page.wait_for_selector(f"body[data-documents='{before + 1}']", timeout=timeout)
    return str(await page.evaluate("window.dmpDemo.lastSubmitted"))


async def shot(page: Any, name: str) -> None:
    """A full-page screenshot into the tests' artefacts."""
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"demo-{name}.png"), full_page=True)


async def test_cps_pulled_logs_out_and_put_back_offers_the_pin_again_keeping_the_patient(
    world: World,
    browser: Any,
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    context, page, failures = await open_page(browser, world)
    await jean_documents(page, world)
    assert await page.is_visible("#cps-done")

    # Pulled: no "Identifié : DR ..." left, the DMP steps locked, the PIN field back.
    await asyncio.to_thread(slots[0].remove)
    await page.wait_for_selector("body[data-cps=out]", timeout=15_000)
    assert await page.is_hidden("#cps-done")
    assert "Identifié" not in await page.inner_text("main")
    for step in ("#step-ins", "#step-access", "#step-docs"):
        assert await page.get_attribute(step, "data-state") == "locked"
    assert await page.is_hidden("#docs")
    assert await page.inner_text("#message-title") == "Carte CPS retirée :"
    await shot(page, "cps-removed")

    # Put back: reread without reloading (holder, tries), PIN field shown; the chosen patient is kept.
    await asyncio.to_thread(slots[0].insert, create_card("gp", dmp_pki))
    await page.wait_for_selector("#cps-holder:has-text('PAUL MARTIN')", timeout=15_000)
    await page.wait_for_selector("#cps-tries[data-left='3']")
    assert await page.is_visible("#pin")
    assert await page.evaluate("window.dmpDemo.patient.ins") == JEAN_INS
    assert "MARTIN JEAN" in await page.inner_text(".beneficiary.selected")
    await login(page)
    await page.wait_for_selector("body[data-documents='0']", timeout=20_000)  # straight back to his DMP

    # The Vitale card pulled: the chosen patient stays (marked), the card's other entries go.
    await asyncio.to_thread(slots[1].remove)
    await page.wait_for_selector("body[data-vitale=out]", timeout=15_000)
    assert "carte Vitale retirée" in await page.inner_text("#patient-state")
    assert await page.evaluate("window.dmpDemo.patient.ins") == JEAN_INS
    assert len(await page.query_selector_all(".beneficiary")) == 1
    await asyncio.to_thread(slots[1].insert, make_card("vitale", "famille"))
    await page.wait_for_selector("body[data-vitale=in]", timeout=15_000)
    await page.wait_for_function("!document.querySelector('#patient-state').textContent.includes('retirée')")
    assert await page.evaluate("window.dmpDemo.patient.ins") == JEAN_INS
    assert failures == []
    await context.close()


async def test_a_wrong_pin_shows_the_tries_left(world: World, browser: Any) -> None:
    context, page, failures = await open_page(browser, world)
    await pair(page, world)
    await page.click("#read-cps")
    await page.wait_for_selector("#cps-tries[data-left='3']")
    await page.fill("#pin", "9999")
    await page.click("#login")
    await page.wait_for_selector("#message[data-code=PIN_INCORRECT]", timeout=20_000)
    await page.wait_for_selector("#cps-tries[data-left='2']")
    assert await page.inner_text("#cps-tries") == "Essais restants : 2/3"
    await shot(page, "wrong-pin")
    await login(page)  # the right PIN resets the card's counter, and the page shows it
    await page.wait_for_selector("#cps-tries[data-left='3']")
    assert failures == []
    await context.close()


async def test_the_last_try_is_confirmed_in_a_dialog_then_the_bridge_advice_shown(
    last_try_world: World, browser: Any
) -> None:
    world = last_try_world
    context, page, failures = await open_page(browser, world)
    await pair(page, world)
    await page.click("#read-cps")
    await page.wait_for_selector("#cps-tries[data-left='1']")

    # Cancelled: nothing spent.
    await page.fill("#pin", "1234")
    await page.click("#login")
    await page.wait_for_selector("#last-try[open]", timeout=20_000)
    assert "un seul essai" in (await page.inner_text("#last-try")).lower()
    await shot(page, "last-try-dialog")
    await page.click("#last-try-cancel")
    await page.wait_for_selector("#message[data-code=PIN_LAST_TRY]")
    assert "annulée" in await page.inner_text("#message-text")

    # Confirmed on the page: the bridge asks the person at the workstation (tray), who refuses here; the
    # bridge's French message and next step are shown.
    await page.fill("#pin", "1234")
    await page.click("#login")
    await page.wait_for_selector("#last-try[open]", timeout=20_000)
    await page.click("#last-try-confirm")
    _request, decide = await asyncio.wait_for(world.approver.last_tries.get(), 20)
    decide(False)
    await page.wait_for_selector("#message:not([hidden])[data-code=PIN_LAST_TRY]", timeout=20_000)
    await page.wait_for_function("document.querySelector('#message-text').textContent.includes('poste de travail')")
    text = await page.inner_text("#message")
    assert "PIN_LAST_TRY" not in await page.inner_text("#message-text")  # a sentence, not a bare code
    assert "confirm-at-workstation" not in text  # no internal identifier in French text
    await shot(page, "last-try-refused")
    await page.click("#read-cps")  # the card still has its last try
    await page.wait_for_selector("#cps-tries[data-left='1']")
    assert await page.is_hidden("#cps-done")
    assert failures == []
    await context.close()


async def test_the_documents_list_shows_the_author_and_the_dates(world: World, browser: Any) -> None:
    context, page, failures = await open_page(browser, world)
    await jean_documents(page, world)
    uid = await upload(page, "cr.pdf", PDF, "Compte rendu de consultation")
    row = f"#docs tr[data-uid='{uid}']"
    assert await page.inner_text(f"{row} td.author") == "Vous (DR PAUL MARTIN)"
    dates = await page.inner_text(f"{row} td.dates")
    assert dates.startswith("Créé le ") and dates[8:10].isdigit() and dates[10] == "/", dates  # 07/12/2026 19:03
    assert failures == []
    await context.close()


async def test_switching_patient_clears_the_previous_patients_document_list_and_identity(
    world: World, browser: Any
) -> None:
    context, page, failures = await open_page(browser, world)
    await jean_documents(page, world)
    uid = await upload(page, "cr.pdf", PDF, "Compte rendu de consultation")
    row = f"#docs tr[data-uid='{uid}']"
    await page.click(f"{row} button.open")
    await page.wait_for_selector(f"#opened[data-uid='{uid}']", timeout=20_000)

    # Another patient: nothing of JEAN's stays (document, list, INS identity, DMP status).
    await page.click(".beneficiary >> nth=2")
    await page.wait_for_selector("#opened", state="hidden")
    assert await page.query_selector_all("#docs tbody tr") == []
    assert await page.is_hidden("#ins-identity") and await page.is_hidden("#access-facts")
    assert await page.get_attribute("body", "data-documents") is None
    assert await page.get_attribute("body", "data-authorization") is None
    assert await page.get_attribute("#open-link", "href") is None
    assert await page.evaluate("window.dmpDemo.patient") is None
    await shot(page, "patient-switched")
    assert failures == []
    await context.close()


async def test_the_situation_chosen_on_a_multi_situation_card_signs_the_feeding(world: World, browser: Any) -> None:
    context, page, failures = await open_page(browser, world)
    await jean_documents(page, world)
    options = await page.eval_on_selector_all("#situation option", "os => os.map(o => [o.value, o.textContent])")
    assert options == [["0", "CABINET DR PAUL MARTIN (libéral)"], ["2", "CENTRE DE SANTE DES TILLEULS (salarié)"]]
    assert await page.is_visible("#situation")
    await page.select_option("#situation", str(CENTRE_INDEX))
    await page.wait_for_selector(f"body[data-situation='{CENTRE_INDEX}']", timeout=10_000)
    before = set(world.dump.glob("*-request.http"))
    await upload(page, "cr.pdf", PDF, "Compte rendu du centre de santé")
    sent = sorted(set(world.dump.glob("*-request.http")) - before)
    assert sent and all(CENTRE_ID.encode() in path.read_bytes() for path in sent)  # the VIHF names the centre
    assert failures == []
    await context.close()


async def test_pcscd_stopped_says_the_smart_card_service_not_no_card(
    world: World, browser: Any, restartable_pcscd: PrivatePcscd
) -> None:
    context, page, failures = await open_page(browser, world)
    await pair(page, world)
    await login(page)
    await asyncio.to_thread(restartable_pcscd.stop)
    await page.wait_for_selector("#pcsc-banner:not([hidden])", timeout=20_000)
    assert await page.is_hidden("#cps-done")  # the card sessions went with the service
    assert await page.is_hidden("#cps-tries") and await page.inner_text("#cps-holder") == ""
    assert "service carte à puce ne répond pas" in await page.inner_text("#pcsc-banner")
    await page.click("#read-vitale")
    await page.wait_for_selector("#message[data-code=PCSC_UNAVAILABLE]", timeout=10_000)
    message = await page.inner_text("#message")
    assert "service carte à puce ne répond pas" in message and "Aucune carte Vitale" not in message
    assert "redémarrez" in message.lower()  # the next step
    await shot(page, "pcsc-down")
    await asyncio.to_thread(restartable_pcscd.start)
    await page.wait_for_selector("body[data-pcsc=up]", timeout=30_000)
    assert await page.is_hidden("#pcsc-banner")
    assert failures == []
    await context.close()


async def test_bridge_stopped_shows_a_banner_and_the_page_recovers_when_it_returns(world: World, browser: Any) -> None:
    context, page, failures = await open_page(browser, world)
    await pair(page, world)
    await choose(page, 0)
    await login(page)
    await world.stop_bridge()
    await page.wait_for_selector("#bridge-banner:not([hidden])", timeout=20_000)
    assert await page.is_hidden("#cps-done")  # the login lived in the bridge
    assert "injoignable" in await page.inner_text("#conn-state")
    with pytest.raises(PlaywrightTimeout):  # nothing to click while the bridge is away
        await page.click("#read-vitale", timeout=1_000)
    await shot(page, "bridge-down")
    await world.start_bridge()
    await page.wait_for_selector("body[data-bridge=open]", timeout=30_000)
    assert await page.is_hidden("#bridge-banner")
    await page.wait_for_selector("#cps-holder:has-text('PAUL MARTIN')", timeout=20_000)
    assert await page.is_visible("#pin")
    assert "MARTIN JEAN" in await page.inner_text(".beneficiary.selected")
    await login(page)  # the page works again without a reload
    assert failures == []
    await context.close()


PROBE = """() => {
  // Recorded in the page: every value the progress bar takes (with the phase), and a 20 ms heartbeat.
  const bar = document.querySelector('#submit-progress');
  window.probe = { values: [], ticks: [] };
  new MutationObserver(() => probe.values.push([document.body.dataset.phase, Number(bar.value), performance.now()]))
    .observe(bar, { attributes: true, attributeFilter: ['value'] });
  setInterval(() => probe.ticks.push(performance.now()), 20);
}"""


async def test_a_15_mb_upload_shows_progress_and_keeps_the_page_responsive(world: World, browser: Any) -> None:
    context, page, failures = await open_page(browser, world)
    await jean_documents(page, world)
    big = b"%PDF-1.4\n" + bytes(range(256)) * (15 * 1024 * 4) + b"\n%%EOF\n"
    # Handing 15 MB to the file input through the driver stalls the renderer: done before the probe starts.
    await page.set_input_files("#file", {"name": "imagerie.pdf", "mimeType": "application/pdf", "buffer": big})
    await page.fill("#title", "Compte rendu d'imagerie (15 Mo)")
    await page.evaluate(PROBE)
    started = await page.evaluate("performance.now()")
    await page.click("#submit")
    await page.wait_for_selector("body[data-documents='1']", timeout=180_000)
    ended = await page.evaluate("performance.now()")
    values = await page.evaluate("probe.values")
    encoding = sorted({v for phase, v, _ in values if phase == "encode"})
    sending = sorted({v for phase, v, _ in values if phase == "send"})
    # The bar is there from the start: it advances while the file is prepared, then while it is sent.
    assert values[0][:2] == ["encode", 0] and len(encoding) >= 5 and encoding[-1] == 100, values
    assert len(sending) >= 2 and sending[-1] == 100, values
    ticks = [t for t in await page.evaluate("probe.ticks") if started <= t <= ended]
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # Responsive: the heartbeat kept ticking through the whole upload (generous bound: a loaded machine).
    assert len(ticks) >= 10 and max(gaps) < 1500, (len(ticks), max(gaps))
    print(f"15 MB upload: {len(ticks)} heartbeats, longest gap {max(gaps):.0f} ms, {len(encoding)} encoding steps")
    await shot(page, "large-upload")
    assert failures == []
    await context.close()
