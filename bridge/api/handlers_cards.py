"""Card methods (CPS/CPE and Vitale): schemas, checks and per-card serialisation around `CardService`.

The handlers own what is independent of the drivers: parameter schemas, reader resolution, the
per-card lock (bounded wait, then CARD_BUSY) and the PIN buffer's lifetime. The drivers' service
(`bridge.service.cards.CardService`) does the card work. Until it is wired, the methods answer
UNSUPPORTED_CARD with detail ``card-service-unavailable``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar

from bridge.api.card_results import (
    CPS_LOGIN_RESULT,
    CPS_LOGOUT_RESULT,
    CPS_READ_RESULT,
    CPS_SIGN_RESULT,
    VITALE_READ_RESULT,
)
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.errors import BridgeError, ErrorCode
from bridge.service.cards import CardKind, CardLocks, CardService

__all__ = ["CpsLogin", "CpsLogout", "CpsRead", "CpsSign", "VitaleRead", "card_handlers"]

_READER = {
    "type": "string",
    "minLength": 1,
    "maxLength": 256,
    "description": "Reader name; omitted: the only suitable card",
}
_APP = frozenset({Scope.APP})
_COMMON_ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode.NO_READER,
    ErrorCode.NO_CARD,
    ErrorCode.CARD_REMOVED,
    ErrorCode.UNSUPPORTED_CARD,
    ErrorCode.CARD_BUSY,
    ErrorCode.PCSC_UNAVAILABLE,
)
# A 20 MB document in base64 is ~27 MB; the frame limit (config) bounds it first anyway.
_MAX_SIGN_B64 = 28 * 1024 * 1024


def _service(ctx: CallContext) -> CardService:
    cards = ctx.services.cards
    if cards is None:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "card-service-unavailable")
    return cards


class _CardHandler(Handler):
    """Common shape: resolve the reader, hold its lock, run `operate`."""

    kind: ClassVar[CardKind]
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _COMMON_ERRORS

    def __init__(self, locks: CardLocks) -> None:
        self.locks = locks

    #: Acts with the card's verified PIN: only the caller that entered it (bridge.service.cps_login_owner).
    uses_login: ClassVar[bool] = False

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Resolve, lock, operate."""
        cards = _service(ctx)
        reader = await cards.resolve(params.get("reader"), self.kind)
        if self.uses_login:
            self.locks.login_owners.check(reader)
        async with self.locks.hold(reader):
            return await self.operate(cards, reader, params)

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """The card work, with the reader held."""
        raise NotImplementedError


class CpsRead(_CardHandler):
    """cps.read: holder and certificates of a CPS/CPE card (no PIN needed)."""

    name = "cps.read"
    summary = "Read the CPS/CPE holder data and certificates, their validity and the PIN tries left."
    kind: ClassVar[CardKind] = "cps"
    result_schema: ClassVar[dict[str, Any]] = CPS_READ_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"reader": _READER})

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """See summary."""
        return await cards.cps_read(reader)


class CpsLogin(_CardHandler):
    """cps.login: verify the PIN; refuses the last try unless `allowLastTry` is true."""

    name = "cps.login"
    summary = (
        "Verify the card holder PIN. With one try left the call fails with PIN_LAST_TRY unless allowLastTry"
        " (for a page: only once the person confirms it in the tray, else PIN_LAST_TRY confirm-at-workstation)."
        " After a wrong PIN the next attempt on that card waits (1 s, 2 s, 4 s...)."
        " The login belongs to the caller that entered the PIN: another origin's cps.sign and DMP calls get"
        " PIN_REQUIRED (detail login-owned-by-another-caller) unless `share_cps_login` is set."
    )
    kind: ClassVar[CardKind] = "cps"
    result_schema: ClassVar[dict[str, Any]] = CPS_LOGIN_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "reader": _READER,
            "pin": {"type": "string", "pattern": "^[0-9]{4,8}$", "writeOnly": True},
            "allowLastTry": {"type": "boolean", "default": False},
        },
        ["pin"],
    )
    errors: ClassVar[tuple[ErrorCode, ...]] = (
        *_COMMON_ERRORS,
        ErrorCode.PIN_INCORRECT,
        ErrorCode.PIN_BLOCKED,
        ErrorCode.PIN_LAST_TRY,
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """A page's request to spend the last try waits for the person's confirmation in the tray."""
        origin = ctx.connection.origin
        if not (params.get("allowLastTry", False) and origin is not None):
            return await super().call(ctx, params)
        # A page's script runs unattended: blocking the card is the person's call. Try without the last
        # try first, so the person is asked only when the card really is at its last try.
        try:
            return await super().call(ctx, {**params, "allowLastTry": False})
        except BridgeError as exc:
            if exc.code is not ErrorCode.PIN_LAST_TRY:
                raise
        reader = await _service(ctx).resolve(params.get("reader"), self.kind)
        # Asked outside the card lock: other callers' card work goes on while the person decides.
        if not await ctx.services.confirm_last_try(origin, reader):
            raise BridgeError(ErrorCode.PIN_LAST_TRY, "confirm-at-workstation")
        return await super().call(ctx, params)

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """See summary."""
        # The str in params cannot be wiped (Python strings are immutable); the bytearray handed to the
        # card layer can, and is, as soon as the call returns.
        pin = bytearray(params["pin"].encode("ascii"))
        try:
            result = await cards.cps_login(reader, pin, allow_last_try=bool(params.get("allowLastTry", False)))
        finally:
            pin[:] = b"\x00" * len(pin)
        self.locks.login_owners.entered(reader)  # this caller entered the PIN: the login is its own
        return result


class CpsLogout(_CardHandler):
    """cps.logout: forget the verified PIN state."""

    name = "cps.logout"
    summary = "Reset the card's security state (the PIN must be entered again)."
    kind: ClassVar[CardKind] = "cps"
    result_schema: ClassVar[dict[str, Any]] = CPS_LOGOUT_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"reader": _READER})

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """See summary."""
        # Anyone may log out (it only takes rights away); the login then belongs to nobody.
        result = await cards.cps_logout(reader)
        self.locks.login_owners.forget(reader)
        return result


