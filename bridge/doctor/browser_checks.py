"""Browsers' Local Network Access policies: may an approved web application reach the bridge on 127.0.0.1?

Since Chrome 142 a public site that calls a loopback address needs the user's « local network access »
permission, unless an enterprise policy exempts (or blocks) its origin. Policy names and precedence from
the Chrome/Edge enterprise policy documentation (LoopbackNetworkBlockedForUrls >
LoopbackNetworkAllowedForUrls > LocalNetworkAccessBlockedForUrls > LocalNetworkAccessAllowedForUrls);
Linux reads managed policies from JSON files in the folders below.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.doctor.findings import Finding, Section, Status

__all__ = ["POLICY_DIRS", "BrowserPolicies", "browser_findings", "load_policies", "pattern_matches"]

#: Linux managed-policy folders: Google Chrome, Chromium, Microsoft Edge.
POLICY_DIRS: Mapping[str, str] = {
    "Google Chrome": "/etc/opt/chrome/policies/managed",
    "Chromium": "/etc/chromium/policies/managed",
    "Microsoft Edge": "/etc/opt/edge/policies/managed",
}

#: Most to least binding, each (policy, allows).
_PRECEDENCE: tuple[tuple[str, bool], ...] = (
    ("LoopbackNetworkBlockedForUrls", False),
    ("LoopbackNetworkAllowedForUrls", True),
    ("LocalNetworkAccessBlockedForUrls", False),
    ("LocalNetworkAccessAllowedForUrls", True),
)


@dataclass(frozen=True)
class BrowserPolicies:
    """One browser's managed policies that concern local network access (policy -> URL patterns)."""

    browser: str
    lists: Mapping[str, tuple[str, ...]]

    def decision(self, origin: str) -> tuple[str, bool] | None:
        """(policy, allowed) of the most binding policy matching `origin`, or None: the user is asked."""
        for policy, allows in _PRECEDENCE:
            if any(pattern_matches(p, origin) for p in self.lists.get(policy, ())):
                return policy, allows
        return None


def pattern_matches(pattern: str, origin: str) -> bool:
    """Whether an enterprise URL pattern (`*`, `[*.]example.fr`, `https://host:port`, `host`) covers `origin`."""
    pattern = pattern.strip()
    if pattern == "*":
        return True
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    if "://" in pattern:
        want = urlsplit(pattern)
        if want.scheme and want.scheme != parts.scheme:
            return False
        if want.port is not None and want.port != parts.port:
            return False
        pattern = want.hostname or ""
    else:
        pattern = pattern.split("/", 1)[0].split(":", 1)[0]
    pattern = pattern.lower()
    if pattern.startswith("[*.]"):
        domain = pattern[4:]
        return host == domain or host.endswith("." + domain)
    return host == pattern


def load_policies(dirs: Mapping[str, str | Path] = POLICY_DIRS) -> list[BrowserPolicies]:
    """The managed policies found for each installed browser (unreadable files are skipped)."""
    found: list[BrowserPolicies] = []
    for browser, folder in dirs.items():
        lists: dict[str, tuple[str, ...]] = {}
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for file in sorted(folder.glob("*.json")):
            try:
                data: Any = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
            for policy, _ in _PRECEDENCE:
                value = data.get(policy)
                if isinstance(value, list):
                    lists[policy] = lists.get(policy, ()) + tuple(v for v in value if isinstance(v, str))
        found.append(BrowserPolicies(browser, lists))
    return found


def browser_findings(origins: Iterable[str], policies: Sequence[BrowserPolicies]) -> list[Finding]:
    """For each approved web origin: blocked, exempted, or left to the user's permission prompt."""
    found: list[Finding] = []
    origins = [o for o in origins if urlsplit(o).hostname not in ("127.0.0.1", "localhost", "::1")]
    if not origins:
        return [
            Finding(
                section=Section.BROWSER,
                check="browser.lna",
                status=Status.INFO,
                summary="Aucun site web n'est encore approuvé : rien à vérifier côté navigateur.",
            )
        ]
    for origin in origins:
        decisions = [(p.browser, p.decision(origin)) for p in policies]
        blocked = [(b, d[0]) for b, d in decisions if d is not None and not d[1]]
        allowed = [b for b, d in decisions if d is not None and d[1]]
        if blocked:
            browser, policy = blocked[0]
            found.append(
                Finding(
                    section=Section.BROWSER,
                    check="browser.lna",
                    status=Status.PROBLEM,
                    summary=f"{browser} interdit à {origin} d'appeler le pont (stratégie {policy}).",
                    advice=f"Demandez à l'administrateur du parc de retirer {origin} de {policy}, ou de l'ajouter "
                    "à LoopbackNetworkAllowedForUrls.",
                    details={"origin": origin, "browser": browser, "policy": policy},
                )
            )
        elif allowed:
            found.append(
                Finding(
                    section=Section.BROWSER,
                    check="browser.lna",
                    status=Status.OK,
                    summary=f"{origin} est autorisé par la stratégie du navigateur ({', '.join(allowed)}).",
                    details={"origin": origin},
                )
            )
        else:
            found.append(
                Finding(
                    section=Section.BROWSER,
                    check="browser.lna",
                    status=Status.INFO,
                    summary=f"{origin} : le navigateur demandera à l'utilisateur d'autoriser l'accès au réseau "
                    "local (Chrome 142 et suivants).",
                    advice="L'utilisateur doit cliquer « Autoriser » ; sur un parc géré, ajoutez l'origine à la "
                    "stratégie LoopbackNetworkAllowedForUrls pour éviter cette question.",
                    details={"origin": origin},
                )
            )
    return found
