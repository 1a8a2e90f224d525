"""TLS sessions kept for resumption: `TlsSessionCache`, one per client, keyed by endpoint and client certificate.

A resumed handshake needs no card signature; a session is offered only within its age limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bridge.crypto.tls_endpoint import TlsEndpoint

__all__ = ["TlsSessionCache"]


class TlsSessionCache:
    """TLS sessions to resume, one per (endpoint, client certificate); owned by one client, not global.

    The client certificate is part of the key, so a session authenticated by one card is never
    resumed for another. Call `clear()` when the card is removed or the user logs out: a resumed
    session needs no card, so keeping it would let calls go on without the card.
    """

    def __init__(self, max_age: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[_CacheKey, tuple[Any, tuple[x509.Certificate, ...], float]] = {}
        #: Seconds a session is offered after its full handshake (tickets also expire by their own
        #: lifetime hint, which tlslite checks); a server keeps sessions for a while only.
        self.max_age = max_age
        self._clock = clock

    def get(self, endpoint: TlsEndpoint) -> tuple[Any, tuple[x509.Certificate, ...]] | None:
        """The stored (tlslite Session, validated server chain) for this endpoint, if still resumable."""
        key = _cache_key(endpoint)
        with self._lock:
            entry = self._sessions.get(key)
            if entry is not None and self._clock() - entry[2] > self.max_age:
                del self._sessions[key]
                entry = None
        if entry is None or not entry[0].valid():
            return None
        return entry[0], entry[1]

    def put(self, endpoint: TlsEndpoint, session: Any, chain: tuple[x509.Certificate, ...]) -> None:
        """Remember a session after a successful handshake (a resumed one keeps its original age)."""
        key = _cache_key(endpoint)
        with self._lock:
            old = self._sessions.get(key)
            born = old[2] if old is not None and old[0] is session else self._clock()
            self._sessions[key] = (session, chain, born)

    def forget(self, endpoint: TlsEndpoint) -> None:
        """Drop the session of one endpoint and identity."""
        with self._lock:
            self._sessions.pop(_cache_key(endpoint), None)

    def clear(self) -> None:
        """Drop every session (card removed, logout)."""
        with self._lock:
            self._sessions.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


_CacheKey = tuple[str, int, str, bytes | None]


def _cache_key(endpoint: TlsEndpoint) -> _CacheKey:
    identity = endpoint.identity
    fingerprint = identity.chain[0].fingerprint(hashes.SHA256()) if identity else None
    return (endpoint.host, endpoint.port, endpoint.expected_name, fingerprint)
