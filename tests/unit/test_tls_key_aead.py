"""The tlslite adapters: DigestInfo -> Prehashed signature, and the cryptography-backed record ciphers."""

from __future__ import annotations

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tlslite.constants import CipherSuite
from tlslite.errors import TLSInternalError
from tlslite.recordlayer import RecordLayer
from tlslite.utils.cipherfactory import createAES, createAESGCM, createCHACHA20
from tlslite.utils.rsakey import RSAKey

from bridge.crypto.digest_info import split_digest_info
from bridge.crypto.tls_aead import AeadCipher, CbcCipher, FastRecordLayer
from bridge.crypto.tls_key import ExternalRsaKey
from tests.tls_peers import CountingKey


@pytest.fixture(scope="module")
def software_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_card_sees_pkcs1v15_over_the_digest_and_tlslite_verifies(software_key: rsa.RSAPrivateKey) -> None:
    key = CountingKey(software_key)
    adapter = ExternalRsaKey(key)
    digest = hashlib.sha256(b"handshake messages").digest()
    digest_info = RSAKey.addPKCS1Prefix(bytearray(digest), "sha256")  # what tlslite's CertificateVerify passes
    signature = adapter.sign(digest_info, "pkcs1", None, 0)
    assert key.calls == [("PKCS1v15", 32)]
    # Same bytes as a software PKCS#1 v1.5 signature, and tlslite's own verify accepts it.
    assert bytes(signature) == software_key.sign(b"handshake messages", padding.PKCS1v15(), hashes.SHA256())
    assert adapter.verify(signature, digest_info, "pkcs1", None, 0)


def test_pss_and_raw_operations_are_refused(software_key: rsa.RSAPrivateKey) -> None:
    adapter = ExternalRsaKey(CountingKey(software_key))
    with pytest.raises(TLSInternalError, match=r"PKCS#1 v1\.5"):
        adapter.sign(bytearray(32), "pss", "sha256", 32)
    with pytest.raises(TLSInternalError, match="raw RSA"):
        adapter.decrypt(bytearray(256))
    with pytest.raises(TLSInternalError, match="DigestInfo"):
        adapter.sign(bytearray(b"\x00" * 51), "pkcs1", None, 0)


def test_split_digest_info() -> None:
    prefix = bytes.fromhex("3031300d060960864801650304020105000420")
    algorithm, digest = split_digest_info(prefix + b"\x01" * 32)
    assert isinstance(algorithm, hashes.SHA256) and digest == b"\x01" * 32
    with pytest.raises(ValueError):
        split_digest_info(prefix + b"\x01" * 31)


@pytest.mark.parametrize(("key_len", "chacha"), [(16, False), (32, False), (32, True)])
def test_aead_matches_tlslite_python_implementation(key_len: int, chacha: bool) -> None:
    key, nonce, aad = os.urandom(key_len), os.urandom(12), os.urandom(13)
    ours = AeadCipher(key, chacha=chacha)
    theirs = createCHACHA20(bytearray(key)) if chacha else createAESGCM(bytearray(key), ["python"])
    sealed = ours.seal(nonce, b"record payload", aad)
    assert sealed == theirs.seal(bytearray(nonce), bytearray(b"record payload"), bytearray(aad))
    assert theirs.open(bytearray(nonce), sealed, bytearray(aad)) == b"record payload"
    tampered = bytearray(sealed)
    tampered[0] ^= 1
    assert ours.open(nonce, tampered, aad) is None
    assert ("aes" in ours.name) is (not chacha)  # tlslite derives the explicit-nonce rule from the name


def test_cbc_chains_like_tlslite() -> None:
    key, iv = os.urandom(32), os.urandom(16)
    ours, theirs = CbcCipher(key, iv), createAES(bytearray(key), bytearray(iv), ["python"])
    for block in (os.urandom(32), os.urandom(48)):
        assert ours.encrypt(block) == theirs.encrypt(bytearray(block))


def test_record_layer_uses_our_ciphers_for_the_dmp_suites() -> None:
    for suite, cls in [
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, AeadCipher),
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, AeadCipher),
        (CipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, AeadCipher),
        (CipherSuite.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384, CbcCipher),
    ]:
        key_len, iv_len, factory = FastRecordLayer._getCipherSettings(suite)
        assert factory is not None
        made = factory(os.urandom(key_len)) if cls is AeadCipher else factory(os.urandom(key_len), os.urandom(iv_len))
        assert isinstance(made, cls)
    # tlslite's own class is untouched (no global patching).
    assert RecordLayer._getCipherSettings(CipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)[2] is createAESGCM
