"""Card methods end to end: API -> PcscCardService -> drivers -> real pcscd -> vpcd -> virtual CPS3/Vitale."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from jsonschema import Draft202012Validator

from bridge.app import Application
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.vitale import make_card as make_vitale
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import next_notification, open_ws, rpc, running_bridge
from tests.conftest import wait_card_state

pytestmark = [pytest.mark.pcsc, pytest.mark.usefixtures("home")]

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.fixture
async def bridge(slots: list[VirtualSlot]) -> AsyncIterator[Application]:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    cards = PcscCardService(monitor)
    async with running_bridge(monitor=monitor, cards=cards) as app:
        yield app


def conforms(app: Application, method: str, result: Any) -> Any:
    """`result`, once checked against the method's documented result schema (what /openrpc.json shows)."""
    schema = next(h for h in app.registry if h.name == method).result_schema
    Draft202012Validator(schema).validate(result)
    return result


def data(response: dict[str, Any]) -> dict[str, Any]:
    assert "error" in response, response
    return dict(response["error"]["data"])


async def insert(ws: aiohttp.ClientWebSocketResponse, slot: VirtualSlot, card: Any, reader: str) -> None:
    await asyncio.to_thread(slot.insert, card)
    while (await next_notification(ws, "card.inserted", timeout=15))["reader"] != reader:
        pass


async def test_cps_and_vitale_through_the_api(bridge: Application, slots: list[VirtualSlot]) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, bridge, token=bridge.token)
        await rpc(ws, "bridge.info")
        assert data(await rpc(ws, "cps.read"))["code"] == "NO_CARD"
        await insert(ws, slots[0], create_card("gp"), READERS[0])
        await insert(ws, slots[1], make_vitale("famille"), READERS[1])

        read = conforms(bridge, "cps.read", (await rpc(ws, "cps.read", timeout=30))["result"])
        assert read["cardType"] == "CPS" and read["holder"]["lastName"] == "MARTIN"
        assert read["pin"] == {"triesLeft": 3, "triesMax": 3, "blocked": False}
        auth = x509.load_der_x509_certificate(base64.b64decode(read["certificates"]["authentication"]["der"]))

        vitale = conforms(bridge, "vitale.read", (await rpc(ws, "vitale.read", timeout=30))["result"])
        assert len(vitale["beneficiaries"]) >= 2

        # A Vitale card is not a CPS: naming its reader for cps.read is refused clearly.
        wrong = data(await rpc(ws, "cps.read", {"reader": READERS[1]}, timeout=30))
        assert wrong["code"] == "UNSUPPORTED_CARD" and wrong["kind"] == "VITALE2"

        assert (
            data(
                await rpc(
                    ws,
                    "cps.sign",
                    {"data": base64.b64encode(b"x" * 32).decode(), "prehashed": True, "key": "authentication"},
                )
            )["code"]
            == "PIN_REQUIRED"
        )
        bad = data(await rpc(ws, "cps.login", {"pin": "9999"}, timeout=30))
        assert (bad["code"], bad["triesLeft"]) == ("PIN_INCORRECT", 2)
        last = data(await rpc(ws, "cps.login", {"pin": "9999"}, timeout=30))
        assert (last["code"], last["triesLeft"]) == ("PIN_INCORRECT", 1)
        guarded = data(await rpc(ws, "cps.login", {"pin": "1234"}, timeout=30))
        assert guarded["code"] == "PIN_LAST_TRY"
        ok = (await rpc(ws, "cps.login", {"pin": "1234", "allowLastTry": True}, timeout=30))["result"]
        conforms(bridge, "cps.login", ok)
        assert (ok["authenticated"], ok["triesLeft"], ok["triesMax"], len(ok["situations"])) == (True, 3, 3, 2)

        digest = hashlib.sha256(b"document").digest()
        signed = (
            await rpc(
                ws,
                "cps.sign",
                {"data": base64.b64encode(digest).decode(), "prehashed": True, "key": "authentication"},
                timeout=30,
            )
        )["result"]
        conforms(bridge, "cps.sign", signed)
        public = auth.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(base64.b64decode(signed["signature"]), digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

        page = await open_ws(
            session, bridge, origin=f"http://127.0.0.1:{bridge.port}", page_secret=bridge.server.page_secret
        )
        report = conforms(bridge, "diagnostics.report", (await rpc(page, "diagnostics.report", timeout=30))["result"])
        by_name = {r["name"]: r for r in report["readers"]}
        assert by_name[READERS[0]]["card"]["pinTriesLeft"] == 3
        assert by_name[READERS[0]]["card"]["certificateNotAfter"] == auth.not_valid_after_utc.isoformat()
        assert by_name[READERS[1]]["card"]["kind"] == "VITALE2"
        assert "MARTIN" not in str(report)

        assert conforms(bridge, "cps.logout", (await rpc(ws, "cps.logout", timeout=30))["result"]) == {
            "authenticated": False
        }
        await asyncio.to_thread(slots[0].remove)
        await next_notification(ws, "card.removed", timeout=15)
        assert data(await rpc(ws, "cps.read", {"reader": READERS[0]}))["code"] == "NO_CARD"
        await page.close()
        await ws.close()


async def test_concurrent_callers_are_serialised_not_interleaved(bridge: Application, slots: list[VirtualSlot]) -> None:
    async with aiohttp.ClientSession() as session:
        clients = [await open_ws(session, bridge, token=bridge.token) for _ in range(3)]
        await rpc(clients[0], "bridge.info")
        await insert(clients[0], slots[0], create_card("gp"), READERS[0])
        results = await asyncio.gather(*(rpc(ws, "cps.read", timeout=30) for ws in clients))
        # Each read is a whole APDU sequence under the card lock: all three get the same complete answer.
        serials = {r["result"]["serial"] for r in results if "result" in r}
        busy = [r for r in results if "error" in r]
        assert len(serials) == 1
        assert all(r["error"]["data"]["code"] == "CARD_BUSY" for r in busy)
        for ws in clients:
            await ws.close()
