"""The simulator's fault knobs, read from their file while it runs: 5xx and timeouts are not processed (and
the outbox's policy calls them transient), a dropped answer is processed (DMP_OUTCOME_UNKNOWN, stored)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.dmp.client import DmpClient
from bridge.dmp.context import NewDocument
from bridge.errors import BridgeError, ErrorCode
from bridge.feed.retry_policy import Verdict, classify, may_have_landed
from bridge.sim.dmp import DmpSimulator, SimConfig
from bridge.sim.dmp.store import PatientRow
from tests.dmp_fixtures import (
    PATIENT,
    establishment_credentials,
    indirect_practitioner,
    server_files,
    settings_for,
)
from tests.feed.support import LOINC_CR, cda, unique_id


@pytest.fixture
async def knobs_sim(dmp_pki: TestPki, tmp_path: Path) -> AsyncIterator[tuple[DmpSimulator, Path, DmpClient]]:
    """A simulator with a knobs file, and an establishment client to it."""
    cert, key, ca = server_files(dmp_pki, tmp_path)
    knobs = tmp_path / "faults.json"
    sim = DmpSimulator(
        SimConfig(data_dir=tmp_path / "data", cert_file=cert, key_file=key, ca_file=ca, faults_file=knobs)
    )
    sim.store.seed_patients([PatientRow(PATIENT.value, PATIENT.oid.value, "active", "MARTIN", "JEAN", "19780314", "M")])
    await sim.start()
    settings = settings_for(sim.url, ca)
    client = DmpClient(dataclasses.replace(settings, call_timeout=1.5), establishment_credentials(dmp_pki))
    try:
        yield sim, knobs, client
    finally:
        await client.aclose()
        await sim.stop()


def _doc(uid: str) -> NewDocument:
    return NewDocument(content=cda(uid), mime_type="text/xml", title="Compte rendu", type_code=LOINC_CR, unique_id=uid)


def _stored(sim: DmpSimulator, uid: str) -> int:
    return int(sim.store._db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (uid,)).fetchone()[0])


@pytest.mark.parametrize(
    ("knob", "code", "stored"),
    [
        ({"error_rate": 1}, ErrorCode.DMP_FAULT, 0),
        ({"timeout_rate": 1, "timeout_seconds": 3}, ErrorCode.DMP_OUTCOME_UNKNOWN, 0),
        ({"drop_rate": 1}, ErrorCode.DMP_OUTCOME_UNKNOWN, 1),
    ],
)
async def test_knob_gives_a_transient_fault(
    knobs_sim: tuple[DmpSimulator, Path, DmpClient], knob: dict[str, float], code: ErrorCode, stored: int
) -> None:
    sim, knobs, client = knobs_sim
    uid = unique_id(1, 30)
    knobs.write_text(json.dumps(knob))
    with pytest.raises(BridgeError) as caught:
        await client.submit(indirect_practitioner(), PATIENT, [_doc(uid)])
    assert caught.value.code is code
    assert classify(caught.value) is Verdict.TRANSIENT and may_have_landed(caught.value)
    assert _stored(sim, uid) == stored
    knobs.write_text("{}")  # healed while running
    uid2 = unique_id(2, 30)
    await client.submit(indirect_practitioner(), PATIENT, [_doc(uid2)])
    assert _stored(sim, uid2) == 1
