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
import os
import secrets
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge import __version__
from bridge.api.handlers_cards import card_handlers
from bridge.api.handlers_core import core_handlers
from bridge.api.handlers_diagnostics import diagnostics_handlers
from bridge.api.handlers_dmp import dmp_handlers
from bridge.api.handlers_ins import ins_handlers
from bridge.api.handlers_outbox import outbox_handlers
from bridge.api.handlers_patient import patient_handlers
from bridge.api.handlers_patient_lists import patient_list_handlers
from bridge.api.methods import ConnectionView, Handler, Registry
from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore, PairingManager, PendingPairing
from bridge.api.ports import PortInUseError
from bridge.api.server import BridgeServer
from bridge.api.token import load_or_create_token, rotate_token
from bridge.api.user_port import candidate_ports, remove_port_file, write_port_file
from bridge.config import DEFAULT_PORT, BridgeConfig
from bridge.errors import BridgeError
from bridge.feed.outbox_model import OutboxJob, explain_fr
from bridge.pcsc.monitor import ReaderMonitor
from bridge.service.cards import CardService
from bridge.service.cps_backend import select_cps_backend
from bridge.service.dmp import DmpService
from bridge.service.dmp_card import CardServiceDirectSource
from bridge.service.dmp_locks import SharedCardLocks
from bridge.service.dmp_patient import PatientAccess
from bridge.service.ins import InsService
from bridge.service.pcsc_cards.service import PcscCardService
from bridge.service.readers import MonitorLike, ReaderFeed
from bridge.tray import Approver, LastTryRequest, Notifier

if TYPE_CHECKING:
    from bridge.feed.feed_service import FeedService

__all__ = ["Application", "RecentErrors", "all_handlers"]

log = logging.getLogger(__name__)

LAST_TRY_WAIT = 60.0


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



def all_handlers(
    locks: SharedCardLocks, dmp: DmpService, ins: InsService, feed: FeedService | None = None
) -> list[Handler]:
    """Every method the daemon serves (also what docs/api.md's method reference is generated from)."""
    return [
        *core_handlers(),
        *card_handlers(locks),
        *dmp_handlers(dmp, ins=ins),
        *outbox_handlers(dmp, feed, ins),
        *patient_handlers(access := PatientAccess(dmp)),
        *patient_list_handlers(access),
        *ins_handlers(ins, locks),
        *diagnostics_handlers(lambda: dmp.config),
    ]

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
        self.locks = SharedCardLocks(config.card_busy_wait, share_cps_login=config.share_cps_login)
        direct = CardServiceDirectSource(cards, monitor) if isinstance(cards, PcscCardService) else None
        self.dmp = dmp or DmpService(config.dmp, direct=direct, locks=self.locks)
        self.ins = InsService(config.insi, self.dmp)
        #: Unattended feeding (`[feed] enabled`): the outbox, its worker, the MLLP listener, the hot folder.
        self.feed: FeedService | None = None
        if config.feed.enabled:
            # Imported only when feeding is on: the HL7 stack is not needed by a workstation's daemon.
            from bridge.feed.feed_service import FeedService

            self.feed = FeedService(config.feed, self.dmp, data_dir)
        self.registry = registry or Registry(all_handlers(self.locks, self.dmp, self.ins, self.feed))
        self.approver = approver
        #: Ports tried in order when none is configured (tests give their own free ones).
        self.port_candidates = candidate_ports(os.getuid(), DEFAULT_PORT)
        #: Seconds a page's request for the last PIN try waits for the person's confirmation in the tray.
        self.last_try_wait = LAST_TRY_WAIT
        self.notifier = notifier
        self._pcsc_available: bool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.server = BridgeServer(
            self,
            self.registry,
            port=config.port if config.port is not None else 0,
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
        if self.config.port is None:
            await self._listen_on_user_port(hosts)
        else:
            await self.server.start(hosts)
        write_port_file(self.data_dir, self.port)  # where the CLI finds this user's daemon
        self._pcsc_available = self.readers.available
        self.readers.start(self._publish)
        if self.feed is not None:
            await self.feed.start()

    async def _listen_on_user_port(self, hosts: tuple[str, ...]) -> None:
        """No port configured: the first free one of this user's candidates (one daemon per OS user)."""
        candidates = self.port_candidates
        for port in candidates:
            self.server.port = port
            try:
                await self.server.start(hosts)
                return
            except PortInUseError:
                continue  # another user's daemon (or anything else): the next candidate
        raise PortInUseError(candidates[0], f"ports {min(candidates)}-{max(candidates)}")

    async def stop(self) -> None:
        """Stop in reverse order."""
        remove_port_file(self.data_dir, self.port)
        await self.readers.stop()
        if self.feed is not None:
            await self.feed.stop()
        await self.server.stop()
        await self.dmp.aclose()
        await self.ins.aclose()
        await _maybe_call(self.cards, "close")
        await _maybe_call(self.monitor, "stop")

    def _publish(self, method: str, params: dict[str, Any]) -> None:
        """Reader events: the card service forgets a removed card's session, then connections are told."""
        if method == "readers.changed":
            self._notice_pcsc(params["pcsc"] == "available")
        if method == "card.removed":
            self.locks.login_owners.forget(str(params["reader"]))  # a removed card's login is gone
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

    async def confirm_last_try(self, origin: str, reader: str) -> bool:
        """Ask the person (tray) whether `origin` may spend `reader`'s last PIN try; False after `last_try_wait`."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()

        def settle(allowed: bool) -> None:
            if not answer.done():
                answer.set_result(allowed)

        def decide(allowed: bool) -> None:
            # From the tray's thread, or synchronously (headless refuses at once).
            loop.call_soon_threadsafe(settle, allowed)

        request = LastTryRequest(
            request_id=secrets.token_hex(8),
            origin=origin,
            reader=reader,
            expires_at=time.monotonic() + self.last_try_wait,
        )
        self.approver.last_try_requested(request, decide)
        try:
            allowed = await asyncio.wait_for(answer, self.last_try_wait)
        except TimeoutError:
            allowed = False
        log.info("last PIN try for %s: %s at the workstation", origin, "confirmed" if allowed else "not confirmed")
        return allowed

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
