"""The card service end to end: JSON-RPC client -> Application -> PcscCardService -> pcscd -> vpcd -> virtual cards.

Concurrency, removal mid-operation, PIN rules on every profile, both keys, events, the DMP-facing API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualCard, VirtualSlot
from tests.api_helpers import approved_page, monitor_event, next_notification, open_ws, rpc, running_bridge
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.gated_vicc import GatedVicc
from tests.scripted_card import AtrOnlyCard

__all__ = ["pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.usefixtures("home")]

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
INS_GET_DATA = 0xCB
INS_READ_BINARY = 0xB0


@dataclass
class Daemon:
    """The running daemon, its card service and a subscription to the monitor's events."""

    app: Application
    sessions: PcscCardService
    events: asyncio.Queue[Any]

    async def seen(self, kind: str, reader: str, timeout: float = 15) -> None:
        """Wait for the monitor's CardInserted/CardRemoved on `reader` (the daemon has then seen it too)."""
        await monitor_event(self.events, kind, reader, timeout)

    async def insert(self, slot: VirtualSlot, card: VirtualCard, reader: str) -> None:
        """Insert a virtual card and wait until the daemon knows it."""
        await asyncio.to_thread(slot.insert, card)
        await self.seen("CardInserted", reader)


@asynccontextmanager
async def daemon(busy_wait: float = 3.0, operation_timeout: float = 60.0) -> AsyncIterator[Daemon]:
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    sessions = PcscCardService(monitor, operation_timeout=operation_timeout, status_wait=busy_wait)
    async with running_bridge(BridgeConfig(port=0, card_busy_wait=busy_wait), monitor=monitor, cards=sessions) as app:
        try:
            yield Daemon(app, sessions, monitor.subscribe())
        finally:
            await sessions.close()


@pytest.fixture
async def bridge(slots: list[VirtualSlot]) -> AsyncIterator[Daemon]:
    async with daemon() as d:
        yield d


