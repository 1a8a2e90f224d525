"""Connection-level defences below HTTP: same OS user only, a deadline per plain HTTP connection, fd exhaustion.

Everything here runs when the TCP connection is accepted, before aiohttp parses a byte:

* Same OS user only (issue 13 point 2): the peer socket's owner (`bridge.api.peer`) must be the
  daemon's user, else the connection is aborted. Unsupported systems (macOS, Windows) accept, as
  before, and the daemon says so once at start.
* Deadline (point 5): a connection that is not a WebSocket must have sent its request and had its
  answer within `http_deadline` seconds (headers, body and keep-alive idling included); the WebSocket
  handler lifts it once the upgrade is accepted (its heartbeat takes over). Slowloris sockets die.
* Out of file descriptors (point 5): asyncio reports a failed accept with a traceback, once a second per
  listener; instead the backlog is drained with a reserve descriptor and each waiting client closed at
  once (a refusal, not a hang), and one line is logged per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from bridge.api.peer import NOT_FOUND, UNSUPPORTED, peer_uid, same_user_supported
from bridge.logs import LogThrottle

__all__ = ["HTTP_DEADLINE", "ConnectionGuard", "GuardedRunner", "lift_deadline"]

log = logging.getLogger(__name__)
_throttled = LogThrottle(log)

#: Seconds a plain HTTP connection may live: the pages and the SDK are a few KB on loopback.
HTTP_DEADLINE = 10.0
_ACCEPT_OUT_OF_RESOURCES = "socket.accept() out of system resource"
_SHED_MAX = 1024  # waiting clients closed per failed accept: the backlog is smaller anyway


class ConnectionGuard:
    """The checks made on each accepted connection, and the loop's accept-failure handling."""

    def __init__(self, *, same_user_only: bool = True, http_deadline: float = HTTP_DEADLINE) -> None:
        self.same_user_only = same_user_only
        self.http_deadline = http_deadline
        self.uid = os.geteuid() if hasattr(os, "geteuid") else None
        self._reserve: int | None = None
        self._previous_handler: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- same OS user -----------------------------------------------------------------------------

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        """Whether the peer of `transport` may talk to the daemon (logs refusals once per interval)."""
        if not self.same_user_only or self.uid is None:
            return True
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            owner = peer_uid(sock)
        except OSError as exc:
            # Out of descriptors or /proc unreadable: refuse rather than guess.
            _throttled.log(logging.WARNING, "peer-unknown", "refused connection: owner unknown (%s)", exc.strerror)
            return False
        if owner == UNSUPPORTED:
            return True
        if owner != self.uid:
            reason = "peer-not-found" if owner == NOT_FOUND else "other-user"
            _throttled.log(logging.WARNING, reason, "refused connection from another OS user (uid %s)", owner)
            return False
        return True

    # -- file descriptors -------------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Keep a reserve descriptor and take over the loop's accept-failure reports."""
        if not same_user_supported() and self.same_user_only:
            log.warning(
                "contrôle « même utilisateur » non disponible sur ce système : tout utilisateur local peut se"
                " connecter / same-OS-user check unsupported here: any local user can connect"
            )
        self._reserve = os.open(os.devnull, os.O_RDONLY)
        self._loop = loop
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_error)

    def uninstall(self) -> None:
        """Give the loop its handler back and release the reserve."""
        if self._loop is not None:
            self._loop.set_exception_handler(self._previous_handler)
            self._loop = None
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        listener = context.get("socket")
        if context.get("message") == _ACCEPT_OUT_OF_RESOURCES and listener is not None:
            refused = self._shed(listener.fileno())
            _throttled.log(
                logging.WARNING,
                "fd-exhausted",
                "plus de descripteurs de fichiers : nouvelles connexions refusées (%d) / out of file descriptors:"
                " refusing new connections",
                refused,
            )
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    def _shed(self, fd: int) -> int:
        """Close the clients waiting on listener `fd`, using the reserve descriptor; how many."""
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None
        refused = 0
        listener = socket.socket(fileno=fd)  # the loop's own socket: detached below, never closed here
        try:
            while refused < _SHED_MAX:
                try:
                    client, _ = listener.accept()
                except OSError:
                    break  # drained (EAGAIN), or still out of descriptors
                client.close()
                refused += 1
        finally:
            listener.detach()
            with contextlib.suppress(OSError):
                self._reserve = os.open(os.devnull, os.O_RDONLY)
        return refused


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler with the guard's checks at accept time and the plain-HTTP deadline."""

    __slots__ = ("_deadline",)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse another user's connection before any HTTP processing; else arm the deadline."""
        self._deadline: asyncio.TimerHandle | None = None
        manager = self._manager
        assert isinstance(manager, _GuardedServer)
        guard = manager.bridge_guard
        if not guard.admit(transport):
            cast(asyncio.Transport, transport).abort()  # RST: the descriptor is freed at once
            return
        super().connection_made(transport)
        self._deadline = self._loop.call_later(guard.http_deadline, self._deadline_passed)

    def _deadline_passed(self) -> None:
        self._deadline = None
        _throttled.log(logging.WARNING, "http-deadline", "closed a slow HTTP connection (deadline)")
        if self.transport is not None:
            self.transport.abort()

    def lift_deadline(self) -> None:
        """The connection became a WebSocket: its heartbeat bounds it from now on."""
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def connection_lost(self, exc: BaseException | None) -> None:
        """Cancel the deadline too."""
        self.lift_deadline()
        super().connection_lost(exc)


class _GuardedServer(Server):
    """aiohttp's protocol factory, building `_GuardedHandler`s."""

    bridge_guard: ConnectionGuard

    def __call__(self) -> RequestHandler:
        """A guarded handler with the server's handler options."""
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose connections go through `guard`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.guard = guard

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside Application; its class is swapped, not its state.
        server.__class__ = _GuardedServer
        assert isinstance(server, _GuardedServer)
        server.bridge_guard = self.guard
        return server


def lift_deadline(request: web.Request) -> None:
    """Lift the plain-HTTP deadline of `request`'s connection (it is becoming a WebSocket)."""
    protocol = request.protocol
    if isinstance(protocol, _GuardedHandler):
        protocol.lift_deadline()
