"""port_holder reads a /proc tree: exercised on a fabricated one (exact format of /proc/net/tcp)."""

from __future__ import annotations

import os
from pathlib import Path

from bridge.api.ports import PortInUseError, port_holder

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def _proc(tmp_path: Path, line: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    (proc / "net" / "tcp").write_text(HEADER + line)
    (proc / "net" / "tcp6").write_text(HEADER)
    pid = proc / "4242"
    (pid / "fd").mkdir(parents=True)
    (pid / "comm").write_text("squatter\n")
    os.symlink("socket:[98765]", pid / "fd" / "3")
    os.symlink("/dev/null", pid / "fd" / "0")
    (proc / "self").mkdir()
    return proc


def test_listening_socket_is_traced_to_its_process(tmp_path: Path) -> None:
    # 0100007F:6F1A = 127.0.0.1:28442, state 0A = LISTEN, inode 98765
    line = "   0: 0100007F:6F1A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98765\n"
    proc = _proc(tmp_path, line)
    assert port_holder(28442, proc) == "squatter (PID 4242)"
    assert port_holder(28443, proc) is None


def test_established_connection_is_not_a_holder(tmp_path: Path) -> None:
    line = "   0: 0100007F:6F1A 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 98765\n"
    assert port_holder(28442, _proc(tmp_path, line)) is None


def test_hidden_owner_and_message(tmp_path: Path) -> None:
    line = "   0: 0100007F:6F1A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11111\n"
    holder = port_holder(28442, _proc(tmp_path, line))
    assert holder == "un autre programme / another program"
    message = str(PortInUseError(28442, "squatter (PID 4242)"))
    assert "28442" in message and "squatter (PID 4242)" in message and "--port" in message
