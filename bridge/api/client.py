"""A minimal local client of the daemon (CLI, tests, benchmarks): token auth, no Origin header."""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp

from bridge.errors import BridgeError, ErrorCode

__all__ = ["DaemonNotRunning", "LocalClient", "call_daemon"]

#: error.data keys BridgeError rebuilds itself (the rest are its extras).
_OWN_KEYS = frozenset({"code", "detail", "message_fr", "message_en", "hint_fr", "hint_en"})


class DaemonNotRunning(ConnectionError):
    """Nothing answers on the bridge port."""


class LocalClient:
    """One WebSocket to the daemon; `call` sends a request and waits for its response, queueing notifications."""

    def __init__(self, port: int, token: str, host: str = "127.0.0.1") -> None:
        self.url = f"ws://{host}:{port}/ws"
        self.token = token
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.notifications: list[dict[str, Any]] = []

    async def __aenter__(self) -> LocalClient:
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(
                self.url, headers={"Authorization": f"Bearer {self.token}"}, max_msg_size=0
            )
        except aiohttp.ClientConnectorError:
            await self._session.close()
            raise DaemonNotRunning(self.url) from None
        except aiohttp.WSServerHandshakeError as exc:
            await self._session.close()
            if exc.status == 401:
                # The daemon holds another token (rotated, or the file replaced by hand): say so, no traceback.
                raise BridgeError(ErrorCode.UNAUTHORIZED, "token-mismatch") from None
            raise BridgeError(ErrorCode.UNAUTHORIZED, f"http-{exc.status}") from None
        except BaseException:
            await self._session.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call `method`; a JSON-RPC error is raised as BridgeError with its symbolic code."""
        assert self._ws is not None
        request_id = next(self._ids)
        await self._ws.send_str(
            json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        )
        while True:
            message = json.loads(await self._ws.receive_str())
            if "id" not in message:
                self.notifications.append(message)
                continue
            if message["id"] != request_id:
                continue
            if "error" in message:
                data = message["error"].get("data", {})
                extra = {k: v for k, v in data.items() if k not in _OWN_KEYS}
                raise BridgeError(ErrorCode(data.get("code", "INTERNAL")), data.get("detail"), **extra)
            return message["result"]


async def call_daemon(port: int, token: str, method: str, params: dict[str, Any] | None = None) -> Any:
    """One call on a fresh connection."""
    async with LocalClient(port, token) as client:
        return await client.call(method, params)
