"""Figures of the INSi client, measured side by side in one run against the INSi simulator over mutual TLS.

Run: `python -m tests.bench.bench_insi`. Prints timings and ratios; not collected by pytest.
- building a request and reading an answer (sans-IO), against one search on loopback;
- a search with the INSI-AUTO certificate (TLS only) against one in CPS mode (an assertion signed per
  search; software RSA-2048 keys stand for the card, whose signature takes far longer);
- a first search (TLS handshake) against the following ones (kept-alive connection).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.ins.messages import Operation, build_request, parse_answer, traits_body
from bridge.ins.model import Traits
from bridge.sim.insi.requests import parse_request
from bridge.sim.insi.service import InsiPolicy, answer
from tests.bench._support import timeit
from tests.insi_fixtures import LPS, establishment_client, running_insi
from tests.integration.test_insi_client import cps_client

LAURENCE = Traits.from_input(birth_name="PATB-QUATRE", first_names="LAURENCE", sex="F", birth_date="1907-05-25")
RUNS = 30


async def _searches(client: object, runs: int) -> tuple[float, float]:
    """(first search ms, median of the next ones ms)."""
    search = client.search  # type: ignore[attr-defined]
    start = time.perf_counter()
    await search(LAURENCE)
    first = (time.perf_counter() - start) * 1000
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await search(LAURENCE)
        samples.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(samples)


async def main() -> None:
    """Print the figures."""
    directory = Path(tempfile.mkdtemp())
    pki = TestPki.load_or_create(directory / "pki")
    data = build_request(Operation.TRAITS, traits_body(LAURENCE, "LAURENCE"), lps=LPS, now=dt.datetime.now(dt.UTC),
                         message_id="uuid:1", bam_id="a", lps_id="b")  # fmt: skip
    reply = answer(parse_request(data), InsiPolicy())
    build_ms = timeit(lambda: build_request(Operation.TRAITS, traits_body(LAURENCE, "LAURENCE"), lps=LPS,
                                            now=dt.datetime.now(dt.UTC), message_id="uuid:1", bam_id="a",
                                            lps_id="b"), 200)  # fmt: skip
    parse_ms = timeit(lambda: parse_answer(reply), 200)
    async for insi in running_insi(pki, directory / "sim"):
        auto, cps = establishment_client(pki, insi), cps_client(pki, insi)
        try:
            auto_first, auto_next = await _searches(auto, RUNS)
            cps_first, cps_next = await _searches(cps, RUNS)
        finally:
            await auto.aclose()
            await cps.aclose()
    print(f"request build: {build_ms:.3f} ms, answer parse: {parse_ms:.3f} ms (sans-IO)")
    print(f"INSI-AUTO search: first {auto_first:.1f} ms (TLS handshake), then {auto_next:.1f} ms (keep-alive)")
    print(f"CPS search:       first {cps_first:.1f} ms, then {cps_next:.1f} ms (assertion signed per search)")
    print(f"  ratios: keep-alive/first {auto_next / auto_first:.2f}; CPS/INSI-AUTO {cps_next / auto_next:.2f}; "
          f"sans-IO share {(build_ms + parse_ms) / auto_next:.1%}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
