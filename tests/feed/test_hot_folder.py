"""The hot folder with the worker and the real simulator: a CDA alone, a PDF with its JSON sidecar, each
taken once and moved to done/ with its result; a broken file goes to failed/ with the French reason;
a PDF whose sidecar is not there yet is left alone."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.feed.hot_folder import HotFolder
from bridge.feed.intake import unique_id_maker
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_dmp import DmpFeedSender
from bridge.feed.outbox_worker import OutboxWorker
from bridge.feed.retry_policy import RetryPolicy
from bridge.service.dmp import DmpService
from tests.dmp_fixtures import PATIENT, RunningSim
from tests.feed.support import cda, feed_dmp_config, unique_id


@pytest.fixture
async def folder(dmp_sim: RunningSim, dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[tuple[Outbox, HotFolder]]:
    """A hot folder, the outbox and its worker."""
    service = DmpService(feed_dmp_config(dmp_sim.url, dmp_sim.ca_file, dmp_pki))
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    worker = OutboxWorker(outbox, DmpFeedSender(service), policy=RetryPolicy(0.05, 0.2), rng=random.Random(3))
    hot = HotFolder(outbox, tmp_path / "depot", new_uid=unique_id_maker("1.2.250.1.999.7.1"), interval=0.05)
    worker.start()
    try:
        yield outbox, hot
    finally:
        await hot.stop()
        await worker.stop()
        await service.aclose()
        await outbox.aclose()


def _drop(root: Path, name: str, data: bytes) -> None:
    part = root / f".{name}.part"
    part.write_bytes(data)
    os.replace(part, root / name)


async def test_cda_and_pdf_are_fed_once_and_filed(folder: tuple[Outbox, HotFolder], dmp_sim: RunningSim) -> None:
    outbox, hot = folder
    root = hot.root
    uid = unique_id(1, 50)
    _drop(root, "cr.xml", cda(uid))
    sidecar = {
        "patient": {"ins": PATIENT.value, "oid": PATIENT.oid.value, "lastName": "MARTIN", "firstName": "JEAN",
                    "gender": "M", "birthDate": "19780314", "insQualified": True},
        "title": "Compte rendu", "typeCode": "11488-4", "uniqueId": unique_id(2, 50),
    }  # fmt: skip
    _drop(root, "scan.pdf", b"%PDF-1.4\n" + b"x" * 5000 + b"\n%%EOF\n")  # no sidecar yet: left alone
    await hot.scan()
    assert (root / "scan.pdf").exists()
    _drop(root, "scan.json", json.dumps(sidecar).encode())
    _drop(root, "broken.xml", b"<ClinicalDocument/>")
    filed: dict[str, str] = {}
    all_filed = asyncio.Event()

    def seen(name: str, where: str) -> None:
        filed[name] = where
        if len(filed) == 3:
            all_filed.set()

    hot.add_listener(seen)
    hot.start()
    await asyncio.wait_for(all_filed.wait(), 60)
    assert filed == {"cr.xml": "done", "scan.pdf": "done", "broken.xml": "failed"}
    done = json.loads((root / "done" / "cr.xml.result.json").read_text("utf-8"))
    assert done["state"] == "sent" and done["uniqueId"] == uid
    assert (root / "done" / "scan.json").exists()
    refused = json.loads((root / "failed" / "broken.xml.result.json").read_text("utf-8"))
    assert refused["state"] == "refused" and "déposez" in refused["message_fr"]
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == []
    db = dmp_sim.sim.store._db
    for u in (uid, unique_id(2, 50)):
        assert db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (u,)).fetchone()[0] == 1
    assert outbox.store.counts()["sent"] == 2
