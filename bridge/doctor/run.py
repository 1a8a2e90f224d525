"""Run every check of `dmp-bridge doctor` in the order the report shows them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bridge.api.pairing import APPROVALS_FILENAME, ApprovalStore
from bridge.api.token import token_path
from bridge.api.user_port import client_port
from bridge.cards.cryptolib_paths import ModuleInfo
from bridge.config import DEFAULT_PORT, BridgeConfig, ConfigError, config_path, load_config
from bridge.doctor.browser_checks import browser_findings, load_policies
from bridge.doctor.card_checks import card_findings, pcsc_findings
from bridge.doctor.cryptolib_checks import cryptolib_findings, installed_modules
from bridge.doctor.daemon_checks import daemon_finding, file_findings
from bridge.doctor.dmp_checks import clock_finding, dmp_findings
from bridge.doctor.findings import Finding, Section, Status
from bridge.paths import config_dir, data_dir
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import ReaderState, scan_readers

__all__ = ["run_checks"]


def _config() -> tuple[BridgeConfig, list[Finding]]:
    try:
        return load_config(), []
    except ConfigError as exc:
        return BridgeConfig(), [
            Finding(
                section=Section.DAEMON,
                check="config",
                status=Status.PROBLEM,
                summary=f"Le fichier de configuration {config_path()} est invalide : {exc}",
                advice="Corrigez la clé nommée (ou renommez le fichier pour repartir des réglages par défaut) ; "
                "le pont ne démarre pas tant qu'il est invalide. Les vérifications suivantes utilisent les "
                "réglages par défaut.",
            )
        ]


def _cards(config: BridgeConfig, scan: list[ReaderState]) -> list[Finding]:
    from bridge.service.card_report import describe_cards
    from bridge.service.cps_backend import CpsBackend, select_cps_backend

    readers = [(s.name, s.atr) for s in scan if s.atr is not None]
    if not readers:
        return []
    try:
        backend = select_cps_backend(config.cards)
    except Exception:  # reported by the Cryptolib checks; the cards are still worth reading over PC/SC
        backend = CpsBackend()
    return card_findings(asyncio.run(describe_cards(readers, None, False, backend)))


def _describe_module(path: Path) -> ModuleInfo:
    from bridge.cards.pkcs11_module import load_module

    return load_module(path).info()


def run_checks(*, network: bool = True) -> list[Finding]:
    """All findings; `network=False` skips the DMP connection checks (offline helpdesk session)."""
    config, found = _config()
    scan: list[ReaderState] | PcscError
    try:
        scan = scan_readers()
    except PcscError as exc:
        scan = exc
    found.extend(pcsc_findings(scan))
    if not isinstance(scan, PcscError):
        found.extend(_cards(config, scan))
    found.extend(cryptolib_findings(config.cards, installed_modules(config.cards), _describe_module))
    if network:
        found.extend(dmp_findings(config.dmp))
    found.append(clock_finding())
    data, conf = data_dir(), config_dir()
    found.extend(file_findings(data, conf))
    try:
        token = token_path(data).read_text(encoding="ascii").strip()
    except OSError:
        token = ""  # the doctor never creates one: an absent token means no daemon ever ran here
    found.append(daemon_finding(client_port(config.port, data, DEFAULT_PORT), token))
    origins = [o.origin for o in ApprovalStore(data / APPROVALS_FILENAME).list()]
    found.extend(browser_findings(origins, load_policies()))
    return found
