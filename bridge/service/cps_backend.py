"""Which backend drives a CPS: the ANS Cryptolib through PKCS#11 when it is installed, else the bridge's PC/SC driver.

Chosen by the `[cards]` table of config.toml (`bridge.service.cards_config`).

The choice is made once, when the daemon (or a CLI command) starts, and logged: every CPS then goes
through the same `CpsToken` contract, whichever backend answers. Card events still come from the
PC/SC monitor, and Vitale cards are always read over PC/SC directly.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bridge.cards.cps_session import Runner
from bridge.cards.cps_token import CpsToken
from bridge.cards.cryptolib_paths import CryptolibNotFound, find_module
from bridge.cards.identify import CardKind, identify_atr
from bridge.cards.pcsc_cps import PcscCpsToken
from bridge.errors import BridgeError
from bridge.service.cards_config import CardsConfig

if TYPE_CHECKING:
    # The binding is imported only once a Cryptolib is found (most workstations' first check fails).
    from bridge.cards.pkcs11_module import Pkcs11Module

__all__ = ["BACKEND_LABELS_FR", "CpsBackend", "configured_cps_backend", "select_cps_backend"]

log = logging.getLogger(__name__)

#: How people are told which backend read a card (CLI, diagnostics page, sandbox).
BACKEND_LABELS_FR = {
    "pkcs11": "Cryptolib CPS de l'ANS (PKCS#11)",
    "pcsc": "pilote PC/SC intégré au pont",
}


class CpsBackend:
    """Builds the `CpsToken` of a card for the chosen backend: `name` is "pkcs11" or "pcsc"."""

    def __init__(self, module: Pkcs11Module | None = None) -> None:
        self.module = module
        self.name = "pkcs11" if module is not None else "pcsc"

    def __repr__(self) -> str:
        return f"CpsBackend({self.name!r})"

    def describe_fr(self) -> str:
        """One line for people: which backend, and the module path for PKCS#11."""
        label = BACKEND_LABELS_FR[self.name]
        return f"{label} — {self.module.path}" if self.module is not None else label

    def token(self, reader: str, atr: bytes, runner: Runner) -> CpsToken:
        """The token of the CPS in `reader` (blocks on the module: call it from a worker thread).

        `runner` runs a function on the card's PC/SC connection (used by the "pcsc" backend only).
        """
        if self.module is None:
            generation = "CPS4" if identify_atr(atr).kind is CardKind.CPS4 else "CPS3"
            return PcscCpsToken(runner, generation=generation)
        from bridge.cards.pkcs11_cps import Pkcs11CpsToken

        return Pkcs11CpsToken(self.module, self.module.slot_for_reader(reader), atr=atr)

    @property
    def releases_tokens(self) -> bool:
        """True when a session's end must call `release` (a PKCS#11 login outlives our PC/SC handle)."""
        return self.module is not None

    def card_left(self, reader: str) -> None:
        """The card left `reader`: the PKCS#11 module must notice now, not at the next card (blocks)."""
        if self.module is not None:
            self.module.notice_removal(reader)

    def release(self, token: CpsToken) -> None:
        """The session of `token` ends: log the token out where closing the PC/SC connection would not.

        A PKCS#11 login belongs to the module, not to our PC/SC handle, so it outlives a dropped session
        (a timeout) unless we log out; the PC/SC driver's verified state ends with its connection.
        """
        if self.module is None:
            return
        try:
            token.logout()
        except BridgeError:  # the card left: nothing is logged in any more
            log.debug("PKCS#11 logout on session end failed", exc_info=True)


def select_cps_backend(config: CardsConfig | None = None) -> CpsBackend:
    """The backend `config` asks for: the Cryptolib if found ("auto"), required ("pkcs11"), or PC/SC.

    Raises:
        CryptolibNotFound: "pkcs11" and no module found.
        BridgeError: "pkcs11" and the module does not load.
    """
    config = config or CardsConfig()
    if config.cps_backend == "pcsc":
        log.info("CPS backend: PC/SC driver (configured)")
        return CpsBackend()
    try:
        path = find_module(config.pkcs11_module)
        from bridge.cards.pkcs11_module import load_module

        module = load_module(path)
    except CryptolibNotFound as exc:
        if config.cps_backend == "pkcs11":
            raise
        log.info("CPS backend: PC/SC driver (no Cryptolib CPS in %s)", ", ".join(exc.tried))
        return CpsBackend()
    except BridgeError:
        if config.cps_backend == "pkcs11":
            raise
        log.warning("CPS backend: PC/SC driver (the Cryptolib CPS found does not load)")
        return CpsBackend()
    log.info("CPS backend: PKCS#11 module %s", module.path)
    return CpsBackend(module)


def configured_cps_backend() -> CpsBackend:
    """The backend the user's config.toml asks for (tools that run without the daemon: `card`, `debug`).

    Raises:
        bridge.config.ConfigError: config.toml is invalid.
        CryptolibNotFound, BridgeError: as `select_cps_backend`.
    """
    from bridge.config import load_config  # the config module imports this package's [cards] table

    return select_cps_backend(load_config().cards)
