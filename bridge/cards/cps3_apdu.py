"""CPS3 (IAS-ECC) APDUs as the official Cryptolib 5.2 sends them: pure builders and parsers, no I/O.

Sources (Cryptolib 5.2, file:function; digest in the notes cryptolib-cps3-pkcs15.md): SELECT by path
P1=09 with the MF included, P2=04 (FCP) or 0C (`card-cps3.c:cps3_select_file`); GET DATA on the CHV
SDO for the PIN counter (`card-cps3.c:cps3_get_pin_counter`, `card-cps.c:_cps_get_pin_info`); MSE
SET with 80 algorithm / 84 key reference, PSO HASH with the host's intermediate state and the last
1..64 bytes, PSO CDS, INTERNAL AUTHENTICATE (`card-cps3.c:cps3_set_security_env`,
`cps3_compute_hash`, `cps3_sign`).
"""

from __future__ import annotations

from bridge.cards.cps_data import CardDataError
from bridge.cards.cps_info import PinStatus
from bridge.pcsc.apdu import Command
from bridge.tlv import TlvError, find_first, parse_tlv

__all__ = [
    "ALGO_HASH",
    "ALGO_RSA_HASH",
    "ALGO_RSA_PKCS1",
    "CRT_AT",
    "CRT_DST",
    "CRT_HT",
    "IAS_AID",
    "MAX_READ",
    "PIN_REF",
    "SW_BLOCKED",
    "SW_NOT_FOUND",
    "SW_SECURITY",
    "fcp_file_size",
    "get_data_chv",
    "internal_authenticate",
    "mse_set",
    "parse_pin_status",
    "pso_cds",
    "pso_hash",
    "read_binary",
    "select_path",
    "situation_index",
    "verify_command",
]

IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")  # contact IAS-ECC application
PIN_REF = 0x01
MAX_READ = 0xE7  # the ANS driver's max_recv_size for CPS3

# Algorithm references (card-cps3.c, cards.md §1.6).
ALGO_RSA_PKCS1 = 0x02
ALGO_HASH = {"sha1": 0x10, "sha256": 0x40}
ALGO_RSA_HASH = {"sha1": 0x12, "sha256": 0x42}
CRT_AT, CRT_HT, CRT_DST = 0xA4, 0xAA, 0xB6

SW_SECURITY = 0x6982
SW_BLOCKED = 0x6983
SW_NOT_FOUND = 0x6A82


# ---- APDU builders (pure) -------------------------------------------------------------------------


def select_path(path: bytes, *, fcp: bool = True) -> Command:
    """SELECT by path from the MF (P1=09, path including 3F00); P2=04 asks for the FCP, 0C for nothing."""
    return Command(0x00, 0xA4, 0x09, 0x04 if fcp else 0x0C, path)


def read_binary(offset: int, length: int) -> Command:
    """READ BINARY of `length` (1..256) bytes at a 15-bit offset of the current EF."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset out of range")
    return Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=length)


def get_data_chv(ref: int = PIN_REF) -> Command:
    """GET DATA on the CHV SDO (class 1, `ref`): tries max (9A) and remaining (9B)."""
    return Command(0x00, 0xCB, 0x3F, 0xFF, bytes((0x4D, 0x08, 0x70, 0x06, 0xBF, 0x81, ref, 0x02, 0xA0, 0x80)))


def verify_command(pin: bytes | bytearray, ref: int = PIN_REF) -> Command:
    """VERIFY with the PIN as ASCII digits (empty `pin`: ask the tries counter)."""
    return Command(0x00, 0x20, 0x00, ref, bytes(pin))


def mse_set(crt: int, algorithm: int, key_ref: int | None = None) -> Command:
    """MSE SET (P1=41) of one control reference template: 80 = algorithm, 84 = key reference."""
    body = bytes((0x80, 0x01, algorithm))
    if key_ref is not None:
        body += bytes((0x84, 0x01, key_ref))
    return Command(0x00, 0x22, 0x41, crt, body)


def internal_authenticate(data: bytes) -> Command:
    """INTERNAL AUTHENTICATE: the card PKCS#1-pads `data` (a DigestInfo) and signs with the AT key."""
    return Command(0x00, 0x88, 0x00, 0x00, data, le=256)


def pso_hash(state: bytes, bits_hashed: int, remainder: bytes) -> Command:
    """PSO HASH: 90 = intermediate state || bit count (empty when nothing was hashed), 80 = last 1..64 bytes."""
    if len(remainder) > 64:
        raise ValueError("at most 64 bytes are left for the card")
    intermediate = state + bits_hashed.to_bytes(8, "big") if bits_hashed else b""
    body = bytes((0x90, len(intermediate))) + intermediate + bytes((0x80, len(remainder))) + remainder
    return Command(0x00, 0x2A, 0x90, 0xA0, body)


def pso_cds() -> Command:
    """PSO COMPUTE DIGITAL SIGNATURE over the hash the card finished (case 2, Le=00)."""
    return Command(0x00, 0x2A, 0x9E, 0x9A, le=256)


def situation_index(label: str) -> int | None:
    """0..15 for a ``CPS_ACTIVITY_nn_PS`` label, else None."""
    if label.startswith("CPS_ACTIVITY_") and label.endswith("_PS") and label[13:15].isdigit():
        index = int(label[13:15]) - 1
        return index if 0 <= index < 16 else None
    return None


# ---- response parsers (pure) ----------------------------------------------------------------------


def fcp_file_size(fcp: bytes) -> int | None:
    """The EF size from an FCP template (62 { 80 size }), or None."""
    try:
        size = find_first(parse_tlv(fcp), 0x80)
    except TlvError:
        return None
    return int.from_bytes(size.value, "big") if size is not None and size.value else None


def parse_pin_status(data: bytes) -> PinStatus:
    """GET DATA CHV answer: 70 { BF81xx { A0 { 9A max, 9B remaining, [9D usage counter] } } }."""
    try:
        tlvs = parse_tlv(data)
    except TlvError as exc:
        raise CardDataError(f"PIN status: {exc}") from None
    max_tlv, left_tlv, usage = find_first(tlvs, 0x9A), find_first(tlvs, 0x9B), find_first(tlvs, 0x9D)
    if max_tlv is None or left_tlv is None:
        raise CardDataError("PIN status: counters missing")
    left = int.from_bytes(left_tlv.value, "big")
    if usage is not None and usage.value and int.from_bytes(usage.value, "big") == 0:
        left = 0  # usage counter exhausted: unusable (cards.md §1.5)
    return PinStatus(tries_left=left, tries_max=int.from_bytes(max_tlv.value, "big"))
