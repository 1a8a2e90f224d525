"""Can this workstation reach the DMP: configuration, name resolution, TCP, TLS with the server's chain, clock.

The server asks for the practitioner's card during the TLS handshake; without it (the doctor presents
no card) the server closes after sending its certificate, which the client has verified by then. So a
certificate-verification failure means « wrong chain, or a proxy inspecting HTTPS », any later close
means « the DMP answers and is who it claims to be ».
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable
from urllib.parse import urlsplit

from bridge.doctor.findings import Finding, Section, Status
from bridge.service.dmp_config import DmpConfig

__all__ = ["clock_finding", "dmp_findings"]

_NETWORK = (
    "Vérifiez la connexion réseau du poste, le pare-feu et le proxy de l'établissement (la sortie HTTPS vers "
    "le DMP doit être ouverte) ; si le problème touche tous les postes, contactez le support DMP."
)


def _finding(check: str, status: Status, summary: str, advice: str = "", **details: object) -> Finding:
    return Finding(section=Section.DMP, check=check, status=status, summary=summary, advice=advice, details=details)


def dmp_findings(config: DmpConfig, timeout: float = 5.0) -> list[Finding]:
    """Configuration, DNS, TCP and TLS findings for the configured DMP endpoint (stops at the first failure)."""
    if config.url is None:
        return [
            _finding(
                "dmp.config",
                Status.WARNING,
                "Aucun DMP n'est configuré : les fonctions DMP répondront « service injoignable ».",
                "Renseignez [dmp] url et ca_bundle dans config.toml (voir la documentation d'installation).",
            )
        ]
    parts = urlsplit(config.url)
    host, port = parts.hostname or "", parts.port or 443
    if config.ca_bundle is None or not config.ca_bundle.is_file():
        return [
            _finding(
                "dmp.config",
                Status.PROBLEM,
                "Le fichier des autorités de confiance du DMP ([dmp] ca_bundle) est absent : aucune connexion "
                "au DMP n'est possible.",
                "Indiquez dans config.toml le fichier PEM des racines IGC-Santé ([dmp] ca_bundle).",
                url=config.url,
            )
        ]
    found = [_finding("dmp.config", Status.OK, f"DMP configuré : {config.url}", url=config.url)]
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        found.append(
            _finding(
                "dmp.dns",
                Status.PROBLEM,
                f"Le nom du serveur DMP « {host} » ne se résout pas (DNS).",
                "Vérifiez la connexion réseau et le serveur DNS du poste (commande : getent hosts " + host + ").",
                host=host,
            )
        )
        return found
    found.append(_finding("dmp.dns", Status.OK, f"Le nom « {host} » se résout.", host=host))
    try:
        sock = socket.create_connection((str(addresses[0][4][0]), port), timeout=timeout)
    except OSError as exc:
        reason = "délai dépassé" if isinstance(exc, TimeoutError) else "connexion refusée ou impossible"
        found.append(
            _finding("dmp.tcp", Status.PROBLEM, f"Le serveur DMP {host}:{port} ne répond pas ({reason}).", _NETWORK)
        )
        return found
    found.append(_finding("dmp.tcp", Status.OK, f"Le serveur DMP {host}:{port} accepte la connexion."))
    found.append(_tls_finding(sock, config, host, timeout))
    return found


def _tls_finding(sock: socket.socket, config: DmpConfig, host: str, timeout: float) -> Finding:
    assert config.ca_bundle is not None
    context = ssl.create_default_context(cafile=str(config.ca_bundle))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    name = config.server_name or host
    sock.settimeout(timeout)
    try:
        with context.wrap_socket(sock, server_hostname=name):
            pass
    except ssl.SSLCertVerificationError as exc:
        return _finding(
            "dmp.tls",
            Status.PROBLEM,
            f"Le certificat du serveur DMP n'est pas reconnu ({exc.verify_message}).",
            "Vérifiez la date et l'heure du poste et le fichier des autorités ([dmp] ca_bundle) ; un proxy qui "
            "inspecte le HTTPS doit laisser passer le DMP sans le déchiffrer.",
            reason=exc.verify_message,
        )
    except (ssl.SSLError, OSError):
        # After the chain was verified: the server wants the practitioner's card, which the doctor does not present.
        sock.close()
        return _finding(
            "dmp.tls",
            Status.OK,
            "Le serveur DMP répond en TLS et son certificat est reconnu (il demande ensuite la carte CPS, "
            "comme prévu).",
        )
    return _finding("dmp.tls", Status.OK, "Connexion TLS au DMP établie, certificat du serveur reconnu.")


def _timedatectl() -> str | None:
    try:
        result = subprocess.run(
            ["timedatectl", "show", "--property=NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def clock_finding(synchronized: Callable[[], str | None] = _timedatectl) -> Finding:
    """Whether the system clock is kept synchronised: VIHF tokens and certificates are checked against it."""
    answer = synchronized()
    if answer == "yes":
        return _finding("clock.sync", Status.OK, "L'horloge du poste est synchronisée (NTP).")
    if answer == "no":
        return _finding(
            "clock.sync",
            Status.WARNING,
            "L'horloge du poste n'est pas synchronisée.",
            "Activez la synchronisation de l'heure (« sudo timedatectl set-ntp true ») : quelques minutes "
            "d'écart suffisent pour que le DMP refuse les jetons VIHF.",
        )
    return _finding(
        "clock.sync",
        Status.SKIPPED,
        "La synchronisation de l'horloge n'a pas pu être vérifiée (timedatectl indisponible).",
    )
