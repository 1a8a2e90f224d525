"""The command people are told to type works in a new shell: the full path unless the CLI is on PATH."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bridge.paths import cli_command

VENV_BIN = Path(sys.executable).parent


@pytest.mark.skipif(not (VENV_BIN / "dmp-bridge").exists(), reason="the CLI is installed by the set-up")
def test_full_path_unless_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert cli_command() == str(VENV_BIN / "dmp-bridge")
    monkeypatch.setenv("PATH", f"{VENV_BIN}:/usr/bin:/bin")
    assert cli_command() == "dmp-bridge"
