"""Sans-IO JSON-RPC framing: frames in, calls or exact error objects out."""

from __future__ import annotations

import json

import pytest

from bridge.api import jsonrpc
from bridge.api.jsonrpc import FrameError, Notification, Request, parse_frame
from bridge.errors import BridgeError, ErrorCode


def test_request_with_named_params() -> None:
    call = parse_frame('{"jsonrpc":"2.0","id":7,"method":"readers.list","params":{"a":1}}')
    assert call == Request(id=7, method="readers.list", params={"a": 1})


def test_string_id_and_missing_params() -> None:
    assert parse_frame('{"jsonrpc":"2.0","id":"x","method":"bridge.info"}') == Request(
        id="x", method="bridge.info", params={}
    )


def test_notification_has_no_id() -> None:
    assert parse_frame('{"jsonrpc":"2.0","method":"m"}') == Notification(method="m", params={})


def test_empty_positional_params_equal_none() -> None:
    assert parse_frame('{"jsonrpc":"2.0","id":1,"method":"m","params":[]}') == Request(id=1, method="m", params={})


@pytest.mark.parametrize(
    ("frame", "numeric", "code", "detail", "reply_id"),
    [
        ("{not json", -32700, "INVALID_INPUT", "parse-error", None),
        ("[1]", -32600, "INVALID_INPUT", "batch-unsupported", None),
        ('[{"jsonrpc":"2.0","id":1,"method":"m"}]', -32600, "INVALID_INPUT", "batch-unsupported", None),
        ("42", -32600, "INVALID_INPUT", "not-an-object", None),
        ('{"id":1,"method":"m"}', -32600, "INVALID_INPUT", "jsonrpc-version", 1),
        ('{"jsonrpc":"1.0","id":1,"method":"m"}', -32600, "INVALID_INPUT", "jsonrpc-version", 1),
        ('{"jsonrpc":"2.0","id":1}', -32600, "INVALID_INPUT", "method", 1),
        ('{"jsonrpc":"2.0","id":1,"method":""}', -32600, "INVALID_INPUT", "method", 1),
        ('{"jsonrpc":"2.0","id":true,"method":"m"}', -32600, "INVALID_INPUT", "bad-id", None),
        ('{"jsonrpc":"2.0","id":{},"method":"m"}', -32600, "INVALID_INPUT", "bad-id", None),
        ('{"jsonrpc":"2.0","id":null,"method":"m"}', -32600, "INVALID_INPUT", "null-id", None),
        ('{"jsonrpc":"2.0","id":3,"method":"m","params":"x"}', -32600, "INVALID_INPUT", "params", 3),
        ('{"jsonrpc":"2.0","id":3,"method":"m","params":[1]}', -32602, "INVALID_PARAMS", "named-params-only", 3),
    ],
)
def test_refused_frames(frame: str, numeric: int, code: str, detail: str, reply_id: object) -> None:
    result = parse_frame(frame)
    assert isinstance(result, FrameError)
    response = result.response
    assert response["jsonrpc"] == "2.0"
    assert response["id"] == reply_id
    assert response["error"]["code"] == numeric
    assert response["error"]["data"]["code"] == code
    assert response["error"]["data"]["detail"] == detail
    assert response["error"]["data"]["message_fr"] and response["error"]["data"]["message_en"]


def test_deeply_nested_json_is_a_parse_error_not_a_crash() -> None:
    result = parse_frame("[" * 100_000 + "]" * 100_000)
    assert isinstance(result, FrameError)


def test_error_response_numeric_codes() -> None:
    assert jsonrpc.error_response(1, BridgeError(ErrorCode.INVALID_PARAMS))["error"]["code"] == -32602
    assert jsonrpc.error_response(1, BridgeError(ErrorCode.ORIGIN_NOT_APPROVED))["error"]["code"] == -32001
    assert jsonrpc.error_response(1, BridgeError(ErrorCode.CARD_BUSY))["error"]["code"] == -32000
    assert jsonrpc.error_response(1, BridgeError(ErrorCode.INTERNAL))["error"]["code"] == -32603


def test_error_data_is_bridge_error_data_only() -> None:
    response = jsonrpc.error_response(5, BridgeError(ErrorCode.PIN_INCORRECT, triesLeft=2))
    assert response["error"]["data"] == {
        "code": "PIN_INCORRECT",
        "message_fr": "Code porteur incorrect.",
        "message_en": "Incorrect PIN.",
        "hint_fr": "Vérifiez le code porteur avant de le ressaisir : 2 essai(s) restant(s).",
        "hint_en": "Check the PIN before typing it again: 2 try(ies) left.",
        "triesLeft": 2,
    }


def test_encode_roundtrip() -> None:
    message = jsonrpc.notification("card.inserted", {"reader": "R é", "atr": "3B"})
    assert json.loads(jsonrpc.encode(message)) == message
    assert jsonrpc.result_response(1, {"ok": True}) == {"jsonrpc": "2.0", "id": 1, "result": {"ok": True}}
