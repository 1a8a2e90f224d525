"""DMP simulator: a strict, persistent stand-in for the national DMP web services (sandbox and tests).

It checks what the real service checks (mutual TLS with the test IGC-Santé, VIHF signature and
attributes, XAdES of submissions, XDS metadata, INS) and never imports the client's builders.
"""

from __future__ import annotations

from bridge.sim.dmp.server import BASE_PATH, DmpSimulator, SimConfig, server_ssl_context

__all__ = ["BASE_PATH", "DmpSimulator", "SimConfig", "server_ssl_context"]
