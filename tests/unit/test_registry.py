"""Method registry: schema validation before the handler, safe details, OpenRPC from the same schemas."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from jsonschema import Draft202012Validator

from bridge.api.handlers_cards import card_handlers
from bridge.api.handlers_core import core_handlers
from bridge.api.methods import CallContext, Handler, Registry, Scope, object_schema
from bridge.api.openrpc import openrpc_document
from bridge.errors import BridgeError, ErrorCode
from bridge.service.cards import CardLocks


def _registry() -> Registry:
    return Registry([*core_handlers(), *card_handlers(CardLocks())])


@pytest.mark.parametrize(
    ("method", "params", "detail"),
    [
        ("cps.login", {}, "(params): missing-member"),
        ("cps.login", {"pin": "12ab"}, "pin: pattern"),
        ("cps.login", {"pin": "1234", "pni": 1}, "(params): unknown-member"),
        ("cps.login", {"pin": 1234}, "pin: type"),
        ("cps.sign", {"data": "AAAA", "digestAlgorithm": "MD5"}, "digestAlgorithm: enum"),
        ("origins.approve", {"code": "12345"}, "code: pattern"),
        ("bridge.info", {"x": 1}, "(params): unknown-member"),
    ],
)
def test_invalid_params_detail_names_field_not_value(method: str, params: dict[str, Any], detail: str) -> None:
    with pytest.raises(BridgeError) as info:
        _registry().validate(method, params)
    assert info.value.code is ErrorCode.INVALID_PARAMS
    assert info.value.detail == detail
    assert "12ab" not in str(info.value.to_data())


def test_valid_params_pass() -> None:
    registry = _registry()
    registry.validate("cps.login", {"pin": "1234", "allowLastTry": True, "reader": "R"})
    registry.validate("readers.list", {})


def test_openrpc_lists_every_method_with_its_schema() -> None:
    registry = _registry()
    doc = openrpc_document(registry, "0.1.0", 28442)
    names = [m["name"] for m in doc["methods"]]
    assert names == sorted(h.name for h in registry)
    for expected in (
        "bridge.info",
        "pairing.request",
        "readers.list",
        "cps.read",
        "cps.login",
        "cps.sign",
        "vitale.read",
    ):
        assert expected in names
    login = next(m for m in doc["methods"] if m["name"] == "cps.login")
    pin = next(p for p in login["params"] if p["name"] == "pin")
    assert pin["required"] and pin["schema"]["pattern"] == "^[0-9]{4,8}$"
    assert {e["data"]["code"] for e in login["errors"]} >= {"INVALID_PARAMS", "PIN_INCORRECT", "CARD_BUSY"}
    for method in doc["methods"]:
        Draft202012Validator.check_schema(method["result"]["schema"])
    assert {n["name"] for n in doc["x-notifications"]} >= {"readers.changed", "card.inserted", "card.removed"}


def test_registry_can_be_swapped() -> None:
    class Echo(Handler):
        name = "test.echo"
        summary = "echo"
        scopes: ClassVar[frozenset[Scope]] = frozenset({Scope.PUBLIC})
        params_schema: ClassVar[dict[str, Any]] = object_schema({"x": {"type": "integer"}}, ["x"])

        async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
            return params["x"]

    registry = Registry([Echo()])
    assert registry.get("test.echo") is not None
    assert registry.get("bridge.info") is None
    registry.validate("test.echo", {"x": 1})
