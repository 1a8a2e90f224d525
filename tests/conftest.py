"""Test harness: a real pcscd with vpcd virtual readers, and virtual card slots.

By default (root, as in CI) the test process moves into a private mount namespace at start-up and
runs its own pcscd there, on free ports, so a system pcscd is left alone. With
DMP_BRIDGE_PCSCD=system the tests reuse the running pcscd and Debian's vpcd ports (35963, 35964).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.sim.pcscd import PrivatePcscd, enter_private_namespace, free_port_pair
from bridge.sim.vpcd import VPCD_BASE_PORT, VirtualSlot

SHARED = Path(__file__).resolve().parents[2] / "shared"
READER_PREFIX = "Virtual PCD 00 "  # vpcd's reader names: slot n is "Virtual PCD 00 0n"
_USE_SYSTEM = os.environ.get("DMP_BRIDGE_PCSCD") == "system" or os.geteuid() != 0


def pytest_configure(config: pytest.Config) -> None:
    """Enter the private namespace before any thread exists (unshare needs a single thread).

    Also: "auto" CPS backend means PC/SC in the suite unless a test names the Cryptolib's module itself
    (tests/cryptolib_fixtures.py); otherwise the Cryptolib, once laid over /opt/santesocial by one test,
    would change which backend later daemons and CLI subprocesses pick, and results would depend on
    test order.
    """
    os.environ.setdefault("DMP_BRIDGE_PKCS11_MODULE", "/nonexistent/dmp-bridge-tests/no-cryptolib.so")
    if not _USE_SYSTEM and not os.environ.get("_DMP_BRIDGE_IN_PRIVATE_NS"):
        enter_private_namespace()
        os.environ["_DMP_BRIDGE_IN_PRIVATE_NS"] = "1"


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePcscd | None]:
    """The pcscd under test: a private one (started here, stopped by PID) or None for the system one."""
    if _USE_SYSTEM:
        yield None
        return
    daemon = PrivatePcscd(tmp_path_factory.mktemp("pcscd"), free_port_pair())
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def slot_ports(pcscd: PrivatePcscd | None) -> list[int]:
    """vpcd port of each virtual reader slot, in reader-name order."""
    if pcscd is None:
        return [VPCD_BASE_PORT, VPCD_BASE_PORT + 1]
    return pcscd.slot_ports


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private DMP_BRIDGE_HOME per test (token, approvals, config); modules opt in with usefixtures("home")."""
    monkeypatch.setenv("DMP_BRIDGE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def slots(slot_ports: list[int]) -> Iterator[list[VirtualSlot]]:
    """One VirtualSlot per reader, all empty at start and emptied again after the test.

    Teardown waits until pcscd itself reports each used reader empty (it notices a vpcd removal only
    at its next poll), so the next test never mistakes the old card for its own.
    """
    opened = [VirtualSlot(port) for port in slot_ports]
    try:
        yield opened
    finally:
        for slot in opened:
            slot.close()
        for index in range(len(opened)):
            wait_card_state(f"{READER_PREFIX}{index:02d}", present=False)


def wait_card_state(reader: str, present: bool, timeout: float = 10.0) -> bytes:
    """Block on SCardGetStatusChange until `reader` has (or lacks) a card; return the ATR seen.

    This is pcscd's own notification, not a poll: the call returns when the state changes.
    """
    from smartcard import scard

    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
    try:
        state = scard.SCARD_STATE_UNAWARE
        remaining_ms = int(timeout * 1000)
        while True:
            hr, states = scard.SCardGetStatusChange(ctx, remaining_ms, [(reader, state)])
            if hr != scard.SCARD_S_SUCCESS:
                raise TimeoutError(f"{reader}: {scard.SCardGetErrorMessage(hr)}")
            _, event_state, atr = states[0]
            if bool(event_state & scard.SCARD_STATE_PRESENT) == present:
                return bytes(atr)
            state = event_state & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(ctx)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that load the official Cryptolib last.

    Once loaded in a process, the Cryptolib keeps PC/SC state that C_Finalize does not release (other
    tests then meet SCARD_E_SHARING_VIOLATION on the virtual readers), and it cannot be unloaded.
    """
    items.sort(key=lambda item: item.get_closest_marker("cryptolib") is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item (`item.rep_call`), for fixtures that report on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
