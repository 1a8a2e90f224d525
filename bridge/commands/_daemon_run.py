"""What `run` and `sandbox` share: the configuration with --port, stopping on SIGINT/SIGTERM, starting the daemon."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.app import Application
    from bridge.config import BridgeConfig
    from bridge.service.readers import MonitorLike
    from bridge.tray import Approver, Notifier

__all__ = ["config_with_port", "start_application", "stop_on_signals"]


def config_with_port(port: int | None) -> BridgeConfig | None:
    """The user's configuration, `--port` replacing its port when given; None (reason printed) if it is invalid."""
    from bridge.config import ConfigError, load_config
    from bridge.paths import UnsafeFolderError, check_private_dirs

    try:
        check_private_dirs()  # before reading anything from them
    except UnsafeFolderError as exc:
        print(exc.message_fr, file=sys.stderr)
        print(exc.message_en, file=sys.stderr)
        return None
    try:
        config = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None
    if port is not None:
        config = dataclasses.replace(config, port=port)
    return config


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets (call on the running loop)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def start_application(
    config: BridgeConfig, *, approver: Approver, monitor: MonitorLike, notifier: Notifier | None = None
) -> Application | None:
    """Build and start the daemon; None (reason printed) when its port is taken or its CPS backend is missing."""
    from bridge.api.ports import PortInUseError
    from bridge.app import Application
    from bridge.errors import BridgeError
    from bridge.paths import data_dir

    try:
        app = Application(config, data_dir=data_dir(), approver=approver, notifier=notifier, monitor=monitor)
    except BridgeError as exc:  # [cards] cps_backend = "pkcs11" and the Cryptolib is missing or broken
        print(exc.message_fr, file=sys.stderr)
        return None
    try:
        await app.start()
    except PortInUseError as exc:
        print(exc, file=sys.stderr)
        await app.stop()
        return None
    return app
