"""The ANS Cryptolib CPS: installed or not, which version, and several installs that conflict.

The Cryptolib is the production path for CPS cards (`bridge.service.cps_backend`); without it the
bridge reads them with its own PC/SC driver. Two installs of different versions (an old RPM in
/usr/lib64 beside a new one in /opt/santesocial) is a classic field problem: whichever loads first wins.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bridge.cards.cryptolib_paths import ENV_MODULE, ModuleInfo, candidate_paths
from bridge.doctor.findings import Finding, Section, Status
from bridge.service.cards_config import CardsConfig

__all__ = ["cryptolib_findings", "installed_modules"]

_INSTALL = (
    "Installez la Cryptolib CPS de l'ANS (paquet cryptolib-cps pour votre système, sur esante.gouv.fr), "
    'ou indiquez son chemin dans config.toml : [cards] pkcs11_module = "/chemin/libcps3_pkcs11_lux.so".'
)


def installed_modules(config: CardsConfig, env: Mapping[str, str] | None = None) -> list[Path]:
    """The module files that exist among the configured path, $DMP_BRIDGE_PKCS11_MODULE and the defaults."""
    env = os.environ if env is None else env
    paths: list[str] = []
    if config.pkcs11_module is not None:
        paths.append(str(config.pkcs11_module))
    if env.get(ENV_MODULE):
        paths.append(env[ENV_MODULE])
    paths.extend(candidate_paths(env=env))
    found: dict[Path, Path] = {}
    for path in paths:
        candidate = Path(path)
        if candidate.is_file():
            found.setdefault(candidate.resolve(), candidate)
    return list(found.values())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cryptolib_findings(
    config: CardsConfig,
    modules: Sequence[Path],
    describe: Callable[[Path], ModuleInfo],
) -> list[Finding]:
    """Findings for the Cryptolib: `modules` as `installed_modules` found them; `describe` loads one (C_GetInfo)."""
    if config.cps_backend == "pcsc":
        return [
            Finding(
                section=Section.CRYPTOLIB,
                check="cryptolib.present",
                status=Status.INFO,
                summary="La Cryptolib CPS n'est pas utilisée : config.toml choisit le pilote PC/SC intégré "
                '(cps_backend = "pcsc").',
            )
        ]
    if not modules:
        required = config.cps_backend == "pkcs11"
        return [
            Finding(
                section=Section.CRYPTOLIB,
                check="cryptolib.present",
                status=Status.PROBLEM if required else Status.WARNING,
                summary="Cryptolib CPS introuvable : "
                + (
                    'config.toml l\'exige (cps_backend = "pkcs11"), les cartes CPS ne peuvent pas être utilisées.'
                    if required
                    else "les cartes CPS sont lues par le pilote PC/SC intégré au pont."
                ),
                advice=_INSTALL,
                details={"tried": [str(p) for p in candidate_paths()]},
            )
        ]
    found: list[Finding] = []
    chosen = modules[0]
    try:
        info = describe(chosen)
    except Exception as exc:  # a broken install must be reported, whatever the loader raised
        message = getattr(exc, "message_fr", None) or type(exc).__name__
        found.append(
            Finding(
                section=Section.CRYPTOLIB,
                check="cryptolib.load",
                status=Status.PROBLEM,
                summary=f"La Cryptolib CPS trouvée ({chosen}) ne se charge pas : {message}",
                advice="Réinstallez la Cryptolib CPS (une mise à jour incomplète ou une bibliothèque de la "
                "mauvaise architecture en est la cause habituelle).",
                details={"path": str(chosen)},
            )
        )
    else:
        found.append(
            Finding(
                section=Section.CRYPTOLIB,
                check="cryptolib.load",
                status=Status.OK,
                summary=f"Cryptolib CPS {info.version} ({info.description.strip()}) : {chosen}.",
                details={"path": str(chosen), "version": info.version, "manufacturer": info.manufacturer.strip()},
            )
        )
    if len({_digest(path) for path in modules}) > 1:
        found.append(
            Finding(
                section=Section.CRYPTOLIB,
                check="cryptolib.conflict",
                status=Status.WARNING,
                summary="Plusieurs Cryptolib CPS différentes sont installées : "
                + ", ".join(str(p) for p in modules)
                + f" ; le pont utilise {chosen}.",
                advice="Désinstallez l'ancienne version pour qu'un seul module serve tous les logiciels du "
                "poste (les logiciels peuvent sinon charger des versions différentes).",
                details={"paths": [str(p) for p in modules]},
            )
        )
    return found
