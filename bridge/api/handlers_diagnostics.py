"""diagnostics.dmpCheck: the DMP part of `dmp-bridge doctor`, for the diagnostics page's « Tester » button."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from bridge.api.core_results import FINDING
from bridge.api.methods import CallContext, Handler, Scope
from bridge.service.dmp_config import DmpConfig

__all__ = ["DiagnosticsDmpCheck", "diagnostics_handlers"]


class DiagnosticsDmpCheck(Handler):
    """diagnostics.dmpCheck: configuration, name resolution, TCP, TLS chain of the DMP, and the clock."""

    name = "diagnostics.dmpCheck"
    summary = "Checks the configured DMP endpoint (DNS, TCP, TLS chain) and the clock; each finding with advice."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.DIAGNOSTICS})
    result_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "info", "skipped", "warning", "problem"]},
            "findings": {"type": "array", "maxItems": 16, "items": FINDING},
        },
    }

    def __init__(self, config: Callable[[], DmpConfig]) -> None:
        self._config = config

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary (blocking network checks run off the event loop, bounded by their own timeouts)."""
        from bridge.doctor.dmp_checks import clock_finding, dmp_findings
        from bridge.doctor.findings import to_json

        config = self._config()
        findings = await asyncio.to_thread(lambda: [*dmp_findings(config), clock_finding()])
        return to_json(findings)


def diagnostics_handlers(config: Callable[[], DmpConfig]) -> list[Handler]:
    """The diagnostics page's extra methods."""
    return [DiagnosticsDmpCheck(config)]
