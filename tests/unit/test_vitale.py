"""Vitale 2 driver against the Vitale emulator (through the real T=0 transport engine), and its pure parts."""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import pytest

from bridge.cards.vitale import TAGS
from bridge.cards.vitale_parse import (
    BeneficiaryCoverage,
    BeneficiaryIdentity,
    build_card,
    nir_key,
    nir_matches_birth,
    normalise_birth_date,
    parse_identity_templates,
    parse_nir_templates,
)
from bridge.cards.vitale_reader import read_vitale
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
    assert lea.card_nir == jean.nir and not lea.is_insured and lea.birth_date == date(2012, 9, 3)
    # her template carries her father's NIR: it is not shown as hers
    assert (lea.nir, lea.nir_key, lea.nir_valid, lea.own_nir, lea.card_nir_valid) == (None, None, False, False, True)
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
        assert card.beneficiaries and all(b.nir_valid for b in card.beneficiaries if b.nir is not None), name
        assert sum(bool(b.is_insured) for b in card.beneficiaries) <= 1, name


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
    assert [b.is_insured for b in card.beneficiaries] == [None] * 6 and card.insured is None  # no quality
    b = card.beneficiaries[0]
    assert not b.card_nir_valid and b.lunar and b.birth_date == date(2000, 2, 29)
    assert b.nir is None and b.own_nir is False  # a NIR of someone born in 1978 is not theirs
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


def test_insured_is_never_inferred_from_order() -> None:
    """Without a quality tag nobody is the insured, not even the first beneficiary."""
    card, _ = read("sans-qualite")
    lou, sophie = card.beneficiaries
    assert [b.is_insured for b in card.beneficiaries] == [None, None] and card.insured is None
    assert [b["isInsured"] for b in json.loads(json.dumps(card.to_json()))["beneficiaries"]] == [None, None]
    # the daughter first, on her mother's NIR: the NIR is the mother's, by its birth year
    assert (lou.nir, lou.own_nir, lou.card_nir) == (None, False, sophie.nir)
    assert sophie.nir == "2850369123045" and sophie.nir_valid
    assert card.validity_end is None and all(b.rank is None and b.quality is None for b in card.beneficiaries)


def test_family_card_insured_not_first_with_uneven_templates(caplog: pytest.LogCaptureFixture) -> None:
    """Insured third, templates of different tag sets and lengths, a shorter NIR list: read without error."""
    with caplog.at_level(logging.WARNING):
        card, _ = read("recomposee")
    hugo, pierre, sophie, zoe = card.beneficiaries
    assert card.insured is sophie and [b.is_insured for b in card.beneficiaries] == [False, False, True, None]
    assert (hugo.nir, hugo.card_nir, hugo.own_nir, hugo.quality) == (None, sophie.nir, False, "06")
    assert (pierre.nir, pierre.nir_valid, pierre.rank, pierre.quality) == ("1800175056012", True, None, "02")
    assert (sophie.nir, sophie.nir_key, sophie.rank) == ("2850369123045", "79", 1)
    # the last beneficiary has no NIR template at all: no NIR, no quality, nothing borrowed from a neighbour
    assert (zoe.first_name, zoe.card_nir, zoe.nir, zoe.nir_valid, zoe.is_insured) == ("ZOE", None, None, False, None)
    assert zoe.lunar and zoe.birth_date == date(2019, 1, 1)
    out = json.loads(json.dumps(card.to_json()))
    assert out["beneficiaries"][3]["nir"] is None and out["beneficiaries"][3]["cardNir"] is None
    assert "4 identities but 3 NIR templates" in caplog.text
    for secret in ("DUPONT", "ZOE", "2850369123045"):
        assert secret not in caplog.text


