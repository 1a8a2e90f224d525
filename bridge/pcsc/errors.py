"""PC/SC failures as typed BridgeErrors: one table maps every PC/SC return code to a class and an ErrorCode.

The return codes are the standard winscard values (the same on pcsc-lite, macOS and Windows), written out
here so that this module stays pure and is unit-tested without pyscard.
"""

from __future__ import annotations

import enum

from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.t0 import TransportError

__all__ = [
    "CardCommunicationError",
    "CardProtocolError",
    "CardRemovedError",
    "CardResetError",
    "NoCardError",
    "NoReaderError",
    "PcscError",
    "PcscTimeoutError",
    "PcscUnavailableError",
    "ResultCode",
    "SharingViolationError",
    "UnsupportedCardError",
    "error_from_hresult",
    "error_from_transport",
    "is_service_lost",
]


class ResultCode(enum.IntEnum):
    """PC/SC return codes (winscard.h / pcsclite.h), as unsigned 32-bit values."""

    SCARD_S_SUCCESS = 0x00000000
    SCARD_F_INTERNAL_ERROR = 0x80100001
    SCARD_E_CANCELLED = 0x80100002
    SCARD_E_INVALID_HANDLE = 0x80100003
    SCARD_E_INVALID_PARAMETER = 0x80100004
    SCARD_E_INVALID_TARGET = 0x80100005
    SCARD_E_NO_MEMORY = 0x80100006
    SCARD_F_WAITED_TOO_LONG = 0x80100007
    SCARD_E_INSUFFICIENT_BUFFER = 0x80100008
    SCARD_E_UNKNOWN_READER = 0x80100009
    SCARD_E_TIMEOUT = 0x8010000A
    SCARD_E_SHARING_VIOLATION = 0x8010000B
    SCARD_E_NO_SMARTCARD = 0x8010000C
    SCARD_E_UNKNOWN_CARD = 0x8010000D
    SCARD_E_CANT_DISPOSE = 0x8010000E
    SCARD_E_PROTO_MISMATCH = 0x8010000F
    SCARD_E_NOT_READY = 0x80100010
    SCARD_E_INVALID_VALUE = 0x80100011
    SCARD_E_SYSTEM_CANCELLED = 0x80100012
    SCARD_F_COMM_ERROR = 0x80100013
    SCARD_F_UNKNOWN_ERROR = 0x80100014
    SCARD_E_INVALID_ATR = 0x80100015
    SCARD_E_NOT_TRANSACTED = 0x80100016
    SCARD_E_READER_UNAVAILABLE = 0x80100017
    SCARD_P_SHUTDOWN = 0x80100018
    SCARD_E_PCI_TOO_SMALL = 0x80100019
    SCARD_E_READER_UNSUPPORTED = 0x8010001A
    SCARD_E_DUPLICATE_READER = 0x8010001B
    SCARD_E_CARD_UNSUPPORTED = 0x8010001C
    SCARD_E_NO_SERVICE = 0x8010001D
    SCARD_E_SERVICE_STOPPED = 0x8010001E
    SCARD_E_UNEXPECTED = 0x8010001F
    SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
    SCARD_E_SERVER_TOO_BUSY = 0x80100031
    SCARD_W_UNSUPPORTED_CARD = 0x80100065
    SCARD_W_UNRESPONSIVE_CARD = 0x80100066
    SCARD_W_UNPOWERED_CARD = 0x80100067
    SCARD_W_RESET_CARD = 0x80100068
    SCARD_W_REMOVED_CARD = 0x80100069


class PcscError(BridgeError):
    """A PC/SC call failed; `hresult` is the raw return code (0 when the failure was not a return code)."""

    default_code = ErrorCode.INTERNAL

    def __init__(self, detail: str | None = None, *, hresult: int = 0) -> None:
        super().__init__(self.default_code, detail)
        self.hresult = hresult


class NoReaderError(PcscError):
    """The named reader does not exist (any more), or there is no reader at all."""

    default_code = ErrorCode.NO_READER


class NoCardError(PcscError):
    """The reader is empty (or the connection to the card is already gone)."""

    default_code = ErrorCode.NO_CARD


class CardRemovedError(PcscError):
    """The card left the reader during the operation."""

    default_code = ErrorCode.CARD_REMOVED


class CardResetError(PcscError):
    """Another program reset the card: its security state (verified PIN, selected application) is lost."""

    default_code = ErrorCode.CARD_RESET


class SharingViolationError(PcscError):
    """Another program holds the card exclusively."""

    default_code = ErrorCode.SHARING_VIOLATION


