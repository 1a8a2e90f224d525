"""The method registry: one handler class per JSON-RPC method, its schemas, and who may call it.

A handler declares `name`, `summary`, `scopes` (any one suffices), `params_schema` (JSON Schema,
draft 2020-12) and `result_schema`, and implements `call(ctx, params)`. The registry validates
params against the schema *before* the handler runs (so before any card or DMP access), and the
same schemas produce `/openrpc.json`. Tests swap handlers by building a `Registry` from their own dict.

Validation errors are reported as ``INVALID_PARAMS`` with a detail naming the field and the failed
keyword only (e.g. ``pin: pattern``): jsonschema's own messages echo values, and a value may be a PIN.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from bridge.errors import BridgeError, ErrorCode

if TYPE_CHECKING:
    from bridge.api.pairing import ApprovalStore, PairingManager
    from bridge.api.security import CallerKind
    from bridge.service.cards import CardService
    from bridge.service.readers import ReaderFeed

__all__ = [
    "MAX_STRING",
    "CallContext",
    "ConnectionView",
    "ErrorLog",
    "Handler",
    "Registry",
    "Scope",
    "Services",
    "object_schema",
    "unbounded",
]

#: Length given to a string member that declares none (maxLength, enum or const), so every string is bounded.
MAX_STRING = 1024


class Scope(enum.Enum):
    """Permission groups; a connection holds a set of them (see `connection.scopes_for`)."""

    #: Anyone past the Host/Origin checks: bridge.info, pairing.request.
    PUBLIC = "public"
    #: The bridge's own diagnostics page and local clients: read-only status.
    DIAGNOSTICS = "diagnostics"
    #: Approved web origins and local clients: cards and DMP.
    APP = "app"
    #: Local token-holding clients only (the CLI): approvals.
    ADMIN = "admin"


class ErrorLog(Protocol):
    """Recent errors for the diagnostics page (codes and method names only)."""

    def record(self, method: str, code: str) -> None:
        """Remember one error."""

    def recent(self) -> list[dict[str, str]]:
        """Newest last."""


class Services(Protocol):
    """What handlers may use; the Application provides it."""

    @property
    def version(self) -> str:
        """Bridge version."""

    @property
    def port(self) -> int:
        """Listening port."""

    @property
    def store(self) -> ApprovalStore:
        """Approved origins."""

    @property
    def pairing(self) -> PairingManager:
        """Pending pairing requests."""

    @property
    def readers(self) -> ReaderFeed:
        """Reader state and events."""

    @property
    def cards(self) -> CardService | None:
        """Card drivers, when wired."""

    @property
    def errors(self) -> ErrorLog:
        """Recent errors."""

    async def rotate_token(self, keep: ConnectionView) -> str:
        """Replace the local token; local connections other than `keep` are closed."""

    async def confirm_last_try(self, origin: str, reader: str) -> bool:
        """Ask the person at the workstation (tray) to let `origin` spend the card's last PIN try; bounded wait."""


class ConnectionView(Protocol):
    """What a handler may know about the calling connection."""

    @property
    def origin(self) -> str | None:
        """Normalised web origin, None for local clients."""

    def remember_pairing(self, request_id: str) -> None:
        """Note a pairing request made on this connection."""

    @property
    def kind(self) -> CallerKind:
        """Local program, web page or the bridge's own page."""

    @property
    def proven_key(self) -> str | None:
        """The public key (base64 SPKI) a web page proved on this connection."""

    def issue_challenge(self) -> bytes:
        """A fresh challenge for this connection."""

    def take_challenge(self) -> bytes | None:
        """The outstanding challenge, consumed."""

    def key_proven(self, key: str) -> None:
        """Record that this web connection proved `key`."""

    def prove_page(self, secret: str) -> bool:
        """The diagnostics page's served secret; True when it matches."""

    def approved(self) -> bool:
        """Whether this page has proven its key (or secret) and is approved."""


@dataclass(frozen=True, kw_only=True)
class CallContext:
    """Everything a handler call gets besides its params."""

    services: Services
    connection: ConnectionView


def _is_type(schema: Mapping[str, Any], name: str) -> bool:
    kind = schema.get("type")
    return kind == name or (isinstance(kind, list) and name in kind)


def _bounded_member(schema: Any) -> Any:
    # A string member without a bound gets MAX_STRING: the limit then shows in /openrpc.json too.
    if isinstance(schema, dict) and _is_type(schema, "string") and "maxLength" not in schema:
        return {**schema, "maxLength": MAX_STRING}
    return schema


