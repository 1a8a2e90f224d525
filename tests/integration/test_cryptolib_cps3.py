"""The official Cryptolib CPS judges the virtual CPS3 with its own PKCS#11 calls (python-pkcs11).

Token and serial, the PIN counter in the token flags (a wrong PIN, last try, blocked), login with
1234, every label of the external specification's table 3 (situations and CPS_SIT_FACT only after
login), each object's value equal to the card's, and both keys' signatures verified with the
certificates: CKM_SHA256_RSA_PKCS on the signature key, CKM_RSA_PKCS over a DigestInfo on the
authentication key.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11e

from bridge.cards.pkcs11_module import Pkcs11Module
from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import Cps3Emulator, create_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.cryptolib_fixtures import cryptolib, cryptolib_install, cryptolib_module, token_slot

__all__ = ["cryptolib", "cryptolib_install", "cryptolib_module", "pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.cryptolib]
READER0 = "Virtual PCD 00 00"
PUBLIC_LABELS = {"CPS_DATA", "CPS_ID_CARD", "CPS_NAME_PS", "CPS_LANG_PS", "CPS_INFO_PS"}
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
PIN_FLAGS = TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY | TokenFlag.USER_PIN_LOCKED


async def _insert(slots: list[VirtualSlot], pki: TestPki, profile: str) -> Cps3Emulator:
    card = create_card(profile, pki)
    slots[0].insert(card)
    await asyncio.to_thread(wait_card_state, READER0, True)
    return card


def _pin_flags(module: Pkcs11Module) -> TokenFlag:
    return token_slot(module, READER0).get_token().flags & PIN_FLAGS


def _file(card: Cps3Emulator, fid: int) -> bytes:
    ias = next(c for c in card.mf.children if c.fid == 0x0001)
    return next(c.data for c in ias.children if c.fid == fid)


def _exercise_gp(module: Pkcs11Module, card: Cps3Emulator) -> None:
    token = token_slot(module, READER0).get_token()
    assert token.serial.decode().strip() == card.profile.card_number[:8]
    assert token.model.strip() == "IAS ECC" and token.manufacturer_id.strip() == "ANS"
    with pytest.raises(p11e.PinIncorrect):
        token.open(user_pin="0000")
    assert card.tries_left == 2 and _pin_flags(module) == TokenFlag.USER_PIN_COUNT_LOW
    with token.open() as public:
        labels = {o[Attribute.LABEL] for o in public.get_objects({Attribute.CLASS: ObjectClass.DATA})}
        assert labels >= PUBLIC_LABELS and not any(label.startswith("CPS_ACTIVITY") for label in labels)
        (name_ps,) = public.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: "CPS_NAME_PS"})
        assert name_ps[Attribute.VALUE] == _file(card, 0xD002)
    with token.open(user_pin="1234") as session:
        assert card.tries_left == 3 and _pin_flags(module) == TokenFlag(0)
        data = {o[Attribute.LABEL]: o for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA})}
        assert {
            "CPS_ACTIVITY_01_PS",
            "CPS_ACTIVITY_03_PS",
            "CPS_SIT_FACT",
        } <= data.keys() and data.keys() >= PUBLIC_LABELS
        assert data["CPS_ACTIVITY_03_PS"][Attribute.VALUE] == _file(card, 0xD122)
        assert data["CPS_SIT_FACT"][Attribute.VALUE] == card.cps2ter.files[(0x7F01, 0x4000)]

        message = b"<ds:SignedInfo>contenu a signer</ds:SignedInfo>" * 5
        keys = {k[Attribute.ID]: k for k in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})}
        signature = keys[b"\x02"].sign(message, mechanism=Mechanism.SHA256_RSA_PKCS)
        sign_public = card.certs.sign.certificate.public_key()
        assert isinstance(sign_public, rsa.RSAPublicKey)
        sign_public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        sha1_signature = keys[b"\x02"].sign(message, mechanism=Mechanism.SHA1_RSA_PKCS)  # VIHF --sha1, XAdES SHA-1
        sign_public.verify(sha1_signature, message, padding.PKCS1v15(), hashes.SHA1())

        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(b"TLS handshake").digest()
        auth_signature = keys[b"\x01"].sign(digest_info, mechanism=Mechanism.RSA_PKCS)
        auth_public = card.certs.auth.certificate.public_key()
        assert isinstance(auth_public, rsa.RSAPublicKey)
        auth_public.verify(auth_signature, b"TLS handshake", padding.PKCS1v15(), hashes.SHA256())


async def test_gp_token_pin_labels_values_and_both_signatures(
    slots: list[VirtualSlot], pki: TestPki, cryptolib_module: Pkcs11Module
) -> None:
    card = await _insert(slots, pki, "gp")
    await asyncio.to_thread(_exercise_gp, cryptolib_module, card)


@pytest.mark.parametrize(
    ("profile", "flags"),
    [
        ("last-try", TokenFlag.USER_PIN_COUNT_LOW | TokenFlag.USER_PIN_FINAL_TRY),
        ("blocked", TokenFlag.USER_PIN_LOCKED),
        ("expired", TokenFlag(0)),
    ],
)
async def test_pin_state_of_each_profile(
    slots: list[VirtualSlot], pki: TestPki, cryptolib_module: Pkcs11Module, profile: str, flags: TokenFlag
) -> None:
    card = await _insert(slots, pki, profile)

    def check() -> None:
        assert _pin_flags(cryptolib_module) == flags
        token = token_slot(cryptolib_module, READER0).get_token()
        if flags & TokenFlag.USER_PIN_LOCKED:
            with pytest.raises(p11e.PinLocked):
                token.open(user_pin="1234")
            return
        with token.open(user_pin="1234") as session:
            labels = {o[Attribute.LABEL] for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA})}
            assert "CPS_ACTIVITY_01_PS" in labels
        assert card.tries_left == card.tries_max

    await asyncio.to_thread(check)


@pytest.mark.parametrize("profile", ["gp", "expired"])
async def test_pcsc_driver_and_cryptolib_read_the_same_values(
    slots: list[VirtualSlot], pki: TestPki, cryptolib_module: Pkcs11Module, profile: str
) -> None:
    """The built-in PC/SC path and the Cryptolib side by side: equal serial, holder, certificates, situations."""
    from dataclasses import replace

    from bridge.cards.cps3 import Cps3Card
    from bridge.cards.pkcs11_cps import Pkcs11CpsToken
    from bridge.pcsc.connection import CardConnection

    await _insert(slots, pki, profile)

    def through_cryptolib() -> tuple[object, object]:
        token = Pkcs11CpsToken(cryptolib_module, token_slot(cryptolib_module, READER0))
        info = token.read_public()
        token.login(bytearray(b"1234"))
        try:
            return info, token.read_situations()
        finally:
            token.logout()

    p11_info, p11_situations = await asyncio.to_thread(through_cryptolib)
    conn = await CardConnection.open(READER0)
    try:
        session = Cps3Card()
        pcsc_info = await conn.run(session.read_public)
        pin = bytearray(b"1234")
        await conn.run(lambda ch: session.verify_pin(ch, pin))
        pcsc_situations = await conn.run(session.read_situations)
        await conn.run(session.logout)
    finally:
        await conn.close()
    assert pcsc_info.backend == "pcsc" and p11_info.backend == "pkcs11"
    assert replace(pcsc_info, backend="pkcs11") == p11_info
    assert pcsc_situations == p11_situations and len(pcsc_situations) >= 1
