"""JSON-RPC 2.0 framing with no I/O: text frame in, Request/Notification or a parse error out.

Rules of this module:
- `parse_frame(text)` never raises; a bad frame is a `FrameError` carrying the JSON-RPC error to send.
- Batches (a JSON array) are refused with -32600 and `data.code = INVALID_INPUT`, detail
  ``batch-unsupported``. Card operations are serialised per card anyway, so a batch would buy nothing
  but ambiguity about partial failure; clients pipeline requests on the WebSocket instead.
- Responses and errors are built as dicts (`encode` turns them into text); error objects always
  carry `data` from `BridgeError.to_data()`, never exception text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "SERVER_ERROR",
    "FrameError",
    "Notification",
    "Request",
    "RequestId",
    "encode",
    "error_response",
    "jsonrpc_code",
    "notification",
    "parse_frame",
    "result_response",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # application errors: the symbolic code is in data.code
_NOT_APPROVED = -32001  # origin/token refusals, so clients can branch without reading data

RequestId = str | int | None

# Checked before a method name is looked up, stored (recent errors) or logged: short, no control characters.
MAX_METHOD_LENGTH = 64
_METHOD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]*")

# json.dumps with options builds a new JSONEncoder per call; this one is stateless and reused.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# Symbolic code -> JSON-RPC numeric code; anything absent is SERVER_ERROR.
_NUMERIC: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PARAMS: INVALID_PARAMS,
    ErrorCode.INTERNAL: INTERNAL_ERROR,
    ErrorCode.ORIGIN_NOT_APPROVED: _NOT_APPROVED,
    ErrorCode.UNAUTHORIZED: _NOT_APPROVED,
}


@dataclass(frozen=True, kw_only=True)
class Request:
    """A call that expects a response."""

    id: str | int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Notification:
    """A call without id: executed, never answered (not even with an error)."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class FrameError:
    """A frame that cannot be executed; `response` is the error object to send back."""

    response: dict[str, Any]


def jsonrpc_code(error: BridgeError) -> int:
    """The JSON-RPC numeric code for a bridge error."""
    return _NUMERIC.get(error.code, SERVER_ERROR)


def error_response(request_id: RequestId, error: BridgeError, numeric: int | None = None) -> dict[str, Any]:
    """A JSON-RPC error response; `numeric` overrides the code derived from `error.code`."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": jsonrpc_code(error) if numeric is None else numeric,
            "message": error.message_en,
            "data": error.to_data(),
        },
    }


def result_response(request_id: str | int, result: Any) -> dict[str, Any]:
    """A JSON-RPC success response."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def notification(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A server-to-client notification (events)."""
    return {"jsonrpc": "2.0", "method": method, "params": params}


def encode(message: dict[str, Any]) -> str:
    """Compact JSON text for a frame."""
    return _ENCODER.encode(message)


def _invalid(request_id: RequestId, detail: str) -> FrameError:
    return FrameError(
        response=error_response(request_id, BridgeError(ErrorCode.INVALID_INPUT, detail), INVALID_REQUEST)
    )


def _usable_id(value: Any) -> bool:
    # Fractional ids are discouraged by the spec; bools are ints in Python but not in JSON.
    return isinstance(value, str | int) and not isinstance(value, bool)


def parse_frame(text: str) -> Request | Notification | FrameError:
    """Decode one WebSocket text frame into a call, or the error to answer with."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return FrameError(
            response=error_response(None, BridgeError(ErrorCode.INVALID_INPUT, "parse-error"), PARSE_ERROR)
        )
    if isinstance(message, list):
        return _invalid(None, "batch-unsupported")
    if not isinstance(message, dict):
        return _invalid(None, "not-an-object")
    raw_id = message.get("id")
    has_id = "id" in message
    if has_id and raw_id is not None and not _usable_id(raw_id):
        return _invalid(None, "bad-id")
    reply_id: RequestId = raw_id if has_id else None
    if message.get("jsonrpc") != "2.0":
        return _invalid(reply_id, "jsonrpc-version")
    method = message.get("method")
    if not isinstance(method, str) or len(method) > MAX_METHOD_LENGTH or not _METHOD_NAME.fullmatch(method):
        return _invalid(reply_id, "method")
    params = message.get("params", {})
    if isinstance(params, list):
        # Our methods take named parameters only; an empty array is the same as no parameters.
        if params:
            return FrameError(
                response=error_response(reply_id, BridgeError(ErrorCode.INVALID_PARAMS, "named-params-only"))
            )
        params = {}
    if not isinstance(params, dict):
        return _invalid(reply_id, "params")
    if not has_id:
        return Notification(method=method, params=params)
    if raw_id is None:
        # A null id is legal JSON-RPC but cannot be matched to its answer; refuse it clearly.
        return _invalid(None, "null-id")
    return Request(id=raw_id, method=method, params=params)
