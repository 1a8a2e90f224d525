"""Fault injection for the DMP tests: the simulator as a real process (killed and restarted for real) and
a TCP proxy that delays, cuts, drops or refuses between the bridge and the simulator.

The proxy sees only TLS bytes, so its faults are keyed on how much the client has sent on a connection:
a TLS handshake is a few KiB, a request carrying a document is far more (`upload_threshold`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from bridge.crypto.pki import TestPki
from bridge.sim.dmp.store import DmpStore, PatientRow
from tests.dmp_fixtures import server_files

__all__ = ["Fault", "FaultProxy", "SimProcess", "free_port"]

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on the loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SimProcess:
    """`dmp-bridge dmp-sim` in its own process, on a fixed port and data folder that survive a restart."""

    def __init__(
        self, pki: TestPki, directory: Path, patients: Iterable[PatientRow] = (), faults: Path | None = None
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.cert, self.key, self.ca_file = server_files(pki, directory)
        self.data = directory / "data"
        self.port = free_port()
        store = DmpStore(self.data / "dmp-sim.sqlite3")
        store.seed_patients(patients)
        store.close()
        self._proc: subprocess.Popen[str] | None = None
        #: The simulator's fault knobs file (`dmp-sim --faults`), if any.
        self.faults = faults
        #: How many times the process was started.
        self.starts = 0

    @property
    def url(self) -> str:
        """Services base URL."""
        return f"https://127.0.0.1:{self.port}/si-dmp-server/v2/services"

    async def start(self) -> None:
        """Start the process and wait until it says it serves (its first line of output)."""
        args = [sys.executable, "-m", "bridge.cli", "dmp-sim", "--port", str(self.port), "--data", str(self.data)]
        args += ["--cert", str(self.cert), "--key", str(self.key), "--cafile", str(self.ca_file)]
        if self.faults is not None:
            args += ["--faults", str(self.faults)]
        self._proc = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ)
        )
        assert self._proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self._proc.stdout.readline), 30)
        assert line.startswith("DMP simulator:"), line
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL, as a crash would (no clean TLS close, sessions and ticket keys lost)."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
            self._proc = None

    async def restart(self) -> None:
        """Kill and start again on the same port and data."""
        self.kill()
        await self.start()

    def stored(self, unique_id: str | None = None) -> int:
        """How many documents the simulator stored (with this uniqueId), read from its database."""
        with contextlib.closing(sqlite3.connect(f"file:{self.data / 'dmp-sim.sqlite3'}?mode=ro", uri=True)) as db:
            if unique_id is None:
                return int(db.execute("SELECT COUNT(*) FROM contents").fetchone()[0])
            return int(db.execute("SELECT COUNT(*) FROM contents WHERE unique_id=?", (unique_id,)).fetchone()[0])


class Fault(enum.Enum):
    """What the proxy does (read at each step, so it applies to kept-alive connections too)."""

    #: Forward everything.
    PASS = "pass"
    #: Accept, then close at once (a server that is down behind a load balancer).
    REFUSE = "refuse"
    #: Close both sides once the client has sent `upload_threshold` bytes (upload cut midway).
    CUT_UPLOAD = "cut-upload"
    #: Forward the whole request, then close without forwarding any byte of the answer.
    DROP_RESPONSE = "drop-response"
    #: Forward the whole request, then hold the answer until `release` is set (a slow DMP).
    HOLD_RESPONSE = "hold-response"
    #: Accept and read, never forward nor answer (a black hole: the TLS handshake stalls).
    STALL = "stall"
    #: Forward the whole request, then pass the answer one byte every `drip_interval` s (each read succeeds).
    DRIP = "drip"


class FaultProxy:
    """A loopback TCP proxy in front of `target_port` (runs on the test's event loop)."""

    def __init__(self, target_port: int, upload_threshold: int = 64 * 1024) -> None:
        self.target_port = target_port
        self.upload_threshold = upload_threshold
        self.fault = Fault.PASS
        #: Set to let held answers through (Fault.HOLD_RESPONSE).
        self.release = asyncio.Event()
        #: Set when a connection crossed the threshold and its fault was applied.
        self.triggered = asyncio.Event()
        self.connections = 0
        #: Seconds between two answer bytes (Fault.DRIP).
        self.drip_interval = 0.5
        #: Connections on which the client sent at least `upload_threshold` bytes (requests with a document).
        self.uploads = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.release.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.fault is Fault.REFUSE:
            writer.transport.abort()
            return
        if self.fault is Fault.STALL:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                while await reader.read(65536):
                    pass
            except asyncio.CancelledError:
                pass  # the proxy is closing
            finally:
                writer.transport.abort()
                self._tasks.discard(task)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        sent = [0]
        over = asyncio.Event()

        async def upstream() -> None:
            while data := await reader.read(65536):
                if self.fault is Fault.CUT_UPLOAD and sent[0] + len(data) >= self.upload_threshold:
                    self.uploads += 1
                    self.triggered.set()
                    raise ConnectionAbortedError
                sent[0] += len(data)
                if sent[0] >= self.upload_threshold and not over.is_set():
                    self.uploads += 1
                    over.set()
                up_writer.write(data)
                await up_writer.drain()
            up_writer.write_eof()

        async def downstream() -> None:
            while data := await up_reader.read(65536):
                if over.is_set() and self.fault is Fault.DROP_RESPONSE:
                    self.triggered.set()
                    raise ConnectionAbortedError
                if over.is_set() and self.fault is Fault.HOLD_RESPONSE:
                    self.triggered.set()
                    await self.release.wait()
                if over.is_set() and self.fault is Fault.DRIP:
                    self.triggered.set()
                    for i in range(len(data)):
                        writer.write(data[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(self.drip_interval)
                    continue
                writer.write(data)
                await writer.drain()
            writer.write_eof()

        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
            done, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            if any(not t.cancelled() and t.exception() is not None for t in done):
                for t in pending:
                    t.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy is closing
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self._tasks.discard(task)
