"""Virtual carte Vitale 2 on `CardOS`, built from a JSON profile (``bridge/sim/profiles/vitale-<name>.json``).

Card layout (T=0, ATR ``3B 75 13 00 00 43 09 EA 90 00``; public parts from cardpeek/Rufus, the rest is
the encoding documented in ``bridge/cards/vitale.py`` "Assumptions"; tags there in ``TAGS``):

    3F00 MF, DF name "MF_VITALE" (D2500000024D465F564954414C45)
      2F00 EF.DIR: 61 { 4F AID, 50 label } per application
      2F02 EF "PAN": 5A serial number (BCD, F-padded)
      2004 EF, SFI 2: 65 { 80 last name, 81 first name, 82 birth date YYYYMMDD } per beneficiary
      1000 DF "VITALE" (D250000002564954414C45)
        2001 EF "POINTERS" (cardpeek layout): E0 { A0 { 82 entry|0000|AID ... } 80 name8|entry|EF ... }
        2002 EF, SFI 2: 65 { 93 NIR (15 chars), 84 rank, 85 quality } per beneficiary, each tag only
                        when the profile gives it (no template at all with "coverage": false), then
                        66 { 80 validity start, 81 validity end }
        2003 EF "DROITAMO": AMO rights, never readable here (6982), as protected files on real cards

Profile file format (JSON object, UTF-8; names are written Latin-1 on the card):

    {
      "description": "free text",
      "atr": "3B7513000043 09EA9000",          optional, hex (spaces allowed)
      "serial": "1234567890",                   optional, digits
      "validity_start": "20190301",             YYYYMMDD
      "validity_end": "20290228",               optional, YYYYMMDD
      "beneficiaries": [
        {"last_name": "MARTIN", "first_name": "JEAN", "birth_date": "19780314",
         "nir": "178037511501201",  optional, 15 characters (13 + key, not checked here); absent: no 93
         "rank": 1,                 optional, rang de naissance
         "quality": "00",           optional, code qualité ("00" = assuré)
         "coverage": true,          optional; false: no 65 template in the VITALE file (shorter list)
         "identity_tags": {"90": "FRA"},  optional, extra tags (hex) -> ASCII value, appended to the
         "coverage_tags": {"86": "X"}}    identity / coverage template, to vary template lengths
      ]
    }

Birth dates are written as given, so lunar dates (``19810000``) and wrong NIR keys can be emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.sim.cardos import DF, NEVER, CardConfig, CardOS, TransparentEF, Transport
from bridge.sim.registry import list_profiles, load_profile
from bridge.tlv import encode_tlv

__all__ = [
    "AID_VITALE",
    "AID_VITALE_MF",
    "VITALE2_ATR",
    "ProfileBeneficiary",
    "VitaleEmulator",
    "VitaleProfile",
    "make_card",
]

VITALE2_ATR = bytes.fromhex("3B7513000043 09EA9000".replace(" ", ""))
AID_VITALE = bytes.fromhex("D250000002") + b"VITALE"
AID_VITALE_MF = bytes.fromhex("D250000002") + b"MF_VITALE"
DEFAULT_PROFILE = "famille"


@dataclass(frozen=True, slots=True)
class ProfileBeneficiary:
    """One beneficiary of a profile, as the card stores it."""

    last_name: str
    first_name: str
    birth_date: str
    nir: str | None = None
    rank: int | None = None
    quality: str | None = None
    coverage: bool = True
    identity_tags: tuple[tuple[int, str], ...] = ()
    coverage_tags: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class VitaleProfile:
    """The content of a virtual Vitale card."""

    beneficiaries: tuple[ProfileBeneficiary, ...]
    validity_start: str
    validity_end: str | None = None
    serial: str | None = None
    atr: bytes = VITALE2_ATR
    description: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VitaleProfile:
        """Validate and convert a profile JSON object (see the module docstring)."""
        raw = data.get("beneficiaries")
        if not isinstance(raw, list) or not raw:
            raise ValueError("a Vitale profile needs a non-empty 'beneficiaries' list")
        people = []
        for b in raw:
            person = ProfileBeneficiary(
                last_name=str(b["last_name"]),
                first_name=str(b["first_name"]),
                birth_date=str(b["birth_date"]),
                nir=str(b["nir"]) if b.get("nir") is not None else None,
                rank=int(b["rank"]) if b.get("rank") is not None else None,
                quality=str(b["quality"]) if b.get("quality") is not None else None,
                coverage=bool(b.get("coverage", True)),
                identity_tags=_extra_tags(b.get("identity_tags")),
                coverage_tags=_extra_tags(b.get("coverage_tags")),
            )
            if len(person.birth_date) != 8 or not person.birth_date.isdigit():
                raise ValueError("birth_date must be 8 digits YYYYMMDD (00 allowed for lunar dates)")
            if person.nir is not None and len(person.nir) != 15:
                raise ValueError("nir must be 15 characters (13 + key)")
            people.append(person)
        serial = data.get("serial")
        if serial is not None and not str(serial).isdigit():
            raise ValueError("serial must be digits")
        return cls(
            beneficiaries=tuple(people),
            validity_start=str(data["validity_start"]),
            validity_end=str(data["validity_end"]) if data.get("validity_end") else None,
            serial=str(serial) if serial is not None else None,
            atr=bytes.fromhex(str(data["atr"]).replace(" ", "")) if data.get("atr") else VITALE2_ATR,
            description=str(data.get("description", "")),
        )


def _extra_tags(raw: object) -> tuple[tuple[int, str], ...]:
    """Validate a profile's extra tags: an object of one-byte hex tags to ASCII values."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ValueError("identity_tags/coverage_tags must be an object of hex tag -> text")
    tags = tuple((int(str(tag), 16), str(value)) for tag, value in raw.items())
    # One-byte primitive tags only: a constructed tag would make its ASCII value parse as nested TLV.
    if any(not 0 < tag <= 0xFF or tag & 0x1F == 0x1F or tag & 0x20 for tag, _ in tags):
        raise ValueError("extra tags must be one-byte primitive tags (hex)")
    return tags


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits + ("F" if len(digits) % 2 else ""))