@pytest.fixture
async def raw(bridge: Daemon) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A token-authenticated WebSocket for checking error data (LocalClient keeps only code and detail)."""
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, bridge.app, token=bridge.app.token)
        yield ws
        await ws.close()


async def error_of(ws: aiohttp.ClientWebSocketResponse, method: str, params: dict[str, Any]) -> dict[str, Any]:
    response = await rpc(ws, method, params, timeout=30)
    assert "error" in response, response
    return dict(response["error"]["data"])


def cert_of(read: dict[str, Any], usage: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(read["certificates"][usage]["der"]))


async def test_cps_read_gp(bridge: Daemon, slots: list[VirtualSlot], pki: TestPki) -> None:
    await bridge.insert(slots[0], create_card("gp", pki), READERS[0])
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        read = await client.call("cps.read")
    assert read["kind"] == "CPS3" and read["cardType"] == "CPS" and read["cardNumber"] == "2600000100"
    assert read["holder"]["lastName"] == "MARTIN" and read["holder"]["nationalId"] == "810012345678"
    assert read["pin"] == {"triesLeft": 3, "triesMax": 3, "blocked": False}
    for usage in ("authentication", "signature"):
        summary = read["certificates"][usage]
        cert = cert_of(read, usage)
        assert summary["notAfter"] == cert.not_valid_after_utc.isoformat()
        assert summary["serialNumber"] == format(cert.serial_number, "X")
        assert "MARTIN" in summary["subject"] and summary["issuer"]
        assert summary["daysLeft"] > 0 and summary["expired"] is False
    assert cert_of(read, "authentication") != cert_of(read, "signature")


async def test_cps_login_pin_rules(
    bridge: Daemon, slots: list[VirtualSlot], raw: Any, pki: TestPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await bridge.insert(slots[0], create_card("gp", pki), READERS[0])
    wrong = await error_of(raw, "cps.login", {"pin": "9999"})
    assert (wrong["code"], wrong["triesLeft"]) == ("PIN_INCORRECT", 2)
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        assert (await client.call("cps.read"))["pin"]["triesLeft"] == 2
        ok = await client.call("cps.login", {"pin": "1234"})
        assert ok["authenticated"] is True and ok["triesLeft"] == 3
        assert [s["activitySector"] for s in ok["situations"]] == ["SA07", "SA05"]
        assert ok["situation"] == ok["situations"][0]["index"]
        assert await client.call("cps.logout") == {"authenticated": False}
        with pytest.raises(BridgeError) as refused:
            await client.call("cps.sign", {"data": base64.b64encode(b"doc").decode(), "key": "authentication"})
        assert refused.value.code is ErrorCode.PIN_REQUIRED
    assert "CPS login: 2 situation(s)" in caplog.text
    # The PINs as a quoted value or as VERIFY data in an APDU trace; the holder's name and identifier.
    for secret in ("'1234'", '"1234"', "31323334", "'9999'", '"9999"', "39393939", "MARTIN", "810012345678"):
        assert secret not in caplog.text.replace(" ", "")


async def test_last_try_and_blocked(bridge: Daemon, slots: list[VirtualSlot], raw: Any, pki: TestPki) -> None:
    await bridge.insert(slots[0], create_card("last-try", pki), READERS[0])
    await bridge.insert(slots[1], create_card("blocked", pki), READERS[1])
    guarded = await error_of(raw, "cps.login", {"pin": "1234", "reader": READERS[0]})
    assert (guarded["code"], guarded["triesLeft"]) == ("PIN_LAST_TRY", 1)
    read = (await rpc(raw, "cps.read", {"reader": READERS[0]}, timeout=30))["result"]
    assert read["pin"]["triesLeft"] == 1  # nothing was sent to the card
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        ok = await client.call("cps.login", {"pin": "1234", "reader": READERS[0], "allowLastTry": True})
        assert ok["authenticated"] is True and len(ok["situations"]) == 2
        assert (await client.call("cps.read", {"reader": READERS[0]}))["pin"]["triesLeft"] == 3
        blocked_read = await client.call("cps.read", {"reader": READERS[1]})
        assert blocked_read["pin"] == {"triesLeft": 0, "triesMax": 3, "blocked": True}
    blocked = await error_of(raw, "cps.login", {"pin": "1234", "reader": READERS[1], "allowLastTry": True})
    assert (blocked["code"], blocked["triesLeft"]) == ("PIN_BLOCKED", 0)


async def test_cps_sign_with_both_keys(bridge: Daemon, slots: list[VirtualSlot], raw: Any, pki: TestPki) -> None:
    await bridge.insert(slots[0], create_card("gp", pki), READERS[0])
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        read = await client.call("cps.read")
        await client.call("cps.login", {"pin": "1234"})
        message = b"<document>contenu</document>" * 40
        b64 = base64.b64encode(message).decode()
        auth = await client.call("cps.sign", {"data": b64, "key": "authentication", "digestAlgorithm": "SHA-384"})
        digest = hashlib.sha256(message).digest()
        auth_pre = await client.call(
            "cps.sign", {"data": base64.b64encode(digest).decode(), "key": "authentication", "prehashed": True}
        )
        sign = await client.call("cps.sign", {"data": base64.b64encode(message).decode(), "key": "signature"})
    auth_public, sign_public = cert_of(read, "authentication").public_key(), cert_of(read, "signature").public_key()
    assert isinstance(auth_public, rsa.RSAPublicKey) and isinstance(sign_public, rsa.RSAPublicKey)
    auth_public.verify(base64.b64decode(auth["signature"]), message, padding.PKCS1v15(), hashes.SHA384())
    auth_public.verify(base64.b64decode(auth_pre["signature"]), digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    sign_public.verify(base64.b64decode(sign["signature"]), message, padding.PKCS1v15(), hashes.SHA256())
    assert sign["certificate"] == read["certificates"]["signature"]["der"]
    # The signature key needs the message (the card finishes the hash): a digest is refused before the card.
    refused = await error_of(
        raw, "cps.sign", {"data": base64.b64encode(digest).decode(), "key": "signature", "prehashed": True}
    )
    assert (refused["code"], refused["detail"]) == ("INVALID_PARAMS", "prehashed: signature-key-needs-message")


async def test_vitale_and_unsupported_cards(
    bridge: Daemon, slots: list[VirtualSlot], raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await bridge.insert(slots[1], make_card("vitale", "famille"), READERS[1])
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        vitale = await client.call("vitale.read")
    assert len(vitale["beneficiaries"]) == 3
    assert "Vitale card read: 3 beneficiaries" in caplog.text  # the logs were captured...
    for person in vitale["beneficiaries"]:  # ...and hold nothing personal, even at DEBUG
        for secret in (person["cardNir"], person["lastName"], person["firstName"]):
            assert secret not in caplog.text
    assert sum(1 for b in vitale["beneficiaries"] if b["isInsured"]) == 1
    wrong = await error_of(raw, "cps.read", {"reader": READERS[1]})
    assert (wrong["code"], wrong["kind"]) == ("UNSUPPORTED_CARD", "VITALE2")
    await bridge.insert(slots[0], make_card("generic"), READERS[0])
    unknown = await error_of(raw, "vitale.read", {"reader": READERS[0]})
    assert (unknown["code"], unknown["kind"]) == ("UNSUPPORTED_CARD", "UNKNOWN")
    assert unknown["atr"].replace(" ", "") == "3B8B800100444D502D42524944474561"
    assert unknown["atr"] in unknown["detail"]  # the note asks to send the ATR to the helpdesk


@pytest.mark.parametrize(
    ("atr", "kind", "words"),
    [
        ("3B8F800100 31B86404B0ECC17394018082 90000E".replace(" ", ""), "CPS3_CONTACTLESS", "sans contact"),
    ],
)
async def test_recognised_but_unsupported_cards_say_why(
    bridge: Daemon, slots: list[VirtualSlot], raw: Any, atr: str, kind: str, words: str
) -> None:
    await bridge.insert(slots[0], AtrOnlyCard(atr), READERS[0])
    refused = await error_of(raw, "cps.read", {"reader": READERS[0]})
    assert (refused["code"], refused["kind"]) == ("UNSUPPORTED_CARD", kind)
    assert words in refused["detail"]
    status = await bridge.sessions.card_status(READERS[0])
    assert status is not None and (status["kind"], status["supported"]) == (kind, False)


async def _read_log(vicc: GatedVicc, client: LocalClient) -> list[bytes]:
    """The APDUs of one cps.read, once the card's PKCS#15 directory is known (read once per session)."""
    await client.call("cps.read")
    vicc.clear()
    await client.call("cps.read")
    return vicc.log()


