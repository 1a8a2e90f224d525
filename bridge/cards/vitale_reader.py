"""Reading a Carte Vitale 2 over PC/SC: the APDUs and the read sequence, no PIN and no CPS.

Synchronous code over a `CardChannel` (T=0 61xx/6Cxx handled below it); APDU builders are pure
functions, and the files read are decoded by `bridge.cards.vitale_parse`. The read follows the public
traces (cardpeek ``vitale_2.lua``, Rufus ``lecteurvitale.cpp``), with no PIN and no CPS:

1. ``00 A4 00 00 02 3F00`` select the MF (a card without it is not a Vitale);
2. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary (identity);
3. ``00 A4 02 0C 02 2F02`` then READ BINARY: EF "PAN" (optional);
4. ``00 A4 04 00 0B D250000002 "VITALE"`` select the VITALE application;
5. ``00 B0 82 00 00`` READ BINARY by SFI 2: one ``65`` template per beneficiary (NIR), then ``66``.

A file longer than 256 bytes is read on with ``00 B0 hh ll 00`` from offset 256 until a short read.
"""

from __future__ import annotations

import logging

from bridge.cards.vitale import TAGS, VitaleCard
from bridge.cards.vitale_parse import build_card, parse_card_template, parse_identity_templates, parse_nir_templates
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response
from bridge.pcsc.channel import CardChannel, StatusWordError, check
from bridge.tlv import TlvError, parse_tlv

__all__ = [
    "AID_VITALE",
    "AID_VITALE_MF",
    "read_binary",
    "read_binary_sfi",
    "read_vitale",
    "select_aid",
    "select_fid",
    "select_mf",
]

log = logging.getLogger(__name__)

AID_VITALE = bytes.fromhex("D250000002") + b"VITALE"
AID_VITALE_MF = bytes.fromhex("D250000002") + b"MF_VITALE"
SFI_BENEFICIARIES = 2
FID_PAN = 0x2F02
_MAX_EF_SIZE = 16 * 1024  # a Vitale 2 chip holds 32 KB in all; no single EF comes close


# ---- APDU builders ------------------------------------------------------------------------------------


def select_mf() -> Command:
    """SELECT MF by FID, asking for the FCI (as the public traces do)."""
    return Command(0x00, 0xA4, 0x00, 0x00, b"\x3f\x00")


def select_aid(aid: bytes) -> Command:
    """SELECT an application by AID, FCI requested (cardpeek/Rufus form)."""
    return Command(0x00, 0xA4, 0x04, 0x00, aid)


def select_fid(fid: int) -> Command:
    """SELECT an EF of the current DF by FID, no answer data."""
    return Command(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big"))


def read_binary_sfi(sfi: int) -> Command:
    """READ BINARY from offset 0 of the EF with short identifier `sfi` (which becomes current)."""
    if not 1 <= sfi <= 30:
        raise ValueError("SFI must be within 1..30")
    return Command(0x00, 0xB0, 0x80 | sfi, 0x00, le=256)


def read_binary(offset: int) -> Command:
    """READ BINARY of the current EF at `offset` (15 bits), up to 256 bytes."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset must fit in 15 bits")
    return Command(0x00, 0xB0, offset >> 8, offset & 0xFF, le=256)


# ---- I/O edge ----------------------------------------------------------------------------------------


def _read_ef(channel: CardChannel, first: Command, what: str) -> bytes:
    """Read a whole transparent EF: `first` (offset 0), then 256-byte chunks until a short read."""
    data = bytearray(check(channel.transmit(first), what))
    chunk = len(data)
    while chunk == 256 and len(data) < _MAX_EF_SIZE:
        response: Response = channel.transmit(read_binary(len(data)))
        if response.sw.value == 0x6B00:  # the EF ends exactly on a 256-byte boundary
            break
        part = check(response, what)
        data += part
        chunk = len(part)
    return bytes(data)


def _read_serial(channel: CardChannel) -> str | None:
    if not channel.transmit(select_fid(FID_PAN)).sw.ok:
        return None
    try:
        pan = _read_ef(channel, read_binary(0), "vitale: read PAN")
        value = next((t.value for t in parse_tlv(pan) if t.tag == TAGS["serial"].tag), None)
    except (StatusWordError, TlvError):
        return None
    return value.hex().upper().rstrip("F") if value else None


def read_vitale(channel: CardChannel) -> VitaleCard:
    """Read every beneficiary of the Vitale 2 card on `channel`.

    Raises:
        BridgeError: UNSUPPORTED_CARD when the card has no Vitale MF/application; CARD_ERROR (a
            `StatusWordError`) when a read is refused or the data is inconsistent.
    """
    if not channel.transmit(select_mf()).sw.ok:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no MF)")
    try:
        identity_file = _read_ef(channel, read_binary_sfi(SFI_BENEFICIARIES), "vitale: identity")
    except StatusWordError as exc:
        if exc.sw.value in (0x6A82, 0x6981):  # an MF without the Vitale identity EF: another card
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no identity file)") from exc
        raise
    identities = parse_identity_templates(identity_file)
    serial = _read_serial(channel)
    if not channel.transmit(select_aid(AID_VITALE)).sw.ok:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not a Vitale card (no VITALE application)")
    nir_file = _read_ef(channel, read_binary_sfi(SFI_BENEFICIARIES), "vitale: NIR")
    card = build_card(identities, parse_nir_templates(nir_file), serial, parse_card_template(nir_file))
    log.info("Vitale card read: %d beneficiaries", len(card.beneficiaries))
    return card
