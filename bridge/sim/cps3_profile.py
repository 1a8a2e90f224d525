"""Virtual CPx card descriptions: profile files and the bytes of the card's data objects.

A profile is a JSON file `bridge/sim/profiles/cps-<name>.json` (or any path) describing the holder,
the card, the PIN counter and the situations d'exercice. The default PIN of every shipped profile is
**1234**. The data objects are encoded here with this project's assumed layout (see the docstring of
`bridge.cards.cps_data`); this module builds bytes and never imports the driver's parser.

Profile fields: ``name``, ``description``, ``card_type`` (CPS, CPE, CPF, CPA), ``card_number`` (10
digits), ``pin`` (ASCII digits), ``pin_tries_max``, ``pin_tries_left``, ``holder`` {``id_type``,
``national_id``, ``civility``, ``last_name``, ``first_name``}, ``profession_code`` (TRE_G15, "" for
none), ``specialty_code`` (TRE_R01, "" for none), optional ``organization``/``structure_id``/
``department`` (CPE/CPA certificate subject), ``certificates`` {``expired``: bool}, and ``situations``:
a list of {``slot`` (0..15), ``number``, ``practice_mode``, ``profession_code``, ``specialty_code``,
``structure_id_type``, ``structure_id``, ``structure_name``, ``activity_sector``, optional ``billing``
{``billing_number``, ``convention_code``, ``am_specialty``, ``tariff_zone``}}.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.crypto.pki import PersonCerts, TestPki
from bridge.sim.registry import list_profiles
from bridge.sim.registry import load_profile as registry_load_profile
from bridge.tlv import encode_tlv

__all__ = [
    "DEFAULT_PIN",
    "CpsProfile",
    "HolderProfile",
    "SituationProfile",
    "available_profiles",
    "encode_id_card",
    "encode_info_ps",
    "encode_lang_ps",
    "encode_name_ps",
    "encode_sit_fact",
    "encode_situation",
    "encode_sn_icc",
    "issue_certificates",
    "load_profile",
]

DEFAULT_PIN = "1234"
_CARD_TYPES = ("CPS", "CPE", "CPF", "CPA")


@dataclass(frozen=True)
class HolderProfile:
    """Who holds the card."""

    id_type: str
    national_id: str
    civility: str
    last_name: str
    first_name: str


@dataclass(frozen=True)
class SituationProfile:
    """One situation d'exercice of the card."""

    slot: int
    number: int
    practice_mode: str
    profession_code: str
    specialty_code: str
    structure_id_type: str
    structure_id: str
    structure_name: str
    activity_sector: str
    billing: dict[str, str] | None


@dataclass(frozen=True)
class CpsProfile:
    """A whole virtual CPx card description."""

    name: str
    description: str
    card_type: str
    card_number: str
    pin: str
    pin_tries_max: int
    pin_tries_left: int
    holder: HolderProfile
    profession_code: str
    specialty_code: str
    organization: str | None
    structure_id: str | None
    department: str | None
    certificates_expired: bool
    situations: tuple[SituationProfile, ...]

    def __repr__(self) -> str:  # the PIN stays out of logs
        return f"CpsProfile(name={self.name!r}, card_type={self.card_type!r})"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CpsProfile:
        """Validate and build a profile from its JSON object."""
        card_type = str(raw.get("card_type", "CPS"))
        if card_type not in _CARD_TYPES:
            raise ValueError(f"card_type must be one of {_CARD_TYPES}")
        number = str(raw["card_number"])
        if not (number.isdigit() and len(number) == 10):
            raise ValueError("card_number must be 10 digits")
        pin = str(raw.get("pin", DEFAULT_PIN))
        if not (pin.isdigit() and 4 <= len(pin) <= 8):
            raise ValueError("pin must be 4 to 8 digits")
        tries_max = int(raw.get("pin_tries_max", 3))
        tries_left = int(raw.get("pin_tries_left", tries_max))
        if not 0 <= tries_left <= tries_max <= 15:
            raise ValueError("need 0 <= pin_tries_left <= pin_tries_max <= 15")
        holder = HolderProfile(**{k: str(v) for k, v in raw["holder"].items()})
        situations = []
        for item in raw.get("situations", []):
            billing = item.get("billing")
            sit = SituationProfile(
                slot=int(item["slot"]),
                number=int(item.get("number", int(item["slot"]) + 1)),
                practice_mode=str(item.get("practice_mode", "")),
                profession_code=str(item.get("profession_code", raw.get("profession_code", ""))),
                specialty_code=str(item.get("specialty_code", raw.get("specialty_code", ""))),
                structure_id_type=str(item.get("structure_id_type", str(item["structure_id"])[:1])),
                structure_id=str(item["structure_id"]),
                structure_name=str(item["structure_name"]),
                activity_sector=str(item["activity_sector"]),
                billing={k: str(v) for k, v in billing.items()} if billing else None,
            )
            if not 0 <= sit.slot <= 15 or not 0 < sit.number < 256:
                raise ValueError("situation slot must be 0..15 and number 1..255")
            situations.append(sit)
        if len({s.slot for s in situations}) != len(situations):
            raise ValueError("two situations share a slot")
        certificates = raw.get("certificates", {})
        return cls(
            name=str(raw["name"]),
            description=str(raw.get("description", "")),
            card_type=card_type,
            card_number=number,
            pin=pin,
            pin_tries_max=tries_max,
            pin_tries_left=tries_left,
            holder=holder,
            profession_code=str(raw.get("profession_code", "")),
            specialty_code=str(raw.get("specialty_code", "")),
            organization=raw.get("organization"),
            structure_id=raw.get("structure_id"),
            department=raw.get("department"),
            certificates_expired=bool(certificates.get("expired", False)),
            situations=tuple(situations),
        )


