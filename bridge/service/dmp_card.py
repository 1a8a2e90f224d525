"""DIRECTE mode's card side: a logged-in CPS3 as DMP credentials (TLS and signatures by the card).

`CpsDirectSource.login(reader, pin)` opens the card over PC/SC, verifies the PIN, reads the holder and
the situations d'exercice, and keeps the card-backed keys: the authentication key (0x82) for the TLS
client certificate, the signature key (0x81) for the VIHF and the XAdES. Every card operation goes
through the card's `CardConnection` worker thread, so the event loop never blocks on an APDU.
`CardServiceDirectSource` is the daemon's: it uses the card the API's `cps.login` logged in.
`CpsDirectSource` logs a card in by itself (service-level use and tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.crypto.tls import ClientIdentity
from bridge.dmp.context import DmpCredentials
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.connection import CardConnection
from bridge.service.dmp import DirectIdentity
from bridge.service.pcsc_cards import PcscCardService

__all__ = ["CardServiceDirectSource", "CpsDirectSource", "identity_of_logged_in_card"]


async def identity_of_logged_in_card(connection: CardConnection, card: Cps3Card) -> DirectIdentity:
    """The DMP identity of a CPS3 whose PIN was verified on `connection` (situations, holder, card keys).

    Any owner of a logged-in card session (this module's source, or the API's card service) gets its
    DIRECTE-mode credentials from here; the keys sign through `connection`'s worker thread.
    """
    info = await connection.run(card.read_public)
    situations = await connection.run(card.read_situations)
    # card_keys blocks on the card worker while it reads the certificates: never on the event loop thread.
    auth_key, sign_key = await asyncio.to_thread(card_keys, lambda fn: connection.submit(fn).result(), card)
    credentials = DmpCredentials(
        f"cps:{info.serial}", ClientIdentity((info.auth_certificate,), auth_key), sign_key, (info.sign_certificate,)
    )
    return DirectIdentity(
        credentials=credentials,
        national_id=info.holder.national_id,
        family=info.holder.last_name,
        given=info.holder.first_name,
        profession_code=info.professional.profession_code,
        specialty_code=info.professional.specialty_code,
        situations=situations,
    )


@dataclass
class _Session:
    connection: CardConnection
    card: Cps3Card
    identity: DirectIdentity


class CpsDirectSource:
    """Logged-in CPS cards by reader name."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._lock = asyncio.Lock()

    async def login(self, reader: str, pin: bytearray, *, allow_last_try: bool = False) -> DirectIdentity:
        """Verify the PIN of the CPS in `reader` (`pin` is zeroed) and keep the card's identity and keys."""
        async with self._lock:
            await self._drop(reader)
            connection = await CardConnection.open(reader)
            try:
                card = Cps3Card()
                await connection.run(card.identify)
                await connection.run(lambda ch: card.verify_pin(ch, pin, force=allow_last_try))
                identity = await identity_of_logged_in_card(connection, card)
            except BaseException:
                await connection.close()
                raise
            finally:
                pin[:] = b"\x00" * len(pin)
            self._sessions[reader] = _Session(connection, card, identity)
            return identity

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """The logged-in CPS of `reader`, or the only one; PIN_REQUIRED when there is none."""
        if reader is not None:
            session = self._sessions.get(reader)
        elif len(self._sessions) == 1:
            session = next(iter(self._sessions.values()))
        else:
            session = None
        if session is None:
            raise BridgeError(ErrorCode.PIN_REQUIRED, "cps-login-required")
        return session.identity

    async def logout(self, reader: str) -> None:
        """Forget a card (its PIN state on the card is reset by closing the connection's session)."""
        async with self._lock:
            await self._drop(reader)

    async def aclose(self) -> None:
        """Close every card connection."""
        async with self._lock:
            for reader in list(self._sessions):
                await self._drop(reader)

    async def _drop(self, reader: str) -> None:
        session = self._sessions.pop(reader, None)
        if session is not None:
            await session.connection.close()


class CardServiceDirectSource:
    """DIRECTE through the daemon's card service: the CPS its `cps.login` verified.

    The card service owns the card session (connection, driver state); this source only reads the
    identity of a logged-in card once per session and hands out its card-backed keys.
    """

    def __init__(self, cards: PcscCardService) -> None:
        self._cards = cards
        self._known: dict[str, tuple[object, DirectIdentity]] = {}

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """The identity of the logged-in CPS in `reader` (or the only CPS); PIN_REQUIRED if not logged in."""
        name = await self._cards.resolve(reader, "cps")
        card = await self._cards.practitioner(name)
        # The card service builds a session's keys once: same keys, same credentials object, so the DMP
        # service keeps its client (and its TLS session) for as long as the card stays logged in.
        known = self._known.get(name)
        if known is not None and known[0] is card.auth_key:
            return known[1]
        info = card.info
        identity = DirectIdentity(
            credentials=DmpCredentials(
                f"cps:{info.serial}", ClientIdentity(card.auth_chain, card.auth_key), card.sign_key, card.sign_chain
            ),
            national_id=info.holder.national_id,
            family=info.holder.last_name,
            given=info.holder.first_name,
            profession_code=info.professional.profession_code,
            specialty_code=info.professional.specialty_code,
            situations=card.situations,
        )
        self._known[name] = (card.auth_key, identity)
        return identity
