"""The demo page's own web server: a second loopback port, so the page is a foreign origin that must pair.

It serves its static files (index.html, demo.css, the page's ES modules and its upload worker) and nothing
else. The page loads the SDK from the bridge (`http://127.0.0.1:<bridge port>/sdk/dmp-bridge.js`) and talks
to its WebSocket like any web application would; the bridge port reaches the page through a
`<meta name="dmp-bridge-port">` tag.
Requests whose Host is not a loopback name with this port are refused (DNS rebinding).
"""

from __future__ import annotations

import logging
from importlib import resources

from aiohttp import web

from bridge.api.security import check_host

__all__ = ["DemoServer", "demo_port_for"]

log = logging.getLogger(__name__)

_FILES = {
    "/": ("index.html", "text/html"),
    "/demo.js": ("demo.js", "text/javascript"),
    "/ui.js": ("ui.js", "text/javascript"),
    "/cps-panel.js": ("cps-panel.js", "text/javascript"),
    "/ins-panel.js": ("ins-panel.js", "text/javascript"),
    "/access-panel.js": ("access-panel.js", "text/javascript"),
    "/documents.js": ("documents.js", "text/javascript"),
    "/upload-worker.js": ("upload-worker.js", "text/javascript"),
    "/demo.css": ("demo.css", "text/css"),
}
_PORT_PLACEHOLDER = b"__DMP_BRIDGE_PORT__"


def demo_port_for(bridge_port: int) -> int:
    """The default demo port: the bridge's plus one (0, any free port, when the bridge's is 0)."""
    return bridge_port + 1 if 0 < bridge_port < 65535 else 0


class DemoServer:
    """Serves the demo page on 127.0.0.1:`port` (0 = any free port) for the bridge on `bridge_port`."""

    def __init__(self, bridge_port: int, port: int) -> None:
        self.bridge_port = bridge_port
        self.port = port
        self._runner: web.AppRunner | None = None
        self._static = resources.files("bridge.demo")

    @property
    def url(self) -> str:
        """The page's address (a `localhost` origin: unmistakably not the bridge's own)."""
        return f"http://localhost:{self.port}/"

    def _headers(self, filename: str) -> dict[str, str]:
        headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
        if filename == "index.html":
            bridge = f"127.0.0.1:{self.bridge_port}"
            # Everything local: the page's own files, the bridge's SDK and WebSocket, blob: for opened documents.
            headers["Content-Security-Policy"] = (
                f"default-src 'self'; script-src 'self' http://{bridge}; connect-src 'self' ws://{bridge} "
                f"http://{bridge}; img-src 'self' data: blob:; frame-src blob:; object-src 'none'; "
                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
            )
            headers["X-Frame-Options"] = "DENY"
        return headers

    async def _file(self, request: web.Request) -> web.Response:
        if not check_host(request.headers.get("Host"), self.port):
            return web.Response(status=403, text="Host refusé / Host refused")
        filename, content_type = _FILES[request.path]
        body = (self._static / filename).read_bytes()
        if filename == "index.html":
            body = body.replace(_PORT_PLACEHOLDER, str(self.bridge_port).encode("ascii"))
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=self._headers(filename))

    async def start(self) -> None:
        """Listen on 127.0.0.1 (the port actually bound is in `port` afterwards)."""
        app = web.Application()
        for path in _FILES:
            app.router.add_get(path, self._file)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("demo page on http://localhost:%d/", self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
