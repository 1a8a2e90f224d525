"""A CPS laid out on a SoftHSM v2 token: a real PKCS#11 module to develop and test the PKCS#11 backend.

The token holds what the Cryptolib exposes for a CPS (external specification, table 3): CKO_DATA
objects labelled CPS_ID_CARD, CPS_NAME_PS, CPS_INFO_PS (public) and CPS_ACTIVITY_xx_PS, CPS_SIT_FACT
(CKA_PRIVATE, so only visible after login), their values encoded by the virtual card's encoders
(`bridge.sim.cps3_profile`); the two certificates of the test IGC-Santé with their private keys,
paired by CKA_ID and labelled CPS_PRIV_AUT / CPS_PRIV_SIG. PIN 1234.

What SoftHSM does not imitate: it never blocks the PIN (after a wrong PIN it sets only
CKF_USER_PIN_COUNT_LOW), its model is "SoftHSM v2" (the generation comes from the ATR the test gives),
and its slot description is "SoftHSM slot ID 0x…", not a reader name.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pkcs11
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, CertificateType, KeyType, ObjectClass

from bridge.crypto.pki import Issued, PersonCerts, TestPki
from bridge.sim.cps3_profile import (
    CpsProfile,
    encode_id_card,
    encode_info_ps,
    encode_name_ps,
    encode_situation,
    load_profile,
)

__all__ = ["SOFTHSM_PATHS", "SoftHsmCps", "SoftHsmUnavailable", "build_softhsm_cps", "softhsm_module_path"]

SOFTHSM_PATHS = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
USER_PIN = "1234"
SO_PIN = "87654321"
NOT_BEFORE = dt.date(2024, 1, 1)
NOT_AFTER = dt.date(2030, 12, 31)
SIT_FACT = bytes.fromhex("E50A800201008104") + b"TEST"  # opaque: the backend hands it out raw


class SoftHsmUnavailable(RuntimeError):
    """softhsm2 is not installed: the tests skip with this text."""


def softhsm_module_path() -> Path:
    """Debian's SoftHSM v2 PKCS#11 module (package softhsm2)."""
    for path in SOFTHSM_PATHS:
        if Path(path).is_file():
            return Path(path)
    raise SoftHsmUnavailable("SoftHSM v2 not installed (apt-get install softhsm2)")


@dataclass(frozen=True)
class SoftHsmCps:
    """The built token: where its module is, its slot description and serial, and what was put on it."""

    module: Path
    slot_description: str
    serial: str
    profile: CpsProfile
    certs: PersonCerts


def _int(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def _import_key(session: pkcs11.Session, issued: Issued, key_id: bytes, label: str, *, decrypt: bool) -> None:
    numbers = issued.key.private_numbers()
    public = numbers.public_numbers
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.SIGN: True,
            Attribute.DECRYPT: decrypt,
            Attribute.ID: key_id,
            Attribute.LABEL: label,
            Attribute.MODULUS: _int(public.n),
            Attribute.PUBLIC_EXPONENT: _int(public.e),
            Attribute.PRIVATE_EXPONENT: _int(numbers.d),
            Attribute.PRIME_1: _int(numbers.p),
            Attribute.PRIME_2: _int(numbers.q),
            Attribute.EXPONENT_1: _int(numbers.dmp1),
            Attribute.EXPONENT_2: _int(numbers.dmq1),
            Attribute.COEFFICIENT: _int(numbers.iqmp),
        }
    )
    cert = issued.certificate
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.CERTIFICATE,
            Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.ID: key_id,
            Attribute.LABEL: label.replace("PRIV", "CERT"),
            Attribute.SUBJECT: cert.subject.public_bytes(),
            Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
        }
    )


def _data(session: pkcs11.Session, label: str, value: bytes, *, private: bool) -> None:
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.DATA,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: private,
            Attribute.MODIFIABLE: False,
            Attribute.LABEL: label,
            Attribute.APPLICATION: "CPS",
            Attribute.VALUE: value,
        }
    )


def build_softhsm_cps(workdir: Path, pki: TestPki, profile_name: str = "gp") -> SoftHsmCps:
    """Create a SoftHSM token in `workdir` holding the CPS of `profile_name`; sets SOFTHSM2_CONF for this process.

    Call it before the module is first loaded in the process: SoftHSM reads its configuration and its
    tokens at C_Initialize, which happens once per process.
    """
    module = softhsm_module_path()
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SoftHsmUnavailable("softhsm2-util missing (apt-get install softhsm2)")
    tokens = workdir / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = workdir / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        [util, "--init-token", "--free", "--label", "CPS", "--pin", USER_PIN, "--so-pin", SO_PIN],
        check=True,
        capture_output=True,
    )
    profile = load_profile(profile_name)
    holder = profile.holder
    certs = pki.person(
        f"softhsm-{profile_name}",
        last_name=holder.last_name,
        first_name=holder.first_name,
        national_id=holder.national_id,
        profession_code=profile.profession_code,
        specialty_code=profile.specialty_code,
        card_type=profile.card_type,
        card_number=profile.card_number,
    )
    lib = pkcs11.lib(str(module.resolve()))
    token = lib.get_token(token_label="CPS")
    with token.open(rw=True, user_pin=USER_PIN) as session:
        _import_key(session, certs.auth, b"\x01\x20", "CPS_PRIV_AUT", decrypt=True)
        _import_key(session, certs.sign, b"\x01\x10", "CPS_PRIV_SIG", decrypt=False)
        _data(
            session,
            "CPS_ID_CARD",
            encode_id_card(profile.card_type, profile.card_number, NOT_BEFORE, NOT_AFTER),
            private=False,
        )
        _data(session, "CPS_NAME_PS", encode_name_ps(holder), private=False)
        _data(
            session,
            "CPS_INFO_PS",
            encode_info_ps(holder, profile.profession_code, profile.specialty_code),
            private=False,
        )
        for sit in profile.situations:
            _data(session, f"CPS_ACTIVITY_{sit.slot + 1:02d}_PS", encode_situation(sit), private=True)
        _data(session, "CPS_SIT_FACT", SIT_FACT, private=True)
        # An issuer certificate too, as a PKCS#15 card may list: the backend must not take it for the holder's.
        ca = pki.persons_ca.certificate
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.ID: b"\xca",
                Attribute.LABEL: "CA",
                Attribute.SUBJECT: ca.subject.public_bytes(),
                Attribute.VALUE: ca.public_bytes(serialization.Encoding.DER),
            }
        )
    slot = token.slot
    return SoftHsmCps(
        module=module,
        slot_description=slot.slot_description.strip(),
        serial=token.serial.decode("ascii").strip(),
        profile=profile,
        certs=certs,
    )
