"""The Vitale driver reads the Vitale emulator through the real pcscd + vpcd, via the bridge's CardConnection."""

from __future__ import annotations

import asyncio

import pytest

from bridge.cards.identify import CardKind, identify
from bridge.cards.vitale_reader import read_vitale
from bridge.pcsc.connection import CardConnection
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state

READER = "Virtual PCD 00 00"


@pytest.mark.pcsc
async def test_read_single_card_then_swap_for_family_card(slots: list[VirtualSlot]) -> None:
    """One card, then another in the same reader: each read sees the card that is in, with its own data."""
    expected = {"solo": ["PAUL"], "famille": ["JEAN", "AICHA", "LEA"]}
    for profile, first_names in expected.items():
        await asyncio.to_thread(wait_card_state, READER, False)
        slots[0].insert(make_card("vitale", profile))
        await asyncio.to_thread(wait_card_state, READER, True)
        connection = await CardConnection.open(READER)
        try:
            assert (await connection.run(identify)).kind is CardKind.VITALE2
            vitale = await connection.run(read_vitale)
        finally:
            await connection.close()
        slots[0].remove()
        assert [b.first_name for b in vitale.beneficiaries] == first_names
        assert all(b.nir_valid for b in vitale.beneficiaries if b.nir is not None)
        assert sum(b.is_insured for b in vitale.beneficiaries) == 1
        if profile == "solo":
            assert vitale.beneficiaries[0].nir[5:7] == "2A" and vitale.serial == "9876543210"
        else:
            assert vitale.beneficiaries[1].lunar and vitale.beneficiaries[1].birth_date_raw == "19810000"
