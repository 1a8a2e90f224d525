"""DIRECTE mode through the daemon: `cps.login` over JSON-RPC, then DMP calls signed by that card.

JSON-RPC client -> Application -> PcscCardService (virtual CPS on pcscd) -> DmpService(direct=the card
service) -> DMP simulator over mutual TLS: the card's authentication key does the TLS client auth, its
signature key the VIHF and XAdES; the simulator checks them all.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.api.client import LocalClient
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.monitor import CardInserted, ReaderMonitor
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards import PcscCardService
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover
from tests.conftest import wait_card_state
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim

__all__ = ["dmp_pki", "dmp_sim"]

pytestmark = pytest.mark.pcsc

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"
PATIENT_JSON = {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}


@pytest.fixture
async def daemon(
    slots: list[VirtualSlot], dmp_sim: RunningSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Application]:
    """The daemon as `dmp-bridge run` builds it (real monitor: the card service is the default one)."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    from bridge.paths import data_dir

    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    config = DmpConfig(
        url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value
    )
    app = Application(
        BridgeConfig(port=0, dmp=config), data_dir=data_dir(), approver=FakeApprover(), monitor=ReaderMonitor()
    )
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def test_direct_mode_uses_the_card_logged_in_over_json_rpc(
    daemon: Application, slots: list[VirtualSlot], dmp_pki: TestPki
) -> None:
    assert isinstance(daemon.cards, PcscCardService) and daemon.dmp.direct is daemon.cards
    assert daemon.monitor is not None
    events = daemon.monitor.subscribe()
    await asyncio.to_thread(slots[0].insert, create_card("gp", dmp_pki))
    async with asyncio.timeout(15):
        while not isinstance(await events.get(), CardInserted):
            pass
    async with LocalClient(daemon.port, daemon.token) as client:
        await client.call("dmp.context.set", {"authMode": "DIRECTE", "situation": 2})
        with pytest.raises(BridgeError) as no_login:
            await client.call("dmp.documents.find", {"patient": {"ins": PATIENT.value}})
        assert no_login.value.code is ErrorCode.PIN_REQUIRED

        await client.call("cps.login", {"pin": "1234"})
        submitted = await client.call(
            "dmp.documents.submit",
            {
                "patient": PATIENT_JSON,
                "content": base64.b64encode(PDF).decode(),
                "mimeType": "application/pdf",
                "title": "Compte rendu",
                "typeCode": "11488-4",
            },
        )
        found = (await client.call("dmp.documents.find", {"patient": {"ins": PATIENT.value}}))["documents"]
        assert [d["uniqueId"] for d in found] == [submitted["uniqueId"]]

        # Logged out: DIRECTE mode has no card any more.
        await client.call("cps.logout")
        with pytest.raises(BridgeError) as logged_out:
            await client.call("dmp.documents.find", {"patient": {"ins": PATIENT.value}})
        assert logged_out.value.code is ErrorCode.PIN_REQUIRED
