"""Card-backed RSA keys: PKCS#1 v1.5 through a callable, refusals, and signxml interop."""

from __future__ import annotations

import copy

import pytest
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed
from lxml import etree
from signxml import XMLSigner, XMLVerifier

from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.crypto.digest_info import digest_info
from bridge.crypto.pki import PersonCerts, TestPki
from bridge.crypto.sha256_state import Sha1State, Sha256State, split_for_card, split_for_card_sha1
from bridge.errors import BridgeError, ErrorCode


@pytest.fixture(scope="module")
def holder(pki: TestPki) -> PersonCerts:
    return pki.person(
        "card-key-tests",
        last_name="CLE",
        first_name="CARTE",
        national_id="810000000001",
        profession_code="10",
        specialty_code="SM54",
        card_type="CPS",
    )


class DigestCard:
    """Stands for the card's private operation: records what it received, signs with the real key."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.calls: list[tuple[bytes, str]] = []

    def __call__(self, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        self.calls.append((digest, algorithm.name))
        return self.key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))


class MessageCard:
    """What a CPS3 does with PSO HASH: resume the intermediate state, finish the hash, sign."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.messages: list[bytes] = []

    def __call__(self, message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        self.messages.append(message)
        if isinstance(algorithm, hashes.SHA256):
            state, bits, rest = split_for_card(message)
            md: Sha256State | Sha1State = Sha256State.from_state(state, bits)
        else:
            state, bits, rest = split_for_card_sha1(message)
            md = Sha1State.from_state(state, bits)
        md.update(rest)
        return self.key.sign(md.digest(), padding.PKCS1v15(), Prehashed(algorithm))


def test_auth_key_hashes_then_signs_and_verifies(holder: PersonCerts) -> None:
    card = DigestCard(holder.auth.key)
    key = CardRsaPrivateKey(holder.auth.key.public_key(), card, label="CPS auth")
    signature = key.sign(b"hello", padding.PKCS1v15(), hashes.SHA256())
    holder.auth.certificate.public_key().verify(signature, b"hello", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"hello")
    assert card.calls == [(digest.finalize(), "sha256")]
    assert key.key_size == 2048


def test_auth_key_accepts_prehashed_and_checks_length(holder: PersonCerts) -> None:
    key = CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.auth.key), label="CPS auth")
    h = hashes.Hash(hashes.SHA1())
    h.update(b"x")
    digest = h.finalize()
    signature = key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA1()))
    holder.auth.key.public_key().verify(signature, b"x", padding.PKCS1v15(), hashes.SHA1())
    with pytest.raises(ValueError):
        key.sign(digest[:10], padding.PKCS1v15(), Prehashed(hashes.SHA1()))


@pytest.mark.parametrize(
    "pad",
    [
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
    ],
)
def test_only_pkcs1v15(holder: PersonCerts, pad: padding.AsymmetricPadding) -> None:
    key = CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.auth.key), label="CPS auth")
    with pytest.raises(UnsupportedAlgorithm, match=r"PKCS#1 v1\.5"):
        key.sign(b"x", pad, hashes.SHA256())


def test_unsupported_hashes_and_nodigestinfo(holder: PersonCerts) -> None:
    key = CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.auth.key), label="CPS auth")
    with pytest.raises(UnsupportedAlgorithm):
        key.sign(b"x", padding.PKCS1v15(), hashes.MD5())
    with pytest.raises(UnsupportedAlgorithm):
        key.sign(b"x" * 36, padding.PKCS1v15(), NoDigestInfo())


def test_no_export_no_decrypt_no_secret_in_repr(holder: PersonCerts) -> None:
    key = CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.auth.key), label="CPS auth")
    with pytest.raises(UnsupportedAlgorithm):
        key.private_numbers()
    with pytest.raises(UnsupportedAlgorithm):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(UnsupportedAlgorithm):
        key.decrypt(b"\x00" * 256, padding.PKCS1v15())
    assert repr(key) == "<CardRsaPrivateKey 'CPS auth' RSA-2048>"
    assert copy.deepcopy(key) is key and copy.copy(key) is key
    assert isinstance(key, rsa.RSAPrivateKey)


def test_a_wrong_card_answer_is_a_card_error(holder: PersonCerts) -> None:
    # the card signs with the other key: the certificate does not match, we must not return that
    key = CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.sign.key), label="CPS auth")
    with pytest.raises(BridgeError) as info:
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert info.value.code is ErrorCode.CARD_ERROR