class PcscUnavailableError(PcscError):
    """The PC/SC service (pcscd) is not running or went away."""

    default_code = ErrorCode.PCSC_UNAVAILABLE


class PcscTimeoutError(PcscError):
    """A PC/SC call timed out."""

    default_code = ErrorCode.TIMEOUT


class UnsupportedCardError(PcscError):
    """The reader cannot talk to this card (ATR or protocol not supported)."""

    default_code = ErrorCode.UNSUPPORTED_CARD


class CardCommunicationError(PcscError):
    """The exchange with the card failed at the reader (mute card, broken transmission)."""

    default_code = ErrorCode.CARD_ERROR


class CardProtocolError(PcscError):
    """The card broke the transport rules (e.g. endless 61xx): a remote protocol error."""

    default_code = ErrorCode.CARD_ERROR


R = ResultCode
# One table, as data: return code -> error class. Codes missing here become a plain PcscError (INTERNAL).
_HRESULT_CLASSES: dict[int, type[PcscError]] = {
    R.SCARD_E_NO_READERS_AVAILABLE: NoReaderError,
    R.SCARD_E_UNKNOWN_READER: NoReaderError,
    R.SCARD_E_READER_UNAVAILABLE: NoReaderError,
    R.SCARD_E_NO_SMARTCARD: NoCardError,
    R.SCARD_W_REMOVED_CARD: CardRemovedError,
    R.SCARD_W_RESET_CARD: CardResetError,
    R.SCARD_E_SHARING_VIOLATION: SharingViolationError,
    R.SCARD_E_NO_SERVICE: PcscUnavailableError,
    R.SCARD_E_SERVICE_STOPPED: PcscUnavailableError,
    # pcsc-lite's client answers F_COMM_ERROR when its socket to pcscd breaks in the middle of a call.
    R.SCARD_F_COMM_ERROR: PcscUnavailableError,
    R.SCARD_E_SERVER_TOO_BUSY: PcscUnavailableError,
    R.SCARD_P_SHUTDOWN: PcscUnavailableError,
    R.SCARD_E_TIMEOUT: PcscTimeoutError,
    R.SCARD_F_WAITED_TOO_LONG: PcscTimeoutError,
    R.SCARD_W_UNSUPPORTED_CARD: UnsupportedCardError,
    R.SCARD_E_CARD_UNSUPPORTED: UnsupportedCardError,
    R.SCARD_E_PROTO_MISMATCH: UnsupportedCardError,
    R.SCARD_E_INVALID_ATR: UnsupportedCardError,
    R.SCARD_E_UNKNOWN_CARD: UnsupportedCardError,
    R.SCARD_W_UNRESPONSIVE_CARD: CardCommunicationError,
    R.SCARD_W_UNPOWERED_CARD: CardCommunicationError,
    R.SCARD_E_NOT_TRANSACTED: CardCommunicationError,
}
del R

_SERVICE_LOST = frozenset(
    {
        ResultCode.SCARD_E_NO_SERVICE,
        ResultCode.SCARD_E_SERVICE_STOPPED,
        ResultCode.SCARD_F_COMM_ERROR,
        ResultCode.SCARD_E_SERVER_TOO_BUSY,
        ResultCode.SCARD_P_SHUTDOWN,
        # A context from before a pcscd restart is unknown to the new daemon.
        ResultCode.SCARD_E_INVALID_HANDLE,
    }
)


def _name(hresult: int) -> str:
    try:
        return ResultCode(hresult).name
    except ValueError:
        return "PC/SC error"


def error_from_hresult(hresult: int, what: str) -> PcscError:
    """The typed error for a failed PC/SC call; `what` names the call (never secret data).

    Args:
        hresult: the return code, signed or unsigned (pyscard may give either).
        what: short description of the failed step, e.g. "SCardConnect Virtual PCD 00 00".
    Returns:
        an instance of the PcscError subclass matching the code (plain PcscError, code INTERNAL, if unknown).
    """
    code = hresult & 0xFFFFFFFF
    cls = _HRESULT_CLASSES.get(code, PcscError)
    return cls(f"{what}: {_name(code)} ({code:#010x})", hresult=code)


def error_from_transport(exc: TransportError, what: str = "transmit") -> CardProtocolError:
    """The BridgeError for a card that broke the T=0/chaining rules (t0.TransportError stays pure)."""
    return CardProtocolError(f"{what}: {exc}")


def is_service_lost(hresult: int) -> bool:
    """True when the return code means the context is dead because pcscd stopped or restarted."""
    return (hresult & 0xFFFFFFFF) in _SERVICE_LOST
