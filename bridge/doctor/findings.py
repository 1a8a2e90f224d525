"""What a check found: a status, a French summary for a person, the next step, and non-personal details."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RANK", "Finding", "Section", "Status", "exit_code", "render_text", "to_json", "worst"]


class Status(enum.Enum):
    """How a check ended, best to worst (the order ranks a report)."""

    OK = "ok"
    INFO = "info"
    SKIPPED = "skipped"
    WARNING = "warning"
    PROBLEM = "problem"


#: Best (0) to worst.
RANK = {status: rank for rank, status in enumerate(Status)}
_MARK = {
    Status.OK: "[OK]      ",
    Status.INFO: "[info]    ",
    Status.SKIPPED: "[non fait]",
    Status.WARNING: "[attention]",
    Status.PROBLEM: "[PROBLÈME]",
}


class Section(enum.Enum):
    """The report's sections, in the order a helpdesk reads them."""

    PCSC = "Service carte à puce (PC/SC)"
    READERS = "Lecteurs et cartes"
    CRYPTOLIB = "Cryptolib CPS"
    DMP = "Accès au DMP"
    DAEMON = "Pont local (démon)"
    BROWSER = "Navigateurs"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One check's outcome: `summary` says what is, `advice` what to do (empty when nothing to do)."""

    section: Section
    check: str
    status: Status
    summary: str
    advice: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The finding as `doctor --json` prints it."""
        return {
            "section": self.section.name.lower(),
            "check": self.check,
            "status": self.status.value,
            "summary": self.summary,
            "advice": self.advice or None,
            "details": dict(self.details),
        }


def worst(findings: Iterable[Finding]) -> Status:
    """The worst status among `findings` (OK for none)."""
    return max((f.status for f in findings), key=RANK.__getitem__, default=Status.OK)


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when nothing needs doing, 1 with warnings only, 2 with at least one problem."""
    status = worst(findings)
    return {Status.PROBLEM: 2, Status.WARNING: 1}.get(status, 0)


def to_json(findings: Iterable[Finding]) -> dict[str, Any]:
    """The whole report as JSON: the findings and the overall status."""
    items = list(findings)
    return {"status": worst(items).value, "findings": [f.to_json() for f in items]}


def render_text(findings: Iterable[Finding]) -> str:
    """The report for a person, section by section, each problem followed by what to do."""
    items = list(findings)
    lines: list[str] = []
    for section in Section:
        mine = [f for f in items if f.section is section]
        if not mine:
            continue
        lines.append(f"== {section.value}")
        for finding in mine:
            lines.append(f"{_MARK[finding.status]} {finding.summary}")
            if finding.advice:
                lines.append(f"            → {finding.advice}")
    overall = worst(items)
    verdict = {
        Status.PROBLEM: "Des problèmes empêchent le pont de fonctionner : suivez les conseils marqués →.",
        Status.WARNING: "Le pont fonctionne, avec des points à surveiller.",
    }.get(overall, "Tout est en ordre.")
    lines.append("")
    lines.append(verdict)
    return "\n".join(lines) + "\n"
