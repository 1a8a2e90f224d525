"""Reading a config.toml table of strings, paths and timeouts (the `[dmp]` and `[insi]` tables share it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

__all__ = ["TIMEOUTS", "require_https", "table_values"]

#: Keys holding a number of seconds (1-600).
TIMEOUTS = frozenset({"io_timeout", "call_timeout"})


def table_values(raw: Any, *, table: str, cls: type, paths: frozenset[str], error: type[ValueError]) -> dict[str, Any]:
    """The keyword values of `cls` (a dataclass) from the `[table]` table: unknown keys, non-strings and
    timeouts outside 1-600 s raise `error` naming the key; `paths` become expanded Paths."""
    if not isinstance(raw, Mapping):
        raise error(f"config.toml: [{table}] must be a table")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(f"config.toml: unknown key(s) in [{table}]: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in TIMEOUTS:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 600:
                raise error(f"config.toml: {table}.{key} must be a number of seconds (1-600)")
            values[key] = float(value)
            continue
        if not isinstance(value, str):
            raise error(f"config.toml: {table}.{key} must be a string")
        values[key] = Path(value).expanduser() if key in paths else value
    return values


def require_https(config: object, keys: Iterable[str], *, table: str, error: type[ValueError]) -> None:
    """Refuse a URL setting (when set) that is not https."""
    for key in keys:
        value = getattr(config, key)
        if value is not None and not value.startswith("https://"):
            raise error(f"config.toml: {table}.{key} must start with https://")
