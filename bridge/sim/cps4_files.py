"""The file system of the virtual CPS4: EF.SN.ICC, EF.DIR and the PKCS#15 application, built from a profile.

Everything the official Cryptolib (5.2) finds on a CPS4 it finds through PKCS#15 (its `pkcs15.c`
bind, notes `cryptolib-cps4.md` §2): EF.DIR ``3F00/2F00`` names the CPS PKCS#15 application
(AID ``E828BD080F8025000001FF0010``) with an absolute ``51`` path, then ODF ``5031`` and TokenInfo
``5032`` in it, then the directory files the ODF lists. Every label of the external specification's
table 3 is a DODF entry of the card: on CPS4 the module synthesises none (`pkcs15.c`
``__sc_pkcs15_search_objects`` adds the CPS2ter objects for card type IAS_CPS3 only, and the
internal specification says they are "présents physiquement sur la carte CPS4").

File identifiers and labels of keys, certificates and the PIN are card data that no public source
gives for CPS4; the choices are listed in `FIDS` and in `bridge.sim.cps4` ("Assumptions").
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from bridge.crypto.pki import PersonCerts
from bridge.sim.cardos import ALWAYS, DF, MF_FID, NEVER, AccessCondition, TransparentEF, requires
from bridge.sim.cps3_profile import (
    CpsProfile,
    encode_id_card,
    encode_info_ps,
    encode_name_ps,
    encode_situation,
    encode_sn_icc,
)
from bridge.sim.pkcs15_files import (
    KEY_USAGE_DECRYPT,
    KEY_USAGE_NON_REPUDIATION,
    KEY_USAGE_SIGN,
    PIN_FLAG_INITIALIZED,
    PIN_FLAG_LOCAL,
    PIN_FLAG_NEEDS_PADDING,
    Cert,
    Data,
    Key,
    Pin,
    aodf,
    cdf,
    dir_record,
    dodf,
    odf,
    prkdf,
    token_info,
)
from bridge.tlv import encode_tlv

__all__ = [
    "APP_PATH",
    "AUTH_KEY_REF",
    "FIDS",
    "PIN_FLAG",
    "PIN_REF",
    "PIN_STORED_LENGTH",
    "PKCS15_AID",
    "SIGN_KEY_REF",
    "build_tree",
    "luhn_digit",
    "serial_of",
    "sn_icc",
]

PKCS15_AID = bytes.fromhex("E828BD080F8025000001FF0010")  # Cryptolib card-cps4.c cps4_get_aid_pkcs15
PIN_FLAG = "pin"  # the CardOS security flag set by a good VERIFY
PIN_REF = 0x01
PIN_STORED_LENGTH = 8
PIN_PAD = 0xFF
AUTH_KEY_REF = 0x20  # fixed by the Cryptolib: internal.h CPS4_AUTH_PRIV_KEY_ID
SIGN_KEY_REF = 0x01  # card data (MSE carries it with bit 7 set: 0x81)
_AUTH_ID = b"\x01"
_AUTH_KEY_ID, _SIGN_KEY_ID = b"\x01", b"\x02"

#: Our file identifiers (none is given by a public source for CPS4).
FIDS: dict[str, int] = {
    "app": 0x5015,  # PKCS#15 §5.4's usual application DF; also the Cryptolib's fallback without EF.DIR
    "odf": 0x5031,
    "token_info": 0x5032,
    "aodf": 0x4401,
    "prkdf": 0x4402,
    "cdf": 0x4403,
    "dodf": 0x4404,
    "cert_auth": 0x3401,
    "cert_sign": 0x3402,
    "CPS_DATA": 0x7000,
    "CPS_ID_CARD": 0x7001,
    "CPS_NAME_PS": 0x7002,
    "CPS_LANG_PS": 0x7003,
    "CPS_INFO_PS": 0x7004,
    "CPS_ACTIVITY": 0x7010,  # + slot (0..15)
    "CPS_SIT_FACT": 0x7020,
    "CPS2TER_ATR": 0x7101,
    "CPS2TER_ID": 0x7102,
    "CPS2TER_ICC": 0x7103,
    "CPS2TER_NAME": 0x7104,
    "CPS2TER_LANG": 0x7105,
    "CPS2TER_PSINFO": 0x7106,
    "CPS2TER_DIRAMO": 0x7107,
    "CPS2TER_ACTIVITY": 0x7110,  # + slot (0..15)
}
APP_PATH = bytes.fromhex("3F00") + FIDS["app"].to_bytes(2, "big")
_CPS_DATA_SIZE = 64


def luhn_digit(digits: str) -> int:
    """The Luhn check digit of a string of decimal digits (ISO/IEC 7812 PAN)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def serial_of(profile: CpsProfile) -> str:
    """The 8-digit card serial of the virtual CPS4: the last 8 digits of the profile's card number."""
    return profile.card_number[-8:]