def test_longer_nir_list_and_templates_without_nir() -> None:
    """Extra NIR templates are ignored; a template without 93 gives no NIR, never an empty one."""
    ident = [BeneficiaryIdentity("A", "B", "19780314")]
    no_nir = parse_nir_templates(encode_tlv(0x65, [encode_tlv(0x85, b"00")]))
    assert no_nir == [BeneficiaryCoverage(None, None, "00")]
    (b,) = build_card(ident, no_nir, None, (None, None)).beneficiaries
    assert (b.nir, b.card_nir, b.nir_key, b.nir_valid, b.is_insured) == (None, None, None, False, True)
    extra = [BeneficiaryCoverage("178037511501201", None, None), BeneficiaryCoverage("281209935201476", None, "00")]
    (b,) = build_card(ident, extra, None, (None, None)).beneficiaries
    assert (b.nir, b.is_insured) == ("1780375115012", None)


def test_shared_nir_is_owned_only_by_the_quality_00() -> None:
    """Two beneficiaries fitting one NIR: the quality decides; without it neither is said to own it."""
    twins = [BeneficiaryIdentity("X", "A", "19780301"), BeneficiaryIdentity("X", "B", "19780302")]

    def owners(q1: str | None, q2: str | None) -> list[str | None]:
        covs = [BeneficiaryCoverage("178037511501201", None, q1), BeneficiaryCoverage("178037511501201", None, q2)]
        return [b.nir for b in build_card(twins, covs, None, (None, None)).beneficiaries]

    assert owners(None, None) == [None, None]
    assert owners("06", "00") == [None, "1780375115012"]
    assert owners("06", "06") == [None, None]


@pytest.mark.parametrize(
    ("nir13", "birth", "fits"),
    [
        ("1780375115012", "19780314", True),
        ("1780375115012", "20120903", False),  # another year
        ("1780475115012", "19780314", False),  # another month
        ("2812099352014", "19810000", True),  # NIR month 20: unknown
        ("1780375115012", "19780014", True),  # lunar month on the card
        ("1780375115012", "", None),
        ("1XX0375115012", "19780314", None),
    ],
)
def test_nir_matches_birth(nir13: str, birth: str, fits: bool | None) -> None:
    assert nir_matches_birth(nir13, birth) is fits


def test_tag_table_marks_the_tags_without_public_source() -> None:
    """The one table of tags: rank, quality, end of validity and serial are unverified, the rest sourced."""
    unverified = {(t.template, t.tag) for t in TAGS.values() if not t.verified}
    assert unverified == {(0x65, 0x84), (0x65, 0x85), (0x66, 0x81), (0, 0x5A)}
    assert all("cardpeek" in t.source for t in TAGS.values() if t.verified)
    card, _ = read("famille")
    assert card.to_json()["unverified"] == ["rank", "quality", "isInsured", "validityEnd", "serial"]


def test_profile_extra_tags_and_optional_nir_are_validated() -> None:
    """A profile may omit the NIR and add primitive tags; a constructed extra tag is refused."""
    base = {"last_name": "A", "first_name": "B", "birth_date": "19780314"}
    p = _profile(beneficiaries=[{**base, "coverage_tags": {"86": "01"}}])
    assert p.beneficiaries[0].nir is None and p.beneficiaries[0].coverage_tags == ((0x86, "01"),)
    with pytest.raises(ValueError, match="primitive"):
        _profile(beneficiaries=[{**base, "identity_tags": {"A0": "x"}}])


def test_card_command_prints_unknown_quality_and_no_own_nir(capsys: pytest.CaptureFixture[str]) -> None:
    """`dmp-bridge card` says when the quality is unknown and never prints a borrowed NIR as the person's."""
    from bridge.commands.card import _print_human

    card, _ = read("sans-qualite")
    _print_human([{"reader": "R", "atr": "3B", "vitale": card.to_json()}])
    lou, sophie = capsys.readouterr().out.splitlines()[1:]
    assert "qualité non indiquée" in lou and "pas de NIR propre" in lou and "2850369123045" not in lou
    assert "NIR 2850369123045 79" in sophie
