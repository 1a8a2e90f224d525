"""Vitale 2 driver against the Vitale emulator (through the real T=0 transport engine), and its pure parts."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import pytest

from bridge.cards.vitale import (
    build_card,
    nir_key,
    normalise_birth_date,
    parse_identity_templates,
    parse_nir_templates,
    read_vitale,
)
from bridge.errors import BridgeError, ErrorCode
from bridge.sim.direct import DirectChannel
from bridge.sim.generic import GenericCard
from bridge.sim.registry import list_profiles, load_profile, make_card
from bridge.sim.vitale import VitaleEmulator, VitaleProfile
from bridge.tlv import encode_tlv


def read(profile: str) -> tuple[Any, DirectChannel]:
    ch = DirectChannel(make_card("vitale", profile))
    return read_vitale(ch), ch


def test_family_card() -> None:
    card, ch = read("famille")
    assert card.serial == "0123456789"
    assert (card.validity_start, card.validity_end) == (date(2019, 3, 1), date(2029, 2, 28))
    jean, aicha, lea = card.beneficiaries
    assert (jean.last_name, jean.first_name, jean.birth_date, jean.lunar) == (
        "MARTIN",
        "JEAN",
        date(1978, 3, 14),
        False,
    )
    assert (jean.nir, jean.nir_key, jean.nir_valid, jean.is_insured, jean.rank) == (
        "1780375115012",
        "01",
        True,
        True,
        1,
    )
    assert aicha.birth_date_raw == "19810000" and aicha.lunar and aicha.birth_date == date(1981, 1, 1)
    assert aicha.nir_valid and not aicha.is_insured and aicha.quality == "02"
    assert lea.nir == jean.nir and not lea.is_insured and lea.birth_date == date(2012, 9, 3)
    assert card.insured is jean
    # the documented APDU sequence, byte for byte (T=0: 61xx/6Cxx answered by the transport engine)
    sent = [c.hex().upper() for c, _ in ch.trace]
    assert sent[0] == "00A40000023F00" and sent[1].startswith("00C00000")
    assert "00B0820000" in sent
    assert "00A404000BD250000002564954414C45" in sent
    assert sent.count("00B0820000") == 2
    assert json.loads(json.dumps(card.to_json()))["beneficiaries"][1]["birthDateRaw"] == "19810000"


def test_single_corsican_card() -> None:
    card, _ = read("solo")
    (paul,) = card.beneficiaries
    assert paul.nir == "165072A004056" and paul.nir_key == "68" and paul.nir_valid and paul.is_insured


def test_every_profile_reads_with_valid_keys() -> None:
    for name in list_profiles("vitale"):
        card, _ = read(name)
        assert card.beneficiaries and all(b.nir_valid for b in card.beneficiaries)
        assert sum(b.is_insured for b in card.beneficiaries) == 1


def _profile(**changes: Any) -> VitaleProfile:
    data = load_profile("vitale", "famille")
    data.update(changes)
    return VitaleProfile.from_json(data)


def test_wrong_key_no_quality_and_long_files() -> None:
    people = [
        {"last_name": f"NOM{i:02d}" * 4, "first_name": "PRENOM" * 4, "birth_date": "20000231", "nir": "178037511501299"}
        for i in range(6)
    ]
    ch = DirectChannel(VitaleEmulator(_profile(beneficiaries=people, serial=None, validity_end=None)))
    card = read_vitale(ch)
    assert len(card.beneficiaries) == 6  # the identity EF is over 256 bytes: read on by offset
    assert any(c.hex().upper().startswith("00B00100") for c, _ in ch.trace)
    assert [b.is_insured for b in card.beneficiaries] == [True] + [False] * 5  # no quality: the first one
    b = card.beneficiaries[0]
    assert not b.nir_valid and b.lunar and b.birth_date == date(2000, 2, 29)
    assert card.serial is None and card.validity_end is None


def test_not_a_vitale() -> None:
    with pytest.raises(BridgeError) as err:
        read_vitale(DirectChannel(GenericCard()))
    assert err.value.code is ErrorCode.UNSUPPORTED_CARD


@pytest.mark.parametrize(
    ("nir13", "key"),
    [("1780375115012", 1), ("2812099352014", 76), ("165072A004056", 68), ("165072a004056", 68), ("2950613055123", 7)],
)
def test_nir_key(nir13: str, key: int) -> None:
    assert nir_key(nir13) == key


def test_nir_key_corsica_b_and_malformed() -> None:
    n = int("1650718004056")
    assert nir_key("165072B004056") == 97 - n % 97
    assert nir_key("16507XX004056") is None and nir_key("123") is None


@pytest.mark.parametrize(
    ("raw", "expected", "lunar"),
    [
        ("19780314", date(1978, 3, 14), False),
        ("19810000", date(1981, 1, 1), True),
        ("19810500", date(1981, 5, 1), True),
        ("19811531", date(1981, 12, 31), True),
        ("19810431", date(1981, 4, 30), True),
        ("20000229", date(2000, 2, 29), False),
        ("1978031", None, False),
        ("00000101", None, False),
    ],
)
def test_birth_date_normalisation(raw: str, expected: date | None, lunar: bool) -> None:
    assert normalise_birth_date(raw) == (expected, lunar)


def test_parsers_and_list_mismatch() -> None:
    ident = encode_tlv(
        0x65,
        [
            encode_tlv(0x80, "ÉLODIE".encode("latin-1")),
            encode_tlv(0x81, b"X "),
            encode_tlv(0x82, bytes.fromhex("19800412")),
        ],
    )
    (i,) = parse_identity_templates(ident + b"\xff" * 8)
    assert (i.last_name, i.first_name, i.birth_raw) == ("ÉLODIE", "X", "19800412")  # BCD dates read as digits
    cov = parse_nir_templates(encode_tlv(0x65, [encode_tlv(0x93, b"1 78 03 75 115 012 01")]))
    assert cov[0].nir15 == "178037511501201" and cov[0].rank is None
    with pytest.raises(BridgeError):
        build_card([i, i], cov, None, (None, None))


def test_no_personal_data_in_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        card, _ = read("famille")
    text = caplog.text + repr(card)
    for secret in ("MARTIN", "JEAN", "1780375115012", "19780314"):
        assert secret not in text


def test_cardpeek_walk_of_the_pointers_file() -> None:
    """The emulator answers the cardpeek script's sequence: pointers file, then every listed EF."""
    from bridge.pcsc.apdu import Command
    from bridge.tlv import parse_tlv

    ch = DirectChannel(make_card("vitale"))
    assert ch.transmit(Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("D250000002564954414C45"), le=256)).sw.ok
    assert ch.transmit(Command(0x00, 0xA4, 0x02, 0x00, b"\x20\x01", le=256)).sw.ok
    r = ch.transmit(Command(0x00, 0xB0, 0x00, 0x00, le=256))
    (e0,) = parse_tlv(r.data)
    a0 = e0.find(0xA0)
    assert a0 is not None
    apps = {c.value[:2]: c.value[4:] for c in a0.children if c.tag == 0x82}
    files = [(c.value[:8].decode(), c.value[8:10], c.value[10:12]) for c in e0.children if c.tag == 0x80]
    seen = {}
    for name, entry, fid in files:
        assert ch.transmit(Command(0x00, 0xA4, 0x04, 0x00, apps[entry], le=256)).sw.ok
        assert ch.transmit(Command(0x00, 0xA4, 0x02, 0x00, fid, le=256)).sw.ok
        seen[name] = ch.transmit(Command(0x00, 0xB0, 0x00, 0x00, le=256)).sw.value
    assert seen == {"IDENTITE": 0x9000, "BENEFNIR": 0x9000, "DROITAMO": 0x6982}
