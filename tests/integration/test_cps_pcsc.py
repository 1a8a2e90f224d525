"""The CPS3 driver and card keys through the real pcscd + vpcd and the bridge's CardConnection."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.cards.cps_session import CardState
from bridge.cards.identify import CardKind, identify
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki, private_home

__all__ = ["pki", "private_home"]

pytestmark = pytest.mark.pcsc
READER0 = "Virtual PCD 00 00"
T = TypeVar("T")


async def test_cps3_read_pin_situations_and_sign_through_pcscd(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path
) -> None:
    card = create_card("gp", pki)
    await asyncio.to_thread(wait_card_state, READER0, False)
    slots[0].insert(card)
    assert await asyncio.to_thread(wait_card_state, READER0, True) == card.atr()
    conn = await CardConnection.open(READER0)
    try:
        assert (await conn.run(identify)).kind is CardKind.CPS3
        session = Cps3Card()
        info = await conn.run(session.read_public)
        assert info.serial == "26000001" and info.pin.tries_left == 3
        assert info.auth_certificate == card.certs.auth.certificate

        wrong = bytearray(b"4321")
        with pytest.raises(BridgeError) as error:
            await conn.run(lambda ch: session.verify_pin(ch, wrong))
        assert error.value.code is ErrorCode.PIN_INCORRECT and error.value.extra["triesLeft"] == 2
        pin = bytearray(b"1234")
        await conn.run(lambda ch: session.verify_pin(ch, pin))
        assert pin == bytearray(4) and session.state is CardState.AUTHENTICATED
        situations = await conn.run(session.read_situations)
        assert [s.activity_sector for s in situations] == ["SA07", "SA05"]

        def runner(fn: Callable[[CardChannel], T]) -> T:
            return conn.submit(fn).result(timeout=30)

        # the keys block their caller: use them from a worker thread, never from the event loop
        auth_key, sign_key = await asyncio.to_thread(card_keys, runner, session)
        message = b"<SignedInfo>" + b"x" * 300 + b"</SignedInfo>"
        for key, cert in ((auth_key, info.auth_certificate), (sign_key, info.sign_certificate)):
            signature = await asyncio.to_thread(key.sign, message, padding.PKCS1v15(), hashes.SHA256())
            public = cert.public_key()
            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    finally:
        await conn.close()
