"""Throughput of the DMP simulator over mutual TLS on loopback: TD0.2, TD3.1, TD3.2 and TD2.1 side by side.

Run: python -m tests.bench.bench_dmp_sim  (prints ms per request and ratios to TD0.2).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bridge.crypto.pki import TestPki
from tests.integration.dmp_sim_support import (
    SAMPLE_INS,
    DmpClient,
    Practitioner,
    client_context,
    make_practitioners,
    sample_envelope,
    sign_vihf,
    sim_config,
    started,
    with_vihf,
)
from tests.integration.dmp_sim_xds import find, retrieve, submit

__all__ = ["main"]

ROUNDS = 30


async def _time(label: str, call: Callable[[], Awaitable[object]]) -> float:
    await call()  # warm-up
    start = time.perf_counter()
    for _ in range(ROUNDS):
        await call()
    per = (time.perf_counter() - start) / ROUNDS * 1000
    print(f"{label:<28} {per:8.2f} ms/request")
    return per


async def _measure(client: DmpClient, dr_a: Practitioner) -> None:
    td02 = with_vihf(sample_envelope("TD0.2_Test-dexistence_request.xml"), sign_vihf(dr_a, SAMPLE_INS))
    sent = await submit(client, dr_a, SAMPLE_INS)
    base = await _time("TD0.2 existence", lambda: client.post("patients", td02))
    results = {
        "TD3.1 FindDocuments": await _time("TD3.1 FindDocuments", lambda: find(client, dr_a, SAMPLE_INS)),
        "TD3.2 Retrieve": await _time("TD3.2 Retrieve", lambda: retrieve(client, dr_a, SAMPLE_INS, sent.doc_uid)),
        "TD2.1 Submit (+XAdES)": await _time("TD2.1 Submit (+XAdES)", lambda: submit(client, dr_a, SAMPLE_INS)),
    }
    for label, value in results.items():
        print(f"ratio {label} / TD0.2: {value / base:5.2f}")


async def _run(directory: Path) -> None:
    pki = TestPki.load_or_create(directory / "pki")
    dr_a, _ = make_practitioners(pki)
    async for sim in started(sim_config(pki, directory / "sim")):
        client = DmpClient(sim.url, client_context(pki, dr_a.certs.auth, directory))
        try:
            await _measure(client, dr_a)
        finally:
            await client.close()


def main() -> None:
    """Run the benchmark in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp)))


if __name__ == "__main__":
    main()
