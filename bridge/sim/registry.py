"""Which virtual cards exist: kind -> factory(profile name), and the profiles each kind offers.

A kind's module exposes ``make_card(profile: str | None) -> VirtualCard`` (None = the kind's default
profile; an unknown name raises KeyError). Profiles are data files ``bridge/sim/profiles/<kind>-<name>.json``;
a kind with no file has the single profile "default". Modules are imported only when a card is made,
so the CLI starts fast. Adding a kind is one line in `CARD_KINDS`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from bridge.sim.vpcd import VirtualCard

__all__ = ["CARD_KINDS", "CardFactory", "list_profiles", "load_profile", "make_card"]

CardFactory = Callable[[str | None], VirtualCard]

_PROFILES_PACKAGE = "bridge.sim.profiles"
DEFAULT_PROFILE = "default"


def _lazy(module: str, attr: str = "make_card") -> CardFactory:
    """A factory that imports `module` on first use and calls its `attr`."""

    def factory(profile: str | None) -> VirtualCard:
        make: CardFactory = getattr(importlib.import_module(module), attr)
        return make(profile)

    factory.__qualname__ = f"{module}.{attr}"
    return factory


#: kind -> factory(profile name or None for the default). One line per kind.
CARD_KINDS: Mapping[str, CardFactory] = {
    "generic": _lazy("bridge.sim.generic"),
    "vitale": _lazy("bridge.sim.vitale"),
    # "cps" is the card issued since 2025, the CPS4; the CPS3 stays available by name.
    "cps": _lazy("bridge.sim.cps4"),
    "cps3": _lazy("bridge.sim.cps3"),
    "cps4": _lazy("bridge.sim.cps4"),
}


#: kinds that use another kind's profile files (every CPS generation reads the cps-*.json profiles).
_PROFILES_OF: Mapping[str, str] = {"cps3": "cps", "cps4": "cps"}


def list_profiles(kind: str) -> list[str]:
    """Profile names of `kind`, sorted ("default" when the kind has no profile file)."""
    if kind not in CARD_KINDS:
        raise KeyError(kind)
    prefix = f"{_PROFILES_OF.get(kind, kind)}-"
    names = sorted(
        entry.name[len(prefix) : -len(".json")]
        for entry in resources.files(_PROFILES_PACKAGE).iterdir()
        if entry.name.startswith(prefix) and entry.name.endswith(".json")
    )
    return names or [DEFAULT_PROFILE]


def load_profile(kind: str, name: str) -> dict[str, Any]:
    """The JSON object of profile `name` of `kind`; KeyError when there is no such profile."""
    entry = resources.files(_PROFILES_PACKAGE).joinpath(f"{_PROFILES_OF.get(kind, kind)}-{name}.json")
    if not entry.is_file():
        raise KeyError(f"{kind}/{name}")
    data = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"profile {kind}/{name} is not a JSON object")
    return data


def make_card(kind: str, profile: str | None = None) -> VirtualCard:
    """A new card of `kind` with `profile` (None = the kind's default); KeyError for unknown ones."""
    return CARD_KINDS[kind](profile)
