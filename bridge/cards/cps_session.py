"""What a PC/SC CPS session knows, for both drivers (CPS3 IAS-ECC and CPS4 ChipDoc): its state, the operations.

Each driver keeps its own table of allowed operations per state (`ALLOWED` in `bridge.cards.cps3`
and `bridge.cards.cps4`): the cards differ in what they answer before identification or when blocked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.cards.pkcs15_layout import CardLayout
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey, SignMessagePss
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel

__all__ = ["CardState", "CardStateError", "CpsSession", "KeyCard", "Operation", "Runner", "card_keys_of"]

T = TypeVar("T")


class CardState(enum.Enum):
    """Where a CPS session stands (as the driver knows it)."""

    #: Nothing read yet: not known to be a CPS of this generation.
    NEW = "new"
    #: Identified; the PIN is not verified by this session (another may have: the card decides).
    READY = "ready"
    #: The PIN was verified by this session.
    AUTHENTICATED = "authenticated"
    #: The PIN is blocked: only public data can be read.
    BLOCKED = "blocked"


class Operation(enum.Enum):
    """What a caller can ask of the card."""

    IDENTIFY = "identify"
    READ_PUBLIC = "read_public"
    PIN_STATUS = "pin_status"
    VERIFY_PIN = "verify_pin"
    LOGOUT = "logout"
    READ_SITUATIONS = "read_situations"
    SIGN = "sign"


class CardStateError(BridgeError):
    """An operation asked in a state that does not allow it (blocked card, or a caller's bug)."""

    def __init__(self, state: CardState, operation: Operation) -> None:
        detail = f"{operation.value} not allowed in state {state.value}"
        if state is CardState.BLOCKED:
            super().__init__(ErrorCode.PIN_BLOCKED, detail, triesLeft=0)
        else:
            super().__init__(ErrorCode.INTERNAL, detail)  # the caller skipped a step: our bug
        self.state = state
        self.operation = operation


class CpsSession:
    """What a driver session knows of its card, and the check of each operation against its state.

    Each driver gives its table of allowed operations per state (`allowed`): the cards differ in what
    they answer before identification or when blocked.
    """

    allowed: ClassVar[Mapping[CardState, frozenset[Operation]]]

    def __init__(self) -> None:
        self.state = CardState.NEW
        self.serial: str | None = None
        self._layout: CardLayout | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(state={self.state.value})"

    def _require(self, operation: Operation) -> None:
        if operation not in self.allowed[self.state]:
            raise CardStateError(self.state, operation)

    def reset(self) -> None:
        """The card was reset or re-inserted: forget what we knew (the PIN status, the selections)."""
        self.state = CardState.NEW
        self.serial = None
        self._layout = None


class Runner(Protocol):
    """Runs a function on the card's worker thread and blocks the calling (non-loop) thread for its result."""

    def __call__(self, fn: Callable[[CardChannel], T], /) -> T:
        """Run `fn(channel)` on the card and return its result (or raise its error)."""


class KeyCard(Protocol):
    """What a CPS driver session offers for its keys (`Cps3Card`, `Cps4Card`)."""

    state: CardState

    def identify(self, ch: CardChannel) -> str:
        """Read EF.SN.ICC (NEW -> READY)."""

    def read_certificates(self, ch: CardChannel) -> tuple[x509.Certificate, x509.Certificate]:
        """The (authentication, signature) certificates."""

    def sign_digest(self, ch: CardChannel, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign a digest with the authentication key."""

    def sign_message(self, ch: CardChannel, message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Sign a whole message with the signature key (PKCS#1 v1.5)."""


def card_keys_of(
    runner: Runner, session: KeyCard, *, generation: str, sign_message_pss: SignMessagePss | None = None
) -> tuple[CardRsaPrivateKey, CardRsaMessageKey]:
    """The (authentication, signature) keys of `session`'s card as `cryptography` objects; reads the certificates now.

    Each private operation calls `runner`, which runs it on the card's worker thread and blocks the
    caller: never call these keys' `sign` from the event loop thread. UNSUPPORTED_CARD when a
    certificate's key is not RSA.
    """

    def read(ch: CardChannel) -> tuple[x509.Certificate, x509.Certificate]:
        if session.state is CardState.NEW:
            session.identify(ch)
        return session.read_certificates(ch)

    auth_cert, sign_cert = runner(read)
    auth_public, sign_public = auth_cert.public_key(), sign_cert.public_key()
    if not isinstance(auth_public, rsa.RSAPublicKey) or not isinstance(sign_public, rsa.RSAPublicKey):
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, f"{generation} keys are RSA")

    def sign_digest(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        return runner(lambda ch: session.sign_digest(ch, digest, algorithm))

    def sign_message(message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        return runner(lambda ch: session.sign_message(ch, message, algorithm))

    return (
        CardRsaPrivateKey(auth_public, sign_digest, label=f"{generation} authentication"),
        CardRsaMessageKey(
            sign_public, sign_message, label=f"{generation} signature", sign_message_pss=sign_message_pss
        ),
    )
