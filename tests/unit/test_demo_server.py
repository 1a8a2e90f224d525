"""The demo page's web server: its files, the bridge port in the page, its CSP, and the Host check."""

from __future__ import annotations

import aiohttp

from bridge.demo import DemoServer, demo_port_for


def test_default_demo_port_follows_the_bridge() -> None:
    assert demo_port_for(28442) == 28443
    assert demo_port_for(0) == 0  # the bridge on a free port: the page too
    assert demo_port_for(65535) == 0


async def test_serves_the_page_with_the_bridge_port_and_refuses_foreign_hosts() -> None:
    server = DemoServer(bridge_port=28442, port=0)
    await server.start()
    try:
        assert server.url == f"http://localhost:{server.port}/"
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as page:
                assert page.status == 200
                html = await page.text()
                csp = page.headers["Content-Security-Policy"]
            assert '<meta name="dmp-bridge-port" content="28442">' in html
            assert "script-src 'self' http://127.0.0.1:28442" in csp
            assert "connect-src 'self' ws://127.0.0.1:28442" in csp
            # Nothing is fetched from outside (no CDN): every src/href is local or the page's own.
            assert "https://" not in html and "//cdn" not in html
            for path, kind in (("/demo.js", "text/javascript"), ("/demo.css", "text/css")):
                async with session.get(base + path) as res:
                    assert res.status == 200 and res.content_type == kind
            async with session.get(base + "/", headers={"Host": f"evil.example:{server.port}"}) as res:
                assert res.status == 403  # DNS rebinding
            async with session.get(base + "/other") as res:
                assert res.status == 404
    finally:
        await server.stop()
