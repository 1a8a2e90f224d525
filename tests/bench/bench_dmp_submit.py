"""End-to-end TD2.1 submission of 1 MB and 10 MB documents against the DMP simulator, with the time split.

Run: `python -m tests.bench.bench_dmp_submit` (from the repository root). For each mode (DIRECTE with the
virtual CPS "gp" reached in-process through the CPS3 driver, INDIRECTE with the establishment's software
keys) and size, it prints the median of a few submissions split into: building (CDA wrap, metadata),
signing (XAdES; the VIHF is cached after the warm-up call), the HTTPS exchange, and within it the
simulator's own processing; then the same request bytes uploaded raw over the same client-authenticated
TLS to a server that only reads them, and the ratio of the two. Not collected by pytest.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AuthMode
from bridge.dmp.context import MAX_WRAPPED_BYTES, DmpCredentials, NewDocument, Practitioner
from bridge.dmp.http import HttpsClient
from bridge.dmp.xds_model import Code
from bridge.pcsc.channel import CardChannel
from bridge.sim.cps3 import create_card
from bridge.sim.direct import DirectChannel
from bridge.sim.dmp.server import server_ssl_context
from tests.dmp_fixtures import (
    PATIENT,
    PATIENT_IDENTITY,
    establishment_credentials,
    indirect_practitioner,
    settings_for,
    simulator,
)

T = TypeVar("T")
RUNS = 3
SIZES = (1_000_000, 10_000_000)


def card_credentials(pki: TestPki, channel: DirectChannel | None = None) -> tuple[DmpCredentials, Practitioner]:
    """The virtual CPS gp, logged in, its keys driven through the CPS3 driver over an in-process channel."""
    channel = channel or DirectChannel(create_card("gp", pki))
    card = Cps3Card()
    lock = threading.Lock()

    def runner(fn: Callable[[CardChannel], T]) -> T:
        with lock:  # one APDU sequence at a time, as the PC/SC worker thread guarantees
            return fn(channel)

    info = runner(card.read_public)
    runner(lambda ch: card.verify_pin(ch, bytearray(b"1234")))
    situation = runner(card.read_situations)[0]
    auth, sign = card_keys(runner, card)
    creds = DmpCredentials("cps:bench", ClientIdentity((info.auth_certificate,), auth), sign, (info.sign_certificate,))
    practitioner = Practitioner(
        national_id=info.holder.national_id,
        family=info.holder.last_name,
        given=info.holder.first_name,
        profession_code=info.professional.profession_code,
        specialty_code=info.professional.specialty_code,
        structure_id=situation.structure_id,
        structure_name=situation.structure_name,
        sector=situation.activity_sector,
        mode=AuthMode.DIRECTE,
    )
    return creds, practitioner


async def raw_upload_server(cert: Path, key: Path, ca: Path) -> tuple[web.AppRunner, int]:
    """A mutual-TLS server with the simulator's TLS settings that reads the body and answers 200."""

    async def sink(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, body=b"")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/sink", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    await web.SockSite(runner, sock, ssl_context=server_ssl_context(cert, key, ca)).start()
    return runner, port


async def bench() -> None:
    """Run and print."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["DMP_BRIDGE_HOME"] = str(base / "home")
        pki = TestPki.load_or_create(base / "pki")
        sim = simulator(pki, base, base)
        cert, key = base / "server.pem", base / "server.key"  # written by simulator()
        server_times: list[float] = []
        process = sim._process

        def timed_process(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return process(*args)
            finally:
                server_times.append(time.perf_counter() - started)

        sim._process = timed_process  # type: ignore[method-assign]
        await sim.start()
        sink, sink_port = await raw_upload_server(cert, key, pki.ca_bundle_path())
        settings = settings_for(sim.url, pki.ca_bundle_path())
        modes = {
            "DIRECTE (virtual CPS)": card_credentials(pki),
            "INDIRECTE (software keys)": (establishment_credentials(pki), indirect_practitioner()),
        }
        print(f"DMP TD2.1 submission, median of {RUNS} runs (ms); VIHF cached after a warm-up submission")
        print(f"{'mode':28} {'size':>6} {'build':>7} {'sign':>7} {'https':>7} {'server':>7} {'total':>8} "
              f"{'raw TLS':>8} {'ratio':>6}")  # fmt: skip
        try:
            for label, (creds, practitioner) in modes.items():
                endpoint = settings.endpoint(creds.tls)
                raw = HttpsClient(type(endpoint)(**{**endpoint.__dict__, "port": sink_port}))
                async with DmpClient(settings, creds) as client:
                    warm = NewDocument(
                        content=b"%PDF-1.4 warm-up", mime_type="application/pdf", title="w",
                        type_code=Code("11488-4", "2.16.840.1.113883.6.1", "CR"), patient_identity=PATIENT_IDENTITY,
                    )  # fmt: skip
                    started = time.perf_counter()
                    await client.submit(practitioner, PATIENT, [warm])
                    first = (time.perf_counter() - started) * 1000
                    print(f"{label:28} first call (TLS handshake + VIHF signature + small lot): {first:.0f} ms")
                    for size in SIZES:
                        content = b"%PDF-1.4\n" + os.urandom(size)
                        doc = NewDocument(
                            content=content, mime_type="application/pdf", title="bench",
                            type_code=warm.type_code, patient_identity=PATIENT_IDENTITY,
                        )  # fmt: skip
                        if size > MAX_WRAPPED_BYTES:
                            payload = os.urandom(size * 4 // 3 + 20_000)
                            raw_started = time.perf_counter()
                            await raw.post("/sink", payload, "application/octet-stream")
                            raw_ms = (time.perf_counter() - raw_started) * 1000
                            print(f"{label:28} {size / 1e6:>5.1f}MB refused: over MAX_WRAPPED_BYTES (CDA text node "
                                  f"limit); raw TLS of the same request size: {raw_ms:.0f} ms")  # fmt: skip
                            continue
                        rows: list[tuple[float, ...]] = []
                        for _ in range(RUNS):
                            server_times.clear()
                            started = time.perf_counter()
                            await client.submit(practitioner, PATIENT, [doc])
                            total = time.perf_counter() - started
                            t = client.timings
                            request_bytes = t.request_bytes
                            payload = os.urandom(request_bytes)
                            raw_started = time.perf_counter()
                            await raw.post("/sink", payload, "application/octet-stream")
                            raw_time = time.perf_counter() - raw_started
                            rows.append((t.build, t.signing, t.exchange, sum(server_times), total, raw_time))
                        med = [statistics.median(col) * 1000 for col in zip(*rows, strict=True)]
                        print(
                            f"{label:28} {size / 1e6:>5.1f}MB {med[0]:7.0f} {med[1]:7.0f} {med[2]:7.0f} "
                            f"{med[3]:7.0f} {med[4]:8.0f} {med[5]:8.0f} {med[4] / med[5]:6.1f}"
                        )
                await raw.aclose()
        finally:
            await sink.cleanup()
            await sim.stop()
    print("build = CDA wrap + metadata; sign = XAdES (card or software key); https = request/response over TLS;")
    print("server = simulator processing inside https; raw TLS = same request size posted to a sink server.")


if __name__ == "__main__":
    asyncio.run(bench())
