"""The local daemon: its private folders and token file, and whether it answers on its port."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

from bridge.api.client import DaemonNotRunning, LocalClient
from bridge.api.token import token_path
from bridge.doctor.findings import Finding, Section, Status
from bridge.errors import BridgeError
from bridge.paths import private_dir_problem

__all__ = ["daemon_finding", "file_findings"]


def _finding(check: str, status: Status, summary: str, advice: str = "", **details: object) -> Finding:
    return Finding(section=Section.DAEMON, check=check, status=status, summary=summary, advice=advice, details=details)


def file_findings(data_dir: Path, config_dir: Path) -> list[Finding]:
    """The data and configuration folders (owner, 0700) and the local token file (owner, 0600)."""
    found: list[Finding] = []
    for label, folder in (("données", data_dir), ("configuration", config_dir)):
        try:
            problem = private_dir_problem(folder)
        except FileNotFoundError:
            found.append(
                _finding(
                    f"files.{label}",
                    Status.INFO,
                    f"Dossier de {label} {folder} : pas encore créé (il le sera au premier démarrage).",
                    path=str(folder),
                )
            )
            continue
        if problem is None:
            found.append(
                _finding(f"files.{label}", Status.OK, f"Dossier de {label} {folder} : privé.", path=str(folder))
            )
        else:
            found.append(
                _finding(
                    f"files.{label}",
                    Status.PROBLEM,
                    f"Dossier de {label} {folder} : {problem[0]} ; le pont refuse de démarrer.",
                    f"Supprimez ce dossier (« rm -r {folder} ») puis relancez le pont, qui le recrée en privé "
                    "(0700) ; les sites web approuvés devront être ré-approuvés.",
                    path=str(folder),
                )
            )
    token = token_path(data_dir)
    try:
        info = token.stat()
    except FileNotFoundError:
        found.append(_finding("files.token", Status.INFO, "Jeton local : pas encore créé.", path=str(token)))
        return found
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid != os.getuid() or mode & 0o077:
        owner = "un autre utilisateur" if info.st_uid != os.getuid() else f"le mode {mode:04o}"
        found.append(
            _finding(
                "files.token",
                Status.PROBLEM,
                f"Le fichier du jeton local {token} est accessible à d'autres ({owner}) : un autre compte a pu "
                "le lire et piloter le pont.",
                "Remplacez le jeton : « dmp-bridge token --rotate » (le démon le recrée lisible par vous seul, "
                "mode 0600), puis redonnez le nouveau jeton aux logiciels locaux qui l'utilisent.",
                path=str(token),
                mode=f"{mode:04o}",
            )
        )
    else:
        found.append(_finding("files.token", Status.OK, "Jeton local : lisible par vous seul (0600).", path=str(token)))
    return found


async def _info(port: int, token: str) -> Any:
    async with LocalClient(port, token) as client:
        return await client.call("bridge.info")


def daemon_finding(port: int, token: str, timeout: float = 5.0) -> Finding:
    """Whether the bridge answers `bridge.info` on `port` with this user's token."""
    try:
        info = asyncio.run(asyncio.wait_for(_info(port, token), timeout))
    except DaemonNotRunning:
        return _finding(
            "daemon.running",
            Status.WARNING,
            f"Le pont n'est pas démarré (rien n'écoute sur le port {port}).",
            "Démarrez-le : « dmp-bridge run » (ou depuis le menu des applications) ; les pages web et logiciels "
            "ne peuvent rien faire sans lui.",
            port=port,
        )
    except BridgeError as exc:
        return _finding(
            "daemon.running",
            Status.PROBLEM,
            f"Le pont répond sur le port {port} mais refuse ce compte : {exc.message_fr}",
            "Si le jeton a été changé à la main, redémarrez le pont ; sinon un autre programme occupe le port : "
            "changez « port » dans config.toml.",
            port=port,
            code=exc.code.value,
        )
    except (TimeoutError, OSError, ValueError):
        return _finding(
            "daemon.running",
            Status.PROBLEM,
            f"Le port {port} est occupé par un programme qui n'est pas le pont.",
            "Arrêtez ce programme ou changez « port » dans config.toml.",
            port=port,
        )
    version = info.get("version", "?") if isinstance(info, dict) else "?"
    return _finding("daemon.running", Status.OK, f"Le pont {version} répond sur le port {port}.", port=port)
