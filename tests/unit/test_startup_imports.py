"""A workstation's daemon does not load what it does not use: the PKCS#11 binding without a Cryptolib, the
HL7 stack without unattended feeding (each costs start-up time and memory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
from bridge.app import Application
from bridge.config import BridgeConfig
from bridge.service.cps_backend import select_cps_backend
select_cps_backend(BridgeConfig().cards)
print(sorted(m for m in ("pkcs11", "hl7", "bridge.feed.feed_service") if m in sys.modules))
"""


def test_no_cryptolib_and_no_feeding_import_neither_binding(tmp_path: Path) -> None:
    env = {**os.environ, "DMP_BRIDGE_PKCS11_MODULE": str(tmp_path / "absent.so"), "DMP_BRIDGE_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
