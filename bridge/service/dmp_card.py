"""DIRECTE mode's card side: a CPS logged in through the card service, as DMP credentials.

The card service (`PcscCardService`) owns the card session: connection, CPS backend token, PIN, keys.
`CardServiceDirectSource` turns its logged-in CPS into DMP credentials: the authentication key and
certificate for the TLS client, the signature key for the VIHF and the XAdES, whichever backend
(Cryptolib PKCS#11 or PC/SC driver) holds them. Card operations run on worker threads, so the event
loop never blocks on the card. The daemon logs the card in with `cps.login`; tools that run without
the daemon (`dmp-bridge debug ...`) use `standalone_cps`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from bridge.cards.identify import CardKind, identify_atr
from bridge.crypto.tls_endpoint import ClientIdentity
from bridge.dmp.context import DmpCredentials
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.monitor import MonitorState
from bridge.service.cps_backend import configured_cps_backend
from bridge.service.dmp import DirectIdentity
from bridge.service.pcsc_cards.service import PcscCardService

__all__ = ["CardServiceDirectSource", "standalone_cps"]


@contextlib.asynccontextmanager
async def standalone_cps(pin: bytearray, reader: str | None = None) -> AsyncIterator[tuple[PcscCardService, str]]:
    """A card service of its own with the CPS of `reader` (or the only CPS) logged in: (service, reader).

    For tools that run without the daemon. `pin` is zeroed; the last PIN try is never spent; the card
    is logged out and its connection closed on exit.
    """
    try:
        cards = PcscCardService(cps_backend=configured_cps_backend())
    except BaseException:
        pin[:] = bytes(len(pin))
        raise
    try:
        try:
            name = await cards.resolve(reader, "cps")
        except BaseException:
            pin[:] = bytes(len(pin))
            raise
        await cards.login(name, pin, allow_last_try=False)  # zeroes `pin`
        try:
            yield cards, name
        finally:
            with contextlib.suppress(BridgeError):
                await cards.cps_logout(name)
    finally:
        await cards.close()


class CardServiceDirectSource:
    """DIRECTE through the daemon's card service: the CPS its `cps.login` verified.

    The card service owns the card session (connection, driver state); this source only reads the
    identity of a logged-in card once per session and hands out its card-backed keys.
    """

    def __init__(self, cards: PcscCardService, monitor: object | None = None) -> None:
        self._cards = cards
        #: The reader monitor (its `state`), to tell "pcscd is down" from "nobody logged in".
        self._monitor = monitor
        self._known: dict[str, tuple[object, DirectIdentity]] = {}

    def _cps_present(self) -> bool:
        """Whether a CPS-family card is in a reader (True when unknown: then the PIN is what is missing)."""
        snapshot = getattr(self._monitor, "snapshot", None)
        if snapshot is None:
            return True
        return any(
            row.atr is not None and identify_atr(row.atr).kind in (CardKind.CPS3, CardKind.CPS4) for row in snapshot()
        )

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """The identity of the logged-in CPS in `reader` (or the only logged-in CPS).

        Raises:
            BridgeError: PIN_REQUIRED if no CPS is logged in; PCSC_UNAVAILABLE while pcscd is down (the
                login was lost with it, but asking for a PIN would not help yet).
        """
        try:
            card = await self._cards.practitioner(None if reader is None else await self._cards.resolve(reader, "cps"))
        except BridgeError as exc:
            if exc.code is ErrorCode.PIN_REQUIRED and getattr(self._monitor, "state", None) is (
                MonitorState.PCSC_UNAVAILABLE
            ):
                raise BridgeError(ErrorCode.PCSC_UNAVAILABLE, "pcscd-unavailable") from exc
            if exc.code is ErrorCode.PIN_REQUIRED and not self._cps_present():
                # Asking for a PIN when there is no CPS to type it for would send the person the wrong way.
                raise BridgeError(ErrorCode.NO_CARD, "no-cps") from exc
            raise
        name = card.reader
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
            reader=name,
        )
        self._known[name] = (card.auth_key, identity)
        return identity
