"""Where the ANS Cryptolib CPS's PKCS#11 module is, without loading it (nor its Python binding).

Kept apart from `bridge.cards.pkcs11_module` so that a daemon without the Cryptolib (and the doctor)
never imports the binding: finding nothing is the common case on a sandbox or a PC/SC-only workstation.

Where the module is (first existing path wins; `configured` overrides all, and must exist):

* Linux: ``/opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so`` and its ``/usr/lib64`` symlinks (the
  file list of the ANS RPM CryptolibCPS-5.2.2), plus ``/usr/lib`` / ``/usr/local/lib`` for
  installs converted to .deb;
* macOS: ``/usr/local/lib/libcps3_pkcs11_osx.dylib`` (the name ANS's own CPS API layer loads,
  ``cpscps.h`` in ansforge/dops-cryptolib);
* Windows: ``%WINDIR%\\System32\\cps3_pkcs11_w64.dll`` for a 64-bit process and
  ``%WINDIR%\\SysWOW64\\cps3_pkcs11_w32.dll`` for a 32-bit one (``cps3pkcs11ver.h`` original file names
  in the same repository; System32/SysWOW64 as ANS's .NET sample loads them).
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import BridgeError, ErrorCode

__all__ = ["ENV_MODULE", "CryptolibNotFound", "ModuleInfo", "candidate_paths", "find_module"]

#: Environment variable naming the module, below the configured path and above the default locations.
ENV_MODULE = "DMP_BRIDGE_PKCS11_MODULE"

_LINUX = (
    "/opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so",
    "/usr/lib64/libcps3_pkcs11_lux.so",
    "/usr/lib64/libcps3_pkcs11_lux.so.0",
    "/usr/lib/libcps3_pkcs11_lux.so",
    "/usr/lib/x86_64-linux-gnu/libcps3_pkcs11_lux.so",
    "/usr/local/lib/libcps3_pkcs11_lux.so",
)
_MACOS = ("/usr/local/lib/libcps3_pkcs11_osx.dylib",)


class CryptolibNotFound(BridgeError):
    """No PKCS#11 module where the configuration or the Cryptolib's installers put it."""

    def __init__(self, tried: Sequence[str]) -> None:
        super().__init__(ErrorCode.UNSUPPORTED_CARD, "Cryptolib CPS not found", tried=list(tried))
        self.tried = tuple(tried)

    @property
    def message_fr(self) -> str:
        """The French message: what is missing and how to fix it."""
        return (
            "Cryptolib CPS introuvable : installez la Cryptolib CPS de l'ANS ou indiquez le chemin de son "
            "module PKCS#11 dans la configuration. Chemins essayés : " + ", ".join(self.tried)
        )

    @property
    def message_en(self) -> str:
        """The English message."""
        return "ANS Cryptolib CPS not found; install it or configure its PKCS#11 module path."


def candidate_paths(platform: str = sys.platform, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The Cryptolib's default module locations on `platform` (sys.platform values), most likely first."""
    env = os.environ if env is None else env
    if platform == "win32":
        windir = env.get("WINDIR", env.get("SystemRoot", r"C:\Windows"))
        # A 32-bit Python can only load the 32-bit DLL, which a 64-bit Windows keeps in SysWOW64.
        if struct.calcsize("P") == 8:
            return (windir + r"\System32\cps3_pkcs11_w64.dll",)
        return (windir + r"\SysWOW64\cps3_pkcs11_w32.dll", windir + r"\System32\cps3_pkcs11_w32.dll")
    if platform == "darwin":
        return _MACOS
    return _LINUX


def find_module(
    configured: str | Path | None = None, *, platform: str = sys.platform, env: Mapping[str, str] | None = None
) -> Path:
    """The module to load: `configured`, else $DMP_BRIDGE_PKCS11_MODULE, else the first default that exists.

    Raises:
        CryptolibNotFound: nothing found (the error lists what was tried).
    """
    env = os.environ if env is None else env
    explicit = configured if configured is not None else env.get(ENV_MODULE) or None
    tried = [str(explicit)] if explicit is not None else list(candidate_paths(platform, env))
    for path in tried:
        if Path(path).is_file():
            return Path(path)
    raise CryptolibNotFound(tried)


@dataclass(frozen=True)
class ModuleInfo:
    """What C_GetInfo says of the module (for diagnostics)."""

    path: str
    description: str
    manufacturer: str
    version: str