def sn_icc(profile: CpsProfile) -> bytes:
    """EF.SN.ICC: ``5A 0A`` + the 19-digit PAN (ANS issuer 8025000001, serial, Luhn digit) + F padding."""
    serial = serial_of(profile)
    return encode_sn_icc(serial + str(luhn_digit("8025000001" + serial)))


def _path(*fids: int) -> bytes:
    return b"".join(f.to_bytes(2, "big") for f in (MF_FID, FIDS["app"], *fids))


def _lang_ps() -> bytes:
    """CPS_LANG_PS: ``E4 { 80 language codes }`` (our layout, the ANS one is not public)."""
    return encode_tlv(0xE4, encode_tlv(0x80, b"fr"))


@dataclass(frozen=True)
class _Object:
    label: str
    fid: int
    data: bytes
    private: bool = False
    modifiable: bool = False


def _objects(profile: CpsProfile, certs: PersonCerts, atr: bytes) -> list[_Object]:
    p = profile
    auth = certs.auth.certificate
    validity = (auth.not_valid_before_utc.date(), auth.not_valid_after_utc.date())
    id_card = encode_id_card(p.card_type, p.card_number, *validity)
    name_ps = encode_name_ps(p.holder)
    info_ps = encode_info_ps(p.holder, p.profession_code, p.specialty_code)
    situations = {s.slot: encode_situation(s) for s in p.situations}
    billing = next((s for s in p.situations if s.billing), p.situations[0] if p.situations else None)
    objects = [
        _Object("CPS_DATA", FIDS["CPS_DATA"], bytes(_CPS_DATA_SIZE), modifiable=True),
        _Object("CPS_ID_CARD", FIDS["CPS_ID_CARD"], id_card),
        _Object("CPS_NAME_PS", FIDS["CPS_NAME_PS"], name_ps),
        _Object("CPS_LANG_PS", FIDS["CPS_LANG_PS"], _lang_ps()),
        _Object("CPS_INFO_PS", FIDS["CPS_INFO_PS"], info_ps),
    ]
    for slot, data in sorted(situations.items()):
        objects.append(_Object(f"CPS_ACTIVITY_{slot + 1:02d}_PS", FIDS["CPS_ACTIVITY"] + slot, data, private=True))
    if billing is not None:
        objects.append(_Object("CPS_SIT_FACT", FIDS["CPS_SIT_FACT"], encode_situation(billing), private=True))
    # CPS2ter volet as seen through ChipDoc: the CPS2ter byte layout is not public, so these carry the
    # same TLV as their CPS_* counterparts (ATR and ICC: the card's ATR and EF.SN.ICC).
    objects += [
        _Object("CPS2TER_ATR", FIDS["CPS2TER_ATR"], atr),
        _Object("CPS2TER_ID", FIDS["CPS2TER_ID"], id_card),
        _Object("CPS2TER_ICC", FIDS["CPS2TER_ICC"], sn_icc(p)),
        _Object("CPS2TER_NAME", FIDS["CPS2TER_NAME"], name_ps),
        _Object("CPS2TER_LANG", FIDS["CPS2TER_LANG"], _lang_ps()),
        _Object("CPS2TER_PSINFO", FIDS["CPS2TER_PSINFO"], info_ps),
        _Object("CPS2TER_DIRAMO", FIDS["CPS2TER_DIRAMO"], encode_tlv(0xE5, b"")),
    ]
    for slot, data in sorted(situations.items()):
        label = f"CPS2TER_ACTIVITY_{slot + 1:02d}_PS"
        objects.append(_Object(label, FIDS["CPS2TER_ACTIVITY"] + slot, data, private=True))
    return objects


