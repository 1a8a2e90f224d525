"""`dmp-bridge run [--port N] [--no-tray]`: the daemon.

The tray appears when a display exists (and not with --no-tray); headless, pairing codes are logged
and listed by `dmp-bridge origins pending`. The daemon starts without pcscd: readers then report
"unavailable" until the smart-card service answers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

__all__ = ["HELP", "configure", "run"]

#: A long-running process: its INFO log is its activity record.
LOG_LEVEL = logging.INFO

HELP = "lance le pont (icône de notification si un écran est présent) / run the bridge daemon"

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `run`."""
    parser.add_argument(
        "--port",
        type=int,
        help="port d'écoute / listening port (default: config, else this user's port in 28442-28457)",
    )
    parser.add_argument("--no-tray", action="store_true", help="sans icône / headless")


def _monitor() -> Any:
    """The PC/SC ReaderMonitor (it reports pcscd's absence itself and retries)."""
    from bridge.pcsc.monitor import ReaderMonitor

    return ReaderMonitor()


def _threadsafe_set(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    loop.call_soon_threadsafe(event.set)


async def _serve(config: Any, use_tray: bool) -> int:
    from bridge.commands._daemon_run import start_application, stop_on_signals
    from bridge.tray import LogUI, TrayUI

    loop = asyncio.get_running_loop()
    stop = stop_on_signals()
    ui: Any = LogUI()
    if use_tray:
        try:
            ui = TrayUI(on_quit=lambda: _threadsafe_set(loop, stop))
        except Exception:  # no usable tray backend: stay headless rather than fail
            log.warning("tray unavailable; running headless", exc_info=True)
    app = await start_application(config, approver=ui, notifier=ui, monitor=_monitor())
    if app is None:
        return 4
    print(f"dmp-bridge {app.version} : http://127.0.0.1:{app.port}/ (ws://127.0.0.1:{app.port}/ws)", flush=True)
    backend = getattr(app.cards, "cps_backend", None)
    if backend is not None:
        print(f"Cartes CPS : {backend.describe_fr()}", flush=True)
    try:
        await stop.wait()
    finally:
        await app.stop()
        if isinstance(ui, TrayUI):
            ui.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Load the config, start the daemon, serve until SIGINT/SIGTERM."""
    from bridge.commands._daemon_run import config_with_port
    from bridge.tray import display_available

    config = config_with_port(args.port)
    if config is None:
        return 2
    return asyncio.run(_serve(config, use_tray=not args.no_tray and display_available()))
