"""Local API benchmark: readers.list round trips (1 and 50 clients), event fan-out latency, idle RSS.

Run from the repository root: `python -m tests.bench.bench_api` (`--quick` for a short run;
`--against PATH` also runs the round trips against the daemon of another checkout, e.g. `/work/main`,
alternating scenario by scenario so both see the same machine load; `--rounds N` repeats the
scenarios N times, pooling latencies and showing the median daemon CPU per call with its range:
on a shared machine one round can be hit by someone else's burst).

- Round trips and RSS use a real daemon: `python -m bridge.cli run --no-tray` in a subprocess with a
  temporary DMP_BRIDGE_HOME. The clients run in another process (this script with `--worker`), so the
  daemon's figure is not inflated by the clients' own CPU in the same interpreter. They behave like
  pages of an approved web origin (Origin header, permessage-deflate offered as browsers do) and speak
  WebSocket on non-blocking sockets driven by one `selectors` loop, far cheaper per message than
  aiohttp's client, which would otherwise bound the 50-client figure by the bench itself (the
  `clients` column reports the worker's own CPU per call, the `daemon` column the daemon's).
- The bench daemon reaches no pcscd (the test pcscd lives in a private mount namespace), so
  readers.list answers `"pcsc": "unavailable"` with no rows; with readers the rows' JSON is cached
  per snapshot (about 1 µs more per call).
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
import heapq
import json
import os
import resource
import selectors
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
#: The bench page's key (fixed, so the driver approves it and the worker proves it): P-256 scalar.
BENCH_KEY_SCALAR = 0x5EC3_BE4C_0001_0002_0003_0004_0005_0006


def bench_key() -> Any:
    """The bench page's ECDSA P-256 key (cryptography object)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.derive_private_key(BENCH_KEY_SCALAR, ec.SECP256R1())


