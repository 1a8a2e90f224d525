"""Who owns a CPS login (bridge.service.cps_login_owner): the caller that entered the PIN, unless shared."""

from __future__ import annotations

import pytest

from bridge.errors import BridgeError, ErrorCode
from bridge.service.cps_login_owner import CpsLoginOwners, acting_caller, current_caller

READER = "Virtual PCD 00 00"


def test_only_the_caller_that_entered_the_pin_uses_the_login() -> None:
    owners = CpsLoginOwners()
    assert current_caller() is None
    with acting_caller("https://a.example"):
        owners.entered(READER)
        owners.check(READER)
    with acting_caller("https://b.example"), pytest.raises(BridgeError) as info:
        owners.check(READER)
    assert (info.value.code, info.value.detail) == (ErrorCode.PIN_REQUIRED, "login-owned-by-another-caller")
    owners.check(READER)  # outside any API call (the daemon's own work): not checked
    with acting_caller("local"):
        owners.check("another reader")  # nobody owns that one
    owners.forget(READER)
    with acting_caller("https://b.example"):
        owners.check(READER)
    assert current_caller() is None


def test_shared_login_serves_every_caller() -> None:
    owners = CpsLoginOwners(shared=True)
    with acting_caller("https://a.example"):
        owners.entered(READER)
    with acting_caller("local"):
        owners.check(READER)
