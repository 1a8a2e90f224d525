"""The official ANS Cryptolib 5.2.2 judges the virtual CPS4, and the bridge's PC/SC driver reads the same values.

Over the tests' pcscd + vpcd: the token appears with its serial, wrong PINs show in the token flags,
login with 1234, every label of the external specification's table 3 is found (situations only after
login), C_Sign with CKM_SHA256_RSA_PKCS and CKM_SHA256_RSA_PKCS_PSS on the signature key and
CKM_RSA_PKCS over a DigestInfo on the authentication key verify with the certificates' public keys;
then `bridge.cards.cps4` reads the same card and finds the same serial, certificates and objects.
Skips with the reason when the Cryptolib cannot run here (no ../shared RPM, not root).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.cards.cps4 import Cps4Card
from bridge.cards.cps4_apdu import digest_info
from bridge.cards.cps_info import CpsCardInfo
from bridge.crypto.pki import TestPki
from bridge.pcsc.channel import CardChannel
from bridge.pcsc.connection import CardConnection
from bridge.sim.cps3_profile import load_profile
from bridge.sim.cps4 import Cps4Emulator, create_card
from bridge.sim.cps4_files import serial_of
from tests.conftest import wait_card_state
from tests.cryptolib_pkcs11 import CryptolibUnavailable, opened_cryptolib

PyKCS11 = pytest.importorskip("PyKCS11")
pytestmark = pytest.mark.pcsc
READER0 = "Virtual PCD 00 00"
T = TypeVar("T")
PUBLIC_LABELS = {"CPS_DATA", "CPS_ID_CARD", "CPS_NAME_PS", "CPS_LANG_PS", "CPS_INFO_PS"} | {
    f"CPS2TER_{name}" for name in ("ATR", "ID", "ICC", "NAME", "LANG", "PSINFO", "DIRAMO")
}


def _private_labels(profile: str) -> set[str]:
    slots = [s.slot + 1 for s in load_profile(profile).situations]
    return {"CPS_SIT_FACT"} | {f"{prefix}_ACTIVITY_{n:02d}_PS" for n in slots for prefix in ("CPS", "CPS2TER")}


@dataclass
class Token:
    """One virtual CPS4 in reader 0 (served by another process), as the Cryptolib sees it.

    `card` is an identical emulator built here from the same test PKI, for the expected values only:
    PyKCS11 keeps the GIL during its calls, so a card served by a thread of this process would never
    answer the Cryptolib.
    """

    card: Cps4Emulator
    lib: Any
    slot: int
    traces: Path

    def flags(self) -> int:
        return int(self.lib.getTokenInfo(self.slot).flags)

    def session(self) -> Any:
        return self.lib.openSession(self.slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)


@pytest.fixture(scope="module")
def cryptolib() -> Iterator[tuple[Any, Any]]:
    """The Cryptolib for this module's tests, unloaded after them (it would keep hold of the readers)."""
    try:
        opened = opened_cryptolib()
        pair = opened.__enter__()
    except CryptolibUnavailable as exc:
        pytest.skip(f"official Cryptolib not usable here: {exc}")
    try:
        yield pair
    finally:
        opened.__exit__(None, None, None)


