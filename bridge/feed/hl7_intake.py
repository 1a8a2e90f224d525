"""The HL7 v2 edges: the MLLP listener the DPI sends to, and the sender of feeding acknowledgements.

Listener: on loopback (the default), only processes of the daemon's OS user are served (MLLP carries
no credential; on a hospital network, `mllp_host` must be an interface of a trusted segment). Each
framed message is parsed and checked off the event loop (`parse_feed_message`), then
written to the outbox; only then is the ACK AA sent, so an AA means "durably queued". A malformed or
non-conforming message gets AE with an ERR saying what to fix, and nothing is queued; a message that
could not be stored (disk full, database locked) gets AR: the DPI sends it again later. A message sent
again with the same sender and MSH-10 (its ACK was lost) is the same job: AA again, nothing doubled.

Acknowledgement sender: the DMP's outcome of each HL7 job (ZAM^Z01, written with the job's final state
in one transaction) is delivered to the DPI's MLLP endpoint (`[feed] dpi_ack_host/port`) until the DPI
acknowledges it (MSA-1 AA or CA), with backoff between failed deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import random
import time
from collections.abc import Callable

import hl7

from bridge.api.peer import UNSUPPORTED, peer_uid
from bridge.feed.hl7_mapping import parse_feed_message
from bridge.feed.hl7_message import (
    Hl7Header,
    Hl7Problem,
    build_ack,
    build_feeding_ack,
    decode,
    parse_ack,
    read_header,
)
from bridge.feed.mllp import MllpDecoder, MllpError, frame
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_model import JobState, Origin, OutboxJob, explain_fr
from bridge.feed.outbox_store import PendingAck
from bridge.feed.retry_policy import RetryPolicy

__all__ = ["FeedingAckSender", "MllpListener", "feeding_ack"]

log = logging.getLogger(__name__)

_STORE_FAILED = Hl7Problem(
    "AR", "207", "Application internal error", "",
    "Le pont n'a pas pu enregistrer le message : rien n'a été pris en compte, renvoyez-le plus tard.",
)  # fmt: skip


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _header_of(raw: bytes) -> Hl7Header | None:
    try:
        return read_header(hl7.parse(decode(raw)))
    except Exception:  # an unreadable header still gets an ACK, with an empty MSA-2
        return None


def feeding_ack(job: OutboxJob, reply_to: str) -> bytes | None:
    """The ZAM^Z01 of a finished HL7 job (the outbox writes it with the job's final state)."""
    header = Hl7Header.from_json(reply_to)
    ok = job.state is JobState.SENT
    return build_feeding_ack(
        header,
        ok=ok,
        control_id=f"ZAM{job.id}",
        now=_now(),
        dmp_code=None if ok else (job.detail or job.reason),
        reason_fr=None if ok or not job.reason else explain_fr(job.reason, job.detail),
    )


class MllpListener:
    """Accepts ORU/MDM messages over MLLP and queues their documents (see the module docstring)."""

    def __init__(self, outbox: Outbox, *, host: str = "127.0.0.1", port: int = 0, max_size: int = 32 << 20) -> None:
        self.outbox = outbox
        self.host = host
        self._port = port
        self.max_size = max_size
        self._server: asyncio.Server | None = None
        self._counter = 0
        self._clients: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        return self._port

    async def start(self) -> None:
        """Listen."""
        self._server = await asyncio.start_server(self._serve, self.host, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _other_user(self, writer: asyncio.StreamWriter) -> bool:
        """On loopback, a client of another OS user is refused (as the WebSocket API does, design §3)."""
        sock = writer.get_extra_info("socket")
        if sock is None or not ipaddress.ip_address(self.host).is_loopback:
            return False
        try:
            uid = await asyncio.to_thread(peer_uid, sock)
        except OSError:
            return True
        return uid not in (os.getuid(), UNSUPPORTED)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        decoder = MllpDecoder(self.max_size)
        try:
            if await self._other_user(writer):
                log.warning("MLLP: connection from another OS user refused")
                return
            while data := await reader.read(65536):
                for raw in decoder.feed(data):
                    writer.write(frame(await self.accept(raw)))
                    await writer.drain()
        except MllpError:
            log.warning("MLLP: frame too large, connection closed")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self._clients.discard(task)

    def _control_id(self) -> str:
        self._counter += 1
        return f"ACK{int(time.time() * 1000)}{self._counter:04d}"

    async def accept(self, raw: bytes) -> bytes:
        """The ACK of one message, after the document is durably queued (AA) or refused (AE/AR)."""
        try:
            request = await asyncio.to_thread(parse_feed_message, raw)
        except Hl7Problem as problem:
            header = _header_of(raw)
            log.info("HL7 message refused: %s", problem)
            return build_ack(header, problem.ack_code, self._control_id(), _now(), problem)
        header = request.header
        if request.for_dmp:
            try:
                job, created = await self.outbox.enqueue(
                    kind=request.kind,
                    unique_id=request.unique_id,
                    patient=request.ins,
                    patient_oid=request.ins_oid,
                    ins_qualified=request.ins_qualified,
                    origin=Origin.HL7,
                    source_key=request.source_key,
                    spec=request.spec,
                    payload=request.document,
                    reply_to=header.to_json(),
                )
            except Exception:
                log.exception("HL7 message not stored")
                return build_ack(header, "AR", self._control_id(), _now(), _STORE_FAILED)
            log.info("HL7 message queued as job %d%s", job.id, "" if created else " (sent again)")
        return build_ack(header, "AA", self._control_id(), _now())


class FeedingAckSender:
    """Delivers pending feeding acknowledgements to the DPI (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        host: str,
        port: int,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.host = host
        self.port = port
        self.policy = policy or RetryPolicy(base=1.0, cap=120.0)
        self.timeout = timeout
        self._clock = clock
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        outbox.add_listener(self._noticed)

    def _noticed(self, job: OutboxJob) -> None:
        if job.origin is Origin.HL7 and job.state in (JobState.SENT, JobState.FAILED):
            self._wake.set()

    def start(self) -> None:
        """Run as a task."""
        self._task = asyncio.create_task(self.run(), name="feeding-acks")

    async def stop(self) -> None:
        """Stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Deliver what is due, then wait for the next one."""
        while True:
            self._wake.clear()
            pending = await self.outbox.pending_acks()
            if pending:
                await self._deliver(pending)
                continue
            due = await self.outbox.next_ack_due()
            timeout = 30.0 if due is None else min(30.0, max(0.01, due - self._clock()))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (stop() would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    async def _deliver(self, pending: list[PendingAck]) -> None:
        writer: asyncio.StreamWriter | None = None
        settled: set[int] = set()
        try:
            reader, out = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout)
            writer = out
            decoder = MllpDecoder()
            for item in pending:
                out.write(frame(item.message))
                await out.drain()
                answers: list[bytes] = []
                while not answers:
                    data = await asyncio.wait_for(reader.read(65536), self.timeout)
                    if not data:
                        raise ConnectionError("DPI closed the connection")
                    answers = decoder.feed(data)
                code, _ = parse_ack(answers[0])
                if code in ("AA", "CA"):
                    await self.outbox.ack_delivered(item.id, item.job_id)
                else:
                    await self._later(item, f"DPI answered {code}")
                settled.add(item.id)
        except (OSError, TimeoutError, ValueError, ConnectionError) as exc:
            log.info("feeding acknowledgements not delivered: %s", type(exc).__name__)
            for item in pending:
                if item.id not in settled:
                    await self._later(item, type(exc).__name__)
        finally:
            if writer is not None:
                writer.transport.abort()

    async def _later(self, item: PendingAck, why: str) -> None:
        delay = self.policy.delay(item.attempts + 1, self._rng)
        log.info("feeding acknowledgement %d: %s, again in %.1f s", item.id, why, delay)
        await self.outbox.ack_later(item.id, self._clock() + delay)
