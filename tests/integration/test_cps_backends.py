"""The card service behaves the same whichever CPS backend: the bridge's PC/SC driver or the official Cryptolib.

Each test runs for every backend × card generation pair (`cps_backend` and `generation` fixtures):
through `PcscCardService` with the PC/SC driver, and with the ANS Cryptolib CPS (PKCS#11) laid over its
folders in the tests' private mount namespace (skips where the Cryptolib RPM, rpm2cpio/cpio or root are
missing), each on a virtual CPS3 and a virtual CPS4. Same daemon, same JSON-RPC calls, same error
codes: PIN_INCORRECT with triesLeft, PIN_LAST_TRY (nothing sent), PIN_BLOCKED, PIN_REQUIRED after
logout, CARD_REMOVED when the card leaves during a login (held at the VERIFY carrying the PIN), and the
backend and generation named in cps.read and in the diagnostics summary.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.cps_backend import CpsBackend
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim import cps3, cps4
from bridge.sim.vpcd import VirtualCard, VirtualSlot
from tests.api_helpers import monitor_event, open_ws, rpc, running_bridge
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.cryptolib_fixtures import cps_backend, cryptolib, cryptolib_install, cryptolib_module
from tests.gated_vicc import GatedVicc

__all__ = ["cps_backend", "cryptolib", "cryptolib_install", "cryptolib_module", "pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.cryptolib, pytest.mark.usefixtures("home")]

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
INS_VERIFY = 0x20
CARDS: dict[str, Callable[[str, TestPki], VirtualCard]] = {"CPS3": cps3.create_card, "CPS4": cps4.create_card}


class Bridge:
    """The daemon on the real monitor with the card service on one backend, and a token WebSocket."""

    def __init__(
        self, sessions: PcscCardService, ws: aiohttp.ClientWebSocketResponse, events: asyncio.Queue[Any]
    ) -> None:
        self.sessions = sessions
        self.ws = ws
        self.events = events

    async def seen(self, kind: str, reader: str, timeout: float = 15) -> None:
        """Wait for the monitor's CardInserted/CardRemoved on `reader` (the daemon has then seen it too)."""
        await monitor_event(self.events, kind, reader, timeout)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result of a call (the test fails on an error)."""
        answer = await rpc(self.ws, method, params or {}, timeout=30)
        assert "result" in answer, answer
        return dict(answer["result"])

    async def error(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The error data of a call that must fail."""
        answer = await rpc(self.ws, method, params or {}, timeout=30)
        assert "error" in answer, answer
        return dict(answer["error"]["data"])


@pytest.fixture(params=sorted(CARDS))
def generation(request: pytest.FixtureRequest) -> str:
    """Each card generation in turn: a virtual CPS3 (IAS-ECC), then a virtual CPS4 (ChipDoc)."""
    return str(request.param)


@pytest.fixture
async def bridge(slots: list[VirtualSlot], cps_backend: CpsBackend) -> AsyncIterator[Bridge]:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    sessions = PcscCardService(monitor, cps_backend=cps_backend)
    async with (
        running_bridge(BridgeConfig(port=0), monitor=monitor, cards=sessions) as app,
        aiohttp.ClientSession() as http,
    ):
        ws = await open_ws(http, app, token=app.token)
        try:
            yield Bridge(sessions, ws, monitor.subscribe())
        finally:
            await ws.close()
            await sessions.close()


async def insert(bridge: Bridge, slot: VirtualSlot, generation: str, profile: str, pki: TestPki, reader: str) -> None:
    """Insert a virtual CPS and wait until the daemon's monitor reports it (pcscd and the Cryptolib see it)."""
    await asyncio.to_thread(slot.insert, CARDS[generation](profile, pki))
    await bridge.seen("CardInserted", reader)


