"""The card drivers over the real PC/SC stack: virtual CPS3 and Vitale in vpcd, reached via CardConnection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.cards.identify import CardKind, identify
from bridge.cards.vitale_reader import read_vitale
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.sim.cps3 import create_card
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualCard, VirtualSlot
from tests.conftest import wait_card_state

pytestmark = pytest.mark.pcsc

READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]
T = TypeVar("T")


async def insert(slot: VirtualSlot, reader: str, card: VirtualCard) -> None:
    await asyncio.to_thread(wait_card_state, reader, False)
    slot.insert(card)
    await asyncio.to_thread(wait_card_state, reader, True)


async def test_cps3_pin_and_signature_from_a_key_thread(slots: list[VirtualSlot]) -> None:
    await insert(slots[0], READERS[0], await asyncio.to_thread(create_card, "gp"))
    connection = await CardConnection.open(READERS[0])
    try:
        assert (await connection.run(identify)).kind is CardKind.CPS3
        session = Cps3Card()

        def runner(fn: Callable[[CardChannel], T]) -> T:
            return connection.submit(fn).result(30)  # what card-backed keys do, off the event loop

        def login_and_sign() -> tuple[bytes, rsa.RSAPublicKey]:
            auth_key, _ = card_keys(runner, session)
            runner(lambda ch: session.verify_pin(ch, bytearray(b"1234")))
            return auth_key.sign(b"challenge", padding.PKCS1v15(), hashes.SHA256()), auth_key.public_key()

        signature, public_key = await asyncio.to_thread(login_and_sign)
        public_key.verify(signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())
    finally:
        await connection.close()


async def test_vitale_read_through_card_connection(slots: list[VirtualSlot]) -> None:
    await insert(slots[1], READERS[1], make_card("vitale", "famille"))
    connection = await CardConnection.open(READERS[1])
    try:
        assert (await connection.run(identify)).kind is CardKind.VITALE2
        vitale = await connection.run(read_vitale)
    finally:
        await connection.close()
    assert [b.is_insured for b in vitale.beneficiaries] == [True, False, False]
