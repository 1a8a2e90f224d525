"""The official Cryptolib through PyKCS11 for the test modules: installed once per process, loaded per module.

`opened_cryptolib()` installs the module in the tests' private mount namespace (`tests.cryptolib_harness`,
once per process) and loads it with PyKCS11 (which keeps one C_Initialize per process however many
users); leaving the context unloads it (C_Finalize), so that the module stops holding the readers
that later tests use.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.cryptolib_harness import CryptolibInstall, CryptolibUnavailable, install_in_namespace, unpack

__all__ = ["CryptolibUnavailable", "opened_cryptolib"]


@functools.cache
def _install() -> CryptolibInstall:
    return install_in_namespace(unpack())


@contextmanager
def opened_cryptolib() -> Iterator[tuple[CryptolibInstall, Any]]:
    """(install, PyKCS11Lib); raises CryptolibUnavailable when the Cryptolib cannot run here."""
    try:
        import PyKCS11
    except ImportError:
        raise CryptolibUnavailable("PyKCS11 is not installed (test extras)") from None
    install = _install()
    lib = PyKCS11.PyKCS11Lib()
    lib.load(str(install.module))
    try:
        yield install, lib
    finally:
        lib.unload()
