"""What the person at the workstation sees: pairing prompts and notices, behind small Protocols.

The service layer calls an `Approver` and a `Notifier` and never imports a GUI. `LogUI` is the headless
implementation (codes in the log; approve with `dmp-bridge origins approve CODE`); `TrayUI` uses
pystray when a display exists. Tests use their own fake.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from bridge.api.pairing import PendingPairing

__all__ = ["Approver", "Decide", "LogUI", "Notifier", "TrayUI", "display_available"]

log = logging.getLogger(__name__)

# The UI calls this (from any thread) with True to approve, False to deny.
Decide = Callable[[bool], None]


class Approver(Protocol):
    """Shows a pairing request to the person and reports their decision."""

    def pairing_requested(self, pending: PendingPairing, decide: Decide) -> None:
        """Show origin and code; call `decide` once the person has chosen (or never, for headless)."""


class Notifier(Protocol):
    """Short notices to the person (card blocked, DMP unreachable...)."""

    def notify(self, title: str, message: str) -> None:
        """Show a notice; must not block."""


def display_available() -> bool:
    """Whether a graphical session is reachable (tray possible)."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LogUI:
    """Headless: the code goes to the log; `dmp-bridge origins pending|approve` does the rest."""

    def pairing_requested(self, pending: PendingPairing, decide: Decide) -> None:
        """Log the request (origin and code are not secrets: the page shows the same code)."""
        from bridge.paths import cli_command

        log.warning(
            "Demande d'appairage de %s, code %s : `%s origins approve %s` / pairing request",
            pending.origin,
            pending.code,
            cli_command(),
            pending.code,
        )

    def notify(self, title: str, message: str) -> None:
        """Log the notice."""
        log.warning("%s: %s", title, message)


class TrayUI:
    """A pystray icon whose menu lists pending pairing requests with approve/deny entries."""

    def __init__(self, on_quit: Callable[[], None]) -> None:
        import pystray  # imported here: it needs a display backend
        from PIL import Image, ImageDraw

        image = Image.new("RGB", (64, 64), (0, 94, 184))
        ImageDraw.Draw(image).rectangle((14, 20, 50, 44), outline=(255, 255, 255), width=4)
        self._pystray: Any = pystray
        self._pending: dict[str, tuple[PendingPairing, Decide]] = {}
        self._lock = threading.Lock()
        self._on_quit = on_quit
        self._icon: Any = pystray.Icon("dmp-bridge", image, "dmp-bridge", menu=pystray.Menu(self._items))
        self._thread = threading.Thread(target=self._icon.run, name="tray", daemon=True)
        self._thread.start()

    def _items(self) -> Any:
        ps = self._pystray
        items = []
        with self._lock:
            for code, (pending, _) in self._pending.items():
                label = f"{pending.origin} — code {code}"
                items.append(
                    ps.MenuItem(
                        label,
                        ps.Menu(
                            ps.MenuItem("Autoriser / Approve", lambda *_a, c=code: self._decide(c, True)),
                            ps.MenuItem("Refuser / Deny", lambda *_a, c=code: self._decide(c, False)),
                        ),
                    )
                )
        items.append(ps.MenuItem("Quitter / Quit", lambda *_a: self._on_quit()))
        return items

    def _decide(self, code: str, approved: bool) -> None:
        with self._lock:
            entry = self._pending.pop(code, None)
        if entry is not None:
            entry[1](approved)
        self._icon.update_menu()

    def pairing_requested(self, pending: PendingPairing, decide: Decide) -> None:
        """Add the request to the menu and pop a notice."""
        with self._lock:
            self._pending[pending.code] = (pending, decide)
        self._icon.update_menu()
        self.notify("Demande d'appairage", f"{pending.origin} — code {pending.code}")

    def notify(self, title: str, message: str) -> None:
        """Desktop notification through the tray icon."""
        try:
            self._icon.notify(message, title)
        except Exception:  # some backends have no notifications: the log still has it
            log.info("%s: %s", title, message)

    def stop(self) -> None:
        """Remove the icon."""
        self._icon.stop()
