"""Card diagnostics for the status page: what the card in a reader is, and for a CPS its non-secret state."""

from __future__ import annotations

from typing import Any

from bridge.cards.cps_token import CpsToken
from bridge.cards.cps_types import cps_label
from bridge.cards.identify import CardKind as DriverKind
from bridge.cards.identify import identify
from bridge.cards.vitale_reader import read_vitale
from bridge.pcsc.channel import CardChannel
from bridge.service.pcsc_cards.card_session import CardSession
from bridge.service.pcsc_cards.sessions import CardSessions, drivable_cps

__all__ = ["card_status"]


async def card_status(sessions: CardSessions, reader: str, status_wait: float) -> dict[str, Any] | None:
    """Kind, label, support; for a CPS its backend, generation, certificate end and PIN tries; nothing personal.

    Waits at most `status_wait` seconds behind another operation on the card, then CARD_BUSY.
    """

    def op(session: CardSession, ch: CardChannel) -> dict[str, Any]:
        if session.identity is None:
            session.identity = identify(ch)
        identity = session.identity
        status: dict[str, Any] = {
            "type": identity.label_fr,
            "kind": identity.kind.value,
            "supported": identity.supported or drivable_cps(identity),
            "atr": identity.atr_hex,
        }
        if identity.kind is DriverKind.VITALE2:
            end = read_vitale(ch).validity_end
            status["validityEnd"] = end.isoformat() if end else None
        return status

    status = await sessions.run(reader, op, "diagnostics", status_wait=status_wait)
    session = sessions.get(reader)
    if session is None or session.identity is None or not drivable_cps(session.identity):
        return status

    def cps(s: CardSession, token: CpsToken) -> dict[str, Any]:
        if s.info is None:
            s.info = token.read_public()
        pin = token.pin_status()
        cert = s.info.auth_certificate
        return {
            "backend": token.backend,
            "generation": s.info.generation,
            "cardType": s.info.identity.card_type,
            # A CPE is not a CPS: name the card by its type (the ATR only tells the generation).
            "type": cps_label(s.info.identity.card_type, s.info.generation),
            "certificateNotBefore": cert.not_valid_before_utc.isoformat(),
            "certificateNotAfter": cert.not_valid_after_utc.isoformat(),
            "pinTriesLeft": pin.tries_left,
            "pinTriesMax": pin.tries_max,
            "pinBlocked": pin.blocked,
            "loggedIn": s.situations is not None,
        }

    status.update(await sessions.cps(reader, cps, "diagnostics", status_wait=status_wait))
    return status
