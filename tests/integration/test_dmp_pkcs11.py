"""DIRECTE mode end to end through the official Cryptolib: the daemon picks the PKCS#11 backend by itself.

The daemon is built as `dmp-bridge run` builds it (the real monitor, no card service handed in), with
`[cards] cps_backend = "pkcs11"` and the Cryptolib laid over its folders in the tests' private mount
namespace (skips where it cannot be). A virtual CPS3 logs in over JSON-RPC; the Cryptolib then signs
the TLS handshake (authentication key, CKM_RSA_PKCS), the VIHF and the XAdES (signature key,
CKM_SHA256_RSA_PKCS), and the DMP simulator, over mutual TLS, verifies them and stores the document.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Application
from bridge.cards.pkcs11_module import load_module
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.paths import data_dir
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.cards_config import CardsConfig
from bridge.service.dmp_config import DmpConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim import cps3, cps4
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover, next_notification, open_ws, rpc
from tests.conftest import wait_card_state
from tests.cryptolib_fixtures import cryptolib, cryptolib_install
from tests.cryptolib_harness import CryptolibInstall
from tests.dmp_fixtures import PATIENT, RunningSim, dmp_pki, dmp_sim

__all__ = ["cryptolib", "cryptolib_install", "dmp_pki", "dmp_sim"]

READER = "Virtual PCD 00 00"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 32 + b"\n%%EOF\n"
PATIENT_JSON = {"ins": PATIENT.value, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}
WHO = {"ins": PATIENT.value}


@pytest.fixture
async def pkcs11_daemon(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,
    cryptolib: CryptolibInstall,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Application]:
    """The daemon as `run` builds it, its [cards] table requiring the Cryptolib, its [dmp] table on the simulator."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    await asyncio.to_thread(wait_card_state, READER, False)
    dmp = DmpConfig(url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value)
    config = BridgeConfig(port=0, dmp=dmp, cards=CardsConfig(cps_backend="pkcs11", pkcs11_module=cryptolib.module))
    app = Application(config, data_dir=data_dir(), approver=FakeApprover(), monitor=ReaderMonitor())
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()
        # The card leaves after the daemon: tell the module, shared by this process, for the next test's card.
        slots[0].remove()
        await asyncio.to_thread(wait_card_state, READER, False)
        load_module(cryptolib.module).notice_removal(READER)


def _result(answer: dict[str, Any]) -> Any:
    assert "result" in answer, answer
    return answer["result"]


@pytest.mark.pcsc
@pytest.mark.cryptolib
@pytest.mark.parametrize("generation", ["CPS3", "CPS4"])
async def test_dmp_flow_through_the_cryptolib(
    pkcs11_daemon: Application, slots: list[VirtualSlot], dmp_pki: TestPki, dmp_sim: RunningSim, generation: str
) -> None:
    cards = pkcs11_daemon.cards
    assert isinstance(cards, PcscCardService) and cards.cps_backend.name == "pkcs11"
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, pkcs11_daemon, token=pkcs11_daemon.token)
        await rpc(ws, "bridge.info")
        create_card = cps4.create_card if generation == "CPS4" else cps3.create_card
        await asyncio.to_thread(slots[0].insert, create_card("gp", dmp_pki))
        while (await next_notification(ws, "card.inserted", timeout=15))["reader"] != READER:
            pass
        read = _result(await rpc(ws, "cps.read", {"reader": READER}, timeout=30))
        assert (read["backend"], read["generation"]) == ("pkcs11", generation)
        _result(await rpc(ws, "cps.login", {"pin": "1234", "reader": READER}, timeout=30))
        _result(await rpc(ws, "dmp.context.set", {"authMode": "DIRECTE", "reader": READER, "situation": 0}))

        params = {
            "patient": PATIENT_JSON,
            "content": base64.b64encode(PDF).decode(),
            "mimeType": "application/pdf",
            "title": "CR",
            "typeCode": "11488-4",
            "insQualified": True,
        }
        uid = _result(await rpc(ws, "dmp.documents.submit", params, timeout=60))["uniqueId"]
        found = _result(await rpc(ws, "dmp.documents.find", {"patient": WHO}, timeout=30))["documents"]
        assert [(d["uniqueId"], d["authorId"]) for d in found] == [(uid, "810012345678")]
        got = _result(await rpc(ws, "dmp.documents.get", {"patient": WHO, "uniqueId": uid}, timeout=30))
        assert base64.b64decode(got["body"]) == PDF
        await ws.close()
    # The simulator accepted the TLS client certificate, the VIHF and the XAdES signed by the Cryptolib,
    # and stored the document under the card holder's name.
    stored = dmp_sim.sim.store.entries_by_unique_id(uid)
    assert [(e.patient, e.author_id) for e in stored] == [(PATIENT.value, "810012345678")]
    content = dmp_sim.sim.store.content(uid)
    assert content is not None and content[1] == base64.b64decode(got["content"])
