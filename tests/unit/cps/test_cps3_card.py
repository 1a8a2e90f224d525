"""The CPS3 driver against the virtual CPS3, through DirectChannel (no pcscd): every profile, PIN rules,
situations, both keys (cryptography, signxml) and the exact APDUs of cards.md."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import verification
from lxml import etree
from signxml import XMLSigner, XMLVerifier

from bridge.cards.cps3 import Cps3Card, card_keys
from bridge.cards.cps3_apdu import get_data_chv, mse_set, pso_cds, pso_hash, select_path
from bridge.cards.cps_data import SN_ICC_PATH
from bridge.cards.cps_session import CardState, CardStateError
from bridge.crypto.pki import TestPki
from bridge.crypto.sha256_state import split_for_card
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.channel import CardChannel
from bridge.sim.cps3 import Cps3Emulator, create_card
from bridge.sim.cps3_profile import available_profiles, load_profile
from bridge.sim.direct import DirectChannel

T = TypeVar("T")
PROFILES = available_profiles()


def _pin(text: str = "1234") -> bytearray:
    return bytearray(text.encode())


def _sent(ch: DirectChannel) -> list[bytes]:
    return [apdu for apdu, _ in ch.trace]


def _verify_sent(ch: DirectChannel) -> bool:
    return any(apdu[1] == 0x20 and apdu[2] == 0x00 and len(apdu) > 5 for apdu in _sent(ch))


@pytest.fixture
def card_factory(pki: TestPki) -> Callable[[str], tuple[Cps3Emulator, DirectChannel]]:
    def make(name: str) -> tuple[Cps3Emulator, DirectChannel]:
        emulator = create_card(name, pki)
        return emulator, DirectChannel(emulator)

    return make


@pytest.fixture
def worker() -> Iterator[ThreadPoolExecutor]:
    """Stands for the card's worker thread: the runner blocks the caller until the card answered."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def _runner(executor: ThreadPoolExecutor, ch: CardChannel) -> Callable[[Callable[[CardChannel], T]], T]:
    def run(fn: Callable[[CardChannel], T]) -> T:
        return executor.submit(fn, ch).result(timeout=30)

    return run


@pytest.mark.parametrize("name", PROFILES)
def test_public_data_of_every_profile(
    name: str, card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]], pki: TestPki
) -> None:
    emulator, ch = card_factory(name)
    profile = load_profile(name)
    card = Cps3Card()
    info = card.read_public(ch)
    assert info.serial == profile.card_number[:8]
    assert info.identity.card_type == profile.card_type
    assert info.identity.card_number == profile.card_number
    assert info.holder.national_id == profile.holder.national_id
    assert (info.holder.last_name, info.holder.first_name) == (profile.holder.last_name, profile.holder.first_name)
    assert info.professional.profession_code == profile.profession_code
    assert info.professional.specialty_code == profile.specialty_code
    assert info.auth_certificate == emulator.certs.auth.certificate
    assert info.sign_certificate == emulator.certs.sign.certificate
    assert (info.pin.tries_left, info.pin.tries_max) == (profile.pin_tries_left, profile.pin_tries_max)
    assert card.state is (CardState.BLOCKED if profile.pin_tries_left == 0 else CardState.READY)
    # both certificates chain to the test PKI
    for cert in (info.auth_certificate, info.sign_certificate):
        cert.verify_directly_issued_by(pki.persons_ca.certificate)
    assert info.identity.not_after == info.auth_certificate.not_valid_after_utc.date()
    assert profile.holder.last_name not in repr(info)


