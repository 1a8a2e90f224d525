"""The support bundle: the doctor's report, versions, the configuration and recent logs, without personal data.

Personal data never leaves in it: the findings name no holder or patient by construction; the
configuration's practitioner identity is masked; log lines go through `bridge.logs.redact` (NIR/INS-
shaped numbers, PIN fields) and the numbers a log may still hold (RPPS, card numbers) are masked too.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.doctor.findings import Finding, render_text, to_json
from bridge.logs import redact

__all__ = ["redact_config", "redact_text", "write_bundle"]

#: config.toml keys that identify a person (the default practitioner of the indirect modes).
_PERSONAL_KEYS = re.compile(r"^(\s*practitioner_(?:id|family|given)\s*=\s*).*$", re.MULTILINE)
#: Long digit runs a log line may still hold once NIRs are masked: RPPS/ADELI, card and phone numbers.
_NUMBERS = re.compile(r"\b\d{8,}\b")
_PACKAGES = ("aiohttp", "cryptography", "pyscard", "python-pkcs11", "lxml", "signxml", "tlslite-ng")


def redact_text(text: str) -> str:
    """A log or command output with NIRs, PIN fields and long identifiers masked."""
    return _NUMBERS.sub("[NUMÉRO]", redact(text))


def redact_config(text: str) -> str:
    """config.toml with the practitioner's identity masked (everything else helps the helpdesk)."""
    return _PERSONAL_KEYS.sub(r'\1"[masqué]"', text)


def _command(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"({argv[0]} indisponible : {type(exc).__name__})"
    return result.stdout + result.stderr


def _versions() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    os_release = {}
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key in ("PRETTY_NAME", "VERSION_ID", "ID"):
                os_release[key] = value.strip('"')
    except OSError:
        pass
    return {
        "dmp-bridge": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "os": os_release,
        "packages": packages,
        "pcscd": _command(["pcscd", "--version"]).strip().splitlines()[:1],
    }


def write_bundle(path: Path, findings: Sequence[Finding], config_file: Path) -> list[str]:
    """Write the zip at `path`; return the names of the files it holds."""
    try:
        config = redact_config(config_file.read_text(encoding="utf-8"))
    except OSError:
        config = "# pas de config.toml : réglages par défaut\n"
    journal = redact_text(_command(["journalctl", "--user", "--unit", "dmp-bridge", "--lines", "500", "--no-pager"]))
    files = {
        "rapport.txt": render_text(findings),
        "rapport.json": json.dumps(to_json(findings), ensure_ascii=False, indent=2),
        "versions.json": json.dumps(_versions(), ensure_ascii=False, indent=2),
        "config.toml": config,
        "journal.txt": journal,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, text in files.items():
            bundle.writestr(name, text)
    return list(files)
