"""config.toml: defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import BridgeConfig, ConfigError, load_config


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "none.toml")
    assert config == BridgeConfig()
    assert config.port is None  # one derived per OS user (bridge.api.user_port)
    assert config.max_message_size >= 20 * 1024 * 1024 * 4 // 3  # a 20 MB document in base64


def test_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'port = 30001\nmax_in_flight = 2\nextra_allowed_hosts = ["Dpi.Local"]\ncard_busy_wait = 0.5\ncard_timeout = 2\n'
    )
    config = load_config(path)
    assert (config.port, config.max_in_flight, config.extra_allowed_hosts, config.card_busy_wait) == (
        30001,
        2,
        ("dpi.local",),
        0.5,
    )
    assert config.card_timeout == 2.0 and isinstance(config.card_timeout, float)
    assert BridgeConfig().card_timeout == 60.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("prot = 1\n", "unknown key(s): prot"),
        ("port = 70000\n", "port must be between"),
        ('port = "x"\n', "port must be a number"),
        ("max_in_flight = true\n", "max_in_flight must be a number"),
        ("extra_allowed_hosts = 3\n", "extra_allowed_hosts must be a list"),
        ("card_timeout = 0\n", "card_timeout must be between"),
        ("port = \n", "c.toml"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        load_config(path)


def test_cards_table(tmp_path: Path) -> None:
    module = tmp_path / "libcps3_pkcs11_lux.so"
    module.write_bytes(b"")
    path = tmp_path / "config.toml"
    path.write_text(f'[cards]\ncps_backend = "pkcs11"\npkcs11_module = "{module}"\n')
    cards = load_config(path).cards
    assert (cards.cps_backend, cards.pkcs11_module) == ("pkcs11", module)
    assert load_config(tmp_path / "absent.toml").cards.cps_backend == "auto"


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        ('cps_backend = "opensc"', 'cps_backend doit valoir "auto", "pkcs11" ou "pcsc"'),
        ('pkcs11_module = "/nulle/part/libcps3.so"', "n'est pas un fichier"),
        ('pkcs11_module = "relatif.so"', "chemin absolu attendu"),
        ("pkcs11_module = 3", "chemin du module PKCS#11"),
        ("reader = 1", "clé(s) inconnue(s) dans [cards] : reader"),
    ],
)
def test_cards_table_errors_are_french(tmp_path: Path, table: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[cards]\n{table}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert needle in str(error.value)


def test_required_cryptolib_missing_is_a_french_error(tmp_path: Path) -> None:
    from bridge.cards.pkcs11_module import CryptolibNotFound
    from bridge.service.cards_config import CardsConfig
    from bridge.service.cps_backend import select_cps_backend

    missing = tmp_path / "absent.so"
    with pytest.raises(CryptolibNotFound) as error:
        select_cps_backend(CardsConfig(cps_backend="pkcs11", pkcs11_module=missing))
    assert "Cryptolib CPS introuvable" in error.value.message_fr and str(missing) in error.value.message_fr
    assert select_cps_backend(CardsConfig(cps_backend="pcsc")).name == "pcsc"


def test_share_cps_login_is_a_boolean_off_by_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_config(path).share_cps_login is False
    path.write_text("share_cps_login = true\n")
    assert load_config(path).share_cps_login is True
    path.write_text("share_cps_login = 1\n")
    with pytest.raises(ConfigError, match="share_cps_login"):
        load_config(path)
