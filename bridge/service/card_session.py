"""One card in one reader, as the card service keeps it: connection, identity, CPS token, login state, keys.

A session lives from the first operation on a card to its removal (or a timeout). Its CPS token (the
backend's `CpsToken`) is built on first use; every call into it runs on the session's own worker
thread, so one card sees one operation at a time whatever the backend, and the event loop never
blocks on a card.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from smartcard import scard

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo, Practitioner
from bridge.cards.cps_token import CpsToken
from bridge.cards.identify import CardIdentity
from bridge.pcsc.connection import CardConnection

__all__ = ["CardPractitioner", "CardSession", "Issuers", "card_left", "discard_result"]

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


@dataclass(eq=False)
class CardSession:
    """An open card and what the drivers learnt about it."""

    reader: str
    connection: CardConnection
    atr: bytes
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # set when the monitor reports the card left
    identity: CardIdentity | None = None
    token: CpsToken | None = None  # the CPS backend's token, built on first CPS operation
    info: CpsCardInfo | None = None
    situations: tuple[Situation, ...] | None = None  # set by a successful login, cleared by logout
    selected: int | None = None  # index of the chosen situation
    keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey] | None = None
    #: One thread per card for CPS token calls: they block (PC/SC worker or PKCS#11 module).
    worker: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cps-token")
    )

    def logged_out(self) -> None:
        """Forget what only a verified PIN gave."""
        self.situations, self.selected, self.keys = None, None, None


def discard_result(job: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned job's outcome so asyncio does not report it as never retrieved."""
    if not job.cancelled():
        job.exception()


def card_left(reader: str, timeout: float) -> bool:
    """Block until pcscd reports `reader` without a card (True), or `timeout` seconds pass (False).

    For a failure whose cause a backend does not tell: the Cryptolib answers CKR_GENERAL_ERROR when the
    card is pulled during C_Login, and pcscd notices the removal at its next poll, a moment later. This
    waits on pcscd's own notification (SCardGetStatusChange), not on a timer.
    """
    hr, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != scard.SCARD_S_SUCCESS:
        return False
    try:
        state = scard.SCARD_STATE_UNAWARE
        remaining = int(timeout * 1000)
        while True:
            hr, states = scard.SCardGetStatusChange(context, remaining, [(reader, state)])
            if hr != scard.SCARD_S_SUCCESS:
                return bool(hr == scard.SCARD_E_UNKNOWN_READER)  # the reader itself went away
            event = states[0][1]
            if not event & scard.SCARD_STATE_PRESENT:
                return True
            if state != scard.SCARD_STATE_UNAWARE and event & scard.SCARD_STATE_CHANGED == 0:
                return False
            state = event & ~scard.SCARD_STATE_CHANGED
    finally:
        scard.SCardReleaseContext(context)
