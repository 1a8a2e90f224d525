"""The simulator applies the PDT-INF-526 rights matrix (the one table `bridge.dmp.rights`) with its own facts.

Raw SOAP built from the official samples (independent of the bridge's client): a physician who is neither
the author nor the médecin traitant may not archive or unmask another practitioner's document; the
médecin traitant the DMP knows may; refusals are the SOAP fault DMPAccessDeniedByRightsService.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.sim.dmp import DmpSimulator
from tests.integration.dmp_sim_support import DmpClient, Practitioner, client_context, requires_reference
from tests.integration.dmp_sim_xds import APPROVED, ARCHIVED, find, set_status, set_visibility, submit

pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(120)]

INS = "180017505601289"  # seeded test patient
DENIED = "DMPAccessDeniedByRightsService"


@pytest.fixture
async def clients(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[tuple[DmpClient, DmpClient]]:
    """Dr A and Dr B over mutual TLS with their own card certificates."""
    a = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    b = DmpClient(sim.url, client_context(pki, doctors[1].certs.auth, tmp_path))
    yield a, b
    await a.close()
    await b.close()


def _only(entries: list[etree._Element]) -> etree._Element:
    assert len(entries) == 1, entries
    return entries[0]


async def test_archive_and_unmask_are_the_authors_or_the_medecin_traitants(
    sim: DmpSimulator, clients: tuple[DmpClient, DmpClient], doctors: tuple[Practitioner, Practitioner]
) -> None:
    (client_a, client_b), (dr_a, dr_b) = clients, doctors
    sent = await submit(client_a, dr_a, INS)
    assert sent.answer.registry_status() == "Success", sent.answer.errors()
    entry = _only(await find(client_b, dr_b, INS))

    # Dr B is neither the author nor the MT: archiving is the author's (note (8)) -> refused (the old
    # simulator accepted it).
    archive = await set_status(client_b, dr_b, INS, str(entry.get("id")), APPROVED, ARCHIVED)
    assert archive.fault_subcode().endswith(DENIED), archive.raw[:2000]
    assert "TD3.3d" in archive.raw.decode() and "(8)" in archive.raw.decode()
    # Masking has no own-document note: Dr B may; unmasking is the author's (or the MT's).
    masked = await set_visibility(client_b, dr_b, INS, entry, add=("MASQUE_PS",))
    assert masked.registry_status() == "Success", masked.errors()
    v2 = _only(await find(client_a, dr_a, INS))
    assert await find(client_b, dr_b, INS) == []  # masked to professionals: Dr B no longer sees it

    # The DMP makes Dr B the patient's médecin traitant: the MT sees masked documents, unmasks, archives.
    sim.store.set_medecin_traitant(INS, dr_b.name_id)
    assert _only(await find(client_b, dr_b, INS)).get("id") == v2.get("id")
    unmasked = await set_visibility(client_b, dr_b, INS, v2, remove=("MASQUE_PS",))
    assert unmasked.registry_status() == "Success", unmasked.errors()
    v3 = _only(await find(client_b, dr_b, INS))
    archived = await set_status(client_b, dr_b, INS, str(v3.get("id")), APPROVED, ARCHIVED)
    assert archived.registry_status() == "Success", archived.errors()

    # No longer MT: unarchiving someone else's document is refused again.
    sim.store.set_medecin_traitant(INS, None)
    back = await set_status(client_b, dr_b, INS, str(v3.get("id")), ARCHIVED, APPROVED)
    assert back.fault_subcode().endswith(DENIED)
    back = await set_status(client_a, dr_a, INS, str(v3.get("id")), ARCHIVED, APPROVED)
    assert back.registry_status() == "Success", back.errors()
