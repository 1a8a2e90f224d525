"""Which OS user owns the other end of a loopback TCP connection (issue 13 point 2: same OS user only).

Linux: the client's socket is a local socket, listed in /proc/net/tcp or /proc/net/tcp6 with its
owner's uid; it is found by its address:port (the connection's remote end) and ours (its remote end).
macOS and Windows: not implemented (`UNSUPPORTED`): the owning process is found there with
`proc_pidfdinfo`/`sysctl` (macOS) or `GetExtendedTcpTable` (Windows), which this module does not call.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from typing import Final

__all__ = ["NOT_FOUND", "UNSUPPORTED", "peer_uid", "same_user_supported"]

#: No socket matched (the client already left, or it lives in another network namespace).
NOT_FOUND: Final = -1
#: This system has no implementation: the caller decides (the daemon accepts and warns once at start).
UNSUPPORTED: Final = -2

_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
# ::ffff:0:0/96 as the kernel prints it: three 32-bit words in host byte order.
_V4_MAPPED_PREFIX = "0000000000000000" + f"{struct.unpack('=I', bytes([0, 0, 0xFF, 0xFF]))[0]:08X}"


def same_user_supported() -> bool:
    """Whether `peer_uid` can answer on this system."""
    return sys.platform.startswith("linux")


def _hex_v4(address: ipaddress.IPv4Address, family6: bool) -> str:
    # The kernel prints each 32-bit word of the address in host byte order.
    word = f"{struct.unpack('=I', address.packed)[0]:08X}"
    if not family6:
        return word
    # An IPv4 client of a dual-stack socket appears in tcp6 as ::ffff:a.b.c.d.
    return _V4_MAPPED_PREFIX + word


def _hex(host: str, port: int, family6: bool) -> str | None:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None and not family6:
            address4: ipaddress.IPv4Address = address.ipv4_mapped
            return f"{_hex_v4(address4, False)}:{port:04X}"
        if not family6:
            return None
        words = struct.unpack("=4I", address.packed)
        return "".join(f"{w:08X}" for w in words) + f":{port:04X}"
    return f"{_hex_v4(address, family6)}:{port:04X}"


def peer_uid(sock: socket.socket) -> int:
    """The uid owning the other end of `sock` (a connection accepted on loopback), NOT_FOUND or UNSUPPORTED.

    Raises OSError when the tables cannot be read (e.g. no file descriptor left): callers refuse then.
    """
    if not same_user_supported():
        return UNSUPPORTED
    peer = sock.getpeername()
    ours = sock.getsockname()
    for path in _TABLES:
        family6 = path.endswith("6")
        theirs_hex, ours_hex = _hex(peer[0], peer[1], family6), _hex(ours[0], ours[1], family6)
        if theirs_hex is None or ours_hex is None:
            continue
        with open(path, "rb") as table:
            text = table.read()
        # Columns: sl, local_address, rem_address, st, queues, timer, retrnsmt, uid: the client's socket
        # has the peer address as its local one. A byte search, not a parse: this runs per connection.
        needle = f" {theirs_hex} {ours_hex} ".encode()
        at = text.find(needle)
        if at < 0:
            continue
        fields = text[at + len(needle) :].split(None, 5)
        return int(fields[4])
    return NOT_FOUND
