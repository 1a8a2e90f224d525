"""One card in one reader, as the card service keeps it: connection, identity, CPS token, login state, keys.

A session lives from the first operation on a card to its removal (or a timeout). Its CPS token (the
backend's `CpsToken`) is built on first use; every call into it runs on the session's own worker
thread, so one card sees one operation at a time whatever the backend, and the event loop never
blocks on a card.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards.cps_data import Situation
from bridge.cards.cps_info import CpsCardInfo
from bridge.cards.cps_token import CpsToken
from bridge.cards.identify import CardIdentity
from bridge.pcsc.connection import CardConnection

__all__ = ["CardSession"]


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