async def test_concurrent_callers_wait_in_turn(slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki) -> None:
    async with daemon(busy_wait=30) as d:
        vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
        try:
            await d.seen("CardInserted", READERS[0])
            async with (
                LocalClient(d.app.port, d.app.token) as first,
                LocalClient(d.app.port, d.app.token) as second,
            ):
                one_read = await _read_log(vicc, first)
                vicc.clear()
                vicc.arm(INS_GET_DATA)  # the first read stops at its PIN counter, in the middle of its APDUs
                a = asyncio.create_task(first.call("cps.read"))
                assert await asyncio.to_thread(vicc.held.wait, 15)
                b = asyncio.create_task(second.call("cps.read"))
                done, _ = await asyncio.wait({a, b}, timeout=0.5)
                assert not done  # the second caller waits for the card rather than failing or interleaving
                vicc.release()
                ra, rb = await asyncio.wait_for(asyncio.gather(a, b), 30)
            assert ra == rb
            assert vicc.log() == one_read + one_read  # whole sequences, one after the other
        finally:
            vicc.close()


async def test_second_caller_gets_card_busy_after_the_bound(
    slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki
) -> None:
    async with daemon(busy_wait=0.3) as d:
        vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
        try:
            await d.seen("CardInserted", READERS[0])
            async with aiohttp.ClientSession() as session:
                first = await open_ws(session, d.app, token=d.app.token)
                second = await open_ws(session, d.app, token=d.app.token)
                await rpc(first, "cps.read", timeout=30)  # reads the PKCS#15 directory once
                vicc.clear()
                await rpc(first, "cps.read", timeout=30)
                one_read = vicc.log()
                vicc.clear()
                vicc.arm(INS_GET_DATA)
                a = asyncio.create_task(rpc(first, "cps.read", timeout=30))
                assert await asyncio.to_thread(vicc.held.wait, 15)
                busy = await rpc(second, "cps.read", timeout=10)
                assert busy["error"]["data"]["code"] == "CARD_BUSY"
                assert busy["error"]["data"]["waitSeconds"] == 0.3
                assert vicc.log()[-1][1] == INS_GET_DATA  # nothing of the refused call reached the card
                # Diagnostics (outside the API's lock) do not wait behind it either, nor queue APDUs.
                with pytest.raises(BridgeError) as status_busy:
                    await d.sessions.card_status(READERS[0])
                assert status_busy.value.code is ErrorCode.CARD_BUSY
                vicc.release()
                assert "result" in await a
                assert vicc.log() == one_read
                status = await d.sessions.card_status(READERS[0])
                assert status is not None and status["pinTriesLeft"] == 3
                await first.close()
                await second.close()
        finally:
            vicc.close()