@pytest.fixture(scope="module")
def card_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DMP_BRIDGE_HOME of the card process: its test PKI is the one the expected values come from."""
    return tmp_path_factory.mktemp("cps4-home")


@pytest.fixture
def token(
    request: pytest.FixtureRequest, cryptolib: tuple[Any, Any], slot_ports: list[int], card_home: Path, tmp_path: Path
) -> Iterator[Token]:
    """The profile's virtual CPS4 inserted in reader 0, with an empty Cryptolib cache (it caches files by serial)."""
    install, lib = cryptolib
    install.clear()
    expected = create_card(request.param, TestPki.load_or_create(card_home / "data" / "test-pki"))
    wait_card_state(READER0, present=False)
    env = {**os.environ, "DMP_BRIDGE_HOME": str(card_home)}
    command = [sys.executable, "-m", "bridge.cli", "vcard", "cps4", "--profile", request.param]
    server = subprocess.Popen(
        [*command, "--port", str(slot_ports[0])], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    traces = tmp_path / "cryptolib-traces.txt"
    present: list[int] = []
    try:
        assert wait_card_state(READER0, present=True, timeout=60) == expected.atr()
        # all slots (a stable count: one per reader), then the reader's: with tokenPresent=True the module may
        # find the new card between PyKCS11's size query and its fetch (CKR_BUFFER_TOO_SMALL)
        present = [
            s
            for s in lib.getSlotList()
            if lib.getSlotInfo(s).slotDescription.strip() == READER0
            and lib.getSlotInfo(s).flags & PyKCS11.CKF_TOKEN_PRESENT
        ]
        assert present, "the Cryptolib does not see the virtual CPS4"
        yield Token(expected, lib, present[0], traces)
    finally:
        if present:
            lib.closeAllSessions(present[0])
        traces.write_text(install.traces())  # the module's APDU log, for a failed test
        server.terminate()
        server.wait(timeout=30)
        wait_card_state(READER0, present=False)


async def _with_driver(fn: Callable[[CardChannel], T]) -> T:
    """Run `fn` with the bridge's PC/SC driver on reader 0."""
    conn = await CardConnection.open(READER0)
    try:
        return await conn.run(fn)
    finally:
        await conn.close()


def _objects(session: Any, cls: int) -> list[Any]:
    return list(session.findObjects([(PyKCS11.CKA_CLASS, cls)]))


def _data_objects(session: Any) -> dict[str, bytes]:
    found = {}
    for handle in _objects(session, PyKCS11.CKO_DATA):
        label = session.getAttributeValue(handle, [PyKCS11.CKA_LABEL])[0]
        found[str(label).strip()] = bytes(session.getAttributeValue(handle, [PyKCS11.CKA_VALUE], True)[0])
    return found


def _keys_and_certificates(session: Any) -> dict[str, tuple[Any, x509.Certificate]]:
    """'auth' and 'sign' -> (private key handle, its certificate), matched by CKA_ID as applications do."""
    certs = {}
    for handle in _objects(session, PyKCS11.CKO_CERTIFICATE):
        key_id, value = session.getAttributeValue(handle, [PyKCS11.CKA_ID, PyKCS11.CKA_VALUE], True)
        certs[bytes(key_id)] = x509.load_der_x509_certificate(bytes(value))
    pairs = {}
    for handle in _objects(session, PyKCS11.CKO_PRIVATE_KEY):
        cert = certs[bytes(session.getAttributeValue(handle, [PyKCS11.CKA_ID], True)[0])]
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        pairs["sign" if usage.content_commitment else "auth"] = (handle, cert)
    return pairs


def _public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def _login_error(token: Token, pin: str) -> int:
    session = token.session()
    try:
        session.login(pin)
    except PyKCS11.PyKCS11Error as exc:
        return int(exc.value)
    finally:
        session.closeSession()
    return PyKCS11.CKR_OK


@pytest.mark.parametrize("token", ["gp", "last-try", "blocked", "expired"], indirect=True)
def test_token_present_with_serial_and_pin_flags(token: Token) -> None:
    info = token.lib.getTokenInfo(token.slot)
    assert info.serialNumber.strip() == serial_of(token.card.profile)
    assert info.label.strip() == f"CPS de {token.card.profile.holder.first_name} {token.card.profile.holder.last_name}"
    expected = {
        "gp": 0,
        "expired": 0,
        "last-try": PyKCS11.CKF_USER_PIN_COUNT_LOW | PyKCS11.CKF_USER_PIN_FINAL_TRY,  # 0 < 1 < 3 is "low" too
        "blocked": PyKCS11.CKF_USER_PIN_LOCKED,
    }[token.card.profile.name]
    pin_flags = PyKCS11.CKF_USER_PIN_COUNT_LOW | PyKCS11.CKF_USER_PIN_FINAL_TRY | PyKCS11.CKF_USER_PIN_LOCKED
    assert token.flags() & pin_flags == expected
    assert token.flags() & PyKCS11.CKF_LOGIN_REQUIRED


@pytest.mark.parametrize("token", ["gp", "expired"], indirect=True)
async def test_wrong_pins_show_in_the_flags_then_1234_logs_in(token: Token) -> None:
    assert _login_error(token, "0000") == PyKCS11.CKR_PIN_INCORRECT
    assert token.flags() & PyKCS11.CKF_USER_PIN_COUNT_LOW
    assert (await _with_driver(Cps4Card().read_public)).pin.tries_left == 2
    assert _login_error(token, "0000") == PyKCS11.CKR_PIN_INCORRECT
    assert token.flags() & PyKCS11.CKF_USER_PIN_FINAL_TRY
    assert _login_error(token, "1234") == PyKCS11.CKR_OK
    # the Cryptolib's logout sends nothing; the driver's identification re-selects ChipDoc, which drops the PIN
    assert (await _with_driver(Cps4Card().read_public)).pin.tries_left == 3


@pytest.mark.parametrize("token", ["last-try"], indirect=True)
def test_last_wrong_pin_locks(token: Token) -> None:
    assert _login_error(token, "0000") in (PyKCS11.CKR_PIN_INCORRECT, PyKCS11.CKR_PIN_LOCKED)
    assert token.flags() & PyKCS11.CKF_USER_PIN_LOCKED
    assert _login_error(token, "1234") == PyKCS11.CKR_PIN_LOCKED


@pytest.mark.parametrize("token", ["blocked"], indirect=True)
def test_blocked_card_refuses_login(token: Token) -> None:
    assert _login_error(token, "1234") == PyKCS11.CKR_PIN_LOCKED
    assert token.flags() & PyKCS11.CKF_USER_PIN_LOCKED


@pytest.mark.parametrize("token", ["gp", "last-try", "expired"], indirect=True)
def test_every_label_then_signatures_with_both_keys(token: Token) -> None:
    profile = token.card.profile.name
    session = token.session()
    try:
        assert set(_data_objects(session)) == PUBLIC_LABELS  # situations stay hidden before login
        session.login("1234")
        assert set(_data_objects(session)) == PUBLIC_LABELS | _private_labels(profile)
        keys = _keys_and_certificates(session)
        assert keys["auth"][1] == token.card.certs.auth.certificate
        assert keys["sign"][1] == token.card.certs.sign.certificate

        message = b"<ds:SignedInfo>" + b"x" * 300 + b"</ds:SignedInfo>"
        sign_key, sign_cert = keys["sign"]
        signature = bytes(session.sign(sign_key, message, PyKCS11.Mechanism(PyKCS11.CKM_SHA256_RSA_PKCS)))
        _public(sign_cert).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())

        pss = PyKCS11.RSA_PSS_Mechanism(
            PyKCS11.CKM_SHA256_RSA_PKCS_PSS, PyKCS11.CKM_SHA256, PyKCS11.CKG_MGF1_SHA256, 32
        )
        signature = bytes(session.sign(sign_key, message, pss))
        _public(sign_cert).verify(signature, message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())

        auth_key, auth_cert = keys["auth"]
        h = hashes.Hash(hashes.SHA256())
        h.update(message)
        digest = h.finalize()
        signature = bytes(session.sign(auth_key, digest_info(digest, hashes.SHA256()), PyKCS11.MechanismRSAPKCS1))
        _public(auth_cert).verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        session.logout()
    finally:
        session.closeSession()


@pytest.mark.parametrize("token", ["gp", "last-try", "blocked", "expired"], indirect=True)
async def test_the_pcsc_driver_reads_the_same_values(token: Token) -> None:
    can_login = token.card.profile.name != "blocked"
    session = token.session()
    try:
        if can_login:
            session.login("1234")
        objects = _data_objects(session)
        certificates = {  # private keys are hidden without login: tell the certificates apart by their usage
            "sign" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment else "auth": cert
            for cert in (
                x509.load_der_x509_certificate(bytes(session.getAttributeValue(h, [PyKCS11.CKA_VALUE], True)[0]))
                for h in _objects(session, PyKCS11.CKO_CERTIFICATE)
            )
        }
        serial = token.lib.getTokenInfo(token.slot).serialNumber.strip()
        if can_login:
            session.logout()
    finally:
        session.closeSession()

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
