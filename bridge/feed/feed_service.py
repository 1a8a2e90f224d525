"""Feeding as the daemon runs it: the outbox and, when `[feed] enabled`, its worker, the MLLP listener,
the feeding-acknowledgement sender and the hot folder, all built from the config and handed the
`DmpService` of the interactive calls (one DMP client per credential set, shared)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bridge.dmp.codes import AuthMode
from bridge.feed.feed_config import FeedConfig
from bridge.feed.hl7_intake import FeedingAckSender, MllpListener, feeding_ack
from bridge.feed.hot_folder import HotFolder
from bridge.feed.intake import unique_id_maker
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_dmp import DmpFeedSender
from bridge.feed.outbox_model import JobState, OutboxJob
from bridge.feed.outbox_store import OUTBOX_FILENAME
from bridge.feed.outbox_worker import OutboxWorker
from bridge.feed.retry_policy import RetryPolicy
from bridge.service.dmp import DmpService

__all__ = ["FeedService"]

log = logging.getLogger(__name__)


class FeedService:
    """The outbox and the parts that fill and empty it (see the module docstring)."""

    def __init__(self, config: FeedConfig, dmp: DmpService, data_dir: Path) -> None:
        self.config = config
        self.outbox = Outbox(data_dir / OUTBOX_FILENAME)
        self.new_uid: Callable[[], str] = unique_id_maker(dmp.config.oid_root)
        self.worker: OutboxWorker | None = None
        self.listener: MllpListener | None = None
        self.acks: FeedingAckSender | None = None
        self.hot_folder: HotFolder | None = None
        if not config.enabled:
            return
        policy = RetryPolicy(base=config.retry_base, cap=config.retry_cap)
        sender = DmpFeedSender(dmp, AuthMode(config.mode))
        self.worker = OutboxWorker(self.outbox, sender, policy=policy, concurrency=config.workers, ack=feeding_ack)
        if config.mllp_port:
            self.listener = MllpListener(self.outbox, host=config.mllp_host, port=config.mllp_port)
        if config.dpi_ack_port:
            self.acks = FeedingAckSender(self.outbox, config.dpi_ack_host, config.dpi_ack_port, policy=policy)
        if config.hot_folder is not None:
            self.hot_folder = HotFolder(
                self.outbox, config.hot_folder, new_uid=self.new_uid, interval=config.hot_folder_interval
            )

    def on_permanent_failure(self, notify: Callable[[OutboxJob], None]) -> None:
        """Call `notify(job)` when a job fails for good (the tray tells the person)."""
        self.outbox.add_listener(lambda job: notify(job) if job.state is JobState.FAILED else None)

    async def start(self) -> None:
        """Start the listener first (a DPI may send at once), then the worker and the rest."""
        if self.listener is not None:
            await self.listener.start()
            log.info("HL7v2 MLLP listener on %s:%d", self.config.mllp_host, self.listener.port)
        for part in (self.worker, self.acks, self.hot_folder):
            if part is not None:
                part.start()

    async def stop(self) -> None:
        """Stop intake, then sending, then close the outbox."""
        if self.listener is not None:
            await self.listener.stop()
        for part in (self.hot_folder, self.acks, self.worker):
            if part is not None:
                await part.stop()
        await self.outbox.aclose()
