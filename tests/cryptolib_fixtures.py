"""Fixtures for tests judged by the official Cryptolib: installed once in the private namespace, loaded once.

The Cryptolib refuses a second C_Initialize in one process, so every test goes through
`bridge.cards.pkcs11_module.load_module` (one module object per file per process). The binding must
release the GIL during card calls (python-pkcs11 does): the virtual cards answer from a thread of
this same process. The module's file cache (keyed by card serial) and traces are cleared before each
test; a failed test prints the last APDU traces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pkcs11 import Slot, SlotFlag

from bridge.cards.pkcs11_module import Pkcs11Module, load_module
from bridge.service.cps_backend import CpsBackend
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import READER_PREFIX, wait_card_state
from tests.cryptolib_harness import CryptolibInstall, CryptolibUnavailable, install_in_namespace, unpack

__all__ = ["cps_backend", "cryptolib", "cryptolib_install", "cryptolib_module", "token_slot"]


@pytest.fixture(scope="session")
def cryptolib_install() -> CryptolibInstall:
    """The Cryptolib laid over its folders in the tests' private mount namespace (skips when it cannot be)."""
    try:
        return install_in_namespace(unpack())
    except CryptolibUnavailable as exc:
        pytest.skip(f"official Cryptolib CPS not available: {exc}")


@pytest.fixture
def cryptolib(cryptolib_install: CryptolibInstall, request: pytest.FixtureRequest) -> Iterator[CryptolibInstall]:
    """A clean Cryptolib cache and trace folder for this test; the traces are printed if it fails."""
    cryptolib_install.clear()
    yield cryptolib_install
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cryptolib_install.traces()[-20000:])


@pytest.fixture
def cryptolib_module(cryptolib: CryptolibInstall, slots: list[VirtualSlot]) -> Iterator[Pkcs11Module]:
    """The Cryptolib's PKCS#11 module, loaded once per process; after the test the cards are taken out.

    The module is then told of each removal (`notice_removal`), as the card service does, so that it
    drops its handles before the next test's card.
    """
    module = load_module(cryptolib.module)
    yield module
    for index, slot in enumerate(slots):
        slot.remove()
        reader = f"{READER_PREFIX}{index:02d}"
        wait_card_state(reader, present=False)
        module.notice_removal(reader)


def token_slot(module: Pkcs11Module, reader: str) -> Slot:
    """The slot of `reader`, which must hold a token (else the Cryptolib refused the card)."""
    slot = module.slot_for_reader(reader)
    assert slot.flags & SlotFlag.TOKEN_PRESENT, f"the Cryptolib shows {reader} empty: it refused the card"
    return slot


@pytest.fixture(params=["pcsc", "pkcs11"])
def cps_backend(request: pytest.FixtureRequest) -> CpsBackend:
    """Each CPS backend in turn: the bridge's PC/SC driver, then the official Cryptolib (skips without it).

    The Cryptolib comes from `cryptolib_module`, whose teardown runs after the daemon's: the daemon can
    no longer tell the module that the test's cards left, and a CPS4 in a reader that last held a CPS3
    unknown to be gone is invisible to it.
    """
    if request.param == "pcsc":
        return CpsBackend()
    module: Pkcs11Module = request.getfixturevalue("cryptolib_module")
    return CpsBackend(module)
