"""Run a private pcscd with vpcd virtual readers (sandbox and tests).

Debian's pcscd 1.9.9 always uses /run/pcscd/pcscd.comm and refuses to start when another instance
holds it, so a private instance runs in a private mount namespace with its own tmpfs on /run/pcscd.
The namespace is the *calling process's*: after `enter_private_namespace()` this process and its
children talk to the private pcscd, while the rest of the machine keeps the system one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PCSCD_RUN_DIR",
    "PcscdError",
    "PrivatePcscd",
    "enter_private_namespace",
    "free_port_pair",
    "vpcd_driver_path",
    "write_reader_conf",
]

PCSCD_RUN_DIR = Path("/run/pcscd")
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_READY_LINE = "daemon ready"


class PcscdError(RuntimeError):
    """The private pcscd could not be set up or started."""


def vpcd_driver_path() -> Path:
    """Where Debian's vsmartcard-vpcd installs the IFD handler."""
    for candidate in (
        Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so"),
        Path("/usr/lib64/pcsc/drivers/serial/libifdvpcd.so"),
    ):
        if candidate.exists():
            return candidate
    raise PcscdError("vpcd driver not found: install the Debian package vsmartcard-vpcd")


def write_reader_conf(conf_dir: Path, base_port: int) -> Path:
    """Write a reader.conf.d with one vpcd entry: two slots, "Virtual PCD 00 00" on base_port, "00 01" on +1.

    The vpcd driver keeps its slots in process-wide state, so a second entry in the same pcscd takes
    over the first one's sockets: one entry (two readers) per pcscd is all that works.
    """
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "vpcd"
    path.write_text(
        f'FRIENDLYNAME "Virtual PCD"\nDEVICENAME /dev/null:{base_port:#x}\n'
        f"LIBPATH {vpcd_driver_path()}\nCHANNELID {base_port:#x}\n"
    )
    return path


def free_port_pair() -> int:
    """A base port p such that p and p+1 are free now (vpcd binds both on all interfaces)."""
    while True:
        with socket.socket() as first:
            first.bind(("0.0.0.0", 0))
            port: int = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("0.0.0.0", port + 1))
                except OSError:
                    continue
        return port


def enter_private_namespace() -> None:
    """Move this process into a private mount namespace with an empty tmpfs on /run/pcscd.

    Must be called while the process has a single thread (unshare(CLONE_NEWNS) fails otherwise) and as
    root (CAP_SYS_ADMIN).
    """
    if threading.active_count() > 1:
        raise PcscdError("enter_private_namespace() needs a single-threaded process")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.unshare(_CLONE_NEWNS) != 0:
        raise PcscdError(f"unshare(CLONE_NEWNS) failed: {os.strerror(ctypes.get_errno())} (root needed)")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise PcscdError(f"making / private failed: {os.strerror(ctypes.get_errno())}")
    PCSCD_RUN_DIR.mkdir(parents=True, exist_ok=True)
    if libc.mount(b"tmpfs", str(PCSCD_RUN_DIR).encode(), b"tmpfs", 0, b"mode=0755") != 0:
        raise PcscdError(f"mounting tmpfs on {PCSCD_RUN_DIR} failed: {os.strerror(ctypes.get_errno())}")


@dataclass
class PrivatePcscd:
    """A pcscd process started in the foreground with our reader configuration, stopped by PID."""

    work_dir: Path
    base_port: int
    debug: bool = False
    process: subprocess.Popen[str] | None = field(default=None, init=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False)

    @property
    def log_path(self) -> Path:
        """pcscd's output, for diagnosing a failed test."""
        return self.work_dir / "pcscd.log"

    @property
    def slot_ports(self) -> list[int]:
        """The vpcd port of each slot, in reader order (Virtual PCD 00 00, 00 01)."""
        return [self.base_port, self.base_port + 1]

    def start(self, timeout: float = 10.0) -> None:
        """Start pcscd and return once it reports ready."""
        exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
        if not Path(exe).exists():
            raise PcscdError("pcscd not found: install the Debian package pcscd")
        conf_dir = self.work_dir / "reader.conf.d"
        write_reader_conf(conf_dir, self.base_port)
        self._ready.clear()
        # -d makes pcscd print the "daemon ready" line we wait on; -a would add APDU logging.
        args = [exe, "--foreground", "--debug", "--config", str(conf_dir)]
        if self.debug:
            args.append("--apdu")
        self.process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        threading.Thread(target=self._drain, args=(self.process,), daemon=True, name="pcscd-log").start()
        if not self._ready.wait(timeout) or self.process.poll() is not None or not self._accepts_clients(timeout):
            self.stop()
            raise PcscdError(f"pcscd did not become ready; see {self.log_path}")

    def _accepts_clients(self, timeout: float) -> bool:
        """Whether a client context can be established (pcscd logs « ready » a moment before, under load)."""
        from smartcard import scard

        deadline = time.monotonic() + timeout
        while True:
            hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr == scard.SCARD_S_SUCCESS:
                scard.SCardReleaseContext(context)
                return True
            if hr != scard.SCARD_E_NO_SERVICE or time.monotonic() > deadline:
                return False
            # The socket is being created: libpcsclite has no way to wait for it, so ask again shortly.
            time.sleep(0.02)

    def _drain(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with self.log_path.open("a") as log_file:
            for line in process.stdout:
                log_file.write(line)
                log_file.flush()
                if _READY_LINE in line:
                    self._ready.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate pcscd (by its PID only) and wait for it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def restart(self) -> None:
        """Stop and start again with the same configuration (tests of pcscd going away)."""
        self.stop()
        self.start()
