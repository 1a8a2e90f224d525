"""The Application: builds and owns everything the daemon runs, and passes it down (no singletons).

Owns the config, the local token, the approvals store and pairing manager, the reader feed (around
the PC/SC ReaderMonitor), the card service (PcscCardService by default with the real monitor, its CPS
backend chosen by the `[cards]` table: the ANS Cryptolib when installed, else PC/SC), the method
registry and the HTTP/WebSocket server.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.api.handlers_cards import card_handlers
from bridge.api.handlers_core import core_handlers
from bridge.api.handlers_dmp import dmp_handlers
from bridge.api.handlers_outbox import outbox_handlers
from bridge.api.methods import ConnectionView, Registry
from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore, PairingManager, PendingPairing
from bridge.api.server import BridgeServer
from bridge.api.token import load_or_create_token, rotate_token
from bridge.config import BridgeConfig
from bridge.errors import BridgeError
from bridge.feed.feed_service import FeedService
from bridge.feed.outbox_model import OutboxJob, explain_fr
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.cards import CardService
from bridge.service.cps_backend import select_cps_backend
from bridge.service.dmp import DmpService
from bridge.service.dmp_card import CardServiceDirectSource
from bridge.service.dmp_locks import SharedCardLocks
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.service.readers import MonitorLike, ReaderFeed
from bridge.tray import Approver, Notifier

__all__ = ["Application", "RecentErrors"]

log = logging.getLogger(__name__)


class RecentErrors:
    """The last error codes per method, for the diagnostics page (no text, no params)."""

    def __init__(self, size: int = 50) -> None:
        self._items: deque[dict[str, str]] = deque(maxlen=size)

    def record(self, method: str, code: str) -> None:
        """Remember one error."""
        self._items.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "method": method, "code": code})

    def recent(self) -> list[dict[str, str]]:
        """Newest last."""
        return list(self._items)


class Application:
    """Everything the daemon needs, built once and handed to the parts that use it."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        data_dir: Path,
        approver: Approver,
        notifier: Notifier | None = None,
        monitor: MonitorLike | None = None,
        cards: CardService | None = None,
        registry: Registry | None = None,
        dmp: DmpService | None = None,
    ) -> None:
        self.config = config
        self.version = __version__
        self.data_dir = data_dir
        self.token = load_or_create_token(data_dir)
        self.store = ApprovalStore(data_dir / APPROVALS_FILENAME)
        self.pairing = PairingManager(self.store, ttl=config.pairing_ttl)
        self.monitor = monitor
        self.readers = ReaderFeed(monitor)
        if cards is None and isinstance(monitor, ReaderMonitor):
            # The real PC/SC monitor means real cards: drive them with the drivers (tests pass their own).
            cards = PcscCardService(
                monitor, operation_timeout=config.card_timeout, cps_backend=select_cps_backend(config.cards)
            )
        self.cards = cards
        self.errors = RecentErrors()
        # Shared with the DMP service: a DIRECTE call holds its card against other callers' card methods.
        self.locks = SharedCardLocks(config.card_busy_wait)
        direct = CardServiceDirectSource(cards, monitor) if isinstance(cards, PcscCardService) else None
        self.dmp = dmp or DmpService(config.dmp, direct=direct, locks=self.locks)
        #: Unattended feeding (`[feed] enabled`): the outbox, its worker, the MLLP listener, the hot folder.
        self.feed = FeedService(config.feed, self.dmp, data_dir) if config.feed.enabled else None
        self.registry = registry or Registry(
            [
                *core_handlers(),
                *card_handlers(self.locks),
                *dmp_handlers(self.dmp),
                *outbox_handlers(self.dmp, self.feed),
            ]
        )
        self.approver = approver
        self.notifier = notifier
        self._pcsc_available: bool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.server = BridgeServer(
            self,
            self.registry,
            port=config.port,
            token=self.token,
            max_message_size=config.max_message_size,
            max_in_flight=config.max_in_flight,
            extra_hosts=config.extra_allowed_hosts,
        )
        self.pairing.add_listener(self.server.pairing_decided)
        self.pairing.add_request_listener(self._show_pairing)
        if self.feed is not None:
            self.feed.outbox.add_listener(self._outbox_changed)
            self.feed.on_permanent_failure(self._feeding_failed)

    @property
    def port(self) -> int:
        """The port actually listened on."""
        return self.server.port

    async def start(self, hosts: tuple[str, ...] = ("127.0.0.1", "::1")) -> None:
        """Start the monitor (if it needs starting), the server, and the event feed."""
        await _maybe_call(self.monitor, "start")
        await self.server.start(hosts)
        self._pcsc_available = self.readers.available
        self.readers.start(self._publish)
        if self.feed is not None:
            await self.feed.start()

    async def stop(self) -> None:
        """Stop in reverse order."""
        await self.readers.stop()
        if self.feed is not None:
            await self.feed.stop()
        await self.server.stop()
        await self.dmp.aclose()
        await _maybe_call(self.cards, "close")
        await _maybe_call(self.monitor, "stop")

    def _publish(self, method: str, params: dict[str, Any]) -> None:
        """Reader events: the card service forgets a removed card's session, then connections are told."""
        if method == "readers.changed":
            self._notice_pcsc(params["pcsc"] == "available")
        if method == "card.removed" and self.cards is not None:
            task = asyncio.create_task(self.cards.forget(str(params["reader"])))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self.server.publish(method, params)

    def _outbox_changed(self, job: OutboxJob) -> None:
        self.server.publish("dmp.outbox.changed", job.to_public())

    def _feeding_failed(self, job: OutboxJob) -> None:
        """Tell the person at once: a document will not reach the DMP until someone acts."""
        if self.notifier is not None:
            why = explain_fr(job.reason or "INTERNAL", job.detail)
            self.notifier.notify("Alimentation du DMP", f"Un document n'a pas pu être versé (tâche {job.id}). {why}")

    def _notice_pcsc(self, available: bool) -> None:
        """Tell the person when the smart-card service goes away or comes back (not on every event)."""
        previous, self._pcsc_available = self._pcsc_available, available
        if self.notifier is None or previous is None or previous == available:
            return
        if available:
            self.notifier.notify("Lecteurs de carte", "Le service carte à puce (PC/SC) répond de nouveau.")
        else:
            self.notifier.notify("Lecteurs de carte", "Le service carte à puce (PC/SC) ne répond plus.")

    async def rotate_token(self, keep: ConnectionView) -> str:
        """Write a new local token and accept only it from now on (the CLI asks for this; see `token --rotate`)."""
        self.token = rotate_token(self.data_dir)
        await self.server.set_token(self.token, keep=keep)
        log.info("local token rotated")
        return self.token

    def _show_pairing(self, pending: PendingPairing) -> None:
        loop = asyncio.get_running_loop()

        def decide(approved: bool) -> None:
            loop.call_soon_threadsafe(self._decided, pending.code, approved)

        self.approver.pairing_requested(pending, decide)

    def _decided(self, code: str, approved: bool) -> None:
        try:
            if approved:
                self.pairing.approve(code)
            else:
                self.pairing.deny(code)
        except BridgeError:
            log.info("pairing decision for an expired or already decided request")


async def _maybe_call(obj: Any, name: str) -> None:
    method = getattr(obj, name, None)
    if method is None:
        return
    result = method()
    if inspect.isawaitable(result):
        await result