def bench_spki() -> str:
    """The bench key's base64 DER SubjectPublicKeyInfo, as the SDK sends it."""
    from cryptography.hazmat.primitives import serialization

    der = (
        bench_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


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
    if len(payload) < 126:
        header = bytes([0x81, 0x80 | len(payload)])
    else:
        assert len(payload) < 65536, "bench frames are small"
        header = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class BenchClient:
    """One WebSocket client on a non-blocking socket: one readers.list in flight at a time."""

    def __init__(self, port: int, frame: bytes) -> None:
        self.frame = frame
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {ORIGIN}\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
        self.buffer = bytearray()
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("closed during the handshake")
            self.buffer += chunk
        end = self.buffer.index(b"\r\n\r\n")
        head = bytes(self.buffer[:end]).decode("latin-1").lower()
        del self.buffer[: end + 4]
        if not head.startswith("http/1.1 101"):
            raise RuntimeError(f"handshake refused: {head.splitlines()[0]}")
        # A daemon that still negotiates compression (older checkouts) sends RSV1 frames: inflate them.
        self.inflate = zlib.decompressobj(wbits=-15) if "permessage-deflate" in head else None
        self._prove_key()
        self.sock.setblocking(False)
        self.sent_at = 0.0
        self.latencies: list[float] = []

    def _blocking_call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One call during set-up (blocking socket): its decoded response."""
        self.sock.sendall(
            masked_text_frame(json.dumps({"jsonrpc": "2.0", "id": 0, "method": method, "params": params}))
        )
        while True:
            while True:
                buf = self.buffer
                if len(buf) >= 4:  # set-up answers are under 64 KB: a 7- or 16-bit length
                    size, offset = buf[1] & 0x7F, 2
                    if size == 126:
                        size, offset = int.from_bytes(buf[2:4], "big"), 4
                    if len(buf) >= offset + size:
                        break
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise RuntimeError("closed during set-up")
                self.buffer += chunk
            first, payload = buf[0], bytes(buf[offset : offset + size])
            del buf[: offset + size]
            if first & 0x40 and self.inflate is not None:
                payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
            message = json.loads(payload)
            if message.get("id") == 0:
                return dict(message)

    def _prove_key(self) -> None:
        """The SDK's handshake: sign the daemon's challenge with the approved bench key (older daemons: none)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        answer = self._blocking_call("pairing.challenge", {})
        if "result" not in answer:
            return  # a daemon from before key proofs
        challenge = base64.b64decode(answer["result"]["challenge"])
        message = b"dmp-bridge key proof v1\x00" + ORIGIN.encode() + b"\x00" + challenge
        r, s = decode_dss_signature(bench_key().sign(message, ec.ECDSA(hashes.SHA256())))
        signature = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
        proved = self._blocking_call("pairing.prove", {"publicKey": bench_spki(), "signature": signature})
        if not proved.get("result", {}).get("approved"):
            raise RuntimeError(f"bench key not approved: {proved}")

    def send(self) -> None:
        """Send one call (the frame is tiny: a non-blocking send takes it whole)."""
        self.sent_at = time.perf_counter()
        self.sock.send(self.frame)

    def receive(self) -> int:
        """Read what arrived; returns how many results completed (latencies recorded)."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed by the daemon")
        now = time.perf_counter()
        buf = self.buffer
        buf += chunk
        done = 0
        while len(buf) >= 2:
            size, offset = buf[1] & 0x7F, 2
            if size == 126:
                size, offset = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                size, offset = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < offset + size:
                break
            first, payload = buf[0], bytes(buf[offset : offset + size])
            del buf[: offset + size]
            opcode = first & 0x0F
            if opcode == 0x9:  # ping: pong (zero mask key) so the heartbeat never closes us
                self.sock.send(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                continue
            if first & 0x40 and self.inflate is not None:  # RSV1: compressed message
                payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
            if opcode != 0x1 or b'"result"' not in payload:
                raise RuntimeError(f"unexpected frame {opcode}: {payload[:200]!r}")
            self.latencies.append((now - self.sent_at) * 1000)
            done += 1
        return done


def drive(clients: list[BenchClient], calls: int, period: float) -> None:
    """Each client makes `calls` calls: back to back (period 0) or one every `period` s, clients spread out."""
    selector = selectors.DefaultSelector()
    for c in clients:
        selector.register(c.sock, selectors.EVENT_READ, c)
    left = {id(c): calls for c in clients}
    due: list[tuple[float, int, BenchClient]] = []  # paced mode: (when, tie-break, client)
    now = time.perf_counter()
    for i, c in enumerate(clients):
        if period:
            heapq.heappush(due, (now + i * period / len(clients), i, c))
        else:
            c.send()
    running = len(clients)
    while running:
        timeout = max(0.0, due[0][0] - time.perf_counter()) if due else None
        for key, _ in selector.select(timeout):
            c = key.data
            if not c.receive():
                continue
            left[id(c)] -= 1
            if left[id(c)] == 0:
                running -= 1
            elif period:
                heapq.heappush(due, (c.sent_at + period, id(c), c))
            else:
                c.send()
        while due and due[0][0] <= time.perf_counter():
            heapq.heappop(due)[2].send()
    selector.close()


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Connect the clients, warm up, wait for "go" on stdin, run the measured calls, return latencies."""
    frame = masked_text_frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers.list"}))
    clients = [BenchClient(spec["port"], frame) for _ in range(spec["clients"])]
    drive(clients, 10, 0.0)  # warm-up
    for c in clients:
        c.latencies.clear()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    drive(clients, spec["calls"], 1 / spec["rate"] if spec["rate"] else 0.0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for c in clients:
        c.sock.close()
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

    # The daemon reads the same file (a checkout from before key proofs reads the origin's name only).
    ApprovalStore(data_dir() / APPROVALS_FILENAME).approve(ORIGIN, bench_spki())
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
            cpu, own = r["daemon_cpu_us"], r["client_cpu_us"]
            spread = f" ({min(cpu):.0f}-{max(cpu):.0f})" if len(cpu) > 1 else ""
            print(
                f"  {label:40s} n={len(values):6d}  p50={statistics.median(values):6.2f}  p99={pct(values, 0.99):6.2f}"
                f"  max={max(values):7.2f}  daemon={statistics.median(cpu):4.0f}{spread}"
                f"  clients={statistics.median(own):3.0f}"
            )
    for d in daemons:
        r = d.results or {}
        per_call = statistics.median(r["50 clients, closed loop"]["daemon_cpu_us"])
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
        from tests.api_helpers import PageKey

        key = PageKey()
        app.store.approve(ORIGIN, key.spki)
        sockets = [
            await session.ws_connect(f"ws://127.0.0.1:{app.port}/ws", headers={"Origin": ORIGIN})
            for _ in range(clients)
        ]
        for ws in sockets:
            await key.prove(ws, ORIGIN)
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
        print(json.dumps(worker(json.loads(sys.argv[sys.argv.index("--worker") + 1]))), flush=True)
        return
    quick = "--quick" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 1
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
        for _ in range(rounds):
            for s in scenarios:
                for d in daemons:  # alternate, so a burst of load from elsewhere hits both
                    assert d.results is not None
                    out = run_scenario(d.port, d.proc.pid, s)
                    pooled = d.results.setdefault(s.name, {"latencies": [], "daemon_cpu_us": [], "client_cpu_us": []})
                    pooled["latencies"].extend(out["latencies"])
                    pooled["daemon_cpu_us"].append(out["daemon_cpu_us"])
                    pooled["client_cpu_us"].append(out["client_cpu_us"])
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
