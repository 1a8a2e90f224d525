"""Bridge-level methods: info, readers, diagnostics, and origin administration (CLI)."""

from __future__ import annotations

import platform
import sys
from typing import Any, ClassVar

from bridge.api.core_results import (
    DIAGNOSTICS_REPORT_RESULT,
    ORIGINS_DECISION_RESULT,
    ORIGINS_LIST_RESULT,
    ORIGINS_PENDING_RESULT,
    ORIGINS_REVOKE_RESULT,
)
from bridge.api.handlers_pairing import pairing_handlers
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.api.security import CallerKind, normalise_origin
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "BridgeInfo",
    "DiagnosticsReport",
    "OriginsApprove",
    "OriginsDeny",
    "OriginsList",
    "OriginsPending",
    "OriginsRevoke",
    "ReadersList",
    "TokenRotate",
    "core_handlers",
]

_ORIGIN = {"type": "string", "maxLength": 255, "pattern": "^https?://"}
_CODE = {"type": "string", "pattern": "^[0-9]{6}$"}
_READER_ROW = object_schema(
    {
        "name": {"type": "string"},
        "cardPresent": {"type": "boolean"},
        "atr": {"type": ["string", "null"]},
        "kind": {"type": ["string", "null"], "description": "card family from the ATR (CPS3, VITALE2, UNKNOWN...)"},
    },
    ["name", "cardPresent", "atr", "kind"],
)
_READERS = object_schema(
    {
        "pcsc": {"enum": ["available", "unavailable"]},
        "readers": {"type": "array", "maxItems": 64, "items": _READER_ROW},
    },
    ["pcsc", "readers"],
)


class BridgeInfo(Handler):
    """bridge.info: who am I talking to; allowed before approval."""

    name = "bridge.info"
    summary = "Version, port and platform of the bridge, and whether this origin is approved."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.PUBLIC})
    inline = True
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "name": {"const": "dmp-bridge"},
            "version": {"type": "string"},
            "port": {"type": "integer"},
            "platform": {"type": "string"},
            "python": {"type": "string"},
            "approved": {"type": "boolean", "description": "this connection may call the card and DMP methods"},
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        connection = ctx.connection
        approved = connection.kind is CallerKind.LOCAL or connection.approved()
        return {
            "name": "dmp-bridge",
            "version": ctx.services.version,
            "port": ctx.services.port,
            "platform": sys.platform,
            "python": platform.python_version(),
            "approved": approved,
        }


class ReadersList(Handler):
    """readers.list: the PC/SC readers and whether each holds a card."""

    name = "readers.list"
    summary = "Readers seen by PC/SC with card presence and ATR; `pcsc` says whether the service answers."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.APP, Scope.DIAGNOSTICS})
    inline = True
    result_schema: ClassVar[dict[str, Any]] = _READERS

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        return ctx.services.readers.listing()


class DiagnosticsReport(Handler):
    """diagnostics.report: everything the helpdesk page shows; never a secret or personal data."""

    name = "diagnostics.report"
    summary = "Readers and card summaries, approved origins, pending pairing count and recent error codes."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.DIAGNOSTICS})
    result_schema: ClassVar[dict[str, Any]] = DIAGNOSTICS_REPORT_RESULT

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        from bridge.doctor.card_checks import status_findings

        services = ctx.services
        listing = services.readers.listing()
        cards = services.cards
        for row in listing["readers"]:
            row["card"] = None
            row["checks"] = []
            if cards is not None and row["cardPresent"]:
                try:
                    row["card"] = await cards.card_status(row["name"])
                except BridgeError as exc:
                    row["card"] = {"error": exc.code.value}
                # The helpdesk's light and next step for this card, the same words as `dmp-bridge doctor`.
                row["checks"] = [f.to_json() for f in status_findings(row["name"], row["card"])]
        return {
            "bridge": {"version": services.version, "port": services.port, "platform": sys.platform},
            "pcsc": listing["pcsc"],
            "readers": listing["readers"],
            "cardService": cards is not None,
            "origins": [o.to_json() for o in services.store.list()],
            "pendingPairings": len(services.pairing.pending()),
            "recentErrors": [_explained(e) for e in services.errors.recent()],
            # The feeding queue (`[feed] enabled`): counts per state, the oldest waiting job and why, the last
            # permanent failures with their French explanation. Job ids, uniqueIds and codes only: no INS.
            "outbox": await feed.outbox.summary() if (feed := getattr(services, "feed", None)) is not None else None,
        }


