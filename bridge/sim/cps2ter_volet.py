"""The CPS2ter volet of a virtual CPS3: the few files the Cryptolib reads through it (CLA A0).

The Cryptolib adds `CPS_SIT_FACT` (``3F00/7F01/4000``) and `CPS2TER_ACTIVITY_nn_PS` (``3F00/40xx``,
xx = 0F + nn) to a CPS3's objects itself and reads them through this volet
(`card-cps.c:cps2ter_select_file`): SELECT ``A0 A4 00 00 02 <fid>`` one level at a time from the
MF, answered ``9Fxx`` then GET RESPONSE ``A0 C0`` with ``85 L size(2) fid(2) type(1)``, then
READ BINARY ``A0 B0``. Assumptions (no public source): these files need the IAS PIN verified (the
real link between the two volets' PINs is not public), and their contents use our layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Cps2terVolet"]

_MF, _DF_SIT_FACT, _EF_SIT_FACT = 0x3F00, 0x7F01, 0x4000
_TYPE_DF, _TYPE_EF = 0x02, 0x04


def _sw(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


@dataclass
class Cps2terVolet:
    """CPS2ter files by FID (``(df, fid) -> content``) and the volet's own current file and pending answer."""

    files: dict[tuple[int | None, int], bytes]
    _df: int | None = None
    _ef: bytes | None = None
    _pending: bytes | None = field(default=None, repr=False)

    @classmethod
    def for_card(cls, sit_fact: bytes, activities: dict[int, bytes]) -> Cps2terVolet:
        """The volet of a card: CPS_SIT_FACT and one CPS2TER_ACTIVITY per situation slot (0..15)."""
        files: dict[tuple[int | None, int], bytes] = {(_DF_SIT_FACT, _EF_SIT_FACT): sit_fact}
        for slot, data in activities.items():
            files[(None, 0x4010 + slot)] = data
        return cls(files)

    def reset(self) -> None:
        """A reset forgets the current file."""
        self._df, self._ef, self._pending = None, None, None

    def process(self, apdu: bytes, pin_verified: bool) -> bytes:
        """One CLA A0 command: SELECT, GET RESPONSE or READ BINARY."""
        if len(apdu) < 4:
            return _sw(0x6700)
        ins, p1, p2 = apdu[1], apdu[2], apdu[3]
        pending, self._pending = self._pending, None
        if ins == 0xC0:
            if pending is None:
                return _sw(0x6F00)
            return pending + _sw(0x9000)
        if ins == 0xA4:
            if (p1, p2) != (0, 0) or len(apdu) < 7 or apdu[4] != 2:
                return _sw(0x6B00)
            return self._select(int.from_bytes(apdu[5:7], "big"))
        if ins == 0xB0:
            if self._ef is None:
                return _sw(0x6986)
            if not pin_verified:
                return _sw(0x6982)
            offset, le = (p1 << 8) | p2, apdu[4] if len(apdu) > 4 else 0
            return self._ef[offset : offset + (le or 256)] + _sw(0x9000)
        return _sw(0x6D00)

    def _select(self, fid: int) -> bytes:
        if fid == _MF:
            self._df, self._ef = None, None
            return _sw(0x9000)
        if fid == _DF_SIT_FACT:
            self._df, self._ef = fid, None
            return _sw(0x9000)
        data = self.files.get((self._df, fid), self.files.get((None, fid)))
        if data is None:
            return _sw(0x9404)  # CPS2ter: file not found
        self._ef = data
        self._pending = bytes((0x85, 5)) + len(data).to_bytes(2, "big") + fid.to_bytes(2, "big") + bytes((_TYPE_EF,))
        return _sw(0x9F00 | len(self._pending))
