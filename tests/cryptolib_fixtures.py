"""Fixtures for tests judged by the official Cryptolib: the module installed once, loaded once per process.

The Cryptolib refuses a second C_Initialize in one process, so one `PyKCS11Lib` serves the whole test
session. Its file cache (keyed by card serial) and its traces are cleared before each test; a failed
test prints the APDU traces of that test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cryptolib_harness import CryptolibInstall, CryptolibUnavailable, install_in_namespace, unpack

__all__ = ["cryptolib", "pkcs11_lib", "token_slot"]

_LIB: Any = None


@pytest.fixture(scope="session")
def cryptolib_install() -> CryptolibInstall:
    """The Cryptolib laid over its folders in the tests' private mount namespace (skips when it cannot be)."""
    try:
        return install_in_namespace(unpack())
    except CryptolibUnavailable as exc:
        pytest.skip(f"official Cryptolib CPS not available: {exc}")


@pytest.fixture
def cryptolib(cryptolib_install: CryptolibInstall, request: pytest.FixtureRequest) -> Iterator[CryptolibInstall]:
    """A clean Cryptolib cache and trace folder for this test; the traces are shown if it fails."""
    cryptolib_install.clear()
    yield cryptolib_install
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cryptolib_install.traces()[-20000:])


@pytest.fixture
def pkcs11_lib(cryptolib: CryptolibInstall) -> Any:
    """PyKCS11 over the Cryptolib, initialised once per process."""
    global _LIB
    PyKCS11 = pytest.importorskip("PyKCS11")
    if _LIB is None:
        lib = PyKCS11.PyKCS11Lib()
        lib.load(str(cryptolib.module))
        _LIB = lib
    return _LIB


def token_slot(lib: Any, reader: str) -> int:
    """The slot of `reader` holding a token (the Cryptolib names slots after PC/SC readers)."""
    for slot in lib.getSlotList(tokenPresent=True):
        if lib.getSlotInfo(slot).slotDescription.strip() == reader:
            return int(slot)
    raise AssertionError(f"no token in {reader}: the Cryptolib did not accept the card")
