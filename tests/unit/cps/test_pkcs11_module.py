"""Finding the Cryptolib, mapping PKCS#11 errors, reading token flags and the card generation (no module needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pkcs11 import TokenFlag
from pkcs11 import exceptions as p11e

from bridge.cards.cps_info import PinStatus
from bridge.cards.pkcs11_cps import CPS3_ATR, CPS4_ATRS, generation_of, pin_status_from_flags
from bridge.cards.pkcs11_module import (
    ENV_MODULE,
    CryptolibNotFound,
    candidate_paths,
    find_module,
    load_module,
    map_pkcs11_error,
)
from bridge.errors import BridgeError, ErrorCode


def test_default_locations_per_platform() -> None:
    linux = candidate_paths("linux", {})
    assert linux[0] == "/opt/santesocial/CPS/lib/libcps3_pkcs11_lux.so"
    assert "/usr/lib64/libcps3_pkcs11_lux.so" in linux
    assert candidate_paths("darwin", {}) == ("/usr/local/lib/libcps3_pkcs11_osx.dylib",)
    windows = candidate_paths("win32", {"WINDIR": r"D:\Windows"})
    assert windows[0].startswith("D:\\Windows\\") and "cps3_pkcs11_w" in windows[0]


def test_configured_path_wins_and_must_exist(tmp_path: Path) -> None:
    module = tmp_path / "libcps3_pkcs11_lux.so"
    module.write_bytes(b"")
    assert find_module(module, env={}) == module
    assert find_module(None, env={ENV_MODULE: str(module)}) == module
    with pytest.raises(CryptolibNotFound) as caught:
        find_module(tmp_path / "absent.so", env={})
    assert caught.value.tried == (str(tmp_path / "absent.so"),)


def test_absent_everywhere_says_so_in_french(tmp_path: Path) -> None:
    with pytest.raises(CryptolibNotFound) as caught:
        find_module(None, platform="darwin", env={})
    error = caught.value
    assert error.message_fr.startswith("Cryptolib CPS introuvable")
    assert "/usr/local/lib/libcps3_pkcs11_osx.dylib" in error.message_fr
    assert error.to_data()["code"] == "UNSUPPORTED_CARD"
    with pytest.raises(CryptolibNotFound):
        load_module(tmp_path / "nothing.so")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (p11e.PinIncorrect, ErrorCode.PIN_INCORRECT),
        (p11e.PinLocked, ErrorCode.PIN_BLOCKED),
        (p11e.DeviceRemoved, ErrorCode.CARD_REMOVED),
        (p11e.SessionHandleInvalid, ErrorCode.CARD_REMOVED),
        (p11e.TokenNotPresent, ErrorCode.NO_CARD),
        (p11e.TokenNotRecognised, ErrorCode.UNSUPPORTED_CARD),
        (p11e.UserNotLoggedIn, ErrorCode.PIN_REQUIRED),
        (p11e.SlotIDInvalid, ErrorCode.NO_READER),
        (p11e.DeviceError, ErrorCode.CARD_ERROR),
        (p11e.GeneralError, ErrorCode.CARD_ERROR),
    ],
)
def test_error_mapping(exc: type[p11e.PKCS11Error], code: ErrorCode) -> None:
    error = map_pkcs11_error(exc(), "C_Sign")
    assert isinstance(error, BridgeError)
    assert error.code is code
    assert error.detail == f"C_Sign: {exc.__name__}"
    assert error.message_fr  # from the one error table


@pytest.mark.parametrize(
    ("flags", "left"),
    [
        (TokenFlag.USER_PIN_INITIALIZED, 3),
        (TokenFlag.USER_PIN_COUNT_LOW, 2),
        (TokenFlag.USER_PIN_FINAL_TRY, 1),
        (TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY, 1),
        (TokenFlag.USER_PIN_LOCKED, 0),
        (TokenFlag.USER_PIN_LOCKED | TokenFlag.USER_PIN_FINAL_TRY, 0),
    ],
)
def test_tries_from_token_flags(flags: int, left: int) -> None:
    assert pin_status_from_flags(int(flags)) == PinStatus(left, 3)


def test_generation() -> None:
    assert generation_of("IAS ECC") == "CPS3"
    assert generation_of("ChipDoc        ") == "CPS4"
    assert generation_of("NXP") == "CPS4"
    assert generation_of("", CPS3_ATR) == "CPS3"
    masked = bytearray(CPS3_ATR)
    masked[1] ^= 0xFF  # under the Cryptolib's CPS3 mask
    assert generation_of("", bytes(masked)) == "CPS3"
    for atr in CPS4_ATRS:
        assert generation_of("SoftHSM v2", atr) == "CPS4"
    with pytest.raises(BridgeError) as caught:
        generation_of("SoftHSM v2", bytes.fromhex("3B8F800180318065B0850300EF120FFF82900073"))
    assert caught.value.code is ErrorCode.UNSUPPORTED_CARD
