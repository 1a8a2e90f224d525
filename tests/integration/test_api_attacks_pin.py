"""Attacks on PIN handling (issue 13, point 3), on a virtual CPS: PIN exhaustion from a page, the last try
confirmed in the tray, a CPS login owned by the caller that entered the PIN. Each asserts the refusal and
that another client's round trip stays under 100 ms meanwhile."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bridge.errors import BridgeError
from tests.api_helpers import FakeApprover, approved_page, open_ws, rpc, running_bridge
from tests.attack_helpers import WEB, error_data, under_attack

pytestmark = [pytest.mark.usefixtures("home"), pytest.mark.timeout(30)]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


# -- 3. PIN handling a script cannot abuse ----------------------------------------------------------

CPS_READER = "Virtual PCD 00 00"
PIN_UNIT = 0.3  # seconds: the test's delay unit after a first wrong PIN (1 s in the daemon)


@pytest.mark.pcsc
async def test_pin_exhaustion_from_a_page_no_longer_blocks_the_card(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    cards = PcscCardService(monitor, pin_delay_unit=PIN_UNIT)
    approver = FakeApprover()  # the person never answers the tray's last-try prompt
    async with running_bridge(monitor=monitor, cards=cards, approver=approver) as app:
        app.last_try_wait = 0.3  # 60 s in the daemon
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        page = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        codes: list[tuple[str, str | None]] = []
        elapsed: list[float] = []

        async def login(ws: Any, params: dict[str, Any]) -> dict[str, Any]:
            start = time.monotonic()
            answer = await rpc(ws, "cps.login", params, timeout=30)
            elapsed.append(time.monotonic() - start)
            return answer

        async def attack() -> None:
            # The sequence that blocked the card in 13 ms: two wrong PINs, the guarded try, then allowLastTry.
            for params in ({"pin": "0000"}, {"pin": "0000"}, {"pin": "0000"}, {"pin": "0000", "allowLastTry": True}):
                data = error_data(await login(page, params))
                codes.append((data["code"], data.get("detail")))
                assert data["code"] != "PIN_BLOCKED", data

        await under_attack(session, app, attack, seconds=0.5)
        assert codes[:4] == [
            ("PIN_INCORRECT", None),
            ("PIN_INCORRECT", None),
            ("PIN_LAST_TRY", None),
            ("PIN_LAST_TRY", "confirm-at-workstation"),
        ], codes
        # Growing delay across calls: the second wrong PIN waited one unit, the guarded try two.
        assert elapsed[1] >= PIN_UNIT * 0.9, elapsed
        assert elapsed[2] >= PIN_UNIT * 1.8, elapsed
        refusal = error_data(await rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}))
        assert "poste de travail" in refusal["message_fr"] and "workstation" in refusal["message_en"]
        # Each of the page's requests asked the person (who did not answer): the page's say-so spent nothing.
        assert approver.last_tries.qsize() >= 2
        read = (await rpc(local, "cps.read", timeout=30))["result"]
        assert read["pin"] == {"triesLeft": 1, "triesMax": 3, "blocked": False}
        # The person at the workstation (local token, as the CLI's --force-last-try) still may; it resets the delay.
        ok = (await rpc(local, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))["result"]
        assert (ok["authenticated"], ok["triesLeft"]) == (True, 3)
        assert cards._cps.throttle.delay(read["serial"]) == 0.0
        # The authentication key signs nothing for a page, digest or data (TLS signs data the client chooses);
        # a local program still may.
        digest = {"data": base64.b64encode(b"d" * 32).decode(), "prehashed": True, "key": "authentication"}
        data = {"data": base64.b64encode(b"handshake messages").decode(), "key": "authentication"}
        for params in (digest, data):
            refused = error_data(await rpc(page, "cps.sign", params))
            assert refused["detail"] == "authentication-key: local-programs-only"
            assert "clé de signature" in refused["message_fr"]
        assert "signature" in (await rpc(local, "cps.sign", digest, timeout=30))["result"]
        assert "signature" in (await rpc(local, "cps.sign", data, timeout=30))["result"]
        await page.close()
        await local.close()


@pytest.mark.pcsc
async def test_last_try_is_spent_only_once_the_person_confirms_in_the_tray(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    import threading

    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    approver = FakeApprover()
    cards = PcscCardService(monitor, pin_delay_unit=0.05)
    async with running_bridge(monitor=monitor, cards=cards, approver=approver) as app:
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        page = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        # Not at the last try: nobody is asked, the page's login just runs.
        assert (await rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))["result"]
        assert approver.last_tries.empty()
        for _ in range(2):
            assert error_data(await rpc(local, "cps.login", {"pin": "0000"}, timeout=30))["code"] == "PIN_INCORRECT"

        async def page_asks_for_the_last_try(allowed: bool) -> dict[str, Any]:
            call = asyncio.create_task(rpc(page, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))
            request, decide = await asyncio.wait_for(approver.last_tries.get(), 15)
            assert (request.origin, request.reader) == (WEB, CPS_READER)
            # While the person decides, the bridge serves the others (the card is not held).
            assert (await rpc(local, "cps.read", timeout=30))["result"]["pin"]["triesLeft"] == 1
            threading.Thread(target=decide, args=(allowed,)).start()  # the tray answers from its own thread
            return await call

        refused = error_data(await page_asks_for_the_last_try(False))
        assert (refused["code"], refused["detail"]) == ("PIN_LAST_TRY", "confirm-at-workstation")
        assert (await rpc(local, "cps.read", timeout=30))["result"]["pin"]["triesLeft"] == 1  # nothing spent
        confirmed = (await page_asks_for_the_last_try(True))["result"]
        assert (confirmed["authenticated"], confirmed["triesLeft"]) == (True, 3)
        await page.close()
        await local.close()


@pytest.mark.pcsc
async def test_cps_login_belongs_to_the_caller_that_entered_the_pin(
    session: aiohttp.ClientSession, slots: list[Any]
) -> None:
    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.service.cps_login_owner import acting_caller
    from bridge.service.pcsc_cards.service import PcscCardService
    from bridge.sim.cps3 import create_card
    from tests.api_helpers import next_notification
    from tests.conftest import wait_card_state

    await asyncio.to_thread(wait_card_state, CPS_READER, False)
    monitor = ReaderMonitor()
    async with running_bridge(monitor=monitor, cards=PcscCardService(monitor)) as app:
        local = await open_ws(session, app, token=app.token)
        await rpc(local, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp"))
        while (await next_notification(local, "card.inserted", timeout=15))["reader"] != CPS_READER:
            pass
        other_origin = "https://other-app.example"
        owner = await open_ws(session, app, origin=WEB, key=approved_page(app, WEB))
        other = await open_ws(session, app, origin=other_origin, key=approved_page(app, other_origin))
        data = {"data": base64.b64encode(b"prescription").decode()}
        assert (await rpc(owner, "cps.login", {"pin": "1234"}, timeout=30))["result"]["authenticated"] is True
        assert "signature" in (await rpc(owner, "cps.sign", data, timeout=30))["result"]

        async def attack() -> None:
            # Another approved application, and a local program, try to use the doctor's login.
            for ws in (other, local):
                refusal = error_data(await rpc(ws, "cps.sign", data, timeout=30))
                assert (refusal["code"], refusal["detail"]) == ("PIN_REQUIRED", "login-owned-by-another-caller")

        await under_attack(session, app, attack, seconds=0.5)
        # DIRECTE DMP calls hold the card through this same seam: refused for another caller too.
        with acting_caller(other_origin), pytest.raises(BridgeError) as info:
            async with app.locks.hold_shared(CPS_READER):
                pass
        assert info.value.detail == "login-owned-by-another-caller"
        with acting_caller(WEB):
            async with app.locks.hold_shared(CPS_READER):
                pass
        # Entering the PIN itself makes the login the other application's (and no longer the first's).
        assert (await rpc(other, "cps.login", {"pin": "1234"}, timeout=30))["result"]["authenticated"] is True
        assert "signature" in (await rpc(other, "cps.sign", data, timeout=30))["result"]
        assert error_data(await rpc(owner, "cps.sign", data, timeout=30))["code"] == "PIN_REQUIRED"
        # The person chose to share the login (config share_cps_login): every approved caller may use it.
        app.locks.login_owners.shared = True
        assert "signature" in (await rpc(owner, "cps.sign", data, timeout=30))["result"]
        await owner.close()
        await other.close()
        await local.close()
