"""Transport rules between a command and the bytes on the wire, with no I/O.

`transceive` turns one logical command into the exchanges a card needs and folds the answers back:
- 61xx: more data is waiting; fetch it with GET RESPONSE (Le=xx) until the card says 9000 (T=0);
- 6Cxx: wrong Le; send the same command again with Le=xx;
- command chaining (ISO 7816-4 §5.1.1, CLA bit 0x10) for data over 255 bytes when the card has no
  extended length: the caller builds one logical `Command(..., extended=True)` and the transport decides.
`send` is the only I/O: a function from command bytes to response bytes, given by the PC/SC layer
(or wired straight to a virtual card in tests).
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.pcsc.apdu import Command, Response

__all__ = ["MAX_GET_RESPONSE_ROUNDS", "TransportError", "transceive"]

Send = Callable[[bytes], bytes]

MAX_GET_RESPONSE_ROUNDS = 256  # a card that keeps answering 61xx is broken; stop rather than loop
_CHAIN_BIT = 0x10
_SHORT_LC = 255


class TransportError(Exception):
    """The card broke the transport rules (e.g. endless 61xx); a remote protocol error."""


def _exchange(command: Command, send: Send) -> Response:
    """One command, with the 6Cxx re-send and the 61xx GET RESPONSE loop."""
    response = Response.parse(send(command.to_bytes()))
    if response.sw.sw1 == 0x6C:
        response = Response.parse(send(command.with_le(response.sw.sw2 or 256).to_bytes()))
    data = bytearray(response.data)
    rounds = 0
    while response.sw.sw1 == 0x61:
        rounds += 1
        if rounds > MAX_GET_RESPONSE_ROUNDS:
            raise TransportError("card keeps answering 61xx")
        get_response = Command(command.cla & 0x03, 0xC0, 0x00, 0x00, le=response.sw.sw2 or 256)
        response = Response.parse(send(get_response.to_bytes()))
        if response.sw.sw1 == 0x6C:
            response = Response.parse(send(get_response.with_le(response.sw.sw2 or 256).to_bytes()))
        data += response.data
    return Response(bytes(data), response.sw)


def transceive(command: Command, send: Send, *, extended_length: bool = False) -> Response:
    """Send `command` through `send`; the only I/O is `send`.

    A command that needs extended length (`command.extended`, e.g. data over 255 bytes) goes as it is to
    a card that takes extended length; otherwise it is re-expressed as short APDUs: command chaining
    for the data, Le capped at 256 (the rest comes back through 61xx).
    """
    if extended_length or not command.extended:
        return _exchange(command, send)
    le = None if command.le is None else min(command.le or 256, 256)
    if len(command.data) <= _SHORT_LC:
        return _exchange(Command(command.cla, command.ins, command.p1, command.p2, command.data, le), send)
    chunks = [command.data[i : i + _SHORT_LC] for i in range(0, len(command.data), _SHORT_LC)]
    for chunk in chunks[:-1]:
        part = Command(command.cla | _CHAIN_BIT, command.ins, command.p1, command.p2, chunk)
        response = _exchange(part, send)
        if not response.sw.ok:
            return response  # the card refused a link of the chain: report it as the answer
    last = Command(command.cla, command.ins, command.p1, command.p2, chunks[-1], le)
    return _exchange(last, send)
