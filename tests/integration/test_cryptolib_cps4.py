"""The official ANS Cryptolib 5.2.2 judges the virtual CPS4, and the bridge's PC/SC driver reads the same values.

Over the tests' pcscd + vpcd: the token appears with its serial, wrong PINs show in the token flags,
login with 1234, every label of the external specification's table 3 is found (situations only after
login), C_Sign with CKM_SHA256_RSA_PKCS and CKM_SHA256_RSA_PKCS_PSS on the signature key and
CKM_RSA_PKCS over a DigestInfo on the authentication key verify with the certificates' public keys;
then `bridge.cards.cps4` reads the same card and finds the same serial, certificates and objects.
The Cryptolib's own PKCS#11 calls go through python-pkcs11 (`tests.cryptolib_fixtures`: loaded once
per process, it releases the GIL, so the virtual card answers from this process). Skips with the
reason when the Cryptolib cannot run here (no ../shared RPM, not root).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import MGF, Attribute, Mechanism, ObjectClass, Session, Token, TokenFlag
from pkcs11 import exceptions as p11e

from bridge.cards.cps4 import Cps4Card
from bridge.cards.cps_info import CpsCardInfo
from bridge.cards.pkcs11_module import Pkcs11Module
from bridge.crypto.digest_info import digest_info
from bridge.crypto.pki import TestPki
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.sim.cps3_profile import load_profile
from bridge.sim.cps4 import Cps4Emulator, create_card
from bridge.sim.cps4_files import serial_of
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.cryptolib_fixtures import cryptolib, cryptolib_install, cryptolib_module, token_slot

__all__ = ["cryptolib", "cryptolib_install", "cryptolib_module", "pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.cryptolib]
READER0 = "Virtual PCD 00 00"
T = TypeVar("T")
PIN_FLAGS = TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_LOCKED
PUBLIC_LABELS = {"CPS_DATA", "CPS_ID_CARD", "CPS_NAME_PS", "CPS_LANG_PS", "CPS_INFO_PS"} | {
    f"CPS2TER_{name}" for name in ("ATR", "ID", "ICC", "NAME", "LANG", "PSINFO", "DIRAMO")
}


def _private_labels(profile: str) -> set[str]:
    slots = [s.slot + 1 for s in load_profile(profile).situations]
    return {"CPS_SIT_FACT"} | {f"{prefix}_ACTIVITY_{n:02d}_PS" for n in slots for prefix in ("CPS", "CPS2TER")}


@dataclass
class VirtualToken:
    """One virtual CPS4 in reader 0, as the Cryptolib sees it."""

    card: Cps4Emulator
    module: Pkcs11Module

    def token(self) -> Token:
        return token_slot(self.module, READER0).get_token()

    def flags(self) -> TokenFlag:
        return self.token().flags


@pytest.fixture
def token(
    request: pytest.FixtureRequest, slots: list[VirtualSlot], pki: TestPki, cryptolib_module: Pkcs11Module
) -> Iterator[VirtualToken]:
    """The profile's virtual CPS4 inserted in reader 0 (the Cryptolib's cache is emptied by the fixture)."""
    card = create_card(request.param, pki)
    slots[0].insert(card)
    assert wait_card_state(READER0, present=True) == card.atr()
    yield VirtualToken(card, cryptolib_module)


async def _with_driver(fn: Callable[[CardChannel], T]) -> T:
    """Run `fn` with the bridge's PC/SC driver on reader 0."""
    conn = await CardConnection.open(READER0)
    try:
        return await conn.run(fn)
    finally:
        await conn.close()


def _data_objects(session: Session) -> dict[str, bytes]:
    return {
        o[Attribute.LABEL].strip(): bytes(o[Attribute.VALUE])
        for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA})
    }


def _certificates(session: Session) -> dict[bytes, x509.Certificate]:
    return {
        bytes(o[Attribute.ID]): x509.load_der_x509_certificate(bytes(o[Attribute.VALUE]))
        for o in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
    }


def _role(cert: x509.Certificate) -> str:
    return "sign" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment else "auth"


def _keys_and_certificates(session: Session) -> dict[str, tuple[Any, x509.Certificate]]:
    """'auth' and 'sign' -> (private key, its certificate), matched by CKA_ID as applications do."""
    certs = _certificates(session)
    pairs = {}
    for key in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
        cert = certs[bytes(key[Attribute.ID])]
        pairs[_role(cert)] = (key, cert)
    return pairs


def _public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _login_error(token: VirtualToken, pin: str) -> str:
    try:
        with token.token().open(user_pin=pin):
            return "ok"
    except (p11e.PinIncorrect, p11e.PinLocked) as exc:
        return type(exc).__name__


