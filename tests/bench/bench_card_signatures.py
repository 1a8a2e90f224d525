"""How many card signatures DMP calls cost: the card should sign once per TLS connection lifetime
(INTERNAL AUTHENTICATE, authentication key) and once per patient context (the VIHF, PSO CDS).

Run: `python -m tests.bench.bench_card_signatures` (from the repository root). The virtual CPS "gp" is
driven in-process through the CPS3 driver (`DirectChannel`, whose trace counts the signing APDUs); the
DMP simulator runs over real mutual TLS. Not collected by pytest.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.dmp.client import DmpClient
from bridge.dmp.vihf import PatientIns
from bridge.sim.cps3 import create_card
from bridge.sim.direct import DirectChannel
from bridge.sim.dmp.store import PatientRow
from tests.bench.bench_dmp_submit import card_credentials
from tests.dmp_fixtures import _SEED, PATIENT, settings_for, simulator

SECOND = PatientIns(value="281209935201476", oid=PATIENT.oid)
CALLS = 20


def signatures(channel: DirectChannel) -> tuple[int, int]:
    """(INTERNAL AUTHENTICATE, PSO COMPUTE DIGITAL SIGNATURE) commands the card has received so far."""
    auth = sum(1 for apdu, _ in channel.trace if apdu[1] == 0x88)
    sign = sum(1 for apdu, _ in channel.trace if apdu[1] == 0x2A and apdu[2] == 0x9E)
    return auth, sign


async def bench() -> None:
    """Run and print."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["DMP_BRIDGE_HOME"] = str(base / "home")
        pki = TestPki.load_or_create(base / "pki")
        second = PatientRow(SECOND.value, SECOND.oid.value, "active", "MARTIN", "CLAIRE", "19810000", "F")
        sim = simulator(pki, base, base, (*_SEED, second))
        await sim.start()
        channel = DirectChannel(create_card("gp", pki))
        creds, practitioner = card_credentials(pki, channel)
        try:
            async with DmpClient(settings_for(sim.url, pki.ca_bundle_path()), creds) as client:
                before = signatures(channel)
                for i in range(CALLS):  # FindDocuments and GetDocuments alternate, as a DPI screen would
                    if i % 2:
                        await client.get_by_unique_id(practitioner, PATIENT, "1.2.250.1.999.1")
                    else:
                        await client.find(practitioner, PATIENT)
                first = signatures(channel)
                for _ in range(CALLS):
                    await client.find(practitioner, SECOND)
                second = signatures(channel)
                handshakes, resumed = client.handshakes, client.resumed_handshakes
        finally:
            await sim.stop()
        print(f"Card signatures for {CALLS} DMP calls on one patient, then {CALLS} on a second patient")
        print(f"  patient 1: TLS (INTERNAL AUTHENTICATE) {first[0] - before[0]}, VIHF (PSO CDS) {first[1] - before[1]}")
        print(f"  patient 2: TLS (INTERNAL AUTHENTICATE) {second[0] - first[0]}, VIHF (PSO CDS) {second[1] - first[1]}")
        print(f"  TLS handshakes {handshakes} (of which resumed: {resumed})")
        print("  target: 1 TLS signature per connection lifetime + 1 VIHF signature per patient context")


if __name__ == "__main__":
    asyncio.run(bench())
