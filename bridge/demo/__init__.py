"""The demo page (a minimal DPI screen in French) and the small web server that serves it on its own port."""

from __future__ import annotations

from bridge.demo.server import DemoServer, demo_port_for

__all__ = ["DemoServer", "demo_port_for"]