@pytest.mark.parametrize("token", ["gp", "last-try", "blocked", "expired"], indirect=True)
def test_token_present_with_serial_and_pin_flags(token: VirtualToken) -> None:
    info = token.token()
    assert info.serial.decode().strip() == serial_of(token.card.profile)
    assert info.label.strip() == f"CPS de {token.card.profile.holder.first_name} {token.card.profile.holder.last_name}"
    expected = {
        "gp": TokenFlag(0),
        "expired": TokenFlag(0),
        "last-try": TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY,  # 0 < 1 < 3 is "low" too
        "blocked": TokenFlag.USER_PIN_LOCKED,
    }[token.card.profile.name]
    assert token.flags() & PIN_FLAGS == expected
    assert token.flags() & TokenFlag.LOGIN_REQUIRED


@pytest.mark.parametrize("token", ["gp", "expired"], indirect=True)
async def test_wrong_pins_show_in_the_flags_then_1234_logs_in(token: VirtualToken) -> None:
    assert await asyncio.to_thread(_login_error, token, "0000") == "PinIncorrect"
    assert await asyncio.to_thread(token.flags) & TokenFlag.USER_PIN_COUNT_LOW
    assert (await _with_driver(Cps4Card().read_public)).pin.tries_left == 2
    assert await asyncio.to_thread(_login_error, token, "0000") == "PinIncorrect"
    assert await asyncio.to_thread(token.flags) & TokenFlag.USER_PIN_FINAL_TRY
    assert await asyncio.to_thread(_login_error, token, "1234") == "ok"
    # the Cryptolib's logout sends nothing; the driver's identification re-selects ChipDoc, which drops the PIN
    assert (await _with_driver(Cps4Card().read_public)).pin.tries_left == 3


@pytest.mark.parametrize("token", ["last-try"], indirect=True)
def test_last_wrong_pin_locks(token: VirtualToken) -> None:
    assert _login_error(token, "0000") in ("PinIncorrect", "PinLocked")
    assert token.flags() & TokenFlag.USER_PIN_LOCKED
    assert _login_error(token, "1234") == "PinLocked"


@pytest.mark.parametrize("token", ["blocked"], indirect=True)
def test_blocked_card_refuses_login(token: VirtualToken) -> None:
    assert _login_error(token, "1234") == "PinLocked"
    assert token.flags() & TokenFlag.USER_PIN_LOCKED


@pytest.mark.parametrize("token", ["gp", "last-try", "expired"], indirect=True)
def test_every_label_then_signatures_with_both_keys(token: VirtualToken) -> None:
    profile = token.card.profile.name
    with token.token().open() as public:
        assert set(_data_objects(public)) == PUBLIC_LABELS  # situations stay hidden before login
    with token.token().open(user_pin="1234") as session:
        assert set(_data_objects(session)) == PUBLIC_LABELS | _private_labels(profile)
        keys = _keys_and_certificates(session)
        assert keys["auth"][1] == token.card.certs.auth.certificate
        assert keys["sign"][1] == token.card.certs.sign.certificate

        message = b"<ds:SignedInfo>" + b"x" * 300 + b"</ds:SignedInfo>"
        sign_key, sign_cert = keys["sign"]
        signature = sign_key.sign(message, mechanism=Mechanism.SHA256_RSA_PKCS)
        _public(sign_cert).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

        pss = sign_key.sign(
            message, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32)
        )
        _public(sign_cert).verify(pss, message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())

        auth_key, auth_cert = keys["auth"]
        h = hashes.Hash(hashes.SHA256())
        h.update(message)
        digest = h.finalize()
        signature = auth_key.sign(digest_info(digest, hashes.SHA256()), mechanism=Mechanism.RSA_PKCS)
        _public(auth_cert).verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


@pytest.mark.parametrize("token", ["gp", "last-try", "blocked", "expired"], indirect=True)
async def test_the_pcsc_driver_reads_the_same_values(token: VirtualToken) -> None:
    can_login = token.card.profile.name != "blocked"

    def through_cryptolib() -> tuple[dict[str, bytes], dict[str, x509.Certificate], str]:
        tok = token.token()
        with tok.open(user_pin="1234" if can_login else None) as session:
            objects = _data_objects(session)
            # private keys are hidden without login: tell the certificates apart by their usage
            certificates = {_role(cert): cert for cert in _certificates(session).values()}
        return objects, certificates, tok.serial.decode().strip()

    objects, certificates, serial = await asyncio.to_thread(through_cryptolib)

    def read(ch: CardChannel) -> tuple[CpsCardInfo, dict[str, bytes]]:
        driver = Cps4Card()
        info = driver.read_public(ch)
        if can_login:
            driver.verify_pin(ch, bytearray(b"1234"))
        return info, {label: driver.read_object(ch, label) for label in objects}

    # the Cryptolib's logout sends nothing, so the card may still hold the PIN: the driver re-selects ChipDoc
    info, values = await _with_driver(read)
    assert info.serial == serial == serial_of(token.card.profile)
    assert info.auth_certificate == certificates["auth"] and info.sign_certificate == certificates["sign"]
    assert values == objects
    assert set(values) == PUBLIC_LABELS | (_private_labels(token.card.profile.name) if can_login else set())
