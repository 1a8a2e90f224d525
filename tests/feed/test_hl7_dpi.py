"""A DPI-like client against the bridge's MLLP listener, the outbox worker and the real DMP simulator:
ORU and MDM messages get their ACK AA once durably queued, then a feeding acknowledgement (ZAM^Z01) with
the DMP's outcome, delivered until the DPI acknowledges it; malformed HL7 gets AE and changes nothing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.feed.hl7_intake import FeedingAckSender, MllpListener, feeding_ack
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_dmp import DmpFeedSender
from bridge.feed.outbox_model import JobState
from bridge.feed.outbox_worker import OutboxWorker
from bridge.feed.retry_policy import RetryPolicy
from bridge.service.dmp import DmpService
from tests.dmp_fixtures import RunningSim
from tests.feed.dpi import DpiAckServer, mdm, oru, send
from tests.feed.support import cda, feed_dmp_config, settled, unique_id

FAST = RetryPolicy(base=0.05, cap=0.2)


@dataclass
class Bridge:
    outbox: Outbox
    listener: MllpListener
    worker: OutboxWorker
    acks: FeedingAckSender
    dpi: DpiAckServer


@pytest.fixture
async def bridge(dmp_sim: RunningSim, dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[Bridge]:
    """Listener, worker and acknowledgement sender, the DPI's acknowledgement endpoint, the simulator."""
    service = DmpService(feed_dmp_config(dmp_sim.url, dmp_sim.ca_file, dmp_pki))
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    listener = MllpListener(outbox)
    await listener.start()
    worker = OutboxWorker(outbox, DmpFeedSender(service), policy=FAST, ack=feeding_ack, rng=random.Random(2))
    async with DpiAckServer() as dpi:
        acks = FeedingAckSender(outbox, "127.0.0.1", dpi.port, policy=FAST)
        try:
            yield Bridge(outbox, listener, worker, acks, dpi)
        finally:
            await acks.stop()
            await worker.stop()
            await listener.stop()
            await service.aclose()
            await outbox.aclose()


def _stored(sim: RunningSim, uid: str) -> int:
    db = sim.sim.store._db
    return int(db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (uid,)).fetchone()[0])


async def test_oru_and_mdm_are_acknowledged_then_fed_and_acknowledged_again(
    bridge: Bridge,
    dmp_sim: RunningSim,
) -> None:
    u1, u2 = unique_id(1, 20), unique_id(2, 20)
    acks = await send(bridge.listener.port, oru("ORU-1", cda(u1)), mdm("MDM-1", cda(u2), u2))
    assert [str(a.extract_field("MSA", 1, 1)) for a in acks] == ["AA", "AA"]
    assert [str(a.extract_field("MSA", 1, 2)) for a in acks] == ["ORU-1", "MDM-1"]
    assert str(acks[1].extract_field("MSH", 1, 12)) == "2.6"
    # AA means durably queued: the jobs exist before any worker runs.
    assert bridge.outbox.store.counts()["queued"] == 2
    bridge.worker.start()
    bridge.acks.start()
    await settled(bridge.outbox, lambda: bridge.outbox.store.ack_counts()["delivered"] == 2)
    assert bridge.dpi.outcomes() == {"ORU-1": "Y", "MDM-1": "Y"}
    assert (_stored(dmp_sim, u1), _stored(dmp_sim, u2)) == (1, 1)
    # contentTypeCode of each lot from PV1-2 (mapping.md): O (consultation) → 07, I (hospitalisation) → 03.
    lots = [bytes(r[0]) for r in dmp_sim.sim.store._db.execute("SELECT metadata FROM submission_sets")]
    codes = sorted(code for lot in lots for code in (b"03", b"07") if b'nodeRepresentation="' + code + b'"' in lot)
    assert codes == [b"03", b"07"]


