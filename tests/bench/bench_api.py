"""Local API benchmark: readers.list round trips (1 and 50 clients), event fan-out latency, idle RSS.

Run from the repository root: `python -m tests.bench.bench_api` (`--quick` for a short run;
`--against PATH` also runs the round trips against the daemon of another checkout, e.g. `/work/main`,
alternating scenario by scenario so both see the same machine load).

- Round trips and RSS use a real daemon: `python -m bridge.cli run --no-tray` in a subprocess with a
  temporary DMP_BRIDGE_HOME. The clients run in another process (this script with `--worker`), so the
  daemon's figure is not inflated by the clients' own CPU in the same interpreter. They behave like
  pages of an approved web origin (Origin header, permessage-deflate offered as browsers do) and speak
  WebSocket through plain asyncio protocols (a few µs per message) rather than aiohttp's client
  (~100 µs per message, which would bound the 50-client figure by the bench itself).
- Scenarios: 1 client closed loop; 50 clients closed loop (each keeps exactly one call in flight: the
  daemon always has 50 calls queued, so p50 ≈ 50 × its CPU per call); 50 clients at 20 calls/s each,
  spread over the period (50 pages polling: the realistic load).
- Event latency uses an in-process bridge whose reader monitor is `FakeMonitor` (the same event
  classes as the PC/SC monitor), so it measures the API's fan-out, not pcscd's polling: time from the
  monitor event to its receipt by each of 50 approved clients (aiohttp clients in the same process).
Targets: readers.list p99 < 5 ms with 50 clients, idle RSS < 80 MB.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

ORIGIN = "https://dpi.example.fr"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- client side (runs in the worker process) ------------------------------------------------------


def masked_text_frame(text: str) -> bytes:
    """A client text frame. The mask is fixed (computed once): fine for a bench, not for a real client."""
    payload = text.encode()
    key = os.urandom(4)
    header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else b""
    assert header, "bench frames are small"
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class BenchClient(asyncio.Protocol):
    """One WebSocket client: handshake, then one readers.list in flight (closed loop) or one per period."""

    def __init__(self, port: int, frame: bytes, calls: int, warmup: int, period: float, phase: float) -> None:
        self.port, self.frame, self.calls, self.warmup = port, frame, calls, warmup
        self.period, self.phase = period, phase  # period 0: closed loop
        self.latencies: list[float] = []
        self.ready = asyncio.get_running_loop().create_future()  # set after the warm-up calls
        self.done = asyncio.get_running_loop().create_future()
        self.go = False
        self._buffer = bytearray()
        self._upgraded = False
        self._inflate: Any = None
        self._sent_at = 0.0
        self._answered = 0
        self._next_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1").lower()
            del buf[: end + 4]
            if not head.startswith("http/1.1 101"):
                self._fail(f"handshake refused: {head.splitlines()[0]}")
                return
            self._upgraded = True
            if "permessage-deflate" in head:
                self._inflate = zlib.decompressobj(wbits=-15)
            self._send()
        while len(buf) >= 2:
            size, offset = buf[1] & 0x7F, 2
            if size == 126:
                if len(buf) < 4:
                    return
                size, offset = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + size:
                return
            first, payload = buf[0], bytes(buf[offset : offset + size])
            del buf[: offset + size]
            self._frame(first, payload)

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        if opcode == 0x9:  # ping: answer with an (unmasked-key) pong so the heartbeat never closes us
            assert self.transport is not None
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            return
        if opcode != 0x1:
            self._fail(f"unexpected frame opcode {opcode}: {payload[:100]!r}")
            return
        if first & 0x40 and self._inflate is not None:  # RSV1: compressed message
            payload = self._inflate.decompress(payload + b"\x00\x00\xff\xff")
        now = time.perf_counter()
        if b'"result"' not in payload:
            self._fail(f"not a result: {payload[:200]!r}")
            return
        self._answered += 1
        if self._answered == self.warmup:
            self.ready.set_result(None)
            return  # the driver calls start() once every client is warm
        if self._answered > self.warmup:
            self.latencies.append((now - self._sent_at) * 1000)
            if len(self.latencies) == self.calls:
                self.done.set_result(None)
                return
        if self.period == 0 or self._answered < self.warmup:
            self._send()
        else:
            self._schedule()

    def start(self) -> None:
        """Begin the measured calls."""
        self._next_at = time.perf_counter() + self.phase
        if self.period == 0:
            self._send()
        else:
            self._schedule()

    def _schedule(self) -> None:
        self._next_at += self.period
        asyncio.get_running_loop().call_later(max(0.0, self._next_at - time.perf_counter()), self._send)

    def _send(self) -> None:
        assert self.transport is not None
        self._sent_at = time.perf_counter()
        self.transport.write(self.frame)

    def _fail(self, why: str) -> None:
        for future in (self.ready, self.done):
            if not future.done():
                future.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}")


async def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Connect the clients, warm up, wait for "go" on stdin, run the measured calls, return latencies."""
    loop = asyncio.get_running_loop()
    frame = masked_text_frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers.list"}))
    clients: list[BenchClient] = []
    n, rate = spec["clients"], spec["rate"]
    for i in range(n):
        period, phase = (1 / rate, i / (n * rate)) if rate else (0.0, 0.0)
        client = BenchClient(spec["port"], frame, spec["calls"], 10, period, phase)
        await loop.create_connection(lambda c=client: c, "127.0.0.1", spec["port"])
        clients.append(client)
    await asyncio.gather(*(c.ready for c in clients))
    print("ready", flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        c.start()
    await asyncio.gather(*(c.done for c in clients))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        assert c.transport is not None
        c.transport.close()
    latencies = [x for c in clients for x in c.latencies]
    own = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"latencies": latencies, "client_cpu_us": own * 1e6 / len(latencies)}


