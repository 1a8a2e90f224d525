"""Local API benchmark: readers.list round trips (1 and 50 clients), event fan-out latency, idle RSS.

Run from the repository root: `python -m tests.bench.bench_api` (add `--quick` for a short run).

- Round trips and RSS use a real daemon: `python -m bridge.cli run --no-tray` in a subprocess with a
  temporary DMP_BRIDGE_HOME, driven over loopback by token-authenticated WebSocket clients in this process.
- Event latency uses an in-process bridge whose reader monitor is `FakeMonitor` (the same event
  classes as the PC/SC monitor), so it measures the API's fan-out, not pcscd's polling: time from the
  monitor event to its receipt by each of 50 approved clients.
Targets: readers.list p99 < 5 ms with 50 clients, idle RSS < 80 MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


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


async def client_loop(session: aiohttp.ClientSession, url: str, token: str, calls: int, out: list[float]) -> None:
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers.list"})
        for _ in range(10):  # warm-up
            await ws.send_str(frame)
            await ws.receive_str()
        for _ in range(calls):
            start = time.perf_counter()
            await ws.send_str(frame)
            answer = await ws.receive_str()
            out.append((time.perf_counter() - start) * 1000)
            assert '"result"' in answer, answer


async def paced_loop(
    session: aiohttp.ClientSession, url: str, token: str, calls: int, rate: float, phase: float, out: list[float]
) -> None:
    """One call every 1/rate s, clients spread over the period (50 pages polling, not one synchronised burst)."""
    async with session.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        frame = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers.list"})
        await ws.send_str(frame)
        await ws.receive_str()
        next_at = time.perf_counter() + phase
        for _ in range(calls):
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))  # pacing, not synchronisation
            start = time.perf_counter()
            await ws.send_str(frame)
            await ws.receive_str()
            out.append((time.perf_counter() - start) * 1000)


async def round_trips(port: int, token: str, quick: bool, pid: int) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws"
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        one: list[float] = []
        await client_loop(session, url, token, 500 if quick else 3000, one)
        results["1 client"] = one
        many: list[float] = []
        calls = 40 if quick else 200
        cpu0 = cpu_seconds(pid)
        await asyncio.gather(*(client_loop(session, url, token, calls, many) for _ in range(50)))
        # Daemon CPU per call (the 10 warm-up calls per client included): independent of the client's own cost.
        results["cpu_us_per_call"] = (cpu_seconds(pid) - cpu0) * 1e6 / (50 * (calls + 10))
        results["50 clients, closed loop"] = many
        paced: list[float] = []
        rate = 20.0
        await asyncio.gather(
            *(paced_loop(session, url, token, 20 if quick else 100, rate, i / (50 * rate), paced) for i in range(50))
        )
        results["50 clients, 20 req/s each"] = paced
    return results


async def event_latency(quick: bool, clients: int) -> list[float]:
    os.environ["DMP_BRIDGE_HOME"] = tempfile.mkdtemp(prefix="bench-api-ev-")
    from tests.api_helpers import CardInserted, CardRemoved, FakeMonitor, Row, running_bridge

    origin = "https://dpi.example.fr"
    monitor = FakeMonitor([Row("Virtual PCD 00 00", False, None)])
    latencies: list[float] = []
    async with running_bridge(monitor=monitor) as app, aiohttp.ClientSession() as session:
        app.store.approve(origin)
        sockets = [
            await session.ws_connect(f"ws://127.0.0.1:{app.port}/ws", headers={"Origin": origin})
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


def start_daemon(home: str, port: int) -> subprocess.Popen[str]:
    env = dict(os.environ, DMP_BRIDGE_HOME=home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run", "--no-tray", "--port", str(port)],
        cwd=REPO,
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


def main() -> None:
    quick = "--quick" in sys.argv
    home = tempfile.mkdtemp(prefix="bench-api-")
    port = free_port()
    started = time.perf_counter()
    proc = start_daemon(home, port)
    startup_ms = (time.perf_counter() - started) * 1000
    try:
        time.sleep(1.0)  # let the daemon settle before reading its idle memory (measurement, not sync)
        idle = rss_mb(proc.pid)
        token = (Path(home) / "data" / "local-token").read_text().strip()
        results = asyncio.run(round_trips(port, token, quick, proc.pid))
        after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"daemon start-up to listening: {startup_ms:.0f} ms")
    print(f"idle daemon RSS: {idle:.1f} MB (target < 80 MB); after load: {after:.1f} MB")
    cpu_per_call = results.pop("cpu_us_per_call")
    print(f"daemon CPU per readers.list call: {cpu_per_call:.0f} us (capacity ~{1e6 / cpu_per_call:.0f} calls/s/core)")
    print("readers.list round trip (ms), clients in this one process (their CPU counts in the latency):")
    for name, values in results.items():
        print(
            f"  {name:28s} n={len(values):6d}  p50={statistics.median(values):6.2f}  p99={pct(values, 0.99):6.2f}"
            f"  max={max(values):7.2f}"
        )
    one = results["1 client"]
    many = results["50 clients, closed loop"]
    print(f"  ratio p50 50-closed-loop / 1 client: {statistics.median(many) / statistics.median(one):.1f}x")
    for clients in (1, 50):
        events = asyncio.run(event_latency(quick, clients))
        print(
            f"event fan-out latency to {clients:2d} client(s) (ms, in-process clients): n={len(events)} "
            f"p50={statistics.median(events):.2f} p99={pct(events, 0.99):.2f} max={max(events):.2f}"
        )


if __name__ == "__main__":
    main()
