"""Shared pieces of the attack suite (tests/integration/test_api_attacks*.py, issue 13): the round-trip
probe that runs while an attack does, error data, and the CLI run off the bridge's loop."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bridge.app import Application
from tests.api_helpers import approved_page, open_ws, rpc

__all__ = ["REPO", "ROUND_TRIP_BOUND", "WEB", "cli", "error_data", "under_attack"]

WEB = "https://dpi.example.fr"
ROUND_TRIP_BOUND = 0.1  # seconds: the bound on another client's round trip under attack
REPO = Path(__file__).resolve().parents[1]


async def under_attack(
    session: aiohttp.ClientSession,
    app: Application,
    attack: Callable[[], Awaitable[None]],
    *,
    seconds: float = 1.0,
    probe_origin: str | None = None,
) -> None:
    """Repeat `attack` for `seconds` while another client measures round trips; their median stays under 100 ms."""
    if probe_origin is None:
        probe_ws = await open_ws(session, app, token=app.token)
    else:
        probe_ws = await open_ws(session, app, origin=probe_origin, key=approved_page(app, probe_origin))
    await rpc(probe_ws, "bridge.info")
    samples: list[float] = []
    over = asyncio.Event()

    async def probe() -> None:
        while not over.is_set():
            start = time.perf_counter()
            await rpc(probe_ws, "bridge.info")
            samples.append(time.perf_counter() - start)

    async def attacker() -> None:
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                await attack()
        finally:
            over.set()

    await asyncio.gather(probe(), attacker())
    await probe_ws.close()
    # A median over many samples: robust to one slow turn on a loaded machine, not to a stalled loop.
    assert len(samples) >= 5, samples
    assert statistics.median(samples) < ROUND_TRIP_BOUND, sorted(samples)[-5:]


def error_data(response: dict[str, Any]) -> dict[str, Any]:
    """The `error.data` of a JSON-RPC answer (which must be an error)."""
    assert "error" in response, response
    return dict(response["error"]["data"])


async def cli(*args: str, home: Path | None = None, timeout: float = 15.0) -> tuple[int, str, str]:
    """Run `python -m bridge.cli ...` off the loop that serves the bridge; killed if it outlives `timeout`."""
    env = dict(os.environ)
    if home is not None:
        env["DMP_BRIDGE_HOME"] = str(home)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()
