"""Who entered a CPS's PIN: the card's login belongs to that caller, unless the person chose to share it.

A verified PIN is card state: without this, any approved page (or local program) could sign with, or
act on the DMP as, the doctor whose PIN another application entered. The caller that ran `cps.login`
successfully owns the login of that reader until the card is logged out, removed, or another caller
enters the PIN itself; other callers' `cps.sign` and DIRECTE DMP calls get PIN_REQUIRED (detail
`login-owned-by-another-caller`) and may ask the person for the PIN. `share_cps_login = true` in
config.toml lifts this (one workstation, one application family).

The caller's identity travels with the call's task (a context variable set by the API connection), so
the DMP service and the card locks can check it without being handed the connection. An identity is
the web origin of an approved page, `local` for token clients; work started outside any API call
(None) is not checked.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token

from bridge.errors import BridgeError, ErrorCode

__all__ = ["LOCAL_CALLER", "CpsLoginOwners", "acting_caller", "current_caller"]

log = logging.getLogger(__name__)

#: The identity of every token-holding local program (they share the user's token).
LOCAL_CALLER = "local"

_caller: ContextVar[str | None] = ContextVar("dmp_bridge_caller", default=None)


class acting_caller:  # lower case: used like a context-manager function
    """Run the enclosed call as `identity` (set by the API connection around each call).

    A class rather than @contextmanager: it wraps every API call, and this costs a third as much.
    """

    __slots__ = ("_identity", "_token")
    _token: Token[str | None]

    def __init__(self, identity: str | None) -> None:
        self._identity = identity

    def __enter__(self) -> None:
        self._token = _caller.set(self._identity)

    def __exit__(self, *exc: object) -> None:
        _caller.reset(self._token)


def current_caller() -> str | None:
    """The identity of the API caller running this task, None outside an API call."""
    return _caller.get()


class CpsLoginOwners:
    """The owner of each reader's CPS login."""

    def __init__(self, *, shared: bool = False) -> None:
        self.shared = shared
        self._owners: dict[str, str] = {}

    def entered(self, reader: str) -> None:
        """The current caller entered the PIN of `reader`'s card successfully: it owns the login."""
        who = current_caller()
        if who is not None:
            self._owners[reader] = who

    def forget(self, reader: str) -> None:
        """The login ended (logout, card removed)."""
        self._owners.pop(reader, None)

    def check(self, reader: str) -> None:
        """PIN_REQUIRED when the current caller did not enter this card's PIN (and sharing is off)."""
        who = current_caller()
        owner = self._owners.get(reader)
        if self.shared or who is None or owner is None or owner == who:
            return
        raise BridgeError(ErrorCode.PIN_REQUIRED, "login-owned-by-another-caller")
