"""The PC/SC return code table: each code gives the right class and the right stable ErrorCode."""

from __future__ import annotations

import pytest
from smartcard import scard

from bridge.errors import BridgeError, ErrorCode, to_bridge_error
from bridge.pcsc.errors import (
    CardCommunicationError,
    CardProtocolError,
    CardRemovedError,
    CardResetError,
    NoCardError,
    NoReaderError,
    PcscError,
    PcscTimeoutError,
    PcscUnavailableError,
    ResultCode,
    SharingViolationError,
    UnsupportedCardError,
    error_from_hresult,
    error_from_transport,
    is_service_lost,
)
from bridge.pcsc.t0 import TransportError

TABLE = [
    ("SCARD_E_NO_READERS_AVAILABLE", NoReaderError, ErrorCode.NO_READER),
    ("SCARD_E_UNKNOWN_READER", NoReaderError, ErrorCode.NO_READER),
    ("SCARD_E_READER_UNAVAILABLE", NoReaderError, ErrorCode.NO_READER),
    ("SCARD_E_NO_SMARTCARD", NoCardError, ErrorCode.NO_CARD),
    ("SCARD_W_REMOVED_CARD", CardRemovedError, ErrorCode.CARD_REMOVED),
    ("SCARD_W_RESET_CARD", CardResetError, ErrorCode.CARD_RESET),
    ("SCARD_E_SHARING_VIOLATION", SharingViolationError, ErrorCode.SHARING_VIOLATION),
    ("SCARD_E_NO_SERVICE", PcscUnavailableError, ErrorCode.PCSC_UNAVAILABLE),
    ("SCARD_E_SERVICE_STOPPED", PcscUnavailableError, ErrorCode.PCSC_UNAVAILABLE),
    ("SCARD_F_COMM_ERROR", PcscUnavailableError, ErrorCode.PCSC_UNAVAILABLE),
    ("SCARD_E_TIMEOUT", PcscTimeoutError, ErrorCode.TIMEOUT),
    ("SCARD_F_WAITED_TOO_LONG", PcscTimeoutError, ErrorCode.TIMEOUT),
    ("SCARD_W_UNSUPPORTED_CARD", UnsupportedCardError, ErrorCode.UNSUPPORTED_CARD),
    ("SCARD_E_PROTO_MISMATCH", UnsupportedCardError, ErrorCode.UNSUPPORTED_CARD),
    ("SCARD_W_UNRESPONSIVE_CARD", CardCommunicationError, ErrorCode.CARD_ERROR),
    ("SCARD_E_NOT_TRANSACTED", CardCommunicationError, ErrorCode.CARD_ERROR),
    ("SCARD_E_INVALID_PARAMETER", PcscError, ErrorCode.INTERNAL),
]


@pytest.mark.parametrize(("name", "cls", "code"), TABLE)
def test_hresult_maps_to_class_and_code(name: str, cls: type[PcscError], code: ErrorCode) -> None:
    hresult = getattr(scard, name)  # the real value pyscard hands us
    err = error_from_hresult(hresult, "SCardConnect Virtual PCD 00 00")
    assert type(err) is cls
    assert isinstance(err, BridgeError)
    assert err.code is code
    assert err.hresult == hresult & 0xFFFFFFFF
    assert err.detail == f"SCardConnect Virtual PCD 00 00: {name} ({hresult & 0xFFFFFFFF:#010x})"
    assert to_bridge_error(err) is err  # reaches callers as is, with its own code


@pytest.mark.parametrize("code", list(ResultCode))
def test_our_table_agrees_with_pyscard(code: ResultCode) -> None:
    assert getattr(scard, code.name) & 0xFFFFFFFF == code.value


def test_signed_hresult_is_accepted() -> None:
    signed = ResultCode.SCARD_W_REMOVED_CARD.value - (1 << 32)
    assert type(error_from_hresult(signed, "x")) is CardRemovedError


def test_unknown_hresult_is_internal_without_name() -> None:
    err = error_from_hresult(0x80100099, "SCardTransmit")
    assert type(err) is PcscError
    assert err.code is ErrorCode.INTERNAL
    assert err.detail == "SCardTransmit: PC/SC error (0x80100099)"


def test_transport_error_maps_to_card_error() -> None:
    err = error_from_transport(TransportError("card keeps answering 61xx"))
    assert isinstance(err, CardProtocolError)
    assert err.code is ErrorCode.CARD_ERROR
    assert err.to_data()["detail"] == "transmit: card keeps answering 61xx"


@pytest.mark.parametrize(
    ("name", "lost"),
    [
        ("SCARD_E_NO_SERVICE", True),
        ("SCARD_E_SERVICE_STOPPED", True),
        ("SCARD_F_COMM_ERROR", True),
        ("SCARD_E_INVALID_HANDLE", True),
        ("SCARD_E_TIMEOUT", False),
        ("SCARD_E_CANCELLED", False),
        ("SCARD_W_REMOVED_CARD", False),
    ],
)
def test_service_lost(name: str, lost: bool) -> None:
    assert is_service_lost(getattr(scard, name)) is lost
