"""One WebSocket connection: who it is, what it may call, its outgoing queue, its running calls.

- A web page holds nothing beyond the public methods until it proves, on this connection, the key its
  origin was paired with (`pairing.challenge` then `pairing.prove`; bridge.api.key_proof); the
  diagnostics page proves the secret it was served with. A forged `Origin` alone gets nothing.
- Scopes are computed on every call and every event from the store, so an approval or a revocation
  takes effect on open connections immediately.
- At most `max_in_flight` calls run at once per connection; further frames wait (the reader stops
  reading, so TCP pushes back on the client) rather than being refused. Handlers marked `inline`
  (status reads that never wait) run directly in the reader loop.
- Everything sent goes through `outbox`, in order, by one sender at a time, so frames never interleave.
  The writer task is woken for events and task results; an inline call's response is sent by the
  reader loop itself right after the call (a task wake-up per status call would cost more than the call).
  Events are dropped (and counted) when a client does not read; responses never are.
- `close()` cancels all running calls: a page that goes away does not keep a card busy (its lock is
  released, its queued card operations never start, a running one sends no further APDU).
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
from collections import deque
from typing import Any

from bridge.api import jsonrpc
from bridge.api.key_proof import new_challenge
from bridge.api.methods import CallContext, Registry, Scope, Services
from bridge.api.security import Caller, CallerKind
from bridge.errors import BridgeError, ErrorCode, to_bridge_error
from bridge.logs import LogThrottle
from bridge.pcsc.abandon import caller_scope
from bridge.service.cps_login_owner import LOCAL_CALLER, acting_caller

__all__ = ["LARGE_FRAME", "MAX_QUEUED", "Connection", "FrameBudget", "Outbox", "scopes_for"]

log = logging.getLogger(__name__)
# A client looping on bad calls must not write one line per call.
_call_errors = LogThrottle(log)

MAX_QUEUED = 1000  # frames waiting for a slow client before events are dropped
#: From this size a frame is decoded off the event loop and counted in the daemon-wide budget.
LARGE_FRAME = 64 * 1024


class FrameBudget:
    """Characters of large frames being decoded or run, daemon-wide: many big frames at once are refused, not held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> bool:
        """Reserve `size`; False when the budget cannot hold it."""
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def give(self, size: int) -> None:
        """Return a reservation."""
        self.used -= size


_ids = itertools.count(1)


# Immutable, so built once rather than on every call.
_LOCAL_SCOPES = frozenset(Scope)
_OWN_PAGE_SCOPES = frozenset({Scope.PUBLIC, Scope.DIAGNOSTICS})
_APPROVED_SCOPES = frozenset({Scope.PUBLIC, Scope.APP})
_PUBLIC_SCOPES = frozenset({Scope.PUBLIC})
_EVENT_SCOPES = frozenset({Scope.APP, Scope.DIAGNOSTICS})


def scopes_for(caller: Caller, approved: bool) -> frozenset[Scope]:
    """The scopes a caller holds now (`approved`: a page's key or the diagnostics page's secret proven)."""
    if caller.kind is CallerKind.LOCAL:
        return _LOCAL_SCOPES
    if not approved:
        return _PUBLIC_SCOPES
    return _OWN_PAGE_SCOPES if caller.kind is CallerKind.OWN_PAGE else _APPROVED_SCOPES


class Outbox:
    """Encoded frames waiting to be sent, in order; `sending` marks the one coroutine writing them."""

    def __init__(self) -> None:
        self._frames: deque[str] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        #: True while a coroutine is in `ws.send_str`: any other sender leaves the frames to it.
        self.sending = False

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, text: str, *, wake: bool = True) -> None:
        """Queue a frame; `wake=False` when the reader loop will send it itself right after."""
        self._frames.append(text)
        if wake:
            self._ready.set()

    def pop(self) -> str | None:
        """The next frame, or None when empty."""
        return self._frames.popleft() if self._frames else None

    def close(self) -> None:
        """Stop the writer once it has nothing in hand."""
        self.closed = True
        self._ready.set()

    async def wait(self) -> None:
        """Until a frame was put with `wake` (or the outbox closed)."""
        await self._ready.wait()
        self._ready.clear()


