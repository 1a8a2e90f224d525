"""config.toml: defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import DEFAULT_PORT, BridgeConfig, ConfigError, load_config


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.toml")
    assert config == BridgeConfig()
    assert config.port == DEFAULT_PORT
    assert config.max_message_size >= 20 * 1024 * 1024 * 4 // 3  # a 20 MB document in base64


def test_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('port = 30001\nmax_in_flight = 2\nextra_allowed_hosts = ["Dpi.Local"]\ncard_busy_wait = 0.5\n')
    config = load_config(path)
    assert (config.port, config.max_in_flight, config.extra_allowed_hosts, config.card_busy_wait) == (
        30001,
        2,
        ("dpi.local",),
        0.5,
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prot = 1\n", "unknown key(s): prot"),
        ("port = 70000\n", "port must be between"),
        ('port = "x"\n', "port must be a number"),
        ("max_in_flight = true\n", "max_in_flight must be a number"),
        ("extra_allowed_hosts = 3\n", "extra_allowed_hosts must be a list"),
        ("port = \n", "c.toml"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)