async def test_card_removed_mid_operation(slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki) -> None:
    async with daemon() as d:
        vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
        try:
            await d.seen("CardInserted", READERS[0])
            async with LocalClient(d.app.port, d.app.token) as client:
                await client.call("cps.login", {"pin": "1234"})
                vicc.arm(INS_READ_BINARY)
                call = asyncio.create_task(client.call("cps.read"))
                assert await asyncio.to_thread(vicc.held.wait, 15)
                vicc.yank()
                with pytest.raises(BridgeError) as removed:
                    await asyncio.wait_for(call, 10)  # never a hang
                assert removed.value.code is ErrorCode.CARD_REMOVED
                await d.seen("CardRemoved", READERS[0])
                with pytest.raises(BridgeError) as absent:
                    await client.call("cps.read", {"reader": READERS[0]})
                assert absent.value.code is ErrorCode.NO_CARD
                with pytest.raises(BridgeError) as logged_out:
                    await d.sessions.practitioner(READERS[0])
                assert logged_out.value.code is ErrorCode.PIN_REQUIRED
                # A new card in the same reader starts a fresh session.
                await d.insert(slots[0], create_card("gp2", pki), READERS[0])
                assert (await client.call("cps.read"))["cardNumber"] != "2600000100"
        finally:
            vicc.close()


async def test_wedged_card_times_out_and_the_next_call_starts_afresh(
    slots: list[VirtualSlot], slot_ports: list[int], pki: TestPki
) -> None:
    async with daemon(operation_timeout=1.0) as d:
        vicc = GatedVicc(create_card("gp", pki), slot_ports[0])
        try:
            await d.seen("CardInserted", READERS[0])
            async with LocalClient(d.app.port, d.app.token) as client:
                vicc.arm(INS_GET_DATA)  # the card never answers, but stays in the reader
                with pytest.raises(BridgeError) as wedged:
                    await asyncio.wait_for(client.call("cps.read"), 10)
                assert wedged.value.code is ErrorCode.TIMEOUT
                assert await asyncio.to_thread(vicc.held.wait, 15)  # the worker is still stuck there
                vicc.release()
                assert (await client.call("cps.read"))["cardNumber"] == "2600000100"
        finally:
            vicc.close()