async def test_read_login_sign_logout(
    bridge: Bridge, slots: list[VirtualSlot], pki: TestPki, cps_backend: CpsBackend, generation: str
) -> None:
    await insert(bridge, slots[0], generation, "gp", pki, READERS[0])
    read = await bridge.call("cps.read")
    assert (read["backend"], read["generation"], read["kind"]) == (cps_backend.name, generation, generation)
    assert read["holder"]["nationalId"] == "810012345678" and read["cardNumber"] == "2600000100"
    assert read["pin"] == {"triesLeft": 3, "triesMax": 3, "blocked": False}

    wrong = await bridge.error("cps.login", {"pin": "9999"})
    assert (wrong["code"], wrong["triesLeft"]) == ("PIN_INCORRECT", 2)
    assert (await bridge.call("cps.read"))["pin"]["triesLeft"] == 2
    ok = await bridge.call("cps.login", {"pin": "1234"})
    assert ok["authenticated"] is True and ok["triesLeft"] == 3
    assert [s["activitySector"] for s in ok["situations"]] == ["SA07", "SA05"]

    message = b"<document>contenu</document>" * 40
    signed = await bridge.call("cps.sign", {"data": base64.b64encode(message).decode(), "key": "signature"})
    authed = await bridge.call("cps.sign", {"data": base64.b64encode(message).decode(), "key": "authentication"})
    for usage, answer in (("signature", signed), ("authentication", authed)):
        public = x509.load_der_x509_certificate(base64.b64decode(read["certificates"][usage]["der"])).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(base64.b64decode(answer["signature"]), message, padding.PKCS1v15(), hashes.SHA256())

    status = await bridge.sessions.card_status(READERS[0])
    assert status is not None
    assert (status["backend"], status["generation"], status["loggedIn"]) == (cps_backend.name, generation, True)
    assert status["pinTriesLeft"] == 3 and "MARTIN" not in str(status)

    assert await bridge.call("cps.logout") == {"authenticated": False}
    refused = await bridge.error("cps.sign", {"data": base64.b64encode(b"x").decode(), "key": "authentication"})
    assert refused["code"] == "PIN_REQUIRED"


async def test_last_try_guard_and_blocked_card(
    bridge: Bridge, slots: list[VirtualSlot], pki: TestPki, generation: str
) -> None:
    await insert(bridge, slots[0], generation, "last-try", pki, READERS[0])
    await insert(bridge, slots[1], generation, "blocked", pki, READERS[1])
    guarded = await bridge.error("cps.login", {"pin": "1234", "reader": READERS[0]})
    assert (guarded["code"], guarded["triesLeft"]) == ("PIN_LAST_TRY", 1)
    assert (await bridge.call("cps.read", {"reader": READERS[0]}))["pin"]["triesLeft"] == 1  # nothing was sent
    ok = await bridge.call("cps.login", {"pin": "1234", "reader": READERS[0], "allowLastTry": True})
    assert ok["authenticated"] is True and len(ok["situations"]) == 2
    assert (await bridge.call("cps.read", {"reader": READERS[0]}))["pin"]["triesLeft"] == 3

    blocked_read = await bridge.call("cps.read", {"reader": READERS[1]})
    assert blocked_read["pin"] == {"triesLeft": 0, "triesMax": 3, "blocked": True}
    blocked = await bridge.error("cps.login", {"pin": "1234", "reader": READERS[1], "allowLastTry": True})
    assert (blocked["code"], blocked["triesLeft"]) == ("PIN_BLOCKED", 0)


async def test_card_removed_during_login(
    bridge: Bridge, slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki, generation: str
) -> None:
    vicc = GatedVicc(CARDS[generation]("gp", pki), slot_ports[0])
    try:
        await bridge.seen("CardInserted", READERS[0])
        await bridge.call("cps.read")
        # whichever backend sends the PIN, it waits there (a CPS4 also reads its counter with an empty VERIFY)
        vicc.arm(INS_VERIFY, with_data=True)
        login = asyncio.create_task(bridge.error("cps.login", {"pin": "1234"}))
        assert await asyncio.to_thread(vicc.held.wait, 15)
        vicc.yank()
        removed = await asyncio.wait_for(login, 20)  # never a hang
        assert removed["code"] == "CARD_REMOVED"
        await asyncio.to_thread(wait_card_state, READERS[0], False)
        absent = await bridge.error("cps.read", {"reader": READERS[0]})
        assert absent["code"] in ("NO_CARD", "CARD_REMOVED")
    finally:
        vicc.close()
