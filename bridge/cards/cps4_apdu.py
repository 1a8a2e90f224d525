"""CPS4 (NXP ChipDoc) APDUs as the official Cryptolib 5.2 sends them: pure builders and parsers, no I/O.

Every command carries CLA ``01`` (logical channel 1, opened by the SELECT of the ChipDoc applet with
no MANAGE CHANNEL; ``11`` on the non-final links of a chain). Sources (Cryptolib 5.2, file:function,
digest in the notes ``cryptolib-cps4.md``): ``card-cps4.c:cps4_match_card`` (CLA 01, SELECT AID P2=0C),
``iso7816.c:iso7816_select_file`` (SELECT by path P1=08 without 3F00, P2=00, Le=00 for the FCI),
``card-cps.c:_cps_read_efsnicc`` and ``pkcs15.c:sc_pkcs15_parse_efsnicc`` (EF.SN.ICC, serial),
``card-cps4.c:_cps4_get_pin_counter`` (empty VERIFY), ``sec.c:sc_build_pin`` (PIN block),
``card-cps4.c:cps4_set_security_env``/``cps4_sign``/``decipher`` (MSE, PSO CDS, chained PSO
DECIPHER with no padding-indicator byte), ``apdu.c:do_single_transmit`` (re-select after 6Exx/6A86).
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes

from bridge.cards.cps_data import ANS_ISSUER, CardDataError
from bridge.cards.cps_info import PinStatus
from bridge.pcsc.apdu import Command, StatusWord
from bridge.tlv import TlvError, parse_tlv

__all__ = [
    "AUTH_KEY_REF",
    "CHIPDOC_AID",
    "CLA",
    "CPS4_ATRS",
    "MAX_READ",
    "SN_ICC_PATH",
    "TRIES_MAX",
    "Scheme",
    "algorithm_id",
    "mse_decipher",
    "mse_sign",
    "needs_reselect",
    "parse_fci_size",
    "parse_pin_counter",
    "parse_serial",
    "pin_counter",
    "pkcs1_type1",
    "pso_cds",
    "pso_decipher",
    "read_binary",
    "select_chipdoc",
    "select_path",
    "verify",
]

#: The three CPS4 ATRs the Cryptolib matches byte for byte (card-cps.c CPS_ATR_LIST).
CPS4_ATRS = (
    bytes.fromhex("3B9B188001001225006480040100009044"),
    bytes.fromhex("3B9B188001001225006480000401009044"),
    bytes.fromhex("3BDC18FF00001225006480000401009000"),
)
CHIPDOC_AID = bytes.fromhex("8025000001FF0100")
CLA = 0x01
_CHAINING = 0x10
SN_ICC_PATH = bytes.fromhex("3F00D003")
AUTH_KEY_REF = 0x20  # internal.h CPS4_AUTH_PRIV_KEY_ID: the only key the module deciphers with
TRIES_MAX = 3  # _cps4_get_pin_counter: the card tells tries left only; the module fixes the maximum
MAX_READ = 256  # max_recv_size; READ BINARY with Le=00
_SN_ICC_SIZE = 12
_SW_BLOCKED = 0x6983


class Scheme(enum.Enum):
    """How the signature is padded."""

    #: RSASSA-PKCS1-v1_5.
    PKCS1V15 = "pkcs1v15"
    #: RSASSA-PSS, MGF1 with the same hash, salt length = hash length (the card chooses).
    PSS = "pss"


#: MSE ``91`` algorithm ids (cards.h CPSV4_ALG_*): the card pads the bare hash it receives.
_ALGORITHMS = {
    (Scheme.PKCS1V15, "sha1"): 0x0A,
    (Scheme.PKCS1V15, "sha256"): 0x28,
    (Scheme.PSS, "sha1"): 0x15,
    (Scheme.PSS, "sha256"): 0x2C,
}


def algorithm_id(scheme: Scheme, algorithm: hashes.HashAlgorithm) -> int:
    """The MSE algorithm id for `scheme` over `algorithm`; ValueError for hashes the card does not take."""
    try:
        return _ALGORITHMS[(scheme, algorithm.name)]
    except KeyError:
        raise ValueError(f"the CPS4 signs SHA-256 or SHA-1 hashes, not {algorithm.name}") from None


# ---- builders ----------------------------------------------------------------------------------


def select_chipdoc(p2: int = 0x0C) -> Command:
    """SELECT the ChipDoc applet on channel 1 (P2=0C at match, 04 for the recovery re-select), case 3."""
    return Command(CLA, 0xA4, 0x04, p2, CHIPDOC_AID)


def select_path(path: bytes, *, fci: bool) -> Command:
    """SELECT by path from the MF (P1=08, 3F00 left out; the MF itself is P1=00 3F00); Le=00 for the FCI."""
    if len(path) < 2 or len(path) % 2 or path[:2] != b"\x3f\x00":
        raise ValueError("an absolute path starting with 3F00 is expected")
    le = 0 if fci else None
    if len(path) == 2:
        return Command(CLA, 0xA4, 0x00, 0x00, path, le)
    return Command(CLA, 0xA4, 0x08, 0x00, path[2:], le)


def read_binary(offset: int, length: int) -> Command:
    """READ BINARY of 1..256 bytes at a 15-bit offset of the current EF."""
    if not 0 <= offset <= 0x7FFF or not 1 <= length <= MAX_READ:
        raise ValueError("offset or length out of range")
    return Command(CLA, 0xB0, offset >> 8, offset & 0xFF, le=length)


def pin_counter(reference: int) -> Command:
    """Empty VERIFY (case 1): the card answers the tries left (63Cx), 6983 blocked, 9000 verified."""
    return Command(CLA, 0x20, 0x00, reference)


def verify(block: bytes | bytearray, reference: int) -> Command:
    """VERIFY with a PIN block built by `encode_pin`."""
    if not block:
        raise ValueError("an empty VERIFY asks the counter: use pin_counter")
    return Command(CLA, 0x20, 0x00, reference, bytes(block))


def mse_sign(algorithm: int, key_reference: int) -> Command:
    """MSE 81 B6 {91 02 algorithm key|80}: the next PSO CDS signs with this key and padding."""
    return Command(CLA, 0x22, 0x81, 0xB6, bytes((0x91, 0x02, algorithm, key_reference | 0x80)))


def mse_decipher(key_reference: int = AUTH_KEY_REF) -> Command:
    """MSE 41 B8 {83 01 key}: the next PSO DECIPHER uses the authentication key."""
    return Command(CLA, 0x22, 0x41, 0xB8, bytes((0x83, 0x01, key_reference)))


def pso_cds(digest: bytes) -> Command:
    """PSO COMPUTE DIGITAL SIGNATURE over the bare hash (20 or 32 bytes); Le=00 for the 256-byte signature."""
    if len(digest) not in (20, 32):
        raise ValueError("a SHA-1 or SHA-256 hash is expected")
    return Command(CLA, 0x2A, 0x9E, 0x9A, digest, le=0)


def pso_decipher(block: bytes) -> tuple[Command, ...]:
    """PSO DECIPHER of a whole RSA block, chained as the module does: 255-byte links (CLA 11), then the rest.

    No padding-indicator byte is sent (it is commented out in card-cps4.c:decipher). The chain is built
    here rather than by the transport so that it stays the same whatever the reader's extended-length
    support.
    """
    if not block:
        raise ValueError("nothing to decipher")
    links = [block[i : i + 255] for i in range(0, len(block), 255)]
    chained = [Command(CLA | _CHAINING, 0x2A, 0x80, 0x86, link) for link in links[:-1]]
    return (*chained, Command(CLA, 0x2A, 0x80, 0x86, links[-1], le=0))


# ---- parsers and rules -------------------------------------------------------------------------


def needs_reselect(sw: StatusWord) -> bool:
    """6Exx or 6A86: the module re-selects ChipDoc (P2=04) and sends the command once more."""
    return sw.sw1 == 0x6E or sw.value == 0x6A86


def parse_fci_size(fci: bytes) -> int:
    """The file size from an FCI ``6F { 80 size | 81 size }`` (top-level tags, as iso7816_process_fci)."""
    try:
        tlvs = parse_tlv(fci)
    except TlvError as exc:
        raise CardDataError(f"FCI: {exc}") from None
    if not tlvs or tlvs[0].tag != 0x6F:
        raise CardDataError("FCI: no 6F template")  # the module rejects a 62 FCP too
    size = tlvs[0].find(0x80) or tlvs[0].find(0x81)
    if size is None or not size.value:
        raise CardDataError("FCI: no file size")
    return int.from_bytes(size.value, "big")


def parse_serial(data: bytes) -> str:
    """EF.SN.ICC -> the serial the Cryptolib reports: the PAN without issuer nor its last byte (Luhn + F)."""
    if len(data) != _SN_ICC_SIZE or data[:2] != b"\x5a\x0a":
        raise CardDataError("EF.SN.ICC")
    if data[2:7] != ANS_ISSUER:
        raise CardDataError("EF.SN.ICC: not the ANS issuer")
    return data[7:-1].hex().upper()


def parse_pin_counter(sw: StatusWord) -> PinStatus | None:
    """The answer to an empty VERIFY: a PinStatus, None when the PIN is verified; ValueError otherwise."""
    if sw.ok:
        return None
    if sw.sw1 == 0x63:
        return PinStatus(tries_left=sw.sw2 & 0x0F, tries_max=TRIES_MAX)
    if sw.value == _SW_BLOCKED:
        return PinStatus(tries_left=0, tries_max=TRIES_MAX)
    raise ValueError(f"no PIN counter in SW {sw}")


def pkcs1_type1(payload: bytes, size: int) -> bytes:
    """EMSA-PKCS1-v1_5 block ``00 01 FF.. 00 || payload`` of `size` bytes (the host pads for DECIPHER)."""
    if len(payload) > size - 11:
        raise ValueError("payload too long for the modulus")
    return b"\x00\x01" + b"\xff" * (size - 3 - len(payload)) + b"\x00" + payload