def available_profiles() -> list[str]:
    """Names of the shipped CPx profiles (files cps-<name>.json)."""
    return list_profiles("cps")


def load_profile(name_or_path: str | Path) -> CpsProfile:
    """A shipped profile by name ("gp", "secretary-cpe"...) or a profile file by path; KeyError if unknown."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return CpsProfile.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return CpsProfile.from_dict(registry_load_profile("cps", str(name_or_path)))


def issue_certificates(profile: CpsProfile, pki: TestPki, key_id: str) -> PersonCerts:
    """The card's two key pairs and certificates from the test PKI (`key_id` names them in its cache).

    An "expired" profile gets certificates that ended 30 days ago, aligned on the day so the PKI
    cache holds for the day.
    """
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    if profile.certificates_expired:
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        not_before, not_after = today - dt.timedelta(days=3 * 365), today - dt.timedelta(days=30)
    return pki.person(
        key_id,
        last_name=profile.holder.last_name,
        first_name=profile.holder.first_name,
        national_id=profile.holder.national_id,
        profession_code=profile.profession_code,
        specialty_code=profile.specialty_code,
        card_type=profile.card_type,
        not_before=not_before,
        not_after=not_after,
        card_number=profile.card_number,
        organization=profile.organization,
        structure_id=profile.structure_id,
        department=profile.department,
    )


# ---- data objects (the virtual card's layout) -----------------------------------------------------


def _t(tag: int, text: str) -> bytes:
    return encode_tlv(tag, text.encode("utf-8"))


def encode_sn_icc(card_number: str) -> bytes:
    """EF.SN.ICC: 5A 0A, ANS issuer 8025000001, the number in BCD (F-padded to 5 bytes)."""
    digits = (card_number + "F" * 10)[:10]
    return encode_tlv(0x5A, bytes.fromhex("8025000001") + bytes.fromhex(digits))


def encode_id_card(card_type: str, card_number: str, not_before: dt.date, not_after: dt.date) -> bytes:
    """CPS_ID_CARD: E1 { 80 type, 81 number, 82 not before, 83 not after }."""
    body = _t(0x80, card_type) + _t(0x81, card_number)
    body += _t(0x82, not_before.strftime("%Y%m%d")) + _t(0x83, not_after.strftime("%Y%m%d"))
    return encode_tlv(0xE1, body)


def encode_name_ps(holder: HolderProfile) -> bytes:
    """CPS_NAME_PS: E2 { 80 id type, 81 PS_IdNat, 82 civility, 83 last name, 84 first name }."""
    fields = (holder.id_type, holder.national_id, holder.civility, holder.last_name, holder.first_name)
    return encode_tlv(0xE2, b"".join(_t(0x80 + i, v) for i, v in enumerate(fields)))


def encode_info_ps(holder: HolderProfile, profession_code: str, specialty_code: str) -> bytes:
    """CPS_INFO_PS: E3 { 80 PS_IdNat, 81 last name, 82 first name, 83 profession, 85 specialty (last) }."""
    body = _t(0x80, holder.national_id) + _t(0x81, holder.last_name) + _t(0x82, holder.first_name)
    body += _t(0x83, profession_code)
    if specialty_code:
        body += _t(0x85, specialty_code)
    return encode_tlv(0xE3, body)


def encode_lang_ps(languages: str = "fr") -> bytes:
    """CPS_LANG_PS: E4 { 80 language codes } (our layout; the object's real one is not public)."""
    return encode_tlv(0xE4, _t(0x80, languages))


def encode_sit_fact(profile: CpsProfile) -> bytes:
    """CPS_SIT_FACT: E5 { 80 number of the situation used for billing } (our layout; not public)."""
    billing = next((s for s in profile.situations if s.billing), None)
    return encode_tlv(0xE5, encode_tlv(0x80, bytes((billing.number if billing else 0,))))


def encode_situation(sit: SituationProfile) -> bytes:
    """CPS_ACTIVITY_xx_PS: EE { 80 n, 81 mode, 82 profession, 83 id type, 87 specialty, 88-8B billing,
    84 raison sociale, 85 Struct_IdNat, 86 secteur (last, as the public decoding expects) }."""
    body = encode_tlv(0x80, bytes((sit.number,))) + _t(0x81, sit.practice_mode) + _t(0x82, sit.profession_code)
    body += _t(0x83, sit.structure_id_type)
    if sit.specialty_code:
        body += _t(0x87, sit.specialty_code)
    if sit.billing:
        for tag, key in ((0x88, "billing_number"), (0x89, "convention_code"), (0x8A, "am_specialty")):
            body += _t(tag, sit.billing.get(key, ""))
        body += _t(0x8B, sit.billing.get("tariff_zone", ""))
    body += _t(0x84, sit.structure_name) + _t(0x85, sit.structure_id) + _t(0x86, sit.activity_sector)
    return encode_tlv(0xEE, body)