def _tree(p: VitaleProfile) -> DF:
    mf = DF(fid=0x3F00, name=AID_VITALE_MF)
    apps = [(AID_VITALE_MF, b"MF_VITALE"), (AID_VITALE, b"VITALE")]
    mf.add(
        TransparentEF(
            fid=0x2F00, data=b"".join(encode_tlv(0x61, [encode_tlv(0x4F, a), encode_tlv(0x50, n)]) for a, n in apps)
        )
    )
    if p.serial:
        mf.add(TransparentEF(fid=0x2F02, data=encode_tlv(0x5A, _bcd(p.serial))))
    identity = b"".join(
        encode_tlv(
            0x65,
            [
                encode_tlv(0x80, _latin1(b.last_name)),
                encode_tlv(0x81, _latin1(b.first_name)),
                encode_tlv(0x82, b.birth_date.encode()),
                *(encode_tlv(tag, value.encode("ascii")) for tag, value in b.identity_tags),
            ],
        )
        for b in p.beneficiaries
    )
    mf.add(TransparentEF(fid=0x2004, sfi=2, data=identity))

    app = mf.add(DF(fid=0x1000, name=AID_VITALE))
    coverage = b""
    for b in (b for b in p.beneficiaries if b.coverage):
        items = [encode_tlv(0x93, b.nir.encode("ascii"))] if b.nir is not None else []
        if b.rank is not None:
            items.append(encode_tlv(0x84, str(b.rank).encode()))
        if b.quality is not None:
            items.append(encode_tlv(0x85, b.quality.encode()))
        items += [encode_tlv(tag, value.encode("ascii")) for tag, value in b.coverage_tags]
        coverage += encode_tlv(0x65, items)
    card = [encode_tlv(0x80, p.validity_start.encode())]
    if p.validity_end:
        card.append(encode_tlv(0x81, p.validity_end.encode()))
    coverage += encode_tlv(0x66, card)
    pointers = encode_tlv(
        0xE0,
        [
            encode_tlv(
                0xA0,
                [
                    encode_tlv(0x82, b"\x00\x01\x00\x00" + AID_VITALE_MF),
                    encode_tlv(0x82, b"\x00\x02\x00\x00" + AID_VITALE),
                ],
            ),
            encode_tlv(0x80, b"IDENTITE\x00\x01\x20\x04"),
            encode_tlv(0x80, b"BENEFNIR\x00\x02\x20\x02"),
            encode_tlv(0x80, b"DROITAMO\x00\x02\x20\x03"),
        ],
    )
    app.add(TransparentEF(fid=0x2001, data=pointers))
    app.add(TransparentEF(fid=0x2002, sfi=2, data=coverage))
    app.add(TransparentEF(fid=0x2003, data=b"\x00" * 64, read=NEVER))
    return mf


class VitaleEmulator(CardOS):
    """A Vitale 2 card: CardOS (T=0, FCI/FCP/no-answer SELECT) over the profile's file tree."""

    def __init__(self, profile: VitaleProfile) -> None:
        self.profile = profile
        super().__init__(CardConfig(profile.atr, Transport.T0), _tree(profile))


def make_card(profile: str | None = None) -> VitaleEmulator:
    """Registry factory: the named profile (default "famille"); KeyError for an unknown name."""
    name = profile or DEFAULT_PROFILE
    if name not in list_profiles("vitale"):
        raise KeyError(name)
    return VitaleEmulator(VitaleProfile.from_json(load_profile("vitale", name)))
