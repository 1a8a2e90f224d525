"""CardConnection on the real private pcscd + vpcd: APDU paths, transactions, errors."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator

import pytest

from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.channel import CardChannel, check
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import CardRemovedError, CardResetError, NoCardError, NoReaderError, SharingViolationError
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.gated_vicc import GatedVicc
from tests.scripted_card import ATR, GET_DATA_VALUE, READ_BINARY_VALUE, ScriptedCard

pytestmark = pytest.mark.pcsc

READER0 = "Virtual PCD 00 00"
READER1 = "Virtual PCD 00 01"


async def insert(slot: VirtualSlot, reader: str, card: ScriptedCard) -> None:
    """Insert once pcscd has seen the slot empty, and return once pcscd reports the card."""
    await asyncio.to_thread(wait_card_state, reader, False)
    slot.insert(card)
    assert await asyncio.to_thread(wait_card_state, reader, True) == card.atr()


@pytest.fixture
async def card(slots: list[VirtualSlot]) -> ScriptedCard:
    scripted = ScriptedCard()
    await insert(slots[0], READER0, scripted)
    return scripted


@pytest.fixture
async def conn(card: ScriptedCard) -> AsyncIterator[CardConnection]:
    connection = await CardConnection.open(READER0)
    try:
        yield connection
    finally:
        await connection.close()


def mark(channel: CardChannel, marker: bytes) -> None:
    check(channel.transmit(Command(0x00, 0xE0, 0, 0, marker)), "MARK")


async def test_open_gives_reader_atr_and_channel(conn: CardConnection) -> None:
    assert conn.reader == READER0
    assert conn.atr == ATR
    assert await conn.run(lambda ch: ch.atr) == ATR


async def test_61xx_get_response_loop(conn: CardConnection, card: ScriptedCard) -> None:
    response = await conn.run(lambda ch: ch.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0)))
    assert response.data == GET_DATA_VALUE and response.sw.ok
    assert [a.hex().upper() for a in card.apdus] == [
        "00CA010000",
        "00C0000040",
        "00C0000040",
        "00C0000040",
        "00C0000008",
    ]


async def test_6cxx_resend(conn: CardConnection, card: ScriptedCard) -> None:
    response = await conn.run(lambda ch: ch.transmit(Command(0x00, 0xB0, 0, 0, le=0)))
    assert response == Response(READ_BINARY_VALUE, response.sw) and response.sw.ok
    assert [a.hex().upper() for a in card.apdus] == ["00B0000000", f"00B00000{len(READ_BINARY_VALUE):02X}"]


async def test_chaining_over_255_bytes(conn: CardConnection, card: ScriptedCard) -> None:
    blob = bytes(i % 251 for i in range(600))
    response = await conn.run(lambda ch: ch.transmit(Command(0x00, 0xDA, 0x01, 0x00, blob, le=0, extended=True)))
    assert response.data == hashlib.sha256(blob).digest() and response.sw.ok
    assert [a[:5].hex().upper() for a in card.apdus] == ["10DA0100FF", "10DA0100FF", "00DA01005A", "00C0000020"]


async def test_submit_from_a_plain_thread(conn: CardConnection) -> None:
    """The sync entry point card-backed keys use: submit() and block on the future, off the loop."""

    def from_thread() -> bytes:
        return conn.submit(lambda ch: ch.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0)).data).result(10)

    assert await asyncio.to_thread(from_thread) == GET_DATA_VALUE


async def test_transaction_keeps_a_second_connection_out(conn: CardConnection, card: ScriptedCard) -> None:
    other = await CardConnection.open(READER0)
    a_inside, release_a = threading.Event(), threading.Event()

    def op_a(ch: CardChannel) -> None:
        mark(ch, b"A1")
        a_inside.set()
        assert release_a.wait(10)
        mark(ch, b"A2")

    try:
        fa = conn.submit(op_a)
        assert await asyncio.to_thread(a_inside.wait, 10)
        fb = other.submit(lambda ch: mark(ch, b"B1"))
        # While A holds its transaction nothing from B reaches the card (bounded negative check).
        assert not await asyncio.to_thread(card.wait_marker, b"B1", 0.5)
        release_a.set()
        await asyncio.wait_for(asyncio.wrap_future(fa), 10)
        await asyncio.wait_for(asyncio.wrap_future(fb), 10)
        assert card.markers == [b"A1", b"A2", b"B1"]
    finally:
        release_a.set()
        await other.close()


async def test_one_operation_at_a_time_per_connection(conn: CardConnection, card: ScriptedCard) -> None:
    first_inside, release = threading.Event(), threading.Event()

    def first(ch: CardChannel) -> None:
        mark(ch, b"1a")
        first_inside.set()
        assert release.wait(10)
        mark(ch, b"1b")

    f1 = conn.submit(first)
    assert await asyncio.to_thread(first_inside.wait, 10)
    f2 = conn.submit(lambda ch: mark(ch, b"2"))
    assert not f2.done()
    release.set()
    await asyncio.wrap_future(f1)
    await asyncio.wrap_future(f2)
    assert card.markers == [b"1a", b"1b", b"2"]


async def test_exclusive_connection_refuses_others(card: ScriptedCard) -> None:
    exclusive = await CardConnection.open(READER0, exclusive=True)
    try:
        with pytest.raises(SharingViolationError) as info:
            await CardConnection.open(READER0)
        assert info.value.code.value == "SHARING_VIOLATION"
    finally:
        await exclusive.close()
    shared = await CardConnection.open(READER0)  # free again once closed
    await shared.close()


async def test_card_pulled_between_apdus(conn: CardConnection, slots: list[VirtualSlot]) -> None:
    def operation(ch: CardChannel) -> None:
        mark(ch, b"before")
        slots[0].remove()
        mark(ch, b"after")

    with pytest.raises(CardRemovedError):
        await asyncio.wait_for(conn.run(operation), 10)
    # the connection stays dead, promptly
    with pytest.raises(CardRemovedError):
        await asyncio.wait_for(conn.run(lambda ch: mark(ch, b"again")), 2)


async def test_card_pulled_while_an_exchange_is_in_flight(slots: list[VirtualSlot], slot_ports: list[int]) -> None:
    await asyncio.to_thread(wait_card_state, READER1, False)
    vicc = GatedVicc(ScriptedCard(), slot_ports[1])
    vicc.arm(0xEE, yank=True)
    try:
        await asyncio.to_thread(wait_card_state, READER1, True)
        connection = await CardConnection.open(READER1)
        try:
            with pytest.raises(CardRemovedError):
                await asyncio.wait_for(connection.run(lambda ch: ch.transmit(Command(0x00, 0xEE, 0, 0))), 10)
            assert vicc.held.is_set()  # the card got the command and left without answering
        finally:
            await connection.close()
    finally:
        vicc.close()


async def test_open_errors(slots: list[VirtualSlot]) -> None:
    await asyncio.to_thread(wait_card_state, READER1, False)
    with pytest.raises(NoCardError):
        await CardConnection.open(READER1)
    with pytest.raises(NoReaderError):
        await CardConnection.open("No Such Reader 00 00")


async def test_closed_connection_refuses_work(card: ScriptedCard) -> None:
    connection = await CardConnection.open(READER0)
    await connection.close()
    await connection.close()  # idempotent
    with pytest.raises(NoCardError):
        await connection.run(lambda ch: ch.atr)


def reset_by_another_program(reader: str) -> None:
    """What another PC/SC client does when it leaves the card reset."""
    from smartcard import scard

    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert hr == scard.SCARD_S_SUCCESS
    try:
        hr, card, _ = scard.SCardConnect(context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T1)
        assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
        assert scard.SCardDisconnect(card, scard.SCARD_RESET_CARD) == scard.SCARD_S_SUCCESS
    finally:
        scard.SCardReleaseContext(context)


async def test_card_reset_by_another_program(conn: CardConnection) -> None:
    assert await conn.run(lambda ch: ch.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0)).sw.ok)
    await asyncio.to_thread(reset_by_another_program, READER0)
    with pytest.raises(CardResetError):
        await conn.run(lambda ch: ch.atr)
    # reported once: the connection reconnected and the next operation works
    assert await conn.run(lambda ch: ch.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0)).data) == GET_DATA_VALUE
    assert conn.atr == ATR


async def test_misuse_is_a_local_error_not_a_deadlock(conn: CardConnection) -> None:
    def nested(ch: CardChannel) -> None:
        conn.submit(lambda inner: None)  # would wait for this very worker

    with pytest.raises(RuntimeError, match="inside an operation"):
        await asyncio.wait_for(conn.run(nested), 5)
    leaked = await conn.run(lambda ch: ch)
    with pytest.raises(RuntimeError, match="only valid inside the operation"):
        leaked.transmit(Command(0x00, 0xCA, 0x01, 0x00, le=0))
