"""`dmp-bridge sandbox` as a user starts it, in a subprocess on free ports, for the sandbox tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunningSandbox", "running_sandbox"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunningSandbox:
    """The sandbox's ports and the summary it printed (up to its Ctrl-C hint)."""

    port: int
    demo_port: int
    summary: str


@contextmanager
def running_sandbox(home: Path, *options: str, env: dict[str, str] | None = None) -> Iterator[RunningSandbox]:
    """Start the sandbox with a private pcscd and `options`; stop it with SIGTERM and require exit 0."""
    with socket.socket() as probe, socket.socket() as probe2:
        probe.bind(("127.0.0.1", 0))
        probe2.bind(("127.0.0.1", 0))
        port, demo_port = probe.getsockname()[1], probe2.getsockname()[1]
    full_env = {**os.environ, "DMP_BRIDGE_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    args = ["--pcscd", "private", "--port", str(port), "--no-tray", "--demo-port", str(demo_port), *options]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "sandbox", *args],
        cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        summary = []
        for line in proc.stdout:  # the summary ends with the Ctrl-C hint; EOF means the sandbox died
            summary.append(line)
            if "Ctrl-C" in line:
                break
        yield RunningSandbox(port, demo_port, "".join(summary))
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, rest