def test_cpe_and_cpf_variants(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("secretary-cpe")
    info = Cps3Card().read_public(ch)
    assert info.identity.card_type == "CPE"
    assert info.holder.national_id == "30B0057881/CPET0002"
    assert info.professional.profession_code == "" and info.professional.specialty_code == ""
    _, ch = card_factory("student-cpf")
    assert Cps3Card().read_public(ch).identity.card_type == "CPF"


@pytest.mark.parametrize("name", [n for n in PROFILES if n != "blocked"])
def test_pin_then_situations_then_both_keys_sign(
    name: str, card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]], worker: ThreadPoolExecutor
) -> None:
    emulator, ch = card_factory(name)
    profile = load_profile(name)
    card = Cps3Card()
    card.read_public(ch)
    with pytest.raises(BridgeError) as info:
        card.read_situations(ch)
    assert info.value.code is ErrorCode.PIN_REQUIRED
    status = card.verify_pin(ch, _pin(), force=profile.pin_tries_left == 1)
    assert status.tries_left == profile.pin_tries_max and card.state is CardState.AUTHENTICATED
    situations = card.read_situations(ch)
    assert [s.index for s in situations] == [s.slot for s in profile.situations]
    for got, want in zip(situations, profile.situations, strict=True):
        assert (got.structure_id, got.structure_name, got.activity_sector) == (
            want.structure_id,
            want.structure_name,
            want.activity_sector,
        )
        assert got.number == want.number and got.practice_mode == want.practice_mode
        assert got.vihf_activity_sector == f"{want.activity_sector}^1.2.250.1.71.4.2.4"
        assert (got.billing is None) == (want.billing is None)
        if got.billing and want.billing:
            assert got.billing.billing_number == want.billing["billing_number"]
    auth_key, sign_key = card_keys(_runner(worker, ch), card)
    for key, cert in ((auth_key, emulator.certs.auth.certificate), (sign_key, emulator.certs.sign.certificate)):
        public = cert.public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        for length in (0, 1, 63, 64, 65, 500):
            message = bytes(range(256)) * 2
            signature = key.sign(message[:length], padding.PKCS1v15(), hashes.SHA256())
            public.verify(signature, message[:length], padding.PKCS1v15(), hashes.SHA256())
        signature = key.sign(b"sha1 too", padding.PKCS1v15(), hashes.SHA1())
        public.verify(signature, b"sha1 too", padding.PKCS1v15(), hashes.SHA1())


