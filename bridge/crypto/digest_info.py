"""DER DigestInfo (RFC 8017 §9.2 note 1): the one table of prefixes, built and split without I/O.

What a card signs when the host hashes: CKM_RSA_PKCS, INTERNAL AUTHENTICATE (CPS3) and the host-padded
block of a CPS4 DECIPHER all take ``DigestInfo || hash``; the TLS client splits one back.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes

__all__ = ["DIGEST_INFO_PREFIXES", "digest_info", "split_digest_info"]

#: prefix (the DER up to the hash value) -> hash algorithm.
DIGEST_INFO_PREFIXES: dict[bytes, hashes.HashAlgorithm] = {
    bytes.fromhex("3021300906052b0e03021a05000414"): hashes.SHA1(),
    bytes.fromhex("302d300d06096086480165030402040500041c"): hashes.SHA224(),
    bytes.fromhex("3031300d060960864801650304020105000420"): hashes.SHA256(),
    bytes.fromhex("3041300d060960864801650304020205000430"): hashes.SHA384(),
    bytes.fromhex("3051300d060960864801650304020305000440"): hashes.SHA512(),
}
_PREFIX_OF: dict[str, bytes] = {algorithm.name: prefix for prefix, algorithm in DIGEST_INFO_PREFIXES.items()}


def digest_info(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    """The DER DigestInfo of `digest`; ValueError for another hash or a digest of the wrong size."""
    prefix = _PREFIX_OF.get(algorithm.name)
    if prefix is None or len(digest) != algorithm.digest_size:
        raise ValueError(f"no DigestInfo for a {len(digest)}-byte {algorithm.name} digest")
    return prefix + digest


def split_digest_info(data: bytes) -> tuple[hashes.HashAlgorithm, bytes]:
    """Split a DER DigestInfo into (hash algorithm, digest); ValueError if it is not one we allow."""
    for prefix, algorithm in DIGEST_INFO_PREFIXES.items():
        if data.startswith(prefix) and len(data) == len(prefix) + algorithm.digest_size:
            return algorithm, data[len(prefix) :]
    raise ValueError("not a SHA-1/SHA-2 DigestInfo")