async def test_card_events_reach_approved_connections_only(
    bridge: Daemon, slots: list[VirtualSlot], pki: TestPki
) -> None:
    approved, stranger = "http://localhost:8123", "http://localhost:8124"
    key = approved_page(bridge.app, approved)
    async with aiohttp.ClientSession() as session:
        good = await open_ws(session, bridge.app, origin=approved, key=key)
        bad = await open_ws(session, bridge.app, origin=stranger)
        await rpc(good, "bridge.info")
        await rpc(bad, "bridge.info")
        await asyncio.to_thread(slots[0].insert, create_card("gp", pki))
        inserted = await next_notification(good, "card.inserted", timeout=15)
        assert inserted["reader"] == READERS[0] and inserted["atr"] == "3BAC00402A001225006480000310009000"
        assert (await rpc(good, "cps.read", timeout=30))["result"]["cardType"] == "CPS"
        await asyncio.to_thread(slots[0].remove)
        assert (await next_notification(good, "card.removed", timeout=15))["reader"] == READERS[0]
        # The stranger's frames: anything queued for it before this answer would have arrived first.
        notes: list[dict[str, Any]] = []
        await rpc(bad, "bridge.info", notes=notes)
        assert not [n for n in notes if str(n.get("method", "")).startswith(("card.", "readers."))]
        denied = await rpc(bad, "cps.read")
        assert denied["error"]["data"]["code"] == "ORIGIN_NOT_APPROVED"
        await good.close()
        await bad.close()


async def test_practitioner_for_the_dmp_service(bridge: Daemon, slots: list[VirtualSlot], pki: TestPki) -> None:
    await bridge.insert(slots[0], create_card("gp", pki), READERS[0])
    with pytest.raises(BridgeError) as before:
        await bridge.sessions.practitioner(READERS[0])
    assert before.value.code is ErrorCode.PIN_REQUIRED
    async with LocalClient(bridge.app.port, bridge.app.token) as client:
        login = await client.call("cps.login", {"pin": "1234"})
        card = await bridge.sessions.practitioner()
        assert card.reader == READERS[0] and len(card.situations) == 2
        assert card.situation.index == login["situations"][0]["index"]
        assert card.practitioner.structure_id == login["situations"][0]["structureId"]
        assert card.sign_chain == (card.info.sign_certificate,)
        assert "MARTIN" not in repr(card)
        second = bridge.sessions.select_situation(READERS[0], login["situations"][1]["index"])
        assert (await bridge.sessions.practitioner(READERS[0])).practitioner.activity_sector == second.activity_sector
        # The keys block on the card: used from a worker thread, as signxml and the TLS code do.
        message = b"VIHF assertion"
        signature = await asyncio.to_thread(card.sign_key.sign, message, padding.PKCS1v15(), hashes.SHA256())
        card.sign_key.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        tls = await asyncio.to_thread(card.auth_key.sign, b"handshake", padding.PKCS1v15(), hashes.SHA256())
        card.auth_key.public_key().verify(tls, b"handshake", padding.PKCS1v15(), hashes.SHA256())
        await client.call("cps.logout")
    with pytest.raises(BridgeError) as after:
        await bridge.sessions.practitioner(READERS[0])
    assert after.value.code is ErrorCode.PIN_REQUIRED


async def test_card_status_for_diagnostics(bridge: Daemon, slots: list[VirtualSlot], pki: TestPki) -> None:
    await bridge.insert(slots[0], create_card("gp", pki), READERS[0])
    await bridge.insert(slots[1], make_card("vitale", "famille"), READERS[1])
    cps = await bridge.sessions.card_status(READERS[0])
    vitale = await bridge.sessions.card_status(READERS[1])
    assert cps is not None and vitale is not None
    assert (cps["kind"], cps["pinTriesLeft"], cps["loggedIn"]) == ("CPS3", 3, False)
    assert cps["certificateNotAfter"][:2] == "20"
    assert vitale["kind"] == "VITALE2"
    assert "MARTIN" not in str(cps) and "nir" not in str(vitale).lower()