# -- driver --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One round-trip measurement."""

    name: str
    clients: int
    calls: int  # per client
    rate: float  # calls/s per client; 0 = closed loop


def run_scenario(port: int, daemon_pid: int, scenario: Scenario) -> dict[str, Any]:
    """Run one scenario's clients in a worker process; daemon CPU is read around the measured part only."""
    spec = {"port": port, "clients": scenario.clients, "calls": scenario.calls, "rate": scenario.rate}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.bench_api", "--worker", json.dumps(spec)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise SystemExit(f"bench worker failed: {line!r}")
    cpu0 = cpu_seconds(daemon_pid)
    proc.stdin.write("go\n")
    proc.stdin.flush()
    out = json.loads(proc.stdout.readline())
    cpu1 = cpu_seconds(daemon_pid)
    proc.wait(30)
    out["daemon_cpu_us"] = (cpu1 - cpu0) * 1e6 / len(out["latencies"])
    return out


def start_daemon(repo: Path, home: str, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, DMP_BRIDGE_HOME=home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--no-tray", "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once listening
    if "http://127.0.0.1" not in line:
        proc.kill()
        raise SystemExit(f"daemon did not start: {line!r}")
    return proc


@dataclass
class Daemon:
    """A running daemon of one checkout and what was measured on it."""

    label: str
    proc: subprocess.Popen[str]
    port: int
    startup_ms: float
    idle_mb: float = 0.0
    results: dict[str, dict[str, Any]] | None = None


def launch(label: str, repo: Path) -> Daemon:
    """Start a daemon from `repo` with an approved bench origin."""
    home = tempfile.mkdtemp(prefix="bench-api-")
    os.environ["DMP_BRIDGE_HOME"] = home
    from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore
    from bridge.paths import data_dir

    ApprovalStore(data_dir() / APPROVALS_FILENAME).approve(ORIGIN)  # the daemon reads the same file
    port = free_port()
    started = time.perf_counter()
    proc = start_daemon(repo, home, port)
    return Daemon(label, proc, port, (time.perf_counter() - started) * 1000)


def report_round_trips(daemons: list[Daemon]) -> None:
    print("readers.list round trip (ms); clients in a separate process; CPU per call in µs:")
    for name in daemons[0].results or {}:
        for d in daemons:
            r = (d.results or {})[name]
            values = r["latencies"]
            label = f"{name} [{d.label}]" if len(daemons) > 1 else name
            print(
                f"  {label:40s} n={len(values):6d}  p50={statistics.median(values):6.2f}  p99={pct(values, 0.99):6.2f}"
                f"  max={max(values):7.2f}  daemon={r['daemon_cpu_us']:4.0f}  clients={r['client_cpu_us']:3.0f}"
            )
    for d in daemons:
        r = d.results or {}
        per_call = r["50 clients, closed loop"]["daemon_cpu_us"]
        tag = f"[{d.label}] " if d.label else ""
        print(
            f"  {tag}50 clients x {per_call:.0f} µs = {50 * per_call / 1000:.1f} ms per round of the closed loop"
            f" (capacity ~{1e6 / per_call:.0f} calls/s on one core)"
        )


async def event_latency(quick: bool, clients: int) -> list[float]:
    os.environ["DMP_BRIDGE_HOME"] = tempfile.mkdtemp(prefix="bench-api-ev-")
    from tests.api_helpers import CardInserted, CardRemoved, FakeMonitor, Row, running_bridge

    monitor = FakeMonitor([Row("Virtual PCD 00 00", False, None)])
    latencies: list[float] = []
    async with running_bridge(monitor=monitor) as app, aiohttp.ClientSession() as session:
        app.store.approve(ORIGIN)
        sockets = [
            await session.ws_connect(f"ws://127.0.0.1:{app.port}/ws", headers={"Origin": ORIGIN})
            for _ in range(clients)
        ]
        for ws in sockets:
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bridge.info"}))
            await ws.receive_str()

        async def receive(ws: aiohttp.ClientWebSocketResponse, method: str, t0: float) -> float:
            while True:
                message = json.loads(await ws.receive_str())
                if message.get("method") == method:
                    return (time.perf_counter() - t0) * 1000

        for i in range(10 if quick else 60):
            present = i % 2 == 0
            event = (
                CardInserted("Virtual PCD 00 00", b"\x3b\x02\x14\x50") if present else CardRemoved("Virtual PCD 00 00")
            )
            method = "card.inserted" if present else "card.removed"
            t0 = time.perf_counter()
            monitor.emit(event)
            latencies.extend(await asyncio.gather(*(receive(ws, method, t0) for ws in sockets)))
        for ws in sockets:
            await ws.close()
    return latencies


def main() -> None:
    if "--worker" in sys.argv:
        print(json.dumps(asyncio.run(worker(json.loads(sys.argv[sys.argv.index("--worker") + 1])))), flush=True)
        return
    quick = "--quick" in sys.argv
    checkouts = [("this", REPO)]
    if "--against" in sys.argv:
        checkouts.append(("other", Path(sys.argv[sys.argv.index("--against") + 1]).resolve()))
    scenarios = [
        Scenario("1 client, closed loop", 1, 500 if quick else 3000, 0),
        Scenario("50 clients, closed loop", 50, 40 if quick else 200, 0),
        Scenario("50 clients, 20 calls/s each", 50, 20 if quick else 100, 20.0),
    ]
    daemons = [launch(label if len(checkouts) > 1 else "", repo) for label, repo in checkouts]
    if len(daemons) > 1:
        for (label, repo), d in zip(checkouts, daemons, strict=True):
            d.label = f"{label}: {repo.name}"
    try:
        time.sleep(1.0)  # let the daemons settle before reading their idle memory (measurement, not sync)
        for d in daemons:
            d.idle_mb = rss_mb(d.proc.pid)
            d.results = {}
        for s in scenarios:
            for d in daemons:  # alternate, so a burst of load from elsewhere hits both
                assert d.results is not None
                d.results[s.name] = run_scenario(d.port, d.proc.pid, s)
        after = {d.label: rss_mb(d.proc.pid) for d in daemons}
    finally:
        for d in daemons:
            d.proc.terminate()
            d.proc.wait(10)
    for d in daemons:
        tag = f"[{d.label}] " if d.label else ""
        print(f"{tag}daemon start-up to listening: {d.startup_ms:.0f} ms")
        print(f"{tag}idle daemon RSS: {d.idle_mb:.1f} MB (target < 80 MB); after load: {after[d.label]:.1f} MB")
    report_round_trips(daemons)
    print("targets: 50 clients p99 < 5 ms; closed loop p50 is bounded below by 50 x daemon CPU per call")
    for clients in (1, 50):
        events = asyncio.run(event_latency(quick, clients))
        print(
            f"event fan-out latency to {clients:2d} client(s) (ms, in-process clients): n={len(events)} "
            f"p50={statistics.median(events):.2f} p99={pct(events, 0.99):.2f} max={max(events):.2f}"
        )


if __name__ == "__main__":
    main()
