"""Pairing methods: the key-proof handshake (`pairing.challenge`, `pairing.prove`) and `pairing.request`.

A web page proves on every connection that it holds the key its origin was paired with; the
diagnostics page proves the secret it was served with. See bridge.api.key_proof for the signed bytes
and docs/api.md ("Pairing and key proof") for the sequence the SDK runs.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, ClassVar

from bridge.api.key_proof import fingerprint, verify_proof
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.api.security import CallerKind, own_origins
from bridge.errors import BridgeError, ErrorCode
from bridge.logs import LogThrottle

__all__ = ["PairingChallenge", "PairingProve", "PairingRequest", "pairing_handlers"]

log = logging.getLogger(__name__)
# A forger looping on bad proofs must not write one line per try.
_refused = LogThrottle(log)

_PUBLIC_KEY = {
    "type": "string",
    "maxLength": 200,
    "pattern": "^[A-Za-z0-9+/=]+$",
    "description": "base64 DER SubjectPublicKeyInfo of an ECDSA P-256 key",
}
_SIGNATURE = {
    "type": "string",
    "maxLength": 100,
    "pattern": "^[A-Za-z0-9+/=]+$",
    "description": "base64 ECDSA P-256/SHA-256 signature, r||s (64 bytes, as WebCrypto returns it)",
}
_PAGE_SECRET = {"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"}


class PairingChallenge(Handler):
    """pairing.challenge: a fresh challenge for this connection's key proof."""

    name = "pairing.challenge"
    summary = (
        "A fresh random challenge (base64, 32 bytes) for `pairing.prove` on this connection; each call "
        "replaces the previous one and each challenge answers one proof."
    )
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.PUBLIC})
    inline = True
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"challenge": {"type": "string", "maxLength": 64}, "origin": {"type": ["string", "null"]}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        challenge = ctx.connection.issue_challenge()
        return {"challenge": base64.b64encode(challenge).decode(), "origin": ctx.connection.origin}


class PairingProve(Handler):
    """pairing.prove: a web page signs the challenge with its key; the diagnostics page presents its secret."""

    name = "pairing.prove"
    summary = (
        "Prove the page's key: `publicKey` and the `signature` of "
        "`\"dmp-bridge key proof v1\" 0x00 origin 0x00 challenge` (the diagnostics page sends `pageSecret` "
        "instead). `approved` says whether this key is approved for the origin; if not, call `pairing.request`."
    )
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.PUBLIC})
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"publicKey": _PUBLIC_KEY, "signature": _SIGNATURE, "pageSecret": _PAGE_SECRET}
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"approved": {"type": "boolean"}, "keyFingerprint": {"type": ["string", "null"]}}
    )
    errors = (ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_PARAMS)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        connection = ctx.connection
        if "pageSecret" in params:
            if not connection.prove_page(params["pageSecret"]):
                _refused.log(logging.WARNING, "page-secret", "diagnostics page secret refused")
                raise BridgeError(ErrorCode.UNAUTHORIZED, "page-secret")
            return {"approved": True, "keyFingerprint": None}
        origin = connection.origin
        if connection.kind is not CallerKind.WEB or origin is None:
            raise BridgeError(ErrorCode.INVALID_INPUT, "proof-for-web-pages")
        if "publicKey" not in params or "signature" not in params:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "publicKey: required")
        challenge = connection.take_challenge()  # consumed whatever the outcome: no second try on it
        if challenge is None:
            raise BridgeError(ErrorCode.UNAUTHORIZED, "no-challenge")
        key = params["publicKey"]
        if not verify_proof(key, origin, challenge, params["signature"]):
            _refused.log(logging.WARNING, "key-proof", "key proof refused for %s", origin)
            raise BridgeError(ErrorCode.UNAUTHORIZED, "key-proof")
        connection.key_proven(key)
        return {"approved": connection.approved(), "keyFingerprint": fingerprint(key)}


class PairingRequest(Handler):
    """pairing.request: ask the person at the workstation to approve this origin with the proven key."""

    name = "pairing.request"
    summary = (
        "Ask for this web origin to be approved with the key proven on this connection (`pairing.prove` "
        "first). The bridge shows the origin and a 6-digit code to the person at the workstation (the page "
        "may show the same code so they match); `pairing.approved` (or `pairing.denied`) is notified on this "
        "connection."
    )
    scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.PUBLIC})
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "requestId": {"type": ["string", "null"]},
            "status": {"enum": ["pending", "approved"]},
            "code": {"type": ["string", "null"]},
            "expiresIn": {"type": "integer"},
        }
    )
    errors = (ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_INPUT)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        connection = ctx.connection
        origin = connection.origin
        if connection.kind is CallerKind.OWN_PAGE or (origin is not None and origin in own_origins(ctx.services.port)):
            # The diagnostics page has its fixed, read-only rights; approving it would change nothing.
            raise BridgeError(ErrorCode.INVALID_INPUT, "own-origin")
        if origin is None or connection.approved():
            return {"requestId": None, "status": "approved", "code": None, "expiresIn": 0}
        key = connection.proven_key
        if key is None:
            # Approving a name alone would let any local program claim it: the key comes first.
            raise BridgeError(ErrorCode.UNAUTHORIZED, "key-proof-required")
        pending = ctx.services.pairing.request(origin, key, connection)
        connection.remember_pairing(pending.request_id)
        # The code is no secret from the page: only the person (tray, or the token-holding CLI) can approve.
        return {
            "requestId": pending.request_id,
            "status": "pending",
            "code": pending.code,
            "expiresIn": round(ctx.services.pairing.ttl),
        }


def pairing_handlers() -> list[Handler]:
    """The pairing handlers."""
    return [PairingChallenge(), PairingProve(), PairingRequest()]
