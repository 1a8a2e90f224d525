"""A generic ISO 7816-4 virtual card: an ATR of our own and a small file tree, no security.

Useful to check a reader chain end to end (pcscd, vpcd, the bridge's reader monitor) with a card the
bridge must report as unknown. Tree (T=1, SELECT answers FCI, FCP or nothing):

    3F00 MF
      2F00 EF.DIR (records: one ``61`` application template per application)
      2F01 EF (transparent, SFI 1): "dmp-bridge generic virtual card"
      A000 DF, name ``GENERIC_AID``
        0101 EF (transparent, SFI 1): 300 bytes 00..FF 00..2B (a file longer than one READ BINARY)
        0102 EF (records, SFI 2): "premier", "second", "troisième" (Latin-1)
"""

from __future__ import annotations

from bridge.sim.cardos import DF, CardConfig, CardOS, RecordEF, TransparentEF, Transport
from bridge.tlv import encode_tlv

__all__ = ["GENERIC_AID", "GENERIC_ATR", "GenericCard", "make_card"]

#: 3B 8B 80 01: T=0 and T=1 offered, 11 historical bytes (00 "DMP-BRIDGE"), TCK 61.
GENERIC_ATR = bytes.fromhex("3B8B800100444D502D42524944474561")
#: A proprietary-category AID (F0 = not registered), ASCII "DMPBRIDGE".
GENERIC_AID = bytes.fromhex("F0") + b"DMPBRIDGE"


def _tree() -> DF:
    mf = DF(fid=0x3F00)
    mf.add(
        RecordEF(fid=0x2F00, records=[encode_tlv(0x61, encode_tlv(0x4F, GENERIC_AID) + encode_tlv(0x50, b"GENERIC"))])
    )
    mf.add(TransparentEF(fid=0x2F01, sfi=1, data=b"dmp-bridge generic virtual card"))
    app = mf.add(DF(fid=0xA000, name=GENERIC_AID))
    app.add(TransparentEF(fid=0x0101, sfi=1, data=bytes(range(256)) + bytes(range(44))))
    app.add(RecordEF(fid=0x0102, sfi=2, records=[b"premier", b"second", "troisième".encode("latin-1")]))
    return mf


class GenericCard(CardOS):
    """The generic card: CardOS with the tree above and no card-specific command."""

    def __init__(self) -> None:
        super().__init__(CardConfig(GENERIC_ATR, Transport.T1), _tree())


def make_card(profile: str | None = None) -> GenericCard:
    """Registry factory; the generic card has one profile, "default"."""
    if profile not in (None, "default"):
        raise KeyError(profile)
    return GenericCard()
