"""Shared pieces of the browser tests: Chromium's path and flags, the CLI, and a page from another origin."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

__all__ = ["ARTIFACTS", "CHROMIUM", "LAUNCH_ARGS", "READERS", "REPO", "cli", "serve_page"]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# Chrome's Local Network Access does not apply here (page and bridge are both loopback, the same address
# space); disabling its checks only guards against prompts in future versions.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets",
]
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


async def cli(*args: str) -> tuple[int, str]:
    """`python -m bridge.cli ...` without blocking the bridge's loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge.cli", *args, cwd=REPO, env=dict(os.environ), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode()


@asynccontextmanager
async def serve_page(html: str) -> AsyncIterator[str]:
    """Serve `html` at "/" from a second web server (another origin) and yield that origin."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        # "localhost" makes the page origin differ from the bridge's by host as well as by port.
        yield f"http://localhost:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