def object_schema(properties: Mapping[str, Any] | None = None, required: Iterable[str] = ()) -> dict[str, Any]:
    """A closed JSON object schema (unknown members are refused: a typo must not be silently ignored)."""
    return {
        "type": "object",
        "properties": {name: _bounded_member(member) for name, member in (properties or {}).items()},
        "required": list(required),
        "additionalProperties": False,
    }


class Handler(abc.ABC):
    """One JSON-RPC method."""

    name: ClassVar[str]
    summary: ClassVar[str]
    scopes: ClassVar[frozenset[Scope]]
    params_schema: ClassVar[dict[str, Any]] = object_schema()
    result_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    #: Symbolic error codes this method may return (documented in OpenRPC).
    errors: ClassVar[tuple[ErrorCode, ...]] = ()
    #: True for methods that never wait (no card, no network): run in the reader loop without a task.
    inline: ClassVar[bool] = False

    @abc.abstractmethod
    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Run the method with validated params and return the JSON result."""


def _detail(error: Any) -> str:
    path = "/".join(str(p) for p in error.absolute_path) or "(params)"
    if error.validator == "additionalProperties":
        return f"{path}: unknown-member"
    if error.validator == "required":
        return f"{path}: missing-member"
    return f"{path}: {error.validator}"


def unbounded(schema: Any, path: str = "") -> list[str]:
    """Where a schema lets a string or array grow without limit, or asks for a uniqueness check (quadratic)."""
    if not isinstance(schema, dict):
        return []
    found: list[str] = []
    if _is_type(schema, "string") and "maxLength" not in schema:
        found.append(f"{path or '/'}: maxLength")
    if _is_type(schema, "array") and "maxItems" not in schema:
        found.append(f"{path or '/'}: maxItems")
    if "uniqueItems" in schema:
        found.append(f"{path or '/'}: uniqueItems")
    for name, member in schema.get("properties", {}).items():
        found += unbounded(member, f"{path}/{name}")
    if "items" in schema:
        found += unbounded(schema["items"], f"{path}/items")
    for key in ("anyOf", "oneOf", "allOf"):
        for i, member in enumerate(schema.get(key, [])):
            found += unbounded(member, f"{path}/{key}/{i}")
    return found


def check_sizes(schema: Mapping[str, Any], value: Any, path: str = "") -> None:
    """Refuse an over-long string or array before full validation, without looking inside it (linear, cheap)."""
    if isinstance(value, str):
        limit = schema.get("maxLength")
        if limit is not None and len(value) > limit:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"{path or '(params)'}: maxLength")
    elif isinstance(value, list):
        limit = schema.get("maxItems")
        if limit is not None and len(value) > limit:
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"{path or '(params)'}: maxItems")
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                check_sizes(items, item, f"{path}/{i}" if path else str(i))
    elif isinstance(value, dict):
        members = schema.get("properties", {})
        if schema.get("additionalProperties") is False and len(value) > len(members):
            # More members than the schema knows: at least one is unknown; no need to look at their values.
            raise BridgeError(ErrorCode.INVALID_PARAMS, f"{path or '(params)'}: unknown-member")
        for name, member in value.items():
            sub = members.get(name)
            if isinstance(sub, dict):
                check_sizes(sub, member, f"{path}/{name}" if path else name)


class Registry:
    """Method name -> handler, with compiled validators."""

    def __init__(self, handlers: Iterable[Handler]) -> None:
        self._handlers: dict[str, Handler] = {}
        self._validators: dict[str, Draft202012Validator] = {}
        self._empty_ok: set[str] = set()
        for handler in handlers:
            # The schemas are code, not input: that they are valid Draft 2020-12 is checked by the test suite
            # (tests/unit/test_api_docs.py), not at each start-up, where it cost most of the registry's time.
            # Bounded work per frame: a method whose schema lets a frame cost more than linear time is a bug.
            loose = unbounded(handler.params_schema) + unbounded(handler.result_schema)
            if loose:
                raise ValueError(f"{handler.name}: unbounded schema at {', '.join(loose)}")
            self._handlers[handler.name] = handler
            validator = Draft202012Validator(handler.params_schema)
            self._validators[handler.name] = validator
            if validator.is_valid({}):
                self._empty_ok.add(handler.name)  # the common no-params call skips the validator

    def get(self, name: str) -> Handler | None:
        """The handler for `name`, if any."""
        return self._handlers.get(name)

    def __iter__(self) -> Any:
        return iter(sorted(self._handlers.values(), key=lambda h: h.name))

    def validate(self, name: str, params: dict[str, Any]) -> None:
        """Raise INVALID_PARAMS when `params` do not match the method's schema."""
        if not params and name in self._empty_ok:
            return
        schema = self._handlers[name].params_schema
        check_sizes(schema, params)
        error = best_match(self._validators[name].iter_errors(params))
        if error is not None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, _detail(error))
