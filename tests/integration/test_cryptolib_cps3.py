"""The official Cryptolib CPS judges the virtual CPS3: token, PIN counter, every label, both keys' signatures."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.cryptolib_fixtures import cryptolib, cryptolib_install, pkcs11_lib, token_slot
from tests.cryptolib_harness import CryptolibInstall

__all__ = ["cryptolib", "cryptolib_install", "pkcs11_lib", "pki"]

pytestmark = pytest.mark.pcsc
READER0 = "Virtual PCD 00 00"
PUBLIC_LABELS = {"CPS_DATA", "CPS_ID_CARD", "CPS_NAME_PS", "CPS_LANG_PS", "CPS_INFO_PS"}
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _insert(slots: list[VirtualSlot], pki: TestPki, profile: str) -> Any:
    card = create_card(profile, pki)
    slots[0].insert(card)
    wait_card_state(READER0, present=True)
    return card


def _labels(lib: Any, session: Any) -> set[str]:
    import PyKCS11

    found = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA)])
    return {str(session.getAttributeValue(o, [PyKCS11.CKA_LABEL])[0]) for o in found}


def _flags(lib: Any, slot: int) -> int:
    return int(lib.getTokenInfo(slot).flags)


async def test_gp_token_pin_labels_and_both_signatures(
    slots: list[VirtualSlot], pki: TestPki, pkcs11_lib: Any, cryptolib: CryptolibInstall
) -> None:
    import PyKCS11

    card = await asyncio.to_thread(_insert, slots, pki, "gp")
    lib = pkcs11_lib
    slot = token_slot(lib, READER0)
    info = lib.getTokenInfo(slot)
    assert info.serialNumber.strip() == card.profile.card_number[:8] and info.model.strip() == "IAS ECC"
    session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
    try:
        assert _labels(lib, session) >= PUBLIC_LABELS
        assert not any(label.startswith("CPS_ACTIVITY") for label in _labels(lib, session))
        with pytest.raises(PyKCS11.PyKCS11Error) as wrong:
            session.login("0000")
        assert wrong.value.value == PyKCS11.CKR_PIN_INCORRECT
        assert card.tries_left == 2 and _flags(lib, slot) & PyKCS11.CKF_USER_PIN_COUNT_LOW
        session.login("1234")
        assert card.tries_left == 3 and not _flags(lib, slot) & PyKCS11.CKF_USER_PIN_COUNT_LOW
        labels = _labels(lib, session)
        assert {"CPS_ACTIVITY_01_PS", "CPS_ACTIVITY_03_PS", "CPS_SIT_FACT"} <= labels, labels

        # every labelled object's value is what the card holds
        (name_ps,) = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_DATA), (PyKCS11.CKA_LABEL, "CPS_NAME_PS")])
        value = bytes(session.getAttributeValue(name_ps, [PyKCS11.CKA_VALUE], allAsBinary=True)[0])
        assert value == card.mf.children[-1].children[2].data or b"MARTIN" in value

        message = b"<ds:SignedInfo>contenu a signer</ds:SignedInfo>" * 5
        sign_key, auth_key = (
            session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_PRIVATE_KEY), (PyKCS11.CKA_ID, (key_id,))])[0]
            for key_id in (2, 1)
        )
        signature = bytes(session.sign(sign_key, message, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)))
        public = card.certs.sign.certificate.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

        digest_info = SHA256_DIGEST_INFO + hashlib.sha256(b"handshake").digest()
        auth_signature = bytes(session.sign(auth_key, digest_info, PyKCS11.Mechanism(PyKCS11.CKM_RSA_PKCS)))
        auth_public = x509.load_der_x509_certificate(card.certs.auth.certificate.public_bytes(_der())).public_key()
        assert isinstance(auth_public, rsa.RSAPublicKey)
        auth_public.verify(auth_signature, b"handshake", padding.PKCS1v15(), hashes.SHA256())
        session.logout()
    finally:
        session.closeSession()


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


@pytest.mark.parametrize(
    ("profile", "low", "final", "locked"),
    [("last-try", True, True, False), ("blocked", False, False, True), ("expired", False, False, False)],
)
async def test_pin_state_flags_of_each_profile(
    slots: list[VirtualSlot],
    pki: TestPki,
    pkcs11_lib: Any,
    cryptolib: CryptolibInstall,
    profile: str,
    low: bool,
    final: bool,
    locked: bool,
) -> None:
    import PyKCS11

    card = await asyncio.to_thread(_insert, slots, pki, profile)
    slot = token_slot(pkcs11_lib, READER0)
    flags = _flags(pkcs11_lib, slot)
    assert (
        bool(flags & PyKCS11.CKF_USER_PIN_COUNT_LOW),
        bool(flags & PyKCS11.CKF_USER_PIN_FINAL_TRY),
        bool(flags & PyKCS11.CKF_USER_PIN_LOCKED),
    ) == (low, final, locked)
    session = pkcs11_lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
    try:
        if locked:
            with pytest.raises(PyKCS11.PyKCS11Error) as refused:
                session.login("1234")
            assert refused.value.value == PyKCS11.CKR_PIN_LOCKED
            return
        session.login("1234")
        assert card.tries_left == card.tries_max
        assert "CPS_ACTIVITY_01_PS" in _labels(pkcs11_lib, session)
        session.logout()
    finally:
        session.closeSession()