def test_gp_situations_in_detail(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    card.verify_pin(ch, _pin())
    first, second = card.read_situations(ch)
    assert (first.index, first.number, second.index, second.number) == (0, 1, 2, 3)
    assert first.structure_id == "481001234567801" and first.structure_id_type == "4"
    assert first.activity_sector == "SA07" and first.practice_mode == "L"
    assert first.profession_code == "10" and first.specialty_code == "SM54"
    assert first.billing is not None and first.billing.am_specialty == "01" and first.billing.tariff_zone == "24"
    assert second.structure_id == "10B0123456" and second.activity_sector == "SA05" and second.billing is None


def test_wrong_pin_decrements_and_right_pin_resets(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    emulator, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    pin = _pin("9999")
    with pytest.raises(BridgeError) as info:
        card.verify_pin(ch, pin)
    assert info.value.code is ErrorCode.PIN_INCORRECT and info.value.extra == {"triesLeft": 2}
    assert pin == bytearray(4), "the PIN buffer is zeroed"
    assert card.pin_status(ch).tries_left == 2 and emulator.tries_left == 2
    card.verify_pin(ch, _pin())
    assert card.pin_status(ch).tries_left == 3
    assert "9999" not in str(info.value) and "9999" not in repr(info.value.to_data())


def test_three_wrong_pins_block_the_card(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    for left in (2, 1):
        with pytest.raises(BridgeError) as info:
            card.verify_pin(ch, _pin("0000"), force=True)
        assert info.value.extra["triesLeft"] == left
    with pytest.raises(BridgeError) as info:
        card.verify_pin(ch, _pin("0000"), force=True)
    assert info.value.code is ErrorCode.PIN_BLOCKED and card.state is CardState.BLOCKED
    # blocked: refused locally (state table), nothing sent
    ch.trace.clear()
    with pytest.raises(CardStateError) as state_error:
        card.verify_pin(ch, _pin(), force=True)
    assert state_error.value.code is ErrorCode.PIN_BLOCKED and ch.trace == []
    # a new session learns it from the card and still sends no VERIFY
    fresh = Cps3Card()
    fresh.identify(ch)
    with pytest.raises(BridgeError) as info:
        fresh.verify_pin(ch, _pin(), force=True)
    assert info.value.code is ErrorCode.PIN_BLOCKED and not _verify_sent(ch)


def test_blocked_profile_is_reported(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("blocked")
    card = Cps3Card()
    info = card.read_public(ch)
    assert info.pin.blocked and card.state is CardState.BLOCKED
    pin = _pin()
    with pytest.raises(BridgeError) as error:
        card.verify_pin(ch, pin, force=True)
    assert error.value.code is ErrorCode.PIN_BLOCKED and pin == bytearray(4)
    with pytest.raises(BridgeError) as error:
        card.read_situations(ch)
    assert error.value.code is ErrorCode.PIN_BLOCKED


def test_last_try_is_refused_without_force(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    emulator, ch = card_factory("last-try")
    card = Cps3Card()
    card.identify(ch)
    ch.trace.clear()
    pin = _pin()
    with pytest.raises(BridgeError) as info:
        card.verify_pin(ch, pin)
    assert info.value.code is ErrorCode.PIN_LAST_TRY and info.value.extra == {"triesLeft": 1}
    assert not _verify_sent(ch) and emulator.tries_left == 1 and pin == bytearray(4)
    card.verify_pin(ch, _pin(), force=True)
    assert card.state is CardState.AUTHENTICATED and emulator.tries_left == 3


def test_invalid_pin_format_is_refused_before_the_card(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    ch.trace.clear()
    for bad in ("12", "12a4", "123456789"):
        pin = _pin(bad)
        with pytest.raises(BridgeError) as info:
            card.verify_pin(ch, pin)
        assert info.value.code is ErrorCode.INVALID_PARAMS and pin == bytearray(len(bad))
    assert ch.trace == []


def test_signing_needs_the_pin_and_logout_forgets_it(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]], worker: ThreadPoolExecutor
) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    auth_key, sign_key = card_keys(_runner(worker, ch), card)
    for key in (auth_key, sign_key):
        with pytest.raises(BridgeError) as info:
            key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
        assert info.value.code is ErrorCode.PIN_REQUIRED
    card.verify_pin(ch, _pin())
    auth_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    card.logout(ch)
    assert card.state is CardState.READY
    with pytest.raises(BridgeError) as info:
        sign_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert info.value.code is ErrorCode.PIN_REQUIRED


def test_a_card_reset_loses_the_pin_but_keeps_the_counter(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    emulator, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    with pytest.raises(BridgeError):
        card.verify_pin(ch, _pin("1111"))
    card.verify_pin(ch, _pin())
    with pytest.raises(BridgeError):
        card.verify_pin(ch, _pin("1111"))
    emulator.reset()
    card.verify_pin(ch, _pin())
    emulator.power_off()
    emulator.power_on()
    with pytest.raises(BridgeError) as info:
        card.read_situations(ch)
    assert info.value.code is ErrorCode.PIN_REQUIRED and card.state is CardState.READY


def test_state_table_refuses_work_before_identification(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    with pytest.raises(CardStateError) as info:
        card.read_situations(ch)
    assert info.value.code is ErrorCode.INTERNAL
    assert ch.trace == []


def test_signxml_with_the_card_keys_chains_to_the_test_pki(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]], worker: ThreadPoolExecutor, pki: TestPki
) -> None:
    emulator, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    card.verify_pin(ch, _pin())
    _, sign_key = card_keys(_runner(worker, ch), card)
    cert = emulator.certs.sign.certificate
    doc = etree.fromstring(
        b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x"><Issuer>me</Issuer></Assertion>'
    )
    signed = XMLSigner(signature_algorithm="rsa-sha256", digest_algorithm="sha256").sign(
        doc, key=sign_key, cert=[cert, pki.persons_ca.certificate]
    )
    wire = etree.tostring(signed)
    result = XMLVerifier().verify(wire, x509_cert=cert)
    assert result.signed_xml is not None
    # the certificate carried in KeyInfo chains to the test PKI
    carried = x509.load_der_x509_certificate(
        __import__("base64").b64decode(signed.findtext(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate"))
    )
    assert carried == cert
    store = verification.Store([pki.root])
    policy = verification.PolicyBuilder().store(store).time(dt.datetime.now(dt.UTC))
    auth_chain = policy.build_client_verifier().verify(emulator.certs.auth.certificate, [pki.persons_ca.certificate])
    assert auth_chain.chain[-1] == pki.root


def test_expired_profile_has_expired_certificates(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    _, ch = card_factory("expired")
    info = Cps3Card().read_public(ch)
    now = dt.datetime.now(dt.UTC)
    assert info.auth_certificate.not_valid_after_utc < now and info.sign_certificate.not_valid_after_utc < now
    assert info.identity.not_after is not None and info.identity.not_after < now.date()


# ---- exact bytes (cards.md traces and §1.6) -------------------------------------------------------


def test_apdu_builders_match_the_documented_bytes() -> None:
    assert select_path(SN_ICC_PATH).to_bytes().hex() == "00a40904043f00d003"
    assert get_data_chv().to_bytes().hex() == "00cb3fff0a4d087006bf810102a080"
    assert mse_set(0xA4, 0x02, 0x82).to_bytes().hex() == "002241a406800102840182"
    assert mse_set(0xAA, 0x40).to_bytes().hex() == "002241aa03800140"
    assert mse_set(0xB6, 0x42, 0x81).to_bytes().hex() == "002241b606800142840181"
    assert pso_cds().to_bytes().hex() == "002a9e9a00"
    short = pso_hash(*split_for_card(b"abc"))
    assert short.to_bytes().hex() == "002a90a007" + "9000" + "8003" + b"abc".hex()
    state, bits, rest = split_for_card(bytes(100))
    long = pso_hash(state, bits, rest).to_bytes()
    assert long[:7].hex() == "002a90a0" + f"{2 + 40 + 2 + 36:02x}" + "9028"
    assert long[7:39] == state and long[39:47] == (512).to_bytes(8, "big") and long[47:49] == b"\x80\x24"


def test_the_signing_exchange_on_the_wire(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    card.identify(ch)
    card.verify_pin(ch, _pin())
    ch.trace.clear()
    signature = card.sign_message(ch, b"m" * 130, hashes.SHA256())
    sent = [apdu.hex() for apdu in _sent(ch)]
    # the Cryptolib's order: application DF re-selected before the MSEs (key references are local to it)
    assert sent[0] == "00a4090c043f000001" and sent[1] == "002241aa03800140"
    assert sent[2].startswith("002a90a0") and sent[3] == "00a4090c043f000001"
    assert sent[4] == "002241b606800142840181" and sent[5] == "002a9e9a00"
    assert len(signature) == 256 and len(sent) == 6  # PSO CDS answered directly (case 2, Le=00)
    ch.trace.clear()
    card.sign_digest(ch, bytes(32), hashes.SHA256())
    sent = [apdu.hex() for apdu in _sent(ch)]
    assert sent[0] == "00a4090c043f000001" and sent[1] == "002241a406800102840182"
    assert sent[2].startswith("0088000033" + "3031300d060960864801650304020105000420") and sent[2].endswith("00")
    assert sent[3] == "00c0000000"  # T=0: 61 00 then GET RESPONSE


def test_the_virtual_card_keeps_cps3_select_rules(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    emulator, _ = card_factory("gp")
    emulator.power_on()
    assert emulator.process(bytes.fromhex("00a40900043f00d003"))[-2:] == b"\x6a\x86"  # P2=00 refused
    assert emulator.process(bytes.fromhex("00a4090c043f00d003")) == b"\x90\x00"
    assert emulator.process(bytes.fromhex("00a40904043f00d003"))[0] == 0x61  # FCP through GET RESPONSE
    # GET DATA must start from the MF
    assert emulator.process(bytes.fromhex("00a4090c063f000001d001")) == b"\x90\x00"
    assert emulator.process(get_data_chv().to_bytes())[-2:] == b"\x6a\x88"


def test_identified_as_cps3_and_registered(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    from bridge.cards.identify import CardKind, identify
    from bridge.sim.registry import list_profiles, make_card

    _, ch = card_factory("gp")
    assert identify(ch).kind is CardKind.CPS3
    assert set(list_profiles("cps")) >= {"gp", "gp2", "secretary-cpe", "last-try", "blocked", "expired"}
    with pytest.raises(KeyError):
        make_card("cps3", "nope")


def test_registry_card_uses_the_per_user_test_pki(private_home: Path) -> None:
    from bridge.sim.registry import make_card

    card = make_card("cps3")
    assert isinstance(card, Cps3Emulator) and card.profile.name == "gp"
    assert (private_home / "data" / "test-pki" / "ca-bundle.pem").is_file()


@pytest.mark.parametrize(("name", "valid"), [("gp", True), ("expired", False)])
def test_xmlsec1_verifies_a_vihf_like_signature_made_by_the_card(
    name: str,
    valid: bool,
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
    pki: TestPki,
    tmp_path: Path,
) -> None:
    """An independent verifier (xmlsec1) checks the card's signature and the chain up to the test root."""
    emulator, ch = card_factory(name)
    card = Cps3Card()
    card.identify(ch)
    card.verify_pin(ch, _pin())
    _, sign_key = card_keys(lambda fn: fn(ch), card)
    doc = etree.fromstring(
        b'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_vihf" Version="2.0">'
        b"<saml:Issuer>CN=810012345678</saml:Issuer></saml:Assertion>"
    )
    signer = XMLSigner(
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(doc, key=sign_key, cert=[emulator.certs.sign.certificate, pki.persons_ca.certificate])
    xml_file, root_file = tmp_path / "vihf.xml", tmp_path / "root.pem"
    xml_file.write_bytes(etree.tostring(signed))
    root_file.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--trusted-pem",
            str(root_file),
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            str(xml_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if valid:
        assert result.returncode == 0, result.stderr
        assert result.stderr.startswith("OK")
    else:
        assert result.returncode != 0
        assert "certificate has expired" in result.stderr


def test_virtual_pin_counter_has_the_real_trace_layout(
    card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]],
) -> None:
    _, ch = card_factory("gp")
    ch.transmit(select_path(bytes.fromhex("3F00"), fcp=False))
    response = ch.transmit(get_data_chv())
    assert response.data.hex().upper() == "7016BF810112A0109A01039B0103A1088C06F3000013FF00"


def test_a_vitale_card_is_not_taken_for_a_cps() -> None:
    from bridge.sim.registry import make_card

    ch = DirectChannel(make_card("vitale"))
    with pytest.raises(BridgeError) as info:
        Cps3Card().identify(ch)
    assert info.value.code is ErrorCode.UNSUPPORTED_CARD


def test_practitioner_for_a_vihf(card_factory: Callable[[str], tuple[Cps3Emulator, DirectChannel]]) -> None:
    _, ch = card_factory("gp")
    card = Cps3Card()
    info = card.read_public(ch)
    card.verify_pin(ch, _pin())
    cabinet, centre = card.read_situations(ch)
    who = info.practitioner(centre)
    assert (who.national_id, who.display_name) == ("810012345678", "PAUL MARTIN")
    assert (who.profession_code, who.specialty_code) == ("10", "SM54")
    assert (who.structure_id, who.activity_sector) == ("10B0123456", "SA05")
    assert info.practitioner(cabinet).structure_id == "481001234567801"
    assert "MARTIN" not in repr(who)
    # a situation's own codes never override the holder's profession and specialty (CPS_INFO_PS)
    from dataclasses import replace

    other = info.practitioner(replace(centre, profession_code="21", specialty_code="SM26"))
    assert (other.profession_code, other.specialty_code) == ("10", "SM54")
