"""The harness itself: pcscd is up, vpcd readers exist, a virtual card can be inserted and answers."""

from __future__ import annotations

import pytest
from smartcard.System import readers

from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state

ATR = bytes.fromhex("3B8F800180318065B0850300EF120FFF82900073")


class EchoCard:
    def atr(self) -> bytes:
        return ATR

    def power_on(self) -> None: ...
    def power_off(self) -> None: ...
    def reset(self) -> None: ...

    def process(self, apdu: bytes) -> bytes:
        return apdu[5:] + b"\x90\x00"


@pytest.mark.pcsc
def test_virtual_readers_listed_and_card_answers(slots: list[VirtualSlot]) -> None:
    names = [str(r) for r in readers()]
    assert any(n.startswith("Virtual PCD") for n in names), names
    slots[0].insert(EchoCard())
    assert wait_card_state(names[0], present=True) == ATR
    reader = next(r for r in readers() if str(r) == names[0])
    conn = reader.createConnection()
    conn.connect()
    try:
        assert bytes(conn.getATR()) == ATR
        data, sw1, sw2 = conn.transmit(list(bytes.fromhex("00010203024142")))
        assert (bytes(data), sw1, sw2) == (b"AB", 0x90, 0x00)
    finally:
        conn.disconnect()
    slots[0].remove()
    wait_card_state(names[0], present=False)
