"""What the person at the workstation sees: pairing prompts, last-PIN-try confirmations and notices.

The service layer calls an `Approver` and a `Notifier` and never imports a GUI. `LogUI` is the headless
implementation (codes in the log; approve with `dmp-bridge origins approve CODE`); `TrayUI` uses
pystray when a display exists. Tests use their own fake.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.api.pairing import PendingPairing

__all__ = ["Approver", "Decide", "LastTryRequest", "LogUI", "Notifier", "TrayUI", "display_available"]

log = logging.getLogger(__name__)

# The UI calls this (from any thread) with True to approve, False to deny.
Decide = Callable[[bool], None]


@dataclass(frozen=True, kw_only=True)
class LastTryRequest:
    """A page asks to spend a card's last PIN try: only the person at the workstation may allow it."""

    request_id: str
    origin: str
    reader: str
    #: time.monotonic() after which the page has stopped waiting (the prompt can go).
    expires_at: float


class Approver(Protocol):
    """Shows pairing requests and last-try requests to the person and reports their decisions."""

    def pairing_requested(self, pending: PendingPairing, decide: Decide) -> None:
        """Show origin and code; call `decide` once the person has chosen (or never, for headless)."""

    def last_try_requested(self, request: LastTryRequest, decide: Decide) -> None:
        """Ask whether the card in `request.reader` may spend its last PIN try for `request.origin`."""


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

    def last_try_requested(self, request: LastTryRequest, decide: Decide) -> None:
        """Nobody can confirm headless: refused at once, with the way to do it at the workstation."""
        log.warning(
            "Dernier essai du code demandé par %s (%s) : refusé sans interface ; au poste, "
            "`dmp-bridge card --pin-stdin --force-last-try` / last PIN try refused (no tray)",
            request.origin,
            request.reader,
        )
        decide(False)

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
        self._last_tries: dict[str, tuple[LastTryRequest, Decide]] = {}
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
            now = time.monotonic()
            for rid, (request, _) in self._last_tries.items():
                if request.expires_at <= now:
                    continue  # the page stopped waiting
                items.append(
                    ps.MenuItem(
                        f"Dernier essai du code : {request.origin} ({request.reader})",
                        ps.Menu(
                            ps.MenuItem(
                                "Utiliser le dernier essai / Spend the last try",
                                lambda *_a, r=rid: self._decide_last_try(r, True),
                            ),
                            ps.MenuItem("Refuser / Refuse", lambda *_a, r=rid: self._decide_last_try(r, False)),
                        ),
                    )
                )
        items.append(ps.MenuItem("Quitter / Quit", lambda *_a: self._on_quit()))
        return items

    def _decide_last_try(self, request_id: str, allowed: bool) -> None:
        with self._lock:
            entry = self._last_tries.pop(request_id, None)
        if entry is not None:
            entry[1](allowed)
        self._icon.update_menu()

    def last_try_requested(self, request: LastTryRequest, decide: Decide) -> None:
        """Add the confirmation to the menu and pop a notice (a wrong PIN now blocks the card)."""
        with self._lock:
            now = time.monotonic()
            for rid in [r for r, (q, _) in self._last_tries.items() if q.expires_at <= now]:
                del self._last_tries[rid]
            self._last_tries[request.request_id] = (request, decide)
        self._icon.update_menu()
        self.notify(
            "Dernier essai du code",
            f"{request.origin} demande le dernier essai de la carte ({request.reader}) : confirmez dans le menu.",
        )

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
