"""diff_states: the events that take the monitor from one known state to the next."""

from __future__ import annotations

import pytest

from bridge.pcsc.monitor import (
    CardInserted,
    CardRemoved,
    ReaderAdded,
    ReaderEvent,
    ReaderRemoved,
    ReaderState,
    diff_states,
)

A, B = "Reader A", "Reader B"
ATR1, ATR2 = bytes.fromhex("3B00"), bytes.fromhex("3B01")


def empty(name: str) -> ReaderState:
    return ReaderState(name, False, None)


def card(name: str, atr: bytes = ATR1) -> ReaderState:
    return ReaderState(name, True, atr)


CASES: list[tuple[str, list[ReaderState], list[ReaderState], frozenset[str], list[ReaderEvent]]] = [
    ("nothing changes", [empty(A), card(B)], [empty(A), card(B)], frozenset(), []),
    ("first look", [], [empty(A), card(B)], frozenset(), [ReaderAdded(A), ReaderAdded(B), CardInserted(B, ATR1)]),
    ("insert", [empty(A)], [card(A)], frozenset(), [CardInserted(A, ATR1)]),
    ("remove", [card(A)], [empty(A)], frozenset(), [CardRemoved(A)]),
    ("other card", [card(A, ATR1)], [card(A, ATR2)], frozenset(), [CardRemoved(A), CardInserted(A, ATR2)]),
    ("same card swapped unseen", [card(A)], [card(A)], frozenset({A}), [CardRemoved(A), CardInserted(A, ATR1)]),
    ("reader leaves with its card", [card(A), empty(B)], [empty(B)], frozenset(), [CardRemoved(A), ReaderRemoved(A)]),
    ("empty reader leaves", [empty(A)], [], frozenset(), [ReaderRemoved(A)]),
]


@pytest.mark.parametrize(("name", "old", "new", "cycled", "events"), CASES, ids=[c[0] for c in CASES])
def test_diff(
    name: str, old: list[ReaderState], new: list[ReaderState], cycled: frozenset[str], events: list[ReaderEvent]
) -> None:
    assert diff_states({s.name: s for s in old}, {s.name: s for s in new}, cycled) == events
