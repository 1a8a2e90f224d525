"""The `[feed]` table of config.toml: unattended feeding (outbox worker, HL7v2 over MLLP, hot folder).

Off by default: a workstation bridge does not feed the DMP on its own. Example::

    [feed]
    enabled = true              # run the outbox worker (documents queued by the API, CLI, HL7, hot folder)
    mode = "INDIRECTE"          # or INDIRECTE_RENFORCEE: the establishment certificate of [dmp]
    workers = 4                 # documents sent side by side
    mllp_host = "127.0.0.1"     # HL7v2 listener (the DPI sends ORU^R01 / MDM^T02 here)
    mllp_port = 2575            # 0: no listener
    dpi_ack_host = "127.0.0.1"  # where the DPI listens for feeding acknowledgements (ZAM^Z01)
    dpi_ack_port = 0            # 0: none sent
    hot_folder = "~/dmp-depot"  # absent: no hot folder
    hot_folder_interval = 1.0   # seconds between two looks at the hot folder
    retry_base = 2.0            # first wait after a transient fault (s), doubled each time (with jitter)
    retry_cap = 300.0           # longest wait between two attempts (s)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["FeedConfig", "FeedConfigError", "parse_feed_table"]

_MODES = ("INDIRECTE", "INDIRECTE_RENFORCEE")
_NUMBERS: dict[str, tuple[float, float]] = {
    "workers": (1, 32),
    "mllp_port": (0, 65535),
    "dpi_ack_port": (0, 65535),
    "hot_folder_interval": (0.05, 3600),
    "retry_base": (0.01, 3600),
    "retry_cap": (0.01, 86400),
}
_INTEGERS = frozenset({"workers", "mllp_port", "dpi_ack_port"})


class FeedConfigError(ValueError):
    """A bad `[feed]` value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class FeedConfig:
    """Effective feeding settings (see the module docstring)."""

    enabled: bool = False
    mode: str = "INDIRECTE"
    workers: int = 4
    mllp_host: str = "127.0.0.1"
    mllp_port: int = 0
    dpi_ack_host: str = "127.0.0.1"
    dpi_ack_port: int = 0
    hot_folder: Path | None = None
    hot_folder_interval: float = 1.0
    retry_base: float = 2.0
    retry_cap: float = 300.0


def parse_feed_table(raw: Any) -> FeedConfig:
    """Build a FeedConfig from the `[feed]` TOML table (unknown keys and bad values raise FeedConfigError)."""
    if not isinstance(raw, Mapping):
        raise FeedConfigError("config.toml: [feed] must be a table")
    unknown = sorted(set(raw) - {f.name for f in fields(FeedConfig)})
    if unknown:
        raise FeedConfigError(f"config.toml: unknown key(s) in [feed]: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise FeedConfigError("config.toml: feed.enabled must be true or false")
            values[key] = value
        elif key in _NUMBERS:
            low, high = _NUMBERS[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise FeedConfigError(f"config.toml: feed.{key} must be a number between {low:g} and {high:g}")
            values[key] = int(value) if key in _INTEGERS else float(value)
        elif not isinstance(value, str) or not value:
            raise FeedConfigError(f"config.toml: feed.{key} must be a non-empty string")
        else:
            values[key] = Path(value).expanduser() if key == "hot_folder" else value
    config = FeedConfig(**values)
    if config.mode not in _MODES:
        raise FeedConfigError(f"config.toml: feed.mode must be one of {', '.join(_MODES)}")
    return config