def _explained(entry: dict[str, str]) -> dict[str, str]:
    """A recent error with what it means and what to do, in French (the page shows both)."""
    try:
        data = BridgeError(ErrorCode(entry["code"])).to_data()
    except ValueError:  # a code recorded by an older or newer bridge: shown as is
        return entry
    return {**entry, "message_fr": data["message_fr"], "hint_fr": data["hint_fr"]}


class OriginsPending(Handler):
    """origins.pending: pairing requests with their codes (CLI only)."""

    name = "origins.pending"
    summary = "Pending pairing requests with origin and code (local token clients only)."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = ORIGINS_PENDING_RESULT

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        pairing = ctx.services.pairing
        now = pairing.now()
        return {"pending": [p.to_json(now) for p in pairing.pending()]}


class OriginsList(Handler):
    """origins.list: approved origins."""

    name = "origins.list"
    summary = "Approved web origins (local token clients only)."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = ORIGINS_LIST_RESULT

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        return {"origins": [o.to_json() for o in ctx.services.store.list()]}


class OriginsApprove(Handler):
    """origins.approve: approve a pending request by its code."""

    name = "origins.approve"
    summary = "Approve the pending pairing request with this 6-digit code."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = ORIGINS_DECISION_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"code": _CODE}, ["code"])
    errors = (ErrorCode.NOT_FOUND,)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        pending = ctx.services.pairing.approve(params["code"])
        return {"origin": pending.origin, "requestId": pending.request_id}


class OriginsDeny(Handler):
    """origins.deny: refuse a pending request by its code."""

    name = "origins.deny"
    summary = "Deny the pending pairing request with this 6-digit code."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = ORIGINS_DECISION_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"code": _CODE}, ["code"])
    errors = (ErrorCode.NOT_FOUND,)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        pending = ctx.services.pairing.deny(params["code"])
        return {"origin": pending.origin, "requestId": pending.request_id}


class OriginsRevoke(Handler):
    """origins.revoke: withdraw an approval; open connections of that origin lose access at once."""

    name = "origins.revoke"
    summary = "Revoke an approved origin."
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = ORIGINS_REVOKE_RESULT
    params_schema: ClassVar[dict[str, Any]] = object_schema({"origin": _ORIGIN}, ["origin"])
    errors = (ErrorCode.NOT_FOUND,)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        origin = normalise_origin(params["origin"])
        if origin is None or not ctx.services.store.revoke(origin):
            raise BridgeError(ErrorCode.NOT_FOUND, "origin")
        return {"origin": origin, "revoked": True}


class TokenRotate(Handler):
    """token.rotate: a new local token, replacing the old one at once."""

    name = "token.rotate"
    summary = (
        "Replace the local token (local token clients only): the old one is refused from now on and the other "
        "local connections are closed (code 4001); returns the new token."
    )
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.ADMIN})
    result_schema: ClassVar[dict[str, Any]] = object_schema({"token": {"type": "string", "maxLength": 64}})

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        return {"token": await ctx.services.rotate_token(ctx.connection)}


def core_handlers() -> list[Handler]:
    """All bridge-level handlers (the pairing ones included)."""
    return [
        BridgeInfo(),
        *pairing_handlers(),
        ReadersList(),
        DiagnosticsReport(),
        OriginsPending(),
        OriginsList(),
        OriginsApprove(),
        OriginsDeny(),
        OriginsRevoke(),
        TokenRotate(),
    ]