@pytest.mark.parametrize("length", [0, 1, 63, 64, 65, 128, 1000])
@pytest.mark.parametrize("algorithm", [hashes.SHA256(), hashes.SHA1()], ids=["sha256", "sha1"])
def test_message_key_passes_the_whole_message(
    holder: PersonCerts, length: int, algorithm: hashes.HashAlgorithm
) -> None:
    card = MessageCard(holder.sign.key)
    key = CardRsaMessageKey(holder.sign.key.public_key(), card, label="CPS signature")
    message = bytes(range(256)) * 4
    message = message[:length]
    signature = key.sign(message, padding.PKCS1v15(), algorithm)
    holder.sign.certificate.public_key().verify(signature, message, padding.PKCS1v15(), algorithm)  # type: ignore[union-attr]
    assert card.messages == [message]


def test_message_key_refuses_prehashed_and_other_hashes(holder: PersonCerts) -> None:
    key = CardRsaMessageKey(holder.sign.key.public_key(), MessageCard(holder.sign.key), label="CPS signature")
    with pytest.raises(UnsupportedAlgorithm, match="needs the message"):
        key.sign(b"\x00" * 32, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    with pytest.raises(UnsupportedAlgorithm):
        key.sign(b"x", padding.PKCS1v15(), hashes.SHA512())
    assert isinstance(key, CardRsaPrivateKey)


def test_signxml_signs_with_card_keys_and_verifies(holder: PersonCerts, pki: TestPki) -> None:
    for issued, key in (
        (holder.sign, CardRsaMessageKey(holder.sign.key.public_key(), MessageCard(holder.sign.key), label="sig")),
        (holder.auth, CardRsaPrivateKey(holder.auth.key.public_key(), DigestCard(holder.auth.key), label="aut")),
    ):
        doc = etree.fromstring(b'<Assertion xmlns="urn:test" ID="_a1"><Subject>899900063480</Subject></Assertion>')
        signer = XMLSigner(signature_algorithm="rsa-sha256", digest_algorithm="sha256")
        signed = signer.sign(doc, key=key, cert=[issued.certificate, *issued.chain[:-1]])
        wire = etree.tostring(signed)
        result = XMLVerifier().verify(wire, x509_cert=issued.certificate)
        assert result.signed_xml is not None
        assert result.signed_xml.findtext("{urn:test}Subject") == "899900063480"
        tampered = wire.replace(b"899900063480", b"899900063481")
        with pytest.raises(InvalidSignature):
            XMLVerifier().verify(tampered, x509_cert=issued.certificate)


class PssCard:
    """A CPS4 through the Cryptolib (CKM_SHA256_RSA_PKCS_PSS): hashes the message and signs with PSS."""

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self.key = key
        self.calls: list[tuple[str, int]] = []

    def __call__(self, message: bytes, algorithm: hashes.HashAlgorithm, salt: int) -> bytes:
        self.calls.append((algorithm.name, salt))
        return self.key.sign(message, padding.PSS(padding.MGF1(algorithm), salt), algorithm)


def test_message_key_with_pss(holder: PersonCerts) -> None:
    pss_card = PssCard(holder.sign.key)
    key = CardRsaMessageKey(
        holder.sign.key.public_key(), MessageCard(holder.sign.key), label="CPS4 signature", sign_message_pss=pss_card
    )
    assert key.supports_pss
    public = holder.sign.key.public_key()
    for salt, expected in ((padding.PSS.DIGEST_LENGTH, 32), (padding.PSS.MAX_LENGTH, 256 - 32 - 2), (20, 20)):
        signature = key.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA256()), salt), hashes.SHA256())
        public.verify(signature, b"m", padding.PSS(padding.MGF1(hashes.SHA256()), expected), hashes.SHA256())
    assert [salt for _, salt in pss_card.calls] == [32, 222, 20]
    # PKCS#1 v1.5 still goes to the PKCS#1 path
    key.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    assert len(pss_card.calls) == 3
    with pytest.raises(UnsupportedAlgorithm, match="MGF1"):
        key.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA1()), 20), hashes.SHA256())
    with pytest.raises(ValueError):
        key.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 300), hashes.SHA256())


def test_message_key_without_pss_refuses_it(holder: PersonCerts) -> None:
    key = CardRsaMessageKey(holder.sign.key.public_key(), MessageCard(holder.sign.key), label="CPS3 signature")
    assert not key.supports_pss
    with pytest.raises(UnsupportedAlgorithm, match=r"PKCS#1 v1\.5"):
        key.sign(b"m", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def test_digest_info() -> None:
    digest = bytes(32)
    assert digest_info(digest, hashes.SHA256()) == bytes.fromhex("3031300d060960864801650304020105000420") + digest
    with pytest.raises(ValueError):
        digest_info(bytes(20), hashes.SHA256())
