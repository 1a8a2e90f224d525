"""The `[cards]` table of config.toml: which backend drives a CPS (`bridge.service.cps_backend`).

Keys (both optional): ``cps_backend`` = "auto" (the ANS Cryptolib when found, else the bridge's PC/SC
driver; the default), "pkcs11" (the Cryptolib, or an error at start-up) or "pcsc" (always the PC/SC
driver); ``pkcs11_module`` = absolute path of the PKCS#11 module, else $DMP_BRIDGE_PKCS11_MODULE, then
the Cryptolib's default locations (`bridge.cards.pkcs11_module`). No module is loaded here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["CardsConfig", "CardsConfigError", "CpsBackendName", "parse_cards_table"]

CpsBackendName = Literal["auto", "pkcs11", "pcsc"]
_CHOICES = ("auto", "pkcs11", "pcsc")


class CardsConfigError(ValueError):
    """A bad `[cards]` value; the message is in French and names the key."""


@dataclass(frozen=True, kw_only=True)
class CardsConfig:
    """The `[cards]` table."""

    cps_backend: CpsBackendName = "auto"
    #: Path of the PKCS#11 module; None: $DMP_BRIDGE_PKCS11_MODULE, then the Cryptolib's default locations.
    pkcs11_module: Path | None = None


def parse_cards_table(raw: Any) -> CardsConfig:
    """The `[cards]` table of config.toml, validated (CardsConfigError in French otherwise)."""
    if not isinstance(raw, dict):
        raise CardsConfigError("config.toml : [cards] doit être une table")
    unknown = sorted(set(raw) - {"cps_backend", "pkcs11_module"})
    if unknown:
        raise CardsConfigError(f"config.toml : clé(s) inconnue(s) dans [cards] : {', '.join(unknown)}")
    backend = raw.get("cps_backend", "auto")
    if backend not in _CHOICES:
        raise CardsConfigError('config.toml : [cards] cps_backend doit valoir "auto", "pkcs11" ou "pcsc"')
    module = raw.get("pkcs11_module")
    if module is not None:
        if not isinstance(module, str) or not module.strip():
            raise CardsConfigError("config.toml : [cards] pkcs11_module doit être le chemin du module PKCS#11")
        path = Path(module).expanduser()
        # Checked here so that a typo is reported at start-up, not at the first card.
        if not path.is_absolute() or not path.is_file():
            raise CardsConfigError(
                f"config.toml : [cards] pkcs11_module : {module} n'est pas un fichier (chemin absolu attendu)"
            )
        return CardsConfig(cps_backend=backend, pkcs11_module=path)
    return CardsConfig(cps_backend=backend)
