"""The official Cryptolib loaded once per test process through PyKCS11 (a second C_Initialize would fail).

Shared by the Cryptolib test modules: `load_cryptolib()` installs the module in the tests' private
mount namespace (`tests.cryptolib_harness`) and loads it the first time, then returns the same pair.
"""

from __future__ import annotations

import functools
from typing import Any

from tests.cryptolib_harness import CryptolibInstall, CryptolibUnavailable, install_in_namespace, unpack

__all__ = ["CryptolibUnavailable", "load_cryptolib"]


@functools.cache
def load_cryptolib() -> tuple[CryptolibInstall, Any]:
    """(install, PyKCS11Lib) for this process; raises CryptolibUnavailable (not cached) when it cannot run here."""
    try:
        import PyKCS11
    except ImportError:
        raise CryptolibUnavailable("PyKCS11 is not installed (test extras)") from None
    install = install_in_namespace(unpack())
    lib = PyKCS11.PyKCS11Lib()
    lib.load(str(install.module))
    return install, lib
