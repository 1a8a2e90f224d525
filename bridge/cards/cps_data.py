"""Parsing of the CPS business data objects (holder, professional data, situations d'exercice).

Where these objects are is the card's business: both backends find them by label (the Cryptolib
through PKCS#11 CKO_DATA objects, the PC/SC driver through the card's DODF), and hand this module
the object's bytes exactly as the card stores them. This is the one place that decodes them.

ASSUMPTION (verified on the virtual card only). The byte layout of these objects is defined in an
ANS document that is not public ("ASIP_CPS3_Données-métier v1.0.2", the external specification's
[R2]). What is known from public sources (cps-data-and-pki.md §1.3): a situation object is a BER-TLV
template ``EE`` holding ``84`` raison sociale, ``85`` Struct_IdNat and ``86`` secteur d'activité as
its last element; the last four characters of CPS_INFO_PS are the R01 specialty code; EF.SN.ICC is
``5A 0A 80 25 00 00 01`` + BCD serial. Everything else below (templates ``E1``/``E2``/``E3``, the
other inner tags) is this project's choice, mirrored by the virtual cards (`bridge.sim.cps3_profile`):

* CPS_ID_CARD: ``E1 { 80 card type (TRE_R87: CPS, CPE, CPF, CPA), 81 card number, 82 not before
  YYYYMMDD, 83 not after YYYYMMDD }``
* CPS_NAME_PS: ``E2 { 80 type of national id (TRE_G08, "8" = RPPS), 81 PS_IdNat, 82 civility code,
  83 last name, 84 first name }``
* CPS_INFO_PS: ``E3 { 80 PS_IdNat, 81 last name, 82 first name, 83 profession (TRE_G15),
  85 specialty (TRE_R01), last }``
* CPS_ACTIVITY_xx_PS (PIN): ``EE { 80 situation number (1 byte), 81 mode d'exercice (TRE_R23 L/S/B),
  82 profession (TRE_G15), 83 type of structure id (TRE_G07), 87 specialty (TRE_R01), 88 PS billing
  number + key, 89 convention code, 8A AM specialty code, 8B tariff zone, 84 raison sociale,
  85 Struct_IdNat, 86 secteur (TRE_R02), last }``

Text is UTF-8 (ISO-8859-1 accepted as a fallback). Unknown tags are ignored, and the publicly known
fallbacks (secteur = last 4 characters, specialty = last 4 characters of CPS_INFO_PS) are applied
when our tags are missing, so a real card's trace can correct this module alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorCode
from bridge.tlv import Tlv, TlvError, parse_tlv

__all__ = [
    "ANS_ISSUER",
    "OID_ACTIVITY_SECTOR",
    "OID_PROFESSION",
    "OID_SPECIALTY",
    "SN_ICC_PATH",
    "Billing",
    "CardDataError",
    "CardIdentity",
    "HolderName",
    "ProfessionalInfo",
    "Situation",
    "parse_id_card",
    "parse_info_ps",
    "parse_name_ps",
    "parse_situation",
    "parse_sn_icc",
]

ANS_ISSUER = bytes.fromhex("8025000001")

# EF.SN.ICC, read at this fixed path by the Cryptolib itself (card-cps.c:_cps_read_efsnicc).
SN_ICC_PATH = bytes.fromhex("3F00D003")
# Nomenclature OIDs a VIHF cites next to these codes (cps-data-and-pki.md §3).
OID_PROFESSION = "1.2.250.1.71.1.2.7"  # TRE_G15
OID_SPECIALTY = "1.2.250.1.71.4.2.5"  # TRE_R01
OID_ACTIVITY_SECTOR = "1.2.250.1.71.4.2.4"  # TRE_R02


class CardDataError(BridgeError):
    """A CPS data object could not be decoded (a remote error: the card's content, not our bug)."""

    def __init__(self, what: str) -> None:
        super().__init__(ErrorCode.CARD_ERROR, f"unreadable CPS data object: {what}")


@dataclass(frozen=True)
class CardIdentity:
    """CPS_ID_CARD: which kind of CPx card, its number and validity."""

    card_type: str
    card_number: str
    not_before: dt.date | None
    not_after: dt.date | None


@dataclass(frozen=True)
class HolderName:
    """CPS_NAME_PS: the holder's national identifier and name."""

    id_type: str
    national_id: str
    civility: str
    last_name: str
    first_name: str


@dataclass(frozen=True)
class ProfessionalInfo:
    """CPS_INFO_PS: profession (TRE_G15) and specialty (TRE_R01) of the holder."""

    national_id: str
    last_name: str
    first_name: str
    profession_code: str
    specialty_code: str


@dataclass(frozen=True)
class Billing:
    """The Assurance Maladie billing data of a situation (SESAM-Vitale group 0002 fields)."""

    billing_number: str
    convention_code: str
    am_specialty: str
    tariff_zone: str


@dataclass(frozen=True)
class Situation:
    """One situation d'exercice (CPS_ACTIVITY_xx_PS): where and as what the holder practises.

    `index` is the file slot (0..15, may have gaps); `number` the number the card gives the situation.
    """

    index: int
    number: int
    practice_mode: str
    profession_code: str
    specialty_code: str
    structure_id_type: str
    structure_id: str
    structure_name: str
    activity_sector: str
    billing: Billing | None

    @property
    def vihf_activity_sector(self) -> str:
        """`Secteur_Activite` as a VIHF carries it: code^OID of TRE_R02."""
        return f"{self.activity_sector}^{OID_ACTIVITY_SECTOR}"

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (API payloads, `dmp-bridge card --json`)."""
        billing = self.billing
        return {
            "index": self.index,
            "number": self.number,
            "practiceMode": self.practice_mode,
            "professionCode": self.profession_code,
            "specialtyCode": self.specialty_code,
            "structureIdType": self.structure_id_type,
            "structureId": self.structure_id,
            "structureName": self.structure_name,
            "activitySector": self.activity_sector,
            "billing": None
            if billing is None
            else {
                "billingNumber": billing.billing_number,
                "conventionCode": billing.convention_code,
                "amSpecialty": billing.am_specialty,
                "tariffZone": billing.tariff_zone,
            },
        }


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _template(data: bytes, tag: int, what: str) -> Tlv:
    try:
        tlvs = parse_tlv(data)
    except TlvError as exc:
        raise CardDataError(f"{what}: {exc}") from None
    found = next((t for t in tlvs if t.tag == tag), None)
    if found is None:
        raise CardDataError(f"{what}: template {tag:02X} missing")
    return found


def _field(template: Tlv, tag: int) -> str:
    child = template.find(tag)
    return _text(child.value).strip() if child is not None else ""


def _date(text: str, what: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise CardDataError(f"{what}: bad date") from None


def parse_sn_icc(data: bytes) -> str:
    """EF.SN.ICC -> the token serial as the ANS Cryptolib derives it; refuses a non-ANS issuer.

    The Cryptolib (`card-cps.c:_cps_read_efsnicc`) takes the hex of the PAN without its last byte and
    drops the issuer prefix 8025000001: 8 hex digits, the PKCS#11 token serial. Both backends name a
    card by this serial, so their values compare equal.
    """
    if len(data) != 12 or data[0] != 0x5A or data[1] != len(data) - 2:
        raise CardDataError("EF.SN.ICC")
    if data[2:7] != ANS_ISSUER:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "not an ANS CPx card (EF.SN.ICC issuer)")
    return data[7:-1].hex().upper()


def parse_id_card(data: bytes) -> CardIdentity:
    """CPS_ID_CARD (see the module docstring for the assumed layout)."""
    t = _template(data, 0xE1, "CPS_ID_CARD")
    return CardIdentity(
        card_type=_field(t, 0x80),
        card_number=_field(t, 0x81),
        not_before=_date(_field(t, 0x82), "CPS_ID_CARD"),
        not_after=_date(_field(t, 0x83), "CPS_ID_CARD"),
    )


def parse_name_ps(data: bytes) -> HolderName:
    """CPS_NAME_PS (see the module docstring for the assumed layout)."""
    t = _template(data, 0xE2, "CPS_NAME_PS")
    return HolderName(
        id_type=_field(t, 0x80),
        national_id=_field(t, 0x81),
        civility=_field(t, 0x82),
        last_name=_field(t, 0x83),
        first_name=_field(t, 0x84),
    )


def parse_info_ps(data: bytes) -> ProfessionalInfo:
    """CPS_INFO_PS; the specialty falls back to the last 4 characters, as the ANS sample code reads it."""
    t = _template(data, 0xE3, "CPS_INFO_PS")
    specialty = _field(t, 0x85)
    if not specialty and t.children:
        tail = _text(t.children[-1].value)[-4:]
        specialty = tail if tail[:2].isalpha() and tail[2:].isdigit() else ""
    return ProfessionalInfo(
        national_id=_field(t, 0x80),
        last_name=_field(t, 0x81),
        first_name=_field(t, 0x82),
        profession_code=_field(t, 0x83),
        specialty_code=specialty,
    )


def parse_situation(data: bytes, index: int) -> Situation:
    """A CPS_ACTIVITY_xx_PS object; 84/85/86 follow the public decoding, the rest is our layout."""
    t = _template(data, 0xEE, f"CPS_ACTIVITY_{index + 1:02d}_PS")
    number_tlv = t.find(0x80)
    number = int.from_bytes(number_tlv.value, "big") if number_tlv is not None and number_tlv.value else index + 1
    sector = _field(t, 0x86) or (_text(t.children[-1].value)[-4:] if t.children else "")
    billing_number = _field(t, 0x88)
    billing = (
        Billing(billing_number, _field(t, 0x89), _field(t, 0x8A), _field(t, 0x8B))
        if billing_number or _field(t, 0x89)
        else None
    )
    structure_id = _field(t, 0x85)
    if not structure_id:
        raise CardDataError(f"CPS_ACTIVITY_{index + 1:02d}_PS: no structure identifier")
    return Situation(
        index=index,
        number=number,
        practice_mode=_field(t, 0x81),
        profession_code=_field(t, 0x82),
        specialty_code=_field(t, 0x87),
        # Struct_IdNat starts with its TRE_G07 type digit (e.g. 1 + FINESS, 4 + RPPS cabinet id)
        structure_id_type=_field(t, 0x83) or structure_id[:1],
        structure_id=structure_id,
        structure_name=_field(t, 0x84),
        activity_sector=sector,
        billing=billing,
    )
