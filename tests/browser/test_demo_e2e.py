"""The demo page end to end in real Chromium: the sandbox's pieces wired as `dmp-bridge sandbox` wires them.

Real private pcscd with the virtual GP CPS (reader 0) and the family Vitale card (reader 1), the DMP
simulator over mutual TLS with the test PKI (`bridge.sim.sandbox.SandboxDmp`, the daemon's [dmp] settings
from `sandbox_dmp_config`), the real daemon (Application with the PC/SC card service), and the demo page
served on its own port (`bridge.demo.DemoServer`), hence a foreign origin that must pair. Playwright
clicks through the page as a newcomer would; the test approves the pairing with the CLI (local token),
and checks masking with a second practitioner (the `gp2` CPS swapped into reader 1, a local client).
Screenshot: tests/artifacts/demo.png.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.demo import DemoServer
from bridge.paths import data_dir
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.dmp_config import DmpConfig
from bridge.service.insi_config import InsiConfig
from bridge.sim.cps4 import create_card  # the sandbox's default virtual CPS
from bridge.sim.registry import make_card
from bridge.sim.sandbox import SandboxDmp
from bridge.sim.sandbox_insi import SandboxInsi
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover, next_notification, open_ws, rpc
from tests.browser.helpers import ARTIFACTS, READERS, cli
from tests.conftest import wait_card_state
from tests.dmp_fixtures import dmp_pki  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]

# A small but real-looking PDF whose bytes cover every value (a byte-exact round trip shows).
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
JEAN_INS = "178037511501201"
#: LEA's own INS, as the INSi (simulator) knows it; her Vitale card carries her father's NIR (JEAN_INS).
LEA_INS = "212097511504349"


@dataclass
class Demo:
    """The running pieces."""

    app: Application
    page_url: str
    sim: SandboxDmp


@pytest.fixture
async def demo(
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Demo]:
    """Cards in both readers, the simulator, the daemon and the demo page, as the sandbox starts them."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    for reader in READERS:  # a card from a previous test may not be noticed gone yet
        await asyncio.to_thread(wait_card_state, reader, False)
    sim = SandboxDmp(tmp_path / "dmp-sim", dmp_pki, dump_dir=tmp_path / "dump")
    await sim.start()
    insi = SandboxInsi(tmp_path / "insi-sim", dmp_pki)
    await insi.start()
    monitor = ReaderMonitor()
    config = BridgeConfig(
        port=0,
        dmp=await asyncio.to_thread(sim.dmp_config, DmpConfig()),
        insi=await asyncio.to_thread(insi.insi_config, InsiConfig()),
    )
    app = Application(config, data_dir=data_dir(), approver=FakeApprover(), monitor=monitor)
    await app.start(hosts=("127.0.0.1",))
    page_server = DemoServer(app.port, 0)
    await page_server.start()
    try:
        await asyncio.to_thread(slots[0].insert, create_card("gp", dmp_pki))
        await asyncio.to_thread(slots[1].insert, make_card("vitale", "famille"))
        for reader in READERS:
            await asyncio.to_thread(wait_card_state, reader, True)
        yield Demo(app, page_server.url, sim)
    finally:
        await page_server.stop()
        await app.stop()
        await insi.stop()
        await sim.stop()


async def rows(page: Any) -> dict[str, dict[str, str]]:
    """The documents table as the page shows it: uniqueId -> data attributes."""
    found = await page.evaluate("[...document.querySelectorAll('#docs tbody tr')].map(tr => ({...tr.dataset}))")
    return {row["uid"]: row for row in found}


async def click_and_wait(page: Any, uid: str, button: str, after: str) -> None:
    """Click an action of one document row, then wait for the refreshed row to show `after`."""
    await page.click(f"#docs tr[data-uid='{uid}'] button.{button}")
    await page.wait_for_selector(f"#docs tr[data-uid='{uid}']{after}", timeout=20_000)


