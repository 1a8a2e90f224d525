"""Who may talk to the bridge: Host, Origin and token decisions, as pure functions.

Policy (design §3, bridges.md §3.4-3.6):
- `Host` must name the loopback interface with our port (`127.0.0.1`, `localhost`, `[::1]`, trailing
  dot tolerated) or a host listed in the config; anything else is refused on every request, which
  defeats DNS rebinding (a rebound page is "same-origin" with itself and may send no Origin).
- A request with an `Origin` must carry a well-formed web origin (http/https, no path); `Origin: null`
  (sandboxed frames, file://, data:) is always refused. The bridge's own origins are the diagnostics
  page; any other web origin may connect but only gets methods after the person approves it.
- A request without `Origin` is a local program: it must present the per-user token
  (`Authorization: Bearer ...`). A token never lifts the Origin rule (a page cannot borrow it).
- Chrome's Private/Local Network Access preflights are answered for the public resources (SDK,
  OpenRPC); they are not an authorisation (Chrome says so too), the checks above are.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "LOOPBACK_NAMES",
    "Caller",
    "CallerKind",
    "Refusal",
    "check_host",
    "classify_caller",
    "cors_headers",
    "normalise_origin",
    "own_origins",
]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_MAX_ORIGIN = 255  # no legitimate origin is longer (Web eID uses the same bound)


class Refusal(enum.Enum):
    """Why a request is refused; the value is the symbolic detail sent back."""

    #: Host header missing or not a loopback name with our port (DNS rebinding).
    BAD_HOST = "bad-host"
    #: Origin header malformed, not http/https, or the opaque origin "null".
    BAD_ORIGIN = "bad-origin"
    #: No Origin and no valid Bearer token.
    BAD_TOKEN = "bad-token"


class CallerKind(enum.Enum):
    """Who is on the other end of an accepted connection."""

    #: The bridge's own diagnostics page (same origin as the bridge).
    OWN_PAGE = "own-page"
    #: A web page from another origin; needs an approval for anything but public methods.
    WEB = "web"
    #: A local program without Origin that presented the per-user token.
    LOCAL = "local"


@dataclass(frozen=True, kw_only=True)
class Caller:
    """An accepted caller; `origin` is the normalised web origin (None for local programs)."""

    kind: CallerKind
    origin: str | None


def _split_host(value: str) -> tuple[str, int | None] | None:
    value = value.strip().lower()
    if not value:
        return None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    else:
        name, sep, rest = value.partition(":")
        rest = sep + rest
    if rest:
        if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
            return None
        port: int | None = int(rest[1:])
    else:
        port = None
    return name.rstrip("."), port


def check_host(host: str | None, port: int, extra_hosts: Iterable[str] = ()) -> bool:
    """True when the Host header names this bridge on loopback (or a configured extra host)."""
    if host is None:
        return False
    parts = _split_host(host)
    if parts is None:
        return False
    name, given_port = parts
    allowed = set(LOOPBACK_NAMES) | {h.lower().rstrip(".") for h in extra_hosts}
    # Browsers always send the port when it is not 80/443; our port is never one of those by default.
    effective = given_port if given_port is not None else 80
    return name in allowed and effective == port


def normalise_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without default port, or None when not a usable web origin."""
    if len(value) > _MAX_ORIGIN or value.strip() != value or value == "null":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def own_origins(port: int) -> frozenset[str]:
    """The origins of pages served by the bridge itself."""
    return frozenset(f"http://{name}:{port}" for name in LOOPBACK_NAMES)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def classify_caller(
    headers: Mapping[str, str], *, port: int, token: str, extra_hosts: Iterable[str] = ()
) -> Caller | Refusal:
    """Decide who is calling from the request headers (HTTP request or WebSocket upgrade)."""
    if not check_host(headers.get("Host"), port, extra_hosts):
        return Refusal.BAD_HOST
    raw_origin = headers.get("Origin")
    if raw_origin is not None:
        origin = normalise_origin(raw_origin)
        if origin is None:
            return Refusal.BAD_ORIGIN
        kind = CallerKind.OWN_PAGE if origin in own_origins(port) else CallerKind.WEB
        return Caller(kind=kind, origin=origin)
    presented = _bearer(headers.get("Authorization"))
    # Constant-time compare: the token is the only secret a local attacker could probe for.
    if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
        return Refusal.BAD_TOKEN
    return Caller(kind=CallerKind.LOCAL, origin=None)


def cors_headers(request_headers: Mapping[str, str], *, preflight: bool) -> dict[str, str]:
    """CORS headers for the public resources (SDK, OpenRPC): readable from any page, PNA/LNA preflights answered."""
    out: dict[str, str] = {"Access-Control-Allow-Origin": "*", "Vary": "Origin"}
    if preflight:
        out["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        requested = request_headers.get("Access-Control-Request-Headers")
        if requested:
            out["Access-Control-Allow-Headers"] = requested
        out["Access-Control-Max-Age"] = "600"
        # Private Network Access (Chrome <= 141) and its Local Network Access successor: harmless to answer.
        if request_headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            out["Access-Control-Allow-Private-Network"] = "true"
        if request_headers.get("Access-Control-Request-Local-Network", "").lower() == "true":
            out["Access-Control-Allow-Local-Network"] = "true"
    return out
