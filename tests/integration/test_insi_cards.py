"""INSi with real cards on the real pcscd: the virtual CPS authenticates TLS and signs the INSi assertion
(CPS mode), and `ins.search` from the virtual Vitale card "famille" — the insured and his spouse by their
own NIR, their daughter (on her father's NIR) by her traits, never with the NIR on the card."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.crypto.pki import TestPki
from bridge.dmp.codes import InsOid
from bridge.paths import data_dir
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.dmp_config import DmpConfig
from bridge.service.insi_config import InsiConfig
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.sim import cps3
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.api_helpers import FakeApprover, next_notification, open_ws, rpc
from tests.conftest import wait_card_state
from tests.dmp_fixtures import RunningSim, dmp_pki, dmp_sim  # noqa: F401
from tests.insi_fixtures import IDAM, RunningInsi, insi_sim  # noqa: F401

pytestmark = pytest.mark.pcsc

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
REPO = Path(__file__).resolve().parents[2]
FATHER_NIR = "178037511501201"


@pytest.fixture
async def card_daemon(
    slots: list[VirtualSlot],
    dmp_sim: RunningSim,  # noqa: F811
    insi_sim: RunningInsi,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Application]:
    """The daemon with the real reader monitor and card service; [insi] in CPS mode on the simulator."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path / "home"))
    for reader in READERS:
        await asyncio.to_thread(wait_card_state, reader, False)
    monitor = ReaderMonitor()
    dmp = DmpConfig(url=dmp_sim.url, ca_bundle=dmp_sim.ca_file, server_name="localhost", ins_oid=InsOid.NIR_TEST.value)
    insi = InsiConfig(url=insi_sim.url, ca_bundle=insi_sim.ca_file, server_name="localhost", idam=IDAM)
    app = Application(
        BridgeConfig(port=0, dmp=dmp, insi=insi),
        data_dir=data_dir(),
        approver=FakeApprover(),
        monitor=monitor,
        cards=PcscCardService(monitor),
    )
    await app.start(hosts=("127.0.0.1",))
    try:
        yield app
    finally:
        await app.stop()


async def _insert_seen(ws: aiohttp.ClientWebSocketResponse, slot: VirtualSlot, card: Any, reader: str) -> None:
    await asyncio.to_thread(slot.insert, card)
    while (await next_notification(ws, "card.inserted", timeout=15))["reader"] != reader:
        pass


def _result(answer: dict[str, Any]) -> Any:
    assert "result" in answer, answer
    return answer["result"]


async def test_cps_signs_the_insi_assertion_and_vitale_beneficiaries_get_their_own_ins(
    card_daemon: Application,
    slots: list[VirtualSlot],
    insi_sim: RunningInsi,  # noqa: F811
    dmp_pki: TestPki,  # noqa: F811
) -> None:
    async with aiohttp.ClientSession() as session:
        ws = await open_ws(session, card_daemon, token=card_daemon.token)
        await rpc(ws, "bridge.info")
        await _insert_seen(ws, slots[0], cps3.create_card("gp", dmp_pki), READERS[0])
        await _insert_seen(ws, slots[1], make_card("vitale", "famille"), READERS[1])
        laurence = {"birthName": "PATB-QUATRE", "firstNames": "LAURENCE", "sex": "F", "birthDate": "1907-05-25"}

        # CPS mode needs the card logged in.
        refused = await rpc(ws, "ins.search", {"traits": laurence, "reader": READERS[0]}, timeout=30)
        assert refused["error"]["data"]["code"] == "PIN_REQUIRED"
        _result(await rpc(ws, "cps.login", {"pin": "1234", "reader": READERS[0]}, timeout=30))
        found = _result(await rpc(ws, "ins.search", {"traits": laurence, "reader": READERS[0]}, timeout=60))
        assert found["identity"]["ins"] == "207058575627097"
        assert b'NameQualifier="CPS"' in insi_sim.sim.requests[-1]  # the card signed an assertion

        card = _result(await rpc(ws, "vitale.read", {"reader": READERS[1]}, timeout=30))
        assert [b["hasOwnIns"] for b in card["beneficiaries"]] == [True, True, False]
        assert card["beneficiaries"][2]["cardNir"] + card["beneficiaries"][2]["cardNirKey"] == FATHER_NIR

        cps = {"reader": READERS[0]}
        father = _result(await rpc(ws, "ins.search", {"vitale": {"beneficiary": 0}, **cps}, timeout=60))
        assert (father["source"], father["identity"]["ins"]) == ("vitale", FATHER_NIR)
        assert b"RECVITALE" in insi_sim.sim.requests[-1]
        mother = _result(await rpc(ws, "ins.search", {"vitale": {"beneficiary": 1}, **cps}, timeout=60))
        assert (mother["identity"]["ins"], mother["identity"]["birthDate"]) == ("281209935201476", "1981-00-00")

        # The daughter: no own NIR on the card. Without her sex the bridge cannot search by traits...
        no_sex = await rpc(ws, "ins.search", {"vitale": {"beneficiary": 2}, **cps}, timeout=60)
        assert no_sex["error"]["data"]["code"] == "INVALID_PARAMS"
        assert no_sex["error"]["data"]["detail"].startswith("sex")
        # ...with it, her own INS, never her father's NIR.
        lea = _result(await rpc(ws, "ins.search", {"vitale": {"beneficiary": 2, "sex": "F"}, **cps}, timeout=60))
        assert lea["source"] == "traits"
        assert lea["identity"]["ins"] == "212097511504349" != FATHER_NIR
        assert FATHER_NIR[:13].encode() not in insi_sim.sim.requests[-1]

    # The CLI: the same search for LEA, CPS mode with --pin-stdin, through the daemon.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", "ins", "search", "--vitale", "2", "--sex", "F",
        "--vitale-reader", READERS[1], "--auth", "cps", "--reader", READERS[0], "--pin-stdin", "--json",
        "--port", str(card_daemon.port), cwd=REPO, env=dict(os.environ),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(b"1234\n"), 120)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["identity"]["ins"] == "212097511504349"