async def test_demo_page_pairs_reads_cards_and_manages_a_document(
    demo: Demo,
    browser: Any,
    slots: list[VirtualSlot],
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    app = demo.app
    context = await browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    await page.goto(demo.page_url)
    await page.wait_for_selector("body[data-ready=true]")

    # 1. Pairing: the page shows the code and the CLI command; the person (here the test) approves it.
    await page.click("#connect")
    await page.wait_for_selector("#pair-code:not(:empty)", timeout=10_000)
    command = await page.inner_text("#pair-command")
    code, out = await cli("origins", "pending", "--json", "--port", str(app.port))
    assert code == 0
    (pending,) = json.loads(out)["pending"]
    assert pending["origin"] == demo.page_url.rstrip("/")
    assert command == f"dmp-bridge origins approve {pending['code']}"
    assert (await page.inner_text("#pair-code")).replace(" ", "") == pending["code"]
    code, _ = await cli("origins", "approve", pending["code"], "--port", str(app.port))
    assert code == 0
    await page.wait_for_selector("#step-bridge[data-state=done]", timeout=10_000)

    # 2. Vitale: three beneficiaries; the child on her father's NIR has no NIR of her own on the card.
    await page.click("#read-vitale")
    await page.wait_for_selector(".beneficiary")
    names = await page.eval_on_selector_all(".beneficiary", "bs => bs.map(b => [b.innerText, b.disabled])")
    assert [(name.split("\n")[0], disabled) for name, disabled in names] == [
        ("MARTIN JEAN", False),
        ("MARTIN AICHA", False),
        ("MARTIN LEA", False),
    ]
    assert "pas de NIR propre" in names[2][0]
    await page.click(".beneficiary >> nth=2")
    # No INS before the INSi has qualified one: nothing read from the card stands for it.
    assert await page.evaluate("window.dmpDemo.patient") is None

    # 3. CPS: a wrong PIN is refused with the bridge's French message, then 1234 logs in.
    await page.click("#read-cps")
    await page.wait_for_selector("#cps-holder:has-text('PAUL MARTIN')")
    await page.fill("#pin", "9999")
    await page.click("#login")
    await page.wait_for_selector("#message[data-code=PIN_INCORRECT]", timeout=20_000)
    assert "code porteur" in (await page.inner_text("#message-text")).lower()
    await page.fill("#pin", "1234")
    await page.click("#login")
    await page.wait_for_selector("#step-ins[data-state=todo]", timeout=20_000)
    assert await page.get_attribute("#step-docs", "data-state") == "locked"

    # 4. INS qualification with the INSi (CPS mode: the card signs the assertion). LEA first: the page
    # needs her sex (her card carries her father's NIR), then the INSi gives her own INS.
    await page.click("#ins-search")
    await page.wait_for_selector("#message[data-code=INVALID_PARAMS]", timeout=10_000)
    await page.select_option("#ins-sex", "F")
    await page.click("#ins-search")
    await page.wait_for_selector(f"#ins-identity[data-ins='{LEA_INS}']", timeout=30_000)
    assert "INS-NIR" in await page.inner_text("#ins-identity")
    assert await page.evaluate("window.dmpDemo.patient.ins") == LEA_INS != JEAN_INS
    # Then JEAN, the insured: searched from the card, his DMP opens.
    await page.click(".beneficiary >> nth=0")
    await page.wait_for_selector("#step-ins[data-state=todo]", timeout=10_000)
    assert await page.is_hidden("#ins-sex")
    await page.click("#ins-search")
    await page.wait_for_selector(f"#ins-identity[data-ins='{JEAN_INS}']", timeout=30_000)
    assert "depuis la carte Vitale" in await page.inner_text("#ins-identity")
    # 4b. The patient's DMP before any document (TD0.2): it exists, is associated with Mon espace santé,
    # and this GP's authorisation has expired; the documents stay locked until he declares it again
    # (TD0.3) with the patient's agreement.
    await page.wait_for_selector("body[data-authorization=expired]", timeout=20_000)
    assert await page.inner_text("#access-dmp") == "ouvert"
    assert await page.inner_text("#access-mes") == "associé"
    assert await page.get_attribute("#step-docs", "data-state") == "locked"
    assert await page.is_visible("#declare-form")
    await page.check("#patient-agreed")
    await page.click("#declare")
    await page.wait_for_selector("body[data-authorization=valid]", timeout=20_000)
    await page.wait_for_selector("#step-access[data-state=done]", timeout=20_000)
    await page.wait_for_selector("#step-docs[data-state=todo]", timeout=20_000)
    await page.wait_for_selector("body[data-documents='0']", timeout=20_000)
    assert demo.sim.simulator is not None
    history = demo.sim.simulator.store.select(
        "SELECT professional, action FROM authorization_history WHERE ins=?", (JEAN_INS,)
    )
    assert history == [("810012345678", "AJOUT")]

    # 5. Upload a PDF for the beneficiary (INS qualified by the INSi: no statement needed); the list shows it.
    await page.set_input_files("#file", {"name": "cr.pdf", "mimeType": "application/pdf", "buffer": PDF})
    await page.fill("#title", "Compte rendu de consultation")
    await page.click("#submit")
    await page.wait_for_selector("body[data-documents='1']", timeout=30_000)
    assert await page.get_attribute("body", "data-progress") == "100"  # dmp.progress reached the page
    uid = await page.evaluate("window.dmpDemo.lastSubmitted")
    assert (await rows(page))[uid] == {"uid": uid, "status": "approved", "masked": "false", "hidden": "false"}

    # 6. Open it: the file the person downloads is the PDF, byte for byte.
    await page.click(f"#docs tr[data-uid='{uid}'] button.open")
    await page.wait_for_selector(f"#opened[data-uid='{uid}']", timeout=20_000)
    async with page.expect_download() as download_info:
        await page.click("#download-link")
    download = await download_info.value
    assert Path(await download.path()).read_bytes() == PDF
    assert download.suggested_filename == "Compte rendu de consultation.pdf"

    # 7. Mask it from other professionals: a second practitioner (gp2 in reader 1) no longer finds it.
    await click_and_wait(page, uid, "mask", "[data-masked=true]")
    async with aiohttp.ClientSession() as session:
        other = await open_ws(session, app, token=app.token)
        await rpc(other, "bridge.info")
        await asyncio.to_thread(slots[1].remove)  # the Vitale card out, gp2's CPS in
        while (await next_notification(other, "card.removed", timeout=15))["reader"] != READERS[1]:
            pass
        await asyncio.to_thread(slots[1].insert, create_card("gp2", dmp_pki))
        while (await next_notification(other, "card.inserted", timeout=15))["reader"] != READERS[1]:
            pass
        login = await rpc(other, "cps.login", {"pin": "1234", "reader": READERS[1]}, timeout=30)
        assert login["result"]["authenticated"] is True, login
        await rpc(other, "dmp.context.set", {"authMode": "DIRECTE", "reader": READERS[1]})
        found = await rpc(other, "dmp.documents.find", {"patient": {"ins": JEAN_INS}}, timeout=30)
        assert uid not in [d["uniqueId"] for d in found["result"]["documents"]], found
        await other.close()
    await page.click("#refresh")  # the author still sees it (with two CPS inserted, the page names its reader)
    await page.wait_for_selector(f"#docs tr[data-uid='{uid}'][data-masked=true]", timeout=20_000)

    # 8. Hide from the patient, archive, unarchive, delete.
    await click_and_wait(page, uid, "patient", "[data-hidden=true]")
    await click_and_wait(page, uid, "archive", "[data-status=archived]")
    await click_and_wait(page, uid, "archive", "[data-status=approved]")
    await page.set_viewport_size({"width": 1100, "height": 1500})
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
    await page.click(f"#docs tr[data-uid='{uid}'] button.delete")
    await page.click(f"#docs tr[data-uid='{uid}'] button.delete.confirm")
    await page.wait_for_selector("body[data-documents='0']", timeout=20_000)
    assert await page.inner_text("#message-title") == "Document supprimé :"
    assert failures == []
    await context.close()