async def test_a_message_sent_again_is_not_fed_twice(bridge: Bridge, dmp_sim: RunningSim) -> None:
    uid = unique_id(3, 20)
    message = oru("ORU-2", cda(uid))
    first = await send(bridge.listener.port, message)
    again = await send(bridge.listener.port, message)  # the DPI never saw the first ACK
    assert [str(a.extract_field("MSA", 1, 1)) for a in first + again] == ["AA", "AA"]
    assert bridge.outbox.store.counts()["queued"] == 1
    bridge.worker.start()
    bridge.acks.start()
    await settled(bridge.outbox, lambda: bridge.outbox.store.ack_counts()["delivered"] == 1)
    assert _stored(dmp_sim, uid) == 1


async def test_malformed_hl7_gets_ae_and_changes_nothing(bridge: Bridge) -> None:
    bad_version = oru("BAD-1", cda(unique_id(4, 20)), version="2.3")
    not_hl7 = b"GET / HTTP/1.1\r\n\r\n"
    acks = await send(bridge.listener.port, bad_version, not_hl7)
    assert [str(a.extract_field("MSA", 1, 1)) for a in acks] == ["AE", "AE"]
    assert str(acks[0].extract_field("MSA", 1, 2)) == "BAD-1"
    assert str(acks[0].extract_field("ERR", 1, 3, 1, 1)) == "203"
    assert "2.5" in str(acks[0].extract_field("ERR", 1, 8))
    assert sum(bridge.outbox.store.counts().values()) == 0


async def test_dmp_refusal_is_acknowledged_with_n_and_the_dmp_code(bridge: Bridge) -> None:
    uid = unique_id(5, 20)
    await send(bridge.listener.port, oru("ORU-3", cda(uid), ins="299999999999999"))
    bridge.worker.start()
    bridge.acks.start()
    await settled(bridge.outbox, lambda: bridge.outbox.store.ack_counts()["delivered"] == 1)
    assert bridge.dpi.outcomes() == {"ORU-3": "N"}
    zam = bridge.dpi.received[-1]
    assert str(zam.extract_field("ERR", 1, 5, 1, 3)) == "DMP_ERROR_CODE"
    assert bridge.outbox.store.counts()[JobState.FAILED.value] == 1


async def test_feeding_acknowledgement_is_retried_until_the_dpi_takes_it(bridge: Bridge) -> None:
    uid = unique_id(6, 20)
    bridge.dpi.refuse = True
    await send(bridge.listener.port, oru("ORU-4", cda(uid)))
    bridge.worker.start()
    bridge.acks.start()
    store = bridge.outbox.store
    await settled(bridge.outbox, lambda: store.counts()["sent"] == 1)
    for _ in range(2):  # two refused deliveries: it was tried again
        await asyncio.wait_for(bridge.dpi.refused.wait(), 30)
        bridge.dpi.refused.clear()
    assert store.ack_counts() == {"delivered": 0, "pending": 1}
    bridge.dpi.refuse = False
    await asyncio.wait_for(bridge.dpi.changed.wait(), 30)
    assert bridge.dpi.outcomes() == {"ORU-4": "Y"}


async def test_replacement_and_deletion_go_through_the_queue_in_order(bridge: Bridge, dmp_sim: RunningSim) -> None:
    """MDM^T02 then MDM^T10 (RPLC) then ORU with OBX-11 D, sent together: applied in that order."""
    first, second = unique_id(7, 20), unique_id(8, 20)
    messages = [
        mdm("MDM-10", cda(first), first),
        mdm("MDM-11", cda(second, seed=1), second, event="T10", replaces=first),
        oru("ORU-12", cda(second, seed=1), status="D"),
    ]
    acks = await send(bridge.listener.port, *messages)
    assert [str(a.extract_field("MSA", 1, 1)) for a in acks] == ["AA", "AA", "AA"]
    bridge.worker.start()
    bridge.acks.start()
    await settled(bridge.outbox, lambda: bridge.outbox.store.ack_counts()["delivered"] == 3)
    assert bridge.dpi.outcomes() == {"MDM-10": "Y", "MDM-11": "Y", "ORU-12": "Y"}
    status = {
        uid: row[0]
        for uid in (first, second)
        for row in [dmp_sim.sim.store._db.execute("SELECT status FROM entries WHERE unique_id=?", (uid,)).fetchone()]
    }
    assert status[first].endswith("Deprecated") and status[second].endswith("Deleted")
