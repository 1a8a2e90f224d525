"""The CPS use cases of the card service: read, PIN login and logout, signing, and the logged-in card for the DMP.

Each runs through `CardSessions.cps` (the card's worker thread, whichever backend). After a login the
session keeps the situations d'exercice and, once built, the card keys; `practitioner` hands them to
the DMP service as a `CardPractitioner`.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import Encoding

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus, Practitioner
from bridge.cards.cps_token import CpsToken
from bridge.cards.identify import CardIdentity
from bridge.errors import BridgeError, ErrorCode
from bridge.service.cards import DigestName, KeyUsage
from bridge.service.pcsc_cards.card_session import CardSession
from bridge.service.pcsc_cards.sessions import CardSessions
from bridge.service.pin_throttle import PinThrottle

__all__ = ["CardPractitioner", "CpsCards", "Issuers"]

log = logging.getLogger(__name__)

Issuers = Callable[[x509.Certificate], Sequence[x509.Certificate]]
"""Intermediate CA certificates for a card certificate (leaf excluded), nearest first."""


@dataclass(frozen=True)
class CardPractitioner:
    """A logged-in CPS as the DMP service needs it: who, in which situation, and the card keys."""

    reader: str
    info: CpsCardInfo
    situations: tuple[Situation, ...]
    situation: Situation
    practitioner: Practitioner
    #: Authentication key: TLS client authentication.
    auth_key: rsa.RSAPrivateKey
    #: Signature key: VIHF and XAdES (it needs the whole message: the card finishes the hash).
    sign_key: rsa.RSAPrivateKey
    auth_chain: tuple[x509.Certificate, ...]
    sign_chain: tuple[x509.Certificate, ...]

    def __repr__(self) -> str:  # names and identifiers stay out of logs
        return f"CardPractitioner(reader={self.reader!r}, situation={self.situation.index})"


_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}


def _cps_json(info: CpsCardInfo, identity: CardIdentity | None) -> dict[str, Any]:
    """The cps.read result: the one JSON form of a CPS (`CpsCardInfo.to_json`, as the CLI prints) and its kind."""
    return {"kind": identity.kind.value if identity else info.generation, **info.to_json()}


class CpsCards:
    """The CPS operations on the cards of `sessions`; `issuers` completes the chains of `practitioner`."""

    def __init__(self, sessions: CardSessions, issuers: Issuers | None, throttle: PinThrottle | None = None) -> None:
        self._sessions = sessions
        self._issuers = issuers
        self.throttle = throttle or PinThrottle()

    async def cps_info(self, reader: str) -> CpsCardInfo:
        """Everything a CPS shows without the PIN, and which backend and generation (`cps_read` is its JSON form)."""

        def op(session: CardSession, token: CpsToken) -> CpsCardInfo:
            session.info = token.read_public()
            return session.info

        return await self._sessions.cps(reader, op, "cps.read")

    async def cps_read(self, reader: str) -> dict[str, Any]:
        """Holder, card validity, both certificates (DER and summary), PIN counter, backend and generation."""
        info = await self.cps_info(reader)
        session = self._sessions.get(reader)
        return _cps_json(info, session.identity if session else None)

    async def login(
        self, reader: str, pin: bytearray, *, allow_last_try: bool
    ) -> tuple[PinStatus, tuple[Situation, ...]]:
        """Verify the PIN (refusing the last try unless allowed), then read the situations.

        After a wrong PIN the next attempt on the same card (by serial, whoever calls) waits first:
        `throttle`. `pin` is zeroed in every case. Raises PIN_INCORRECT (with triesLeft), PIN_LAST_TRY,
        PIN_BLOCKED.
        """

        def op(session: CardSession, token: CpsToken) -> tuple[PinStatus, tuple[Situation, ...]]:
            session.logged_out()  # a failed login resets the card's verified state too
            if session.info is None:
                session.info = token.read_public()
            status = token.login(pin, force=allow_last_try)
            return status, token.read_situations()

        try:
            serial = (await self.cps_info(reader)).serial if self._needs_info(reader) else self._serial(reader)
            await self.throttle.wait(serial)
            try:
                status, situations = await self._sessions.cps(reader, op, "cps.login")
            except BridgeError as exc:
                if exc.code in (ErrorCode.PIN_INCORRECT, ErrorCode.PIN_BLOCKED):
                    self.throttle.failed(serial)
                raise
            self.throttle.succeeded(serial)
        finally:
            pin[:] = b"\x00" * len(pin)  # the backends zero it too; this covers failures before the login
        session = self._sessions.get(reader)
        if session is not None:
            session.situations = situations
            session.selected = situations[0].index if situations else None
        log.info("CPS login: %d situation(s)", len(situations))
        return status, situations

    def _needs_info(self, reader: str) -> bool:
        session = self._sessions.get(reader)
        return session is None or session.info is None

    def _serial(self, reader: str) -> str:
        session = self._sessions.get(reader)
        assert session is not None and session.info is not None  # checked by _needs_info
        return session.info.serial

    async def cps_login(self, reader: str, pin: bytearray, *, allow_last_try: bool) -> dict[str, Any]:
        """`login`, as the cps.login result: tries and the situations d'exercice (the first one selected)."""
        status, situations = await self.login(reader, pin, allow_last_try=allow_last_try)
        return {
            "authenticated": True,
            "triesLeft": status.tries_left,
            "triesMax": status.tries_max,
            "situations": [s.to_json() for s in situations],
            "situation": situations[0].index if situations else None,
        }

    async def cps_logout(self, reader: str) -> dict[str, Any]:
        """Reset the card's verified state and forget the situations and keys."""

        def op(session: CardSession, token: CpsToken) -> None:
            session.logged_out()
            token.logout()

        await self._sessions.cps(reader, op, "cps.logout")
        return {"authenticated": False}

    async def cps_sign(
        self, reader: str, data: bytes, *, digest: DigestName, prehashed: bool, key: KeyUsage
    ) -> dict[str, Any]:
        """Authentication key: a DigestInfo signature (any digest); signature key: the message only (SHA-256)."""
        algorithm = _HASHES[digest]()
        session = await self._sessions.session(reader, "cps.sign")
        auth_key, sign_key = await self._keys(session, "cps.sign")
        card_key = auth_key if key == "authentication" else sign_key
        mode: Prehashed | hashes.HashAlgorithm = Prehashed(algorithm) if prehashed else algorithm

        def sign(_: CardSession, __: CpsToken) -> bytes:
            return card_key.sign(data, PKCS1v15(), mode)

        try:
            signature = await self._sessions.cps(reader, sign, "cps.sign")
        except UnsupportedAlgorithm:
            detail = "prehashed: signature-key-needs-message" if prehashed else "digestAlgorithm: unsupported-by-key"
            raise BridgeError(ErrorCode.INVALID_PARAMS, detail) from None
        info = session.info
        assert info is not None  # read by _keys
        cert = info.auth_certificate if key == "authentication" else info.sign_certificate
        return {
            "signature": base64.b64encode(signature).decode("ascii"),
            "key": key,
            "digestAlgorithm": digest,
            "certificate": base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii"),
        }

    async def _keys(self, session: CardSession, operation: str) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
        """The card keys of `session` (built once; their `sign` blocks on the card: call it off the loop)."""
        if session.keys is not None and session.info is not None:
            return session.keys

        def op(s: CardSession, token: CpsToken) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
            if s.info is None:
                s.info = token.read_public()
            return token.keys()

        keys = await self._sessions.cps(session.reader, op, operation)
        session.keys = keys
        return keys

    # -- for the DMP service ------------------------------------------------------------------------

    def _logged_in(self, reader: str | None) -> CardSession:
        if reader is not None:
            session = self._sessions.get(reader)
        else:
            candidates = [s for s in self._sessions.all() if s.situations is not None]
            session = candidates[0] if len(candidates) == 1 else None
            if len(candidates) > 1:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "reader: several-cards")
        if session is None or session.situations is None or session.info is None:
            raise BridgeError(ErrorCode.PIN_REQUIRED, "cps-login-required")
        return session

    def select_situation(self, reader: str | None, index: int) -> Situation:
        """Choose the situation d'exercice (by its `index`) that `practitioner` reports."""
        session = self._logged_in(reader)
        assert session.situations is not None
        chosen = next((s for s in session.situations if s.index == index), None)
        if chosen is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "situation: not on this card")
        session.selected = index
        return chosen

    async def practitioner(self, reader: str | None = None) -> CardPractitioner:
        """The logged-in CPS of `reader` (None: the only one): holder, selected situation, keys and chains.

        Raises:
            BridgeError: PIN_REQUIRED when not logged in; INVALID_PARAMS when the card has no situation
                or `reader` is None and several cards are logged in; card errors from reading the keys.
        """
        session = self._logged_in(reader)
        situations, info = session.situations, session.info
        assert situations is not None and info is not None
        situation = next((s for s in situations if s.index == session.selected), None)
        if situation is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "no-situation-on-card")
        auth_key, sign_key = await self._keys(session, "dmp.card-keys")
        return CardPractitioner(
            reader=session.reader,
            info=info,
            situations=situations,
            situation=situation,
            practitioner=info.practitioner(situation),
            auth_key=auth_key,
            sign_key=sign_key,
            auth_chain=self._chain(info.auth_certificate),
            sign_chain=self._chain(info.sign_certificate),
        )

    def _chain(self, leaf: x509.Certificate) -> tuple[x509.Certificate, ...]:
        return (leaf, *(self._issuers(leaf) if self._issuers is not None else ()))
