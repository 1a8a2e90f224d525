"""T=0 transport rules, bytes in and bytes out: each case is (command, card script, result).

A card script is the exact list of (APDU sent, card answer) in hex; the scripted card fails the test
on any APDU that differs from the script, and on an exchange left unused.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bridge.pcsc.apdu import Command, Response, StatusWord
from bridge.pcsc.t0 import MAX_GET_RESPONSE_ROUNDS, TransportError, transceive

Script = list[tuple[str, str]]


class ScriptedCard:
    """A `send` function that plays a script and checks every APDU byte for byte."""

    def __init__(self, script: Script) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        index = len(self.sent)
        self.sent.append(apdu)
        assert index < len(self.script), f"unexpected extra APDU {apdu.hex().upper()}"
        expected, answer = self.script[index]
        assert apdu == expected, f"APDU #{index}: sent {apdu.hex().upper()}, expected {expected.hex().upper()}"
        return answer

    def finished(self) -> bool:
        return len(self.sent) == len(self.script)


@dataclass(frozen=True)
class Case:
    name: str
    command: Command
    script: Script
    data: str
    sw: int
    extended_length: bool = False


BIG = bytes(range(256)) * 2  # 512 bytes: two full links of 255 and a last one of 2
CASES = [
    Case("plain 9000", Command(0x00, 0xB0, 0, 0, le=4), [("00B0000004", "01020304 9000")], "01020304", 0x9000),
    Case("error SW passes through", Command(0x00, 0xA4, 4, 0, b"\xa0\x00"), [("00A4040002A000", "6A82")], "", 0x6A82),
    Case(
        "61xx then GET RESPONSE",
        Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("E828BD080F")),
        [("00A4040005E828BD080F", "6112"), ("00C0000012", "6F10" + "AA" * 16 + "9000")],
        "6F10" + "AA" * 16,
        0x9000,
    ),
    Case(
        "61xx loop over several GET RESPONSE, data concatenated",
        Command(0x80, 0xCA, 0x01, 0x02, le=0),
        [
            ("80CA010200", "01" * 4 + "6104"),
            ("00C0000004", "02" * 4 + "6103"),
            ("00C0000003", "030303" + "9000"),
        ],
        "01" * 4 + "02" * 4 + "030303",
        0x9000,
    ),
    Case(
        "6100 asks for 256 bytes",
        Command(0x00, 0xB0, 0, 0, le=0),
        [("00B0000000", "6100"), ("00C0000000", "55" * 256 + "9000")],
        "55" * 256,
        0x9000,
    ),
    Case(
        "6Cxx resends with the right Le",
        Command(0x00, 0xB0, 0x00, 0x10, le=0),
        [("00B0001000", "6C08"), ("00B0001008", "1122334455667788 9000")],
        "1122334455667788",
        0x9000,
    ),
    Case(
        "6Cxx then 61xx",
        Command(0x00, 0xB2, 0x01, 0x04, le=0xFF),
        [("00B20104FF", "6C05"), ("00B2010405", "6105"), ("00C0000005", "0102030405 9000")],
        "0102030405",
        0x9000,
    ),
    Case(
        "61xx on a logical channel keeps the channel bits in GET RESPONSE",
        Command(0x03, 0xB0, 0, 0, le=0),
        [("03B0000000", "6102"), ("03C0000002", "ABCD 9000")],
        "ABCD",
        0x9000,
    ),
    Case(
        "chaining over 255 bytes",
        Command(0x00, 0x2A, 0x80, 0x86, BIG, le=0, extended=True),
        [
            ("102A8086FF" + BIG[:255].hex(), "9000"),
            ("102A8086FF" + BIG[255:510].hex(), "9000"),
            ("002A808602" + BIG[510:].hex() + "00", "6104"),
            ("00C0000004", "DEADBEEF 9000"),
        ],
        "DEADBEEF",
        0x9000,
    ),
    Case(
        "chain refused midway: the refusal is the answer, nothing more is sent",
        Command(0x00, 0xDA, 0x01, 0x6F, BIG, extended=True),
        [("10DA016FFF" + BIG[:255].hex(), "6A80")],
        "",
        0x6A80,
    ),
    Case(
        "extended length instead of chaining when the card supports it",
        Command(0x00, 0x2A, 0x80, 0x86, BIG, le=0, extended=True),
        [("002A8086000200" + BIG.hex() + "0000", "CAFE 9000")],
        "CAFE",
        0x9000,
        extended_length=True,
    ),
    Case(
        "extended command with short data becomes short for a card without extended length",
        Command(0x00, 0xB0, 0x00, 0x00, le=1000, extended=True),
        [("00B0000000", "6102"), ("00C0000002", "0102 9000")],
        "0102",
        0x9000,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_transceive(case: Case) -> None:
    card = ScriptedCard(case.script)
    response = transceive(case.command, card, extended_length=case.extended_length)
    assert response == Response(bytes.fromhex(case.data), StatusWord(case.sw))
    assert card.finished(), f"only {len(card.sent)} of {len(card.script)} exchanges happened"


def _endless_61(apdu: bytes) -> bytes:
    return b"\x00\x61\x01"  # one byte of data and "one more waiting", forever


def test_endless_61xx_is_a_transport_error() -> None:
    sent: list[bytes] = []

    def send(apdu: bytes) -> bytes:
        sent.append(apdu)
        return _endless_61(apdu)

    with pytest.raises(TransportError, match="61xx"):
        transceive(Command(0x00, 0xB0, 0, 0, le=1), send)
    # the command, then exactly the bounded number of GET RESPONSE before giving up
    assert sent[0] == bytes.fromhex("00B0000001")
    assert sent[1:] == [bytes.fromhex("00C0000001")] * MAX_GET_RESPONSE_ROUNDS
