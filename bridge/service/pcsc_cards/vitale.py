"""The Vitale use case of the card service: read a Vitale 2 card over PC/SC, in one guarded operation."""

from __future__ import annotations

from typing import Any

from bridge.cards.identify import CardIdentity, identify, require_supported
from bridge.cards.identify import CardKind as DriverKind
from bridge.cards.vitale_reader import read_vitale
from bridge.pcsc.channel import CardChannel
from bridge.service.pcsc_cards.card_session import CardSession
from bridge.service.pcsc_cards.sessions import CardSessions

__all__ = ["vitale_read"]


def _identified(session: CardSession, ch: CardChannel, wanted: DriverKind | None) -> CardIdentity:
    """Identify once per session (ATR, then a probe when needed); UNSUPPORTED_CARD unless usable as `wanted`."""
    if session.identity is None:
        session.identity = identify(ch)
    require_supported(session.identity, wanted)
    return session.identity


async def vitale_read(sessions: CardSessions, reader: str) -> dict[str, Any]:
    """Beneficiaries and validity of a Vitale 2 card (logged as a count only)."""

    def op(session: CardSession, ch: CardChannel) -> dict[str, Any]:
        _identified(session, ch, DriverKind.VITALE2)
        return read_vitale(ch).to_json()

    return await sessions.run(reader, op, "vitale.read")
