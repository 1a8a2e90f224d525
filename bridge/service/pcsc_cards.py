"""CardService over pcscd: the CPS3 and Vitale drivers on a CardConnection per inserted card.

One session per reader holds the CardConnection and the CPS3 session state (verified PIN...). It is
dropped when the reader's card changes or leaves (`forget`, called on the monitor's CardRemoved) or
when an operation fails at the PC/SC level, so a re-inserted card always starts a fresh session.
Each operation is one function of a CardChannel run on the connection's worker thread (one PC/SC
transaction); the API layer already holds the per-card lock around it.

Results carry what the caller asked for (a CPS holder's identity is the point of `cps.read`); nothing
here is logged beyond card types and counts.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from bridge.cards.cps3 import CardState, Cps3Card, CpsCardInfo
from bridge.cards.identify import CardKind as DriverKind
from bridge.cards.identify import identify, identify_atr, require_supported
from bridge.cards.vitale import read_vitale
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.pcsc.errors import PcscError
from bridge.pcsc.monitor import ReaderState
from bridge.service.cards import CardKind, DigestName, KeyUsage

__all__ = ["PcscCardService"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_WANTED = {"cps": DriverKind.CPS3, "vitale": DriverKind.VITALE2}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


@dataclass
class _Session:
    """An open card and what the drivers know about it."""

    connection: CardConnection
    atr: bytes
    cps: Cps3Card = field(default_factory=Cps3Card)
    status: dict[str, Any] | None = None  # diagnostics summary cache (dropped after PIN operations)


def _cert_json(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "der": base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
        "serialNumber": format(cert.serial_number, "X"),
    }


def _cps_json(info: CpsCardInfo) -> dict[str, Any]:
    identity, holder, pro = info.identity, info.holder, info.professional
    return {
        "serial": info.serial,
        "cardType": identity.card_type,
        "cardNumber": identity.card_number,
        "validity": {
            "notBefore": identity.not_before.isoformat() if identity.not_before else None,
            "notAfter": identity.not_after.isoformat() if identity.not_after else None,
        },
        "holder": {
            "idType": holder.id_type,
            "nationalId": holder.national_id,
            "civility": holder.civility,
            "lastName": holder.last_name,
            "firstName": holder.first_name,
            "professionCode": pro.profession_code,
            "specialtyCode": pro.specialty_code,
        },
        "certificates": {
            "authentication": _cert_json(info.auth_certificate),
            "signature": _cert_json(info.sign_certificate),
        },
        "pin": {"triesLeft": info.pin.tries_left, "triesMax": info.pin.tries_max},
    }


class PcscCardService:
    """The CardService of the daemon (implements bridge.service.cards.CardService)."""

    def __init__(self, snapshot: Callable[[], list[ReaderState]]) -> None:
        self._snapshot = snapshot
        self._sessions: dict[str, _Session] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    # -- sessions -------------------------------------------------------------------------------

    def _row(self, reader: str) -> ReaderState:
        row = next((r for r in self._snapshot() if r.name == reader), None)
        if row is None:
            raise BridgeError(ErrorCode.NO_READER, "reader")
        if not row.card_present or not row.atr:
            raise BridgeError(ErrorCode.NO_CARD)
        return row

    async def _session(self, reader: str) -> _Session:
        # Diagnostics may ask while a card method runs: one lock per reader so a card is opened once.
        async with self._opening.setdefault(reader, asyncio.Lock()):
            row = self._row(reader)
            session = self._sessions.get(reader)
            if session is not None and session.atr == row.atr:
                return session
            await self.forget(reader)
            connection = await CardConnection.open(reader)
            session = _Session(connection=connection, atr=bytes(row.atr or b""))
            self._sessions[reader] = session
            return session

    async def forget(self, reader: str) -> None:
        """Drop the reader's session (card removed or changed)."""
        session = self._sessions.pop(reader, None)
        if session is not None:
            with contextlib.suppress(Exception):
                await session.connection.close()

    async def close(self) -> None:
        """Close every card connection."""
        for reader in list(self._sessions):
            await self.forget(reader)

    async def _run(self, reader: str, fn: Callable[[_Session, CardChannel], T]) -> T:
        session = await self._session(reader)
        try:
            return await session.connection.run(lambda ch: fn(session, ch))
        except PcscError:
            await self.forget(reader)  # the handle is dead (card pulled, reset, pcscd gone)
            raise

    # -- CardService ----------------------------------------------------------------------------

    async def resolve(self, reader: str | None, kind: CardKind) -> str:
        """`reader` if it holds a card; else the only reader whose card's ATR says `kind`."""
        rows = self._snapshot()
        if not rows:
            raise BridgeError(ErrorCode.NO_READER)
        if reader is not None:
            return self._row(reader).name
        wanted = _WANTED[kind]
        present = [r for r in rows if r.card_present and r.atr]
        matching = [r for r in present if identify_atr(r.atr or b"").kind is wanted]
        if len(matching) == 1:
            return matching[0].name
        if len(matching) > 1:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "reader: several-cards", readers=[r.name for r in matching])
        if len(present) == 1:
            return present[0].name  # ATR not conclusive: the operation identifies the card by probing
        raise BridgeError(ErrorCode.NO_CARD)

    @staticmethod
    def _ready_cps(session: _Session, ch: CardChannel) -> None:
        if session.cps.state is CardState.NEW:
            require_supported(identify(ch), DriverKind.CPS3)
            session.cps.identify(ch)

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder, card validity, certificates, PIN counter."""

        def op(session: _Session, ch: CardChannel) -> CpsCardInfo:
            self._ready_cps(session, ch)
            return session.cps.read_public(ch)

        return _cps_json(await self._run(reader, op))

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        """VERIFY (the driver zeroes `pin`; the handler does too)."""

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            session.status = None
            self._ready_cps(session, ch)
            status = session.cps.verify_pin(ch, pin, force=allow_last_try)
            return {"authenticated": True, "triesLeft": status.tries_left, "triesMax": status.tries_max}

        return await self._run(reader, op)

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        """Reset the verified state."""

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            self._ready_cps(session, ch)
            session.cps.logout(ch)
            return {"authenticated": False}

        return await self._run(reader, op)

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Signature key signs messages (the card hashes the last block); authentication key signs digests."""
        algorithm = _HASHES[digest]()

        def op(session: _Session, ch: CardChannel) -> bytes:
            self._ready_cps(session, ch)
            if key == "authentication":
                if prehashed:
                    return session.cps.sign_digest(ch, data, algorithm)
                hasher = hashes.Hash(algorithm)
                hasher.update(data)
                return session.cps.sign_digest(ch, hasher.finalize(), algorithm)
            if prehashed:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "prehashed: signature-key-needs-message")
            try:
                return session.cps.sign_message(ch, data, algorithm)
            except ValueError:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "digestAlgorithm: unsupported-by-card") from None

        signature = await self._run(reader, op)
        return {"signature": base64.b64encode(signature).decode("ascii"), "key": key, "digestAlgorithm": digest}

    async def vitale_read(self, reader: str) -> dict[str, Any]:
        """Beneficiaries of a Vitale 2 card."""

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            require_supported(identify(ch), DriverKind.VITALE2)
            return read_vitale(ch).to_json()

        return await self._run(reader, op)

    async def card_status(self, reader: str) -> dict[str, Any] | None:
        """Type, certificate end of validity and PIN tries (CPS), end of validity (Vitale); no personal data."""
        session = await self._session(reader)
        if session.status is not None:
            return session.status

        def op(session: _Session, ch: CardChannel) -> dict[str, Any]:
            identity = identify(ch)
            status: dict[str, Any] = {"type": identity.label_fr, "kind": identity.kind.value}
            if identity.kind is DriverKind.CPS3 and identity.supported:
                self._ready_cps(session, ch)
                auth, _ = session.cps.read_certificates(ch)
                pin = session.cps.pin_status(ch)
                status["certificateNotAfter"] = auth.not_valid_after_utc.date().isoformat()
                status["pinTriesLeft"] = pin.tries_left
            elif identity.kind is DriverKind.VITALE2:
                end = read_vitale(ch).validity_end
                status["validityEnd"] = end.isoformat() if end else None
            return status

        session.status = await self._run(reader, op)
        return session.status
