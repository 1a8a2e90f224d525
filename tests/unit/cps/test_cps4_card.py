"""The CPS4 driver against the virtual CPS4 through DirectChannel (no pcscd): every profile, PIN rules,
logout, situations, both keys (PKCS#1 v1.5 and PSS) and the exact APDUs on the wire."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.cards.cps4 import Cps4Card, card_keys
from bridge.cards.cps4_apdu import Scheme
from bridge.cards.cps_session import CardState, CardStateError
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response, StatusWord
from bridge.sim.cps3_profile import available_profiles, load_profile
from bridge.sim.cps4 import Cps4Emulator, create_card
from bridge.sim.cps4_files import serial_of
from bridge.sim.direct import DirectChannel

Factory = Callable[[str], tuple[Cps4Emulator, DirectChannel]]


def _pin(text: str = "1234") -> bytearray:
    return bytearray(text.encode())


def _sent(ch: DirectChannel) -> list[str]:
    return [apdu.hex() for apdu, _ in ch.trace]


@pytest.fixture
def card_factory(pki: TestPki) -> Factory:
    def make(name: str) -> tuple[Cps4Emulator, DirectChannel]:
        emulator = create_card(name, pki)
        return emulator, DirectChannel(emulator)

    return make


@pytest.mark.parametrize("name", available_profiles())
def test_public_data_of_every_profile(card_factory: Factory, name: str) -> None:
    emulator, ch = card_factory(name)
    profile = load_profile(name)
    info = Cps4Card().read_public(ch)
    assert info.generation == "CPS4" and info.backend == "pcsc"
    assert info.serial == serial_of(profile)
    assert info.identity.card_number == profile.card_number
    assert info.holder.last_name == profile.holder.last_name
    assert info.professional.profession_code == profile.profession_code
    assert info.pin.tries_left == profile.pin_tries_left
    assert info.auth_certificate == emulator.certs.auth.certificate
    assert info.sign_certificate == emulator.certs.sign.certificate
    assert all(apdu.startswith(("01", "11")) for apdu in _sent(ch))  # logical channel 1 only


@pytest.mark.parametrize("name", [n for n in available_profiles() if n not in ("blocked", "last-try")])
def test_login_situations_and_both_keys_of_every_profile(card_factory: Factory, name: str) -> None:
    emulator, ch = card_factory(name)
    profile = load_profile(name)
    session = Cps4Card()
    session.identify(ch)
    assert session.verify_pin(ch, _pin()).tries_left == 3
    assert session.state is CardState.AUTHENTICATED
    situations = session.read_situations(ch)
    assert [s.index for s in situations] == sorted(s.slot for s in profile.situations)
    assert [s.structure_id for s in situations] == [
        s.structure_id for s in sorted(profile.situations, key=lambda s: s.slot)
    ]
    auth, sign = card_keys(lambda fn: fn(ch), session)
    message = b"<vihf/>"
    sign.public_key().verify(
        sign.sign(message, padding.PKCS1v15(), hashes.SHA256()), message, padding.PKCS1v15(), hashes.SHA256()
    )
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
    sign.public_key().verify(sign.sign(message, pss, hashes.SHA256()), message, pss, hashes.SHA256())
    auth.public_key().verify(
        auth.sign(message, padding.PKCS1v15(), hashes.SHA256()), message, padding.PKCS1v15(), hashes.SHA256()
    )
    assert sign.public_key().public_numbers() == emulator.certs.sign.certificate.public_key().public_numbers()  # type: ignore[union-attr]


def test_auth_key_pss_goes_through_cds_with_key_a0(card_factory: Factory) -> None:
    emulator, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    session.verify_pin(ch, _pin())
    digest = bytes(range(32))
    ch.trace.clear()
    signature = session.sign_digest(ch, digest, hashes.SHA256(), Scheme.PSS)
    assert _sent(ch)[-2:] == ["012281b60491022ca0", "012a9e9a20" + digest.hex() + "00"]
    public = emulator.certs.auth.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, digest, padding.PSS(padding.MGF1(hashes.SHA256()), 32), Prehashed(hashes.SHA256()))


def test_signing_exchanges_on_the_wire(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    session.verify_pin(ch, _pin())
    ch.trace.clear()
    session.sign_message(ch, b"abc", hashes.SHA256())
    h = hashes.Hash(hashes.SHA256())
    h.update(b"abc")
    assert _sent(ch) == [
        "01a40800025015",  # the application DF: key references are local to it
        "01a40800025015",  # the PrKDF key path
        "012281b60491022881",
        "012a9e9a20" + h.finalize().hex() + "00",
    ]
    ch.trace.clear()
    session.sign_digest(ch, bytes(32), hashes.SHA256())
    sent = _sent(ch)
    assert sent[2] == "012241b803830120"
    assert sent[3].startswith("112a8086ff0001ffff") and len(sent[3]) == 2 * (5 + 255)
    assert sent[4].startswith("012a808601") and sent[4].endswith("00") and len(sent[4]) == 2 * 7


def test_verify_follows_the_aodf_block(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    ch.trace.clear()
    pin = _pin()
    session.verify_pin(ch, pin)
    assert pin == bytearray(4)  # zeroed
    assert _sent(ch)[-2:] == ["01200001", "012000010831323334ffffffff"]


def test_wrong_pin_decrements_and_right_pin_resets(card_factory: Factory) -> None:
    emulator, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    with pytest.raises(BridgeError) as info:
        session.verify_pin(ch, _pin("0000"))
    assert info.value.code is ErrorCode.PIN_INCORRECT and info.value.to_data()["triesLeft"] == 2
    assert session.pin_status(ch).tries_left == 2
    session.verify_pin(ch, _pin())
    assert emulator.tries_left == 3


def test_last_try_guard_and_blocking(card_factory: Factory) -> None:
    emulator, ch = card_factory("last-try")
    session = Cps4Card()
    session.identify(ch)
    ch.trace.clear()
    with pytest.raises(BridgeError) as info:
        session.verify_pin(ch, _pin("0000"))
    assert info.value.code is ErrorCode.PIN_LAST_TRY
    assert not any(apdu.startswith("0120000108") for apdu in _sent(ch))  # nothing sent
    with pytest.raises(BridgeError) as info:
        session.verify_pin(ch, _pin("0000"), force=True)
    assert info.value.code is ErrorCode.PIN_BLOCKED
    assert session.state is CardState.BLOCKED and emulator.tries_left == 0
    with pytest.raises(CardStateError):
        session.read_situations(ch)


def test_blocked_profile(card_factory: Factory) -> None:
    _, ch = card_factory("blocked")
    session = Cps4Card()
    info = session.read_public(ch)
    assert info.pin.blocked and session.state is CardState.BLOCKED
    with pytest.raises(BridgeError) as err:
        session.verify_pin(ch, _pin())
    assert err.value.code is ErrorCode.PIN_BLOCKED


def test_invalid_pin_is_refused_before_the_card(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    session.layout(ch)
    for bad in ("12a4", "123", "123456789"):
        ch.trace.clear()
        with pytest.raises(BridgeError) as info:
            session.verify_pin(ch, _pin(bad))
        assert info.value.code is ErrorCode.INVALID_PARAMS
        assert ch.trace == []


def test_logout_really_drops_the_pin(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    session.verify_pin(ch, _pin())
    session.logout(ch)
    assert session.state is CardState.READY
    with pytest.raises(BridgeError) as info:
        session.sign_message(ch, b"x", hashes.SHA256())
    assert info.value.code is ErrorCode.PIN_REQUIRED
    with pytest.raises(BridgeError) as info:
        session.read_situations(ch)
    assert info.value.code is ErrorCode.PIN_REQUIRED


def test_a_reset_closes_the_channel_and_the_driver_reopens_it(card_factory: Factory) -> None:
    emulator, ch = card_factory("gp")
    session = Cps4Card()
    session.identify(ch)
    session.verify_pin(ch, _pin())
    emulator.reset()
    assert session.pin_status(ch).tries_left == 3  # 6881, re-select ChipDoc, ask again
    assert session.state is CardState.READY


class _Flaky:
    """A channel whose first answer to a given command is 6E00 (a card that lost its applet selection)."""

    def __init__(self, inner: DirectChannel, victim: str) -> None:
        self.inner, self.victim, self.fired = inner, victim, False

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def transmit(self, command: Command) -> Response:
        if not self.fired and command.to_bytes().hex().startswith(self.victim):
            self.fired = True
            self.inner.trace.append((command.to_bytes(), b"\x6e\x00"))
            return Response(b"", StatusWord(0x6E00))
        return self.inner.transmit(command)


def test_reselect_and_retry_on_6e00(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    flaky = _Flaky(ch, "01a40800022f00")
    session = Cps4Card()
    session.identify(ch)
    session.layout(flaky)
    sent = _sent(ch)
    index = sent.index("01a40800022f0000")
    assert sent[index + 1 : index + 3] == ["01a40404088025000001ff0100", "01a40800022f0000"]


def test_state_table_and_keys_refuse_what_the_card_cannot(card_factory: Factory) -> None:
    _, ch = card_factory("gp")
    session = Cps4Card()
    with pytest.raises(CardStateError):
        session.read_situations(ch)
    session.identify(ch)
    session.verify_pin(ch, _pin())
    auth, sign = card_keys(lambda fn: fn(ch), session)
    with pytest.raises(UnsupportedAlgorithm):
        sign.sign(b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 20), hashes.SHA256())
    with pytest.raises(UnsupportedAlgorithm):
        sign.sign(b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA512())
    with pytest.raises(UnsupportedAlgorithm):
        auth.sign(b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_a_cps3_is_not_a_cps4(pki: TestPki) -> None:
    from bridge.sim.cps3 import create_card as create_cps3

    with pytest.raises(BridgeError) as info:
        Cps4Card().identify(DirectChannel(create_cps3("gp", pki)))
    assert info.value.code is ErrorCode.UNSUPPORTED_CARD


def test_reading_the_card_after_login_keeps_the_pin_verified(card_factory: Factory) -> None:
    """A page re-reads the card after cps.login: re-selecting ChipDoc there would log the holder out."""
    _, ch = card_factory("gp")
    session = Cps4Card()
    session.read_public(ch)
    session.verify_pin(ch, _pin())
    assert session.read_public(ch).pin.tries_left == 3
    _, sign = card_keys(lambda fn: fn(ch), session)
    sign.public_key().verify(
        sign.sign(b"m", padding.PKCS1v15(), hashes.SHA256()), b"m", padding.PKCS1v15(), hashes.SHA256()
    )