def build_tree(profile: CpsProfile, certs: PersonCerts, atr: bytes) -> DF:
    """The card's MF: EF.SN.ICC, EF.DIR and the PKCS#15 application with its directory and data files."""
    p = profile
    mf = DF(fid=MF_FID)
    mf.add(TransparentEF(fid=0xD003, data=sn_icc(p)))
    mf.add(TransparentEF(fid=0x2F00, data=dir_record(PKCS15_AID, "CPS", APP_PATH)))
    app = mf.add(DF(fid=FIDS["app"], name=PKCS15_AID))
    pin_needed: AccessCondition = requires(PIN_FLAG)
    objects = _objects(p, certs, atr)
    pin = Pin(
        label="Code porteur",
        auth_id=_AUTH_ID,
        reference=PIN_REF,
        min_length=4,
        stored_length=PIN_STORED_LENGTH,
        max_length=PIN_STORED_LENGTH,
        pin_type=1,  # ascii-numeric
        flags=(PIN_FLAG_LOCAL, PIN_FLAG_INITIALIZED, PIN_FLAG_NEEDS_PADDING),
        pad_char=PIN_PAD,
    )
    keys = [
        Key(
            label="CPS_PRIV_AUT",
            key_id=_AUTH_KEY_ID,
            usage=(KEY_USAGE_DECRYPT, KEY_USAGE_SIGN),
            reference=AUTH_KEY_REF,
            modulus_bits=certs.auth.key.key_size,
            auth_id=_AUTH_ID,
            key_path=APP_PATH,
        ),
        Key(
            label="CPS_PRIV_SIG",
            key_id=_SIGN_KEY_ID,
            usage=(KEY_USAGE_NON_REPUDIATION,),
            reference=SIGN_KEY_REF,
            modulus_bits=certs.sign.key.key_size,
            auth_id=_AUTH_ID,
            key_path=APP_PATH,
        ),
    ]
    cert_files = ((FIDS["cert_auth"], certs.auth), (FIDS["cert_sign"], certs.sign))
    certificates = [
        Cert("CPS_CERT_AUT", _AUTH_KEY_ID, _path(FIDS["cert_auth"])),
        Cert("CPS_CERT_SIG", _SIGN_KEY_ID, _path(FIDS["cert_sign"])),
    ]
    data_objects = [
        Data(o.label, _path(o.fid), private=o.private, modifiable=o.modifiable, auth_id=_AUTH_ID if o.private else b"")
        for o in objects
    ]
    directory = {
        "odf": odf(
            [
                (0xA0, _path(FIDS["prkdf"])),
                (0xA4, _path(FIDS["cdf"])),
                (0xA7, _path(FIDS["dodf"])),
                (0xA8, _path(FIDS["aodf"])),
            ]
        ),
        "token_info": token_info(
            bytes.fromhex(serial_of(p)), "ANS", f"{p.card_type} de {p.holder.first_name} {p.holder.last_name}"
        ),
        "aodf": aodf([pin]),
        "prkdf": prkdf(keys),
        "cdf": cdf(certificates),
        "dodf": dodf(data_objects),
    }
    for name, content in directory.items():
        app.add(TransparentEF(fid=FIDS[name], data=content))
    for fid, issued in cert_files:
        app.add(TransparentEF(fid=fid, data=issued.certificate.public_bytes(serialization.Encoding.DER)))
    for obj in objects:
        read = pin_needed if obj.private else ALWAYS
        # CPS_DATA: free to read; writing asks for the PIN (our choice: no public source says).
        update = pin_needed if obj.modifiable else NEVER
        app.add(TransparentEF(fid=obj.fid, data=obj.data, read=read, update=update))
    return mf
