"""The daemon's configuration: `config_dir()/config.toml`, every key optional.

Example::

    port = 28442                    # WebSocket/HTTP port on 127.0.0.1 and ::1; unset: one derived per OS user
                                    # (first free of 28442-28457 from an offset of the uid, bridge.api.user_port)
    max_message_size = 33554432     # bytes per WebSocket message (32 MiB: a 20 MB document in base64 fits)
    max_in_flight = 8               # concurrent calls per connection; more frames wait
    extra_allowed_hosts = []        # extra Host names accepted (e.g. a name mapped to 127.0.0.1 in /etc/hosts)
    card_busy_wait = 3.0            # seconds a second caller waits for a card before CARD_BUSY
    card_timeout = 60.0             # seconds one card operation may take before TIMEOUT (stage "card")
    pairing_ttl = 300               # seconds a pairing code stays valid
    share_cps_login = false         # true: a CPS login entered by one application serves all approved ones
    [dmp]                           # DMP access, see bridge.service.dmp_config
    [cards]                         # CPS backend: cps_backend = "auto"|"pkcs11"|"pcsc", pkcs11_module = "/path"
                                    # (see bridge.service.cps_backend)
    [insi]                          # INSi téléservice (INS search), see bridge.service.insi_config
    [feed]                          # unattended feeding: outbox, HL7v2/MLLP, hot folder (see bridge.feed.feed_config)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bridge.feed.feed_config import FeedConfig, FeedConfigError, parse_feed_table
from bridge.service.cards_config import CardsConfig, CardsConfigError, parse_cards_table
from bridge.service.dmp_config import DmpConfig, DmpConfigError, parse_dmp_table
from bridge.service.insi_config import InsiConfig, InsiConfigError, parse_insi_table

__all__ = ["DEFAULT_PORT", "BridgeConfig", "ConfigError", "config_path", "load_config"]

# Below Linux's ephemeral range (32768-60999) so an outgoing connection never squats it; unassigned at IANA.
DEFAULT_PORT = 28442


class ConfigError(ValueError):
    """The config file is unreadable or holds a bad value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class BridgeConfig:
    """Effective configuration (defaults overridden by config.toml, then by command-line options)."""

    #: None (not configured): the first free port of the per-user window (bridge.api.user_port).
    port: int | None = None
    max_message_size: int = 32 * 1024 * 1024
    max_in_flight: int = 8
    extra_allowed_hosts: tuple[str, ...] = ()
    card_busy_wait: float = 3.0
    #: Bound on one card operation (cps.*, vitale.read, the DMP's card keys): a wedged card gives TIMEOUT.
    card_timeout: float = 60.0
    pairing_ttl: float = 300.0
    #: A CPS login belongs to the caller that entered the PIN unless the person shares it (one app family).
    share_cps_login: bool = False
    #: The `[dmp]` table (see bridge.service.dmp_config).
    dmp: DmpConfig = field(default_factory=DmpConfig)
    #: The `[cards]` table: which CPS backend (see bridge.service.cps_backend).
    cards: CardsConfig = field(default_factory=CardsConfig)
    #: The `[insi]` table: the INSi téléservice (see bridge.service.insi_config).
    insi: InsiConfig = field(default_factory=InsiConfig)
    #: The `[feed]` table: unattended feeding (see bridge.feed.feed_config).
    feed: FeedConfig = field(default_factory=FeedConfig)


_BOUNDS: dict[str, tuple[float, float]] = {
    "port": (0, 65535),
    "max_message_size": (1024, 256 * 1024 * 1024),
    "max_in_flight": (1, 256),
    "card_busy_wait": (0, 600),
    "card_timeout": (0.1, 600),
    "pairing_ttl": (10, 3600),
}


def config_path() -> Path:
    """Where config.toml is read from."""
    from bridge.paths import config_dir

    return config_dir() / "config.toml"


def _coerce(name: str, value: Any) -> Any:
    if name == "dmp":
        try:
            return parse_dmp_table(value)
        except DmpConfigError as exc:
            raise ConfigError(str(exc)) from None
    if name == "insi":
        try:
            return parse_insi_table(value)
        except InsiConfigError as exc:
            raise ConfigError(str(exc)) from None
    if name == "cards":
        try:
            return parse_cards_table(value)
        except CardsConfigError as exc:
            raise ConfigError(str(exc)) from None
    if name == "feed":
        try:
            return parse_feed_table(value)
        except FeedConfigError as exc:
            raise ConfigError(str(exc)) from None
    if name == "extra_allowed_hosts":
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"config.toml: {name} must be a list of host names")
        return tuple(v.lower() for v in value)
    if name == "share_cps_login":
        if not isinstance(value, bool):
            raise ConfigError(f"config.toml: {name} must be true or false")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"config.toml: {name} must be a number")
    low, high = _BOUNDS[name]
    if not low <= value <= high:
        raise ConfigError(f"config.toml: {name} must be between {low:g} and {high:g}")
    return float(value) if name in ("card_busy_wait", "card_timeout", "pairing_ttl") else int(value)


def load_config(path: Path | None = None) -> BridgeConfig:
    """Read config.toml (missing file = defaults); unknown keys and bad values raise ConfigError."""
    path = config_path() if path is None else path
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return BridgeConfig()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    known = {f.name for f in fields(BridgeConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"config.toml: unknown key(s): {', '.join(unknown)}")
    return BridgeConfig(**{k: _coerce(k, v) for k, v in raw.items()})
