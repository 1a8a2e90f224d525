"""Dates as people in France write them (31/12/2027): the CLI, the doctor, the diagnostics and error hints."""

from __future__ import annotations

import datetime as dt

__all__ = ["fr_date"]


def fr_date(value: str | dt.date) -> str:
    """An ISO 8601 date or timestamp (or a date/datetime) as dd/mm/yyyy; the calendar day as written."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime("%d/%m/%Y")
