"""The Vitale driver reads the Vitale emulator through the real pcscd + vpcd, with pyscard."""

from __future__ import annotations

import pytest
from smartcard.System import readers

from bridge.cards.identify import CardKind, identify
from bridge.cards.vitale import read_vitale
from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.t0 import transceive
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state


class PyscardChannel:
    """A minimal CardChannel over a pyscard connection (the bridge's own one lives in bridge.pcsc)."""

    def __init__(self, connection: object) -> None:
        self.connection = connection

    @property
    def atr(self) -> bytes:
        return bytes(self.connection.getATR())  # type: ignore[attr-defined]

    def _send(self, apdu: bytes) -> bytes:
        data, sw1, sw2 = self.connection.transmit(list(apdu))  # type: ignore[attr-defined]
        return bytes(data) + bytes((sw1, sw2))

    def transmit(self, command: Command) -> Response:
        return transceive(command, self._send)


@pytest.mark.pcsc
def test_read_family_card_through_pcscd(slots: list[VirtualSlot]) -> None:
    card = make_card("vitale", "famille")
    slots[0].insert(card)
    name = sorted(str(r) for r in readers() if str(r).startswith("Virtual PCD"))[0]
    wait_card_state(name, present=True)
    conn = next(r for r in readers() if str(r) == name).createConnection()
    conn.connect()
    try:
        channel = PyscardChannel(conn)
        assert identify(channel).kind is CardKind.VITALE2
        vitale = read_vitale(channel)
    finally:
        conn.disconnect()
    assert [b.first_name for b in vitale.beneficiaries] == ["JEAN", "AICHA", "LEA"]
    assert [b.is_insured for b in vitale.beneficiaries] == [True, False, False]
    assert vitale.beneficiaries[1].lunar and all(b.nir_valid for b in vitale.beneficiaries)
