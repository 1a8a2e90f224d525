"""The PKCS#11 CPS backend against a real PKCS#11 module: SoftHSM v2 holding a CPS's objects (no mock).

What SoftHSM cannot show (a blocked PIN, the final-try flag, card removal, the Cryptolib's model and
slot names) is checked by tests/integration/test_pkcs11_cps.py against the Cryptolib itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.cards.cps_data import parse_situation
from bridge.cards.cps_info import PinStatus
from bridge.cards.cps_token import CpsToken
from bridge.cards.pkcs11_cps import CPS3_ATR, CPS4_ATRS, Pkcs11CpsToken
from bridge.cards.pkcs11_module import Pkcs11Module, load_module
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.sim.cps3_profile import encode_situation
from tests.softhsm_token import SIT_FACT, SoftHsmCps, SoftHsmUnavailable, build_softhsm_cps


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> SoftHsmCps:
    try:
        return build_softhsm_cps(tmp_path_factory.mktemp("softhsm"), pki, "gp")
    except SoftHsmUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def module(softhsm: SoftHsmCps) -> Pkcs11Module:
    return load_module(softhsm.module)


@pytest.fixture
def token(module: Pkcs11Module, softhsm: SoftHsmCps) -> Iterator[Pkcs11CpsToken]:
    cps = Pkcs11CpsToken(module, module.slot_for_reader(softhsm.slot_description), atr=CPS3_ATR)
    yield cps
    cps.logout()


def pin(text: str = "1234") -> bytearray:
    return bytearray(text.encode("ascii"))


def test_is_a_cps_token(token: Pkcs11CpsToken) -> None:
    as_protocol: CpsToken = token
    assert as_protocol.backend == "pkcs11"


def test_module_loads_once_per_process(softhsm: SoftHsmCps, module: Pkcs11Module, tmp_path: Path) -> None:
    link = tmp_path / "libsofthsm2-link.so"
    link.symlink_to(softhsm.module.resolve())
    assert load_module(softhsm.module) is module
    assert load_module(link) is module  # same file by another path: no second C_Initialize
    assert module.info().description


def test_read_public(token: Pkcs11CpsToken, softhsm: SoftHsmCps) -> None:
    info = token.read_public()
    profile = softhsm.profile
    assert (info.generation, info.backend) == ("CPS3", "pkcs11")
    assert info.serial == softhsm.serial
    assert (info.identity.card_type, info.identity.card_number) == (profile.card_type, profile.card_number)
    assert info.holder.national_id == profile.holder.national_id
    assert info.holder.last_name == profile.holder.last_name
    assert info.professional.profession_code == profile.profession_code
    assert info.professional.specialty_code == profile.specialty_code
    assert info.auth_certificate == softhsm.certs.auth.certificate
    assert info.sign_certificate == softhsm.certs.sign.certificate
    assert info.pin == PinStatus(3, 3)
    assert info.to_json()["generation"] == "CPS3"


def test_generation_from_atr_when_the_model_does_not_tell(module: Pkcs11Module, softhsm: SoftHsmCps) -> None:
    slot = module.slot_for_reader(softhsm.slot_description)
    assert Pkcs11CpsToken(module, slot, atr=CPS4_ATRS[0]).read_public().generation == "CPS4"
    with pytest.raises(BridgeError) as caught:
        Pkcs11CpsToken(module, slot).read_public()  # "SoftHSM v2" and no ATR
    assert caught.value.code is ErrorCode.UNSUPPORTED_CARD


def test_situations_need_the_pin_then_come_with_gaps(token: Pkcs11CpsToken, softhsm: SoftHsmCps) -> None:
    with pytest.raises(BridgeError) as caught:
        token.read_situations()
    assert caught.value.code is ErrorCode.PIN_REQUIRED
    buffer = pin()
    assert token.login(buffer) == PinStatus(3, 3)
    assert buffer == bytearray(4)
    situations = token.read_situations()
    expected = tuple(parse_situation(encode_situation(s), s.slot) for s in softhsm.profile.situations)
    assert situations == expected
    assert [s.index for s in situations] == [s.slot for s in softhsm.profile.situations]  # gp: slots 0 and 2
    assert token.read_billing_situation() == SIT_FACT
    token.logout()
    with pytest.raises(BridgeError) as caught:
        token.read_situations()
    assert caught.value.code is ErrorCode.PIN_REQUIRED


def test_wrong_pin_counts_down_from_the_flags(token: Pkcs11CpsToken) -> None:
    buffer = pin("9999")
    with pytest.raises(BridgeError) as caught:
        token.login(buffer)
    assert caught.value.code is ErrorCode.PIN_INCORRECT
    assert caught.value.extra == {"triesLeft": 2}  # CKF_USER_PIN_COUNT_LOW on a 3-try PIN
    assert buffer == bytearray(4)
    assert token.pin_status() == PinStatus(2, 3)
    assert token.login(pin()) == PinStatus(3, 3)
    assert token.pin_status() == PinStatus(3, 3)  # a good PIN clears the flag


def test_bad_pin_shape_refused_before_the_card(token: Pkcs11CpsToken) -> None:
    for text in ("12", "123456789", "12a4"):
        buffer = pin(text)
        with pytest.raises(BridgeError) as caught:
            token.login(buffer)
        assert caught.value.code is ErrorCode.INVALID_PARAMS
        assert not any(buffer)
    assert token.pin_status() == PinStatus(3, 3)  # nothing reached the token


class _OneTryLeft(Pkcs11CpsToken):
    """The same token seen with one try left (SoftHSM never gets there): only the counter is overridden."""

    def pin_status(self) -> PinStatus:
        return PinStatus(1, 3)


def test_last_try_needs_force_and_sends_nothing(module: Pkcs11Module, softhsm: SoftHsmCps) -> None:
    cps = _OneTryLeft(module, module.slot_for_reader(softhsm.slot_description), atr=CPS3_ATR)
    buffer = pin("9999")
    with pytest.raises(BridgeError) as caught:
        cps.login(buffer)
    assert (caught.value.code, caught.value.extra) == (ErrorCode.PIN_LAST_TRY, {"triesLeft": 1})
    assert buffer == bytearray(4)
    plain = Pkcs11CpsToken(module, cps._slot, atr=CPS3_ATR)
    assert plain.pin_status() == PinStatus(3, 3)  # no wrong PIN reached the token
    assert cps.login(pin(), force=True) == PinStatus(3, 3)
    cps.logout()


def test_keys_sign_and_verify(token: Pkcs11CpsToken, softhsm: SoftHsmCps) -> None:
    auth, sign = token.keys()
    assert isinstance(auth, CardRsaPrivateKey) and isinstance(sign, CardRsaMessageKey)
    assert auth.public_key().public_numbers() == softhsm.certs.auth.certificate.public_key().public_numbers()
    with pytest.raises(BridgeError) as caught:
        auth.sign(b"hello", padding.PKCS1v15(), hashes.SHA256())
    assert caught.value.code is ErrorCode.PIN_REQUIRED  # SoftHSM hides private keys before login
    token.login(pin())
    message = b"<SignedInfo>the VIHF</SignedInfo>" * 10
    # authentication key: CKM_RSA_PKCS over the host's DigestInfo, from a message or a digest
    signature = auth.sign(message, padding.PKCS1v15(), hashes.SHA256())
    softhsm.certs.auth.certificate.public_key().verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    digest = hashes.Hash(hashes.SHA1())
    digest.update(message)
    auth.sign(digest.finalize(), padding.PKCS1v15(), Prehashed(hashes.SHA1()))  # checked inside
    # signature key: CKM_SHA256_RSA_PKCS / CKM_SHA1_RSA_PKCS over the whole message
    for algorithm in (hashes.SHA256(), hashes.SHA1()):
        signature = sign.sign(message, padding.PKCS1v15(), algorithm)
        softhsm.certs.sign.certificate.public_key().verify(signature, message, padding.PKCS1v15(), algorithm)
    with pytest.raises(UnsupportedAlgorithm):
        sign.sign(b"\x00" * 32, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def test_signature_key_offers_pss_when_the_token_lists_it(token: Pkcs11CpsToken, softhsm: SoftHsmCps) -> None:
    token.login(pin())
    _, sign = token.keys()
    assert isinstance(sign, CardRsaMessageKey) and sign.supports_pss  # SoftHSM lists CKM_SHA256_RSA_PKCS_PSS
    public = softhsm.certs.sign.certificate.public_key()
    message = b"TLS 1.3 CertificateVerify content"
    for salt in (padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH, 20):
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), salt)
        signature = sign.sign(message, pss, hashes.SHA256())
        public.verify(signature, message, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), hashes.SHA256())
    with pytest.raises(UnsupportedAlgorithm):
        sign.sign(message, padding.PSS(padding.MGF1(hashes.SHA1()), 32), hashes.SHA256())


def test_keys_from_several_threads(token: Pkcs11CpsToken, softhsm: SoftHsmCps) -> None:
    token.login(pin())
    auth, sign = token.keys()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(5):
                key = auth if (n + i) % 2 else sign
                key.sign(f"{n}-{i}".encode(), padding.PKCS1v15(), hashes.SHA256())  # each verified inside
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_logout_drops_the_keys(token: Pkcs11CpsToken) -> None:
    token.login(pin())
    auth, _ = token.keys()
    token.logout()
    with pytest.raises(BridgeError) as caught:
        auth.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert caught.value.code is ErrorCode.PIN_REQUIRED
    token.logout()  # twice is harmless


def test_pin_never_in_repr_or_logs(token: Pkcs11CpsToken, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    token.login(pin())
    with pytest.raises(BridgeError):
        token.login(pin("9876"))
    token.login(pin())
    text = caplog.text + repr(token)
    assert "1234" not in text and "9876" not in text
    info = token.read_public()
    assert info.holder.last_name not in text and info.holder.national_id not in repr(info)
