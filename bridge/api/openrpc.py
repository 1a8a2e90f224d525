"""`/openrpc.json`: the OpenRPC 1.2 document generated from the registry's own schemas."""

from __future__ import annotations

from typing import Any

from bridge.api.jsonrpc import jsonrpc_code
from bridge.api.methods import Registry
from bridge.errors import BridgeError, ErrorCode

__all__ = ["NOTIFICATIONS", "openrpc_document"]

# Server -> client notifications (not OpenRPC methods; listed under an extension key).
NOTIFICATIONS: dict[str, str] = {
    "readers.changed": "Reader list or card presence changed; params = readers.list result.",
    "card.inserted": "A card was inserted: {reader, atr}.",
    "card.removed": "A card was removed: {reader}.",
    "pairing.approved": "This origin was approved: {requestId, origin}.",
    "pairing.denied": "The pairing request was denied or expired: {requestId, origin}.",
}


def _error_entry(code: ErrorCode) -> dict[str, Any]:
    error = BridgeError(code)
    return {"code": jsonrpc_code(error), "message": error.message_en, "data": error.to_data()}


def openrpc_document(registry: Registry, version: str, port: int) -> dict[str, Any]:
    """The OpenRPC document for every registered method."""
    methods = []
    for handler in registry:
        params = [
            {"name": name, "required": name in handler.params_schema.get("required", []), "schema": schema}
            for name, schema in handler.params_schema.get("properties", {}).items()
        ]
        methods.append(
            {
                "name": handler.name,
                "summary": handler.summary,
                "paramStructure": "by-name",
                "params": params,
                "result": {"name": "result", "schema": handler.result_schema},
                "errors": [_error_entry(c) for c in (ErrorCode.INVALID_PARAMS, *handler.errors)],
                "x-scopes": sorted(s.value for s in handler.scopes),
            }
        )
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "dmp-bridge local API",
            "version": version,
            "description": "JSON-RPC 2.0 over WebSocket; batches are refused; params by name only.",
        },
        "servers": [{"name": "local", "url": f"ws://127.0.0.1:{port}/ws"}],
        "methods": methods,
        "x-notifications": [{"name": n, "summary": s} for n, s in NOTIFICATIONS.items()],
        "x-error-codes": [c.value for c in ErrorCode],
    }