class CpsSign(_CardHandler):
    """cps.sign: sign data or a digest with the card key."""

    name = "cps.sign"
    summary = (
        "Sign base64 data (or a digest when prehashed) with the CPS signature key, or (local programs only)"
        " the authentication key."
    )
    kind: ClassVar[CardKind] = "cps"
    result_schema: ClassVar[dict[str, Any]] = CPS_SIGN_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "reader": _READER,
            "data": {"type": "string", "contentEncoding": "base64", "minLength": 4, "maxLength": _MAX_SIGN_B64},
            "digestAlgorithm": {"enum": ["SHA-256", "SHA-384", "SHA-512"], "default": "SHA-256"},
            "prehashed": {"type": "boolean", "default": False},
            "key": {"enum": ["signature", "authentication"], "default": "signature"},
        },
        ["data"],
    )
    errors: ClassVar[tuple[ErrorCode, ...]] = (*_COMMON_ERRORS, ErrorCode.PIN_REQUIRED)
    uses_login: ClassVar[bool] = True
    _DIGEST_SIZES: ClassVar[dict[str, int]] = {"SHA-256": 32, "SHA-384": 48, "SHA-512": 64}

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Check the data (before any card access), then sign."""
        try:
            data = base64.b64decode(params["data"], validate=True)
        except (binascii.Error, ValueError):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "data: base64") from None
        digest = params.get("digestAlgorithm", "SHA-256")
        prehashed = params.get("prehashed", False)
        if params.get("key") == "authentication" and ctx.connection.origin is not None:
            # The authentication key signs the TLS handshake that identifies the doctor to the DMP, and TLS 1.2
            # signs data the client chooses (the handshake messages): whatever a page has it sign, digest or
            # data, can impersonate the doctor. Pages get the signature key only; local programs keep both.
            raise BridgeError(ErrorCode.INVALID_PARAMS, "authentication-key: local-programs-only")
        if prehashed and len(data) != self._DIGEST_SIZES[digest]:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "data: digest-length")
        return await super().call(ctx, {**params, "_bytes": data})

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """See summary."""
        return await cards.cps_sign(
            reader,
            params["_bytes"],
            digest=params.get("digestAlgorithm", "SHA-256"),
            prehashed=bool(params.get("prehashed", False)),
            key=params.get("key", "signature"),
        )


class VitaleRead(_CardHandler):
    """vitale.read: beneficiaries of a Vitale card."""

    name = "vitale.read"
    summary = "Read the Vitale card: holder and beneficiaries."
    kind: ClassVar[CardKind] = "vitale"
    result_schema: ClassVar[dict[str, Any]] = VITALE_READ_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"reader": _READER})

    async def operate(self, cards: CardService, reader: str, params: dict[str, Any]) -> Any:
        """See summary."""
        return await cards.vitale_read(reader)


def card_handlers(locks: CardLocks) -> list[Handler]:
    """All card handlers sharing one set of per-reader locks."""
    return [CpsRead(locks), CpsLogin(locks), CpsLogout(locks), CpsSign(locks), VitaleRead(locks)]
