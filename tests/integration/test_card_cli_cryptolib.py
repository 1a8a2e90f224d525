"""`dmp-bridge card --json` through the Cryptolib shows what the Cryptolib itself exposes, as the PC/SC driver does.

For a virtual CPS3 and a virtual CPS4 (profile gp), the CLI runs as a user runs it: a subprocess with
a private DMP_BRIDGE_HOME whose config.toml names the backend. With ``cps_backend = "pkcs11"`` and the
Cryptolib installed by the fixture, it must print backend "pkcs11", the card's generation, and the
holder, card identity, situations and certificates (DER) that the Cryptolib's own PKCS#11 calls in
this process return (CKO_DATA values parsed by `bridge.cards.cps_data`, CKO_CERTIFICATE values);
with ``cps_backend = "pcsc"`` the same JSON but for the backend field.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkcs11 import Attribute, ObjectClass

from bridge.cards.cps_data import parse_id_card, parse_info_ps, parse_name_ps, parse_situation
from bridge.cards.pkcs11_module import Pkcs11Module
from bridge.crypto.pki import TestPki
from bridge.sim import cps3, cps4
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki
from tests.cryptolib_fixtures import cryptolib, cryptolib_install, cryptolib_module, token_slot
from tests.cryptolib_harness import CryptolibInstall

__all__ = ["cryptolib", "cryptolib_install", "cryptolib_module", "pki"]

pytestmark = [pytest.mark.pcsc, pytest.mark.cryptolib]
ROOT = Path(__file__).resolve().parents[2]
READER0 = "Virtual PCD 00 00"
CARDS: dict[str, Callable[[str, TestPki], cps3.Cps3Emulator | cps4.Cps4Emulator]] = {
    "CPS3": cps3.create_card,
    "CPS4": cps4.create_card,
}
_ACTIVITY = re.compile(r"CPS_ACTIVITY_(\d{2})_PS")


def card_json(home: Path, backend: str, module: Path) -> dict[str, Any]:
    """`dmp-bridge card --json --pin-stdin` with config.toml asking for `backend`; the one card it describes."""
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[cards]\ncps_backend = "{backend}"\npkcs11_module = "{module}"\n', encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "card", "--json", "--pin-stdin"],
        cwd=ROOT,
        input="1234\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DMP_BRIDGE_HOME": str(home)},
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    (card,) = json.loads(result.stdout)["cards"]
    assert card["reader"] == READER0
    return dict(card)


def through_cryptolib(module: Pkcs11Module) -> dict[str, Any]:
    """What the Cryptolib exposes after login: serial, parsed data objects, situations, certificates by usage."""
    token = token_slot(module, READER0).get_token()
    with token.open(user_pin="1234") as session:
        data = {
            str(o[Attribute.LABEL]).strip(): bytes(o[Attribute.VALUE])
            for o in session.get_objects({Attribute.CLASS: ObjectClass.DATA})
        }
        certificates = [
            x509.load_der_x509_certificate(bytes(o[Attribute.VALUE]))
            for o in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE})
        ]
    by_usage = {}
    for cert in certificates:
        # IGC-Santé: the signature certificate is the one with nonRepudiation
        signs = cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment
        by_usage["signature" if signs else "authentication"] = cert
    situations = sorted(
        (int(m.group(1)) - 1, value) for label, value in data.items() if (m := _ACTIVITY.fullmatch(label))
    )
    return {
        "serial": token.serial.decode("ascii").strip(" \x00"),
        "identity": parse_id_card(data["CPS_ID_CARD"]),
        "holder": parse_name_ps(data["CPS_NAME_PS"]),
        "professional": parse_info_ps(data["CPS_INFO_PS"]),
        "situations": [parse_situation(value, index).to_json() for index, value in situations],
        "certificates": by_usage,
    }


def without_backend(card: dict[str, Any]) -> dict[str, Any]:
    """The card JSON without `backend` and the certificates' daysLeft (two runs may straddle a day boundary)."""
    card = copy.deepcopy(card)
    del card["cps"]["backend"]
    for cert in card["cps"]["certificates"].values():
        del cert["daysLeft"]
    return card


@pytest.mark.parametrize("generation", ["CPS3", "CPS4"])
def test_card_json_through_the_cryptolib_matches_the_cryptolib_and_the_pcsc_driver(
    generation: str,
    slots: list[VirtualSlot],
    pki: TestPki,
    cryptolib: CryptolibInstall,
    cryptolib_module: Pkcs11Module,
    tmp_path: Path,
) -> None:
    card = CARDS[generation]("gp", pki)
    slots[0].insert(card)
    # each CLI process opens its own PC/SC context: pcscd must already show the card
    assert wait_card_state(READER0, present=True) == card.atr()

    p11 = card_json(tmp_path / "pkcs11", "pkcs11", cryptolib.module)
    pcsc = card_json(tmp_path / "pcsc", "pcsc", cryptolib.module)
    oracle = through_cryptolib(cryptolib_module)

    cps = p11["cps"]
    assert (cps["backend"], cps["generation"], p11["kind"]) == ("pkcs11", generation, generation)
    assert pcsc["cps"]["backend"] == "pcsc"
    assert without_backend(pcsc) == without_backend(p11)

    identity, holder, pro = oracle["identity"], oracle["holder"], oracle["professional"]
    assert cps["serial"] == oracle["serial"]
    assert (cps["cardType"], cps["cardNumber"]) == (identity.card_type, identity.card_number)
    assert cps["validity"] == {"notBefore": identity.not_before.isoformat(), "notAfter": identity.not_after.isoformat()}
    assert cps["holder"] == {
        "idType": holder.id_type,
        "nationalId": holder.national_id,
        "civility": holder.civility,
        "lastName": holder.last_name,
        "firstName": holder.first_name,
        "professionCode": pro.profession_code,
        "specialtyCode": pro.specialty_code,
    }
    assert holder.national_id == card.profile.holder.national_id  # the oracle read the card, not an empty object
    assert p11["situations"] == oracle["situations"] and len(oracle["situations"]) == len(card.profile.situations)
    assert set(cps["certificates"]) == set(oracle["certificates"]) == {"authentication", "signature"}
    for usage, cert in oracle["certificates"].items():
        assert base64.b64decode(cps["certificates"][usage]["der"]) == cert.public_bytes(Encoding.DER)
    assert cps["pin"] == {"triesLeft": 3, "triesMax": 3, "blocked": False}