class Connection:
    """Per-connection state and the dispatch of its calls."""

    def __init__(
        self,
        caller: Caller,
        services: Services,
        registry: Registry,
        *,
        max_in_flight: int,
        budget: FrameBudget | None = None,
        page_secret: str | None = None,
    ) -> None:
        self.id = next(_ids)
        self.caller = caller
        self.services = services
        self.registry = registry
        self.outbox = Outbox()
        self.dropped_events = 0
        self._inline = False  # an inline call is running in the reader loop
        self._context = CallContext(services=services, connection=self)  # immutable: one per connection
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pairings: set[str] = set()
        self._closed = False
        self._budget = budget if budget is not None else FrameBudget(1 << 62)
        self._page_secret = page_secret
        self._challenge: bytes | None = None
        #: The public key (base64 SPKI) this web connection proved; approvals are looked up for it.
        self.proven_key: str | None = None
        self._page_proven = False

    @property
    def origin(self) -> str | None:
        """Normalised web origin, None for local clients."""
        return self.caller.origin

    def remember_pairing(self, request_id: str) -> None:
        """Note a pairing request made here."""
        self._pairings.add(request_id)

    @property
    def identity(self) -> str:
        """Who owns what this connection does with a card's login: its web origin, or `local` (token)."""
        if self.caller.kind is CallerKind.LOCAL or self.caller.origin is None:
            return LOCAL_CALLER
        return self.caller.origin

    @property
    def kind(self) -> CallerKind:
        """Local program, web page or the bridge's own page."""
        return self.caller.kind

    def issue_challenge(self) -> bytes:
        """A fresh challenge for this connection (replacing any earlier one)."""
        self._challenge = new_challenge()
        return self._challenge

    def take_challenge(self) -> bytes | None:
        """The outstanding challenge, consumed: each one answers a single proof."""
        challenge, self._challenge = self._challenge, None
        return challenge

    def key_proven(self, key: str) -> None:
        """This web connection proved it holds `key`."""
        self.proven_key = key

    def prove_page(self, secret: str) -> bool:
        """The diagnostics page presents the secret it was served with; True when it matches."""
        ok = (
            self.caller.kind is CallerKind.OWN_PAGE
            and self._page_secret is not None
            and hmac.compare_digest(secret.encode(), self._page_secret.encode())
        )
        self._page_proven = self._page_proven or ok
        return ok

    def approved(self) -> bool:
        """Whether this web page (or the diagnostics page) has proven what it must, and is approved."""
        if self.caller.kind is CallerKind.OWN_PAGE:
            return self._page_proven
        origin = self.caller.origin
        return (
            self.caller.kind is CallerKind.WEB
            and origin is not None
            and self.services.store.is_approved(origin, self.proven_key)
        )

    def scopes(self) -> frozenset[Scope]:
        """Scopes held right now."""
        return scopes_for(self.caller, self.approved())

    def receives_events(self) -> bool:
        """Card/reader events go only to approved web origins, the diagnostics page and local clients."""
        return bool(self.scopes() & _EVENT_SCOPES)

    def send(self, message: dict[str, Any]) -> None:
        """Queue a response (always delivered while open)."""
        if not self._closed:
            self.outbox.put(jsonrpc.encode(message), wake=not self._inline)

    def offer_event(self, text: str) -> None:
        """Queue an encoded event unless the client is too far behind."""
        if self._closed:
            return
        if len(self.outbox) >= MAX_QUEUED:
            self.dropped_events += 1
            return
        self.outbox.put(text)

    async def handle_text(self, text: str) -> None:
        """Parse a frame and start its call (waiting for a free in-flight slot first).

        An inline call's answer is queued without waking the writer: the caller flushes the outbox next.
        """
        held = len(text) if len(text) >= LARGE_FRAME else 0
        if held and not self._budget.take(held):
            error = BridgeError(ErrorCode.INVALID_INPUT, "server-busy")
            self.services.errors.record("-", error.code.value)
            self.send(jsonrpc.error_response(None, error, jsonrpc.INVALID_REQUEST))
            return
        started = False
        try:
            # A large frame (a document: ~0.1 s for 20 MB) is decoded off the loop, so other clients keep flowing.
            call = jsonrpc.parse_frame(text) if not held else await asyncio.to_thread(jsonrpc.parse_frame, text)
            if isinstance(call, jsonrpc.FrameError):
                data = call.response["error"]["data"]
                self.services.errors.record("-", data["code"])
                self.send(call.response)
                return
            await self._slots.acquire()
            started = True
        finally:
            if held and not started:
                self._budget.give(held)
        handler = self.registry.get(call.method)
        if handler is not None and handler.inline:
            # Never suspends: no task, no extra loop turn; the reader loop sends the response next.
            self._inline = True
            try:
                await self._run(call, held)
            finally:
                self._inline = False
            return
        task = asyncio.create_task(self._run(call, held), name=f"ws{self.id}:{call.method}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: jsonrpc.Request | jsonrpc.Notification, held: int = 0) -> None:
        try:
            # Cancelled by close(): the call's card work stops at its current APDU (bridge.pcsc.abandon).
            with caller_scope(), acting_caller(self.identity):
                result = await self.execute(call.method, call.params)
            if isinstance(call, jsonrpc.Request):
                self.send(jsonrpc.result_response(call.id, result))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The one place a call's failure is mapped and logged (to_bridge_error logs the unexpected).
            error = to_bridge_error(exc)
            self.services.errors.record(call.method, error.code.value)
            _call_errors.log(logging.INFO, error.code.value, "ws%d %s -> %s", self.id, call.method, error.code.value)
            if isinstance(call, jsonrpc.Request):
                numeric = jsonrpc.METHOD_NOT_FOUND if error.detail == "method-not-found" else None
                self.send(jsonrpc.error_response(call.id, error, numeric))
        finally:
            self._slots.release()
            if held:
                self._budget.give(held)

    async def execute(self, method: str, params: dict[str, Any]) -> Any:
        """Check access and params, then run the handler."""
        handler = self.registry.get(method)
        if handler is None:
            raise BridgeError(ErrorCode.NOT_FOUND, "method-not-found")
        if not handler.scopes & self.scopes():
            kind = self.caller.kind
            if kind is CallerKind.WEB or (kind is CallerKind.OWN_PAGE and not self._page_proven):
                raise BridgeError(ErrorCode.ORIGIN_NOT_APPROVED)
            raise BridgeError(ErrorCode.UNAUTHORIZED, "scope")
        self.registry.validate(method, params)
        return await handler.call(self._context, params)

    def pairing_decided(self, request_id: str, origin: str, approved: bool) -> None:
        """Tell this connection about a decision on its origin's pairing."""
        if self.caller.kind is not CallerKind.WEB or self.caller.origin != origin:
            return
        method = "pairing.approved" if approved else "pairing.denied"
        # Other tabs holding the same key learn of an approval too; a denial only reaches the requester.
        if request_id in self._pairings or (approved and self.approved()):
            self.send(jsonrpc.notification(method, {"requestId": request_id, "origin": origin}))

    async def close(self) -> None:
        """Cancel running calls and stop the writer."""
        self._closed = True
        # Its pairing requests die with it: a flood of held-then-dropped requests cannot lock others out.
        self.services.pairing.release(self)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.outbox.close()
