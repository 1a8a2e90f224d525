"""SharedCardLocks: DMP calls share a card, card methods hold it alone, both bounded by CARD_BUSY."""

from __future__ import annotations

import asyncio

import pytest

from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_locks import SharedCardLocks


async def test_dmp_calls_share_a_card_and_card_methods_wait_for_them() -> None:
    locks = SharedCardLocks(wait=0.2)
    async with locks.hold_shared("r"), locks.hold_shared("r"):  # two DMP calls side by side
        with pytest.raises(BridgeError) as busy:
            async with locks.hold("r"):
                pass
        assert busy.value.code is ErrorCode.CARD_BUSY
    async with locks.hold("r"):  # free once they are over
        with pytest.raises(BridgeError) as busy:
            async with locks.hold_shared("r"):
                pass
        assert busy.value.code is ErrorCode.CARD_BUSY
    async with locks.hold("other"), locks.hold_shared("r"):  # readers are independent
        pass


async def test_a_waiting_card_method_keeps_new_dmp_calls_out() -> None:
    locks = SharedCardLocks(wait=1.0)
    order: list[str] = []
    first = asyncio.Event()
    release = asyncio.Event()

    async def dmp_call(name: str, hold: asyncio.Event | None = None) -> None:
        async with locks.hold_shared("r"):
            order.append(name)
            first.set()
            if hold is not None:
                await hold.wait()

    async def card_method() -> None:
        async with locks.hold("r"):
            order.append("logout")

    slow = asyncio.create_task(dmp_call("dmp-1", release))
    await first.wait()
    # Tasks start in creation order (asyncio's FIFO ready queue): the card method queues first, then
    # the late DMP call; the first call ends only after both have started waiting.
    logout = asyncio.create_task(card_method())
    late = asyncio.create_task(dmp_call("dmp-2"))
    release.set()
    await asyncio.gather(slow, logout, late)
    assert order == ["dmp-1", "logout", "dmp-2"]
