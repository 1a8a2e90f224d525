"""Throughput of feeding through the outbox vs direct submission, side by side, with the cost per stage.

Run: `python -m tests.bench.bench_outbox [N]` (from the repository root; N documents, 200 by default).
The DMP simulator runs in its own process on loopback (mutual TLS); documents are 100 KB CDAs; the
bridge acts with the establishment's certificate (INDIRECTE), 4 calls side by side in both runs:

- direct: `DmpService.submit` for each document, 4 at a time (what a caller of dmp.documents.submit gets);
- outbox: each document written durably to the outbox (`Outbox.enqueue`, SQLite WAL, synced), then the
  worker (4 slots) claims, sends and records it; the clock runs from the first enqueue to the last "sent".

Printed: documents per minute for each and the outbox's overhead (wall time, and the bridge process's CPU
time per document, steadier on a shared machine); then the mean wall time per document
of each stage (enqueue, claim with the document read, DMP call, outcome record) and, from a sequential sample, the
DMP call's own split (building, signing, HTTPS exchange). Not collected by pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bridge.crypto.pki import TestPki
from bridge.dmp.codes import AuthMode
from bridge.dmp.context import NewDocument
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_dmp import DmpFeedSender
from bridge.feed.outbox_model import DocumentSpec, JobKind, JobState, Origin
from bridge.feed.outbox_worker import OutboxWorker
from bridge.service.dmp import DmpContext, DmpService
from bridge.sim.dmp.store import PatientRow
from tests.dmp_fixtures import PATIENT
from tests.faults import SimProcess
from tests.feed.support import LOINC_CR, cda, feed_dmp_config

T = TypeVar("T")


class _Caller:
    """A DMP context key (DmpService keeps contexts by weak reference)."""


SIZE = 100 * 1024
WORKERS = 4


class Stages:
    """Wall time per stage, summed over documents."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def wrap(self, name: str, fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        """`fn` timed under `name`."""

        @functools.wraps(fn)
        async def timed(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.seconds[name].append(time.perf_counter() - started)

        return timed


def _docs(run: int, n: int) -> list[tuple[str, bytes]]:
    return [(uid, cda(uid, size=SIZE, seed=i)) for i in range(n) for uid in [f"1.2.250.1.999.7.1.3.{run}.{i}"]]


async def _direct(service: DmpService, docs: list[tuple[str, bytes]]) -> float:
    caller = _Caller()
    service.set_context(caller, DmpContext(mode=AuthMode.INDIRECTE))
    gate = asyncio.Semaphore(WORKERS)

    async def one(uid: str, content: bytes) -> None:
        doc = NewDocument(content=content, mime_type="text/xml", title="CR", type_code=LOINC_CR, unique_id=uid)
        async with gate:
            await service.submit(caller, PATIENT, doc)

    started = time.perf_counter()
    await asyncio.gather(*(one(u, c) for u, c in docs))
    return time.perf_counter() - started


async def _outbox(service: DmpService, docs: list[tuple[str, bytes]], path: Path, stages: Stages) -> float:
    outbox = Outbox(path)
    sender = DmpFeedSender(service)
    sender.send = stages.wrap("DMP call (TD2.1)", sender.send)  # type: ignore[method-assign]
    outbox.claim_with_payloads = stages.wrap("claim (SENDING) + read", outbox.claim_with_payloads)  # type: ignore[method-assign]
    original_finish_soon = outbox.finish_soon

    def finish_soon(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        future = original_finish_soon(*args, **kwargs)
        future.add_done_callback(
            lambda _f: stages.seconds["outcome record (SENT)"].append(time.perf_counter() - started)
        )
        return future

    outbox.finish_soon = finish_soon  # type: ignore[method-assign]
    enqueue = stages.wrap("enqueue (durable write)", outbox.enqueue)
    worker = OutboxWorker(outbox, sender, concurrency=WORKERS)
    done = asyncio.Event()
    sent = [0]

    def count(job: Any) -> None:
        if job.state is JobState.SENT:
            sent[0] += 1
            if sent[0] == len(docs):
                done.set()

    outbox.add_listener(count)
    spec = DocumentSpec(mime_type="text/xml", title="CR", type_code=LOINC_CR)
    started = time.perf_counter()
    worker.start()
    for uid, content in docs:
        await enqueue(
            kind=JobKind.SUBMIT, unique_id=uid, patient=PATIENT.value, patient_oid=PATIENT.oid.value,
            ins_qualified=True, origin=Origin.API, source_key=uid, spec=spec, payload=content,
        )  # fmt: skip
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    assert outbox.store.counts()[JobState.SENT.value] == len(docs)
    await worker.stop()
    await outbox.aclose()
    return elapsed


async def _sequential_split(service: DmpService, docs: list[tuple[str, bytes]]) -> dict[str, float]:
    caller = _Caller()
    service.set_context(caller, DmpContext(mode=AuthMode.INDIRECTE))
    split: dict[str, list[float]] = defaultdict(list)
    for uid, content in docs:
        doc = NewDocument(content=content, mime_type="text/xml", title="CR", type_code=LOINC_CR, unique_id=uid)
        async with service.using(caller) as (client, practitioner):
            await client.submit(practitioner, PATIENT, [doc])
            timings = client.timings
        split["building"].append(timings.build)
        split["signing (XAdES; VIHF cached)"].append(timings.signing)
        split["HTTPS exchange (incl. simulator)"].append(timings.exchange)
    return {k: statistics.mean(v) * 1000 for k, v in split.items()}


async def main(n: int) -> None:
    """Run both side by side and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = TestPki.load_or_create(root / "pki")
        seed = [PatientRow(PATIENT.value, PATIENT.oid.value, "active", "MARTIN", "JEAN", "19780314", "M")]
        sim = SimProcess(pki, root / "sim", seed)
        await sim.start()
        service = DmpService(feed_dmp_config(sim.url, sim.ca_file, pki, call_timeout=60))
        try:
            await _direct(service, _docs(1, 8))  # warm-up: TLS sessions, VIHF cache
            stages = Stages()
            # Alternated, three rounds each: the machine is shared, so each figure is a median.
            directs, outboxes = [], []
            cpu_direct, cpu_outbox = [], []
            for round_ in range(3):
                docs = _docs(10 + round_, n)
                cpu = time.process_time()
                directs.append(await _direct(service, docs))
                cpu_direct.append(time.process_time() - cpu)
                docs = _docs(20 + round_, n)
                cpu = time.process_time()
                outboxes.append(await _outbox(service, docs, root / f"outbox{round_}.sqlite3", stages))
                cpu_outbox.append(time.process_time() - cpu)
            split = await _sequential_split(service, _docs(5, 20))
        finally:
            await service.aclose()
            sim.kill()
    direct, through_outbox = statistics.median(directs), statistics.median(outboxes)
    per_min = lambda seconds: n / seconds * 60  # noqa: E731
    print(
        f"{n} documents of {SIZE // 1024} KB (CDA), establishment certificate, loopback simulator, {WORKERS} at a time"
    )
    runs = lambda values: ", ".join(f"{v:.1f} s" for v in values)  # noqa: E731
    print(f"  direct submission : {per_min(direct):7.0f} documents/minute  (median of {runs(directs)})")
    print(f"  through the outbox: {per_min(through_outbox):7.0f} documents/minute  (median of {runs(outboxes)})")
    print(f"  outbox overhead   : {(through_outbox / direct - 1) * 100:+6.1f} % of the direct time")
    cpu_d, cpu_o = statistics.median(cpu_direct) / n * 1000, statistics.median(cpu_outbox) / n * 1000
    print(
        f"  bridge CPU per document (all threads, simulator excluded): direct {cpu_d:.1f} ms, "
        f"outbox {cpu_o:.1f} ms ({(cpu_o / cpu_d - 1) * 100:+.1f} %)"
    )
    print("  cost per document through the outbox (mean wall time of each stage, ms):")
    for name, values in stages.seconds.items():
        print(f"    {name:<28} {statistics.mean(values) * 1000:8.2f}")
    print("  within the DMP call, sequential sample of 20 (mean ms):")
    for name, ms in split.items():
        print(f"    {name:<34} {ms:8.2f}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
