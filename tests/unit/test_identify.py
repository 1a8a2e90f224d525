"""Card identification: the ATR table (exact and masked), and the application probe on virtual cards."""

from __future__ import annotations

import pytest

from bridge.cards.identify import (
    AID_IAS,
    AID_IAS_CONTACTLESS,
    CardKind,
    identify,
    identify_atr,
    probe,
    require_supported,
)
from bridge.errors import BridgeError, ErrorCode
from bridge.sim.cardos import DF, CardConfig, CardOS, TransparentEF, Transport
from bridge.sim.direct import DirectChannel
from bridge.sim.generic import GenericCard
from bridge.sim.registry import make_card


@pytest.mark.parametrize(
    ("atr", "kind", "supported", "certain"),
    [
        ("3BAC00402A001225006480000310009000", CardKind.CPS3, True, True),
        ("3BAC00402A001225006480820212009000", CardKind.CPS3, False, False),  # OpenSC mask only
        ("3B8F80010031B86404B0ECC173940180829000 0E", CardKind.CPS3_CONTACTLESS, False, True),
        ("3B8F80010031B86411B0ECC173940180829000 1B", CardKind.CPS3_CONTACTLESS, False, False),
        ("3B9B188001001225006480040100009044", CardKind.CPS4, True, True),
        ("3B9B1880010012250064800004010090 44", CardKind.CPS4, True, True),
        ("3BDC18FF0000122500648000040100 9000", CardKind.CPS4, True, True),
        ("3B751300004309EA9000", CardKind.VITALE2, True, True),
        ("3B751300004409EA9000", CardKind.VITALE2, True, True),
        ("3B751300004509FA9000", CardKind.VITALE2, True, True),
        ("3B751300004C09EA9000", CardKind.VITALE2, True, True),
        ("3F6525002C09699000", CardKind.VITALE1, False, True),
        ("3F652500A4096A9000", CardKind.VITALE1, False, True),
        ("3B9F00001225006480AABB9000", CardKind.CPS3, False, False),  # ANS historical bytes only
        ("3B8B800100444D502D42524944474561", CardKind.UNKNOWN, False, False),
    ],
)
def test_atr_table(atr: str, kind: CardKind, supported: bool, certain: bool) -> None:
    ident = identify_atr(bytes.fromhex(atr.replace(" ", "")))
    assert (ident.kind, ident.supported, ident.certain) == (kind, supported, certain)
    assert ident.label_fr and ident.note


def test_unknown_atr_shows_hex_for_the_helpdesk() -> None:
    ident = identify_atr(bytes.fromhex("3B021450"))
    assert ident.kind is CardKind.UNKNOWN and "3B 02 14 50" in ident.note
    assert ident.to_json()["atr"] == "3B 02 14 50"


def test_require_supported_messages() -> None:
    with pytest.raises(BridgeError) as err:
        require_supported(identify_atr(bytes.fromhex("3F6525002C09699000")))
    assert err.value.code is ErrorCode.UNSUPPORTED_CARD and "Vitale 1" in (err.value.detail or "")
    cps4 = identify_atr(bytes.fromhex("3B9B188001001225006480040100009044"))
    assert cps4.supported and "RSA-PSS" in cps4.note
    require_supported(cps4, CardKind.CPS4)
    vitale = identify_atr(bytes.fromhex("3B751300004309EA9000"))
    require_supported(vitale, CardKind.VITALE2)
    with pytest.raises(BridgeError) as err:
        require_supported(vitale, CardKind.CPS3)
    assert "CPS3" in (err.value.detail or "")


def _ias_card(atr: str, aid: bytes, classes: frozenset[int] = frozenset({0x00}), chipdoc: bool = False) -> CardOS:
    mf = DF(fid=0x3F00)
    mf.add(TransparentEF(fid=0xD003, data=bytes.fromhex("5A0A8025000001992138450F")))
    mf.add(DF(fid=0x0001, name=aid))
    if chipdoc:
        mf.add(DF(fid=0x0002, name=bytes.fromhex("8025000001FF0100")))
    # P2=00 refused like the real CPS3, so the probe must use P2=0C
    return CardOS(CardConfig(bytes.fromhex(atr), Transport.T0, classes, frozenset({0x04, 0x0C})), mf)


def test_probe_on_virtual_cards() -> None:
    assert probe(DirectChannel(make_card("vitale"))) is CardKind.VITALE2
    assert probe(DirectChannel(GenericCard())) is CardKind.UNKNOWN
    odd_cps = "3BAC00402A001225006480820212009000"
    assert probe(DirectChannel(_ias_card(odd_cps, AID_IAS))) is CardKind.CPS3
    assert probe(DirectChannel(_ias_card(odd_cps, AID_IAS_CONTACTLESS))) is CardKind.CPS3_CONTACTLESS
    cps4 = _ias_card(odd_cps, AID_IAS, frozenset({0x00, 0x01}), chipdoc=True)
    assert probe(DirectChannel(cps4)) is CardKind.CPS4


def test_identify_probes_only_when_needed() -> None:
    ch = DirectChannel(_ias_card("3BAC00402A001225006480820212009000", AID_IAS))
    ident = identify(ch)
    assert (ident.kind, ident.certain, ident.supported) == (CardKind.CPS3, True, True)
    assert ch.trace  # the card was asked
    exact = DirectChannel(_ias_card("3BAC00402A001225006480000310009000", AID_IAS))
    assert identify(exact).kind is CardKind.CPS3 and not exact.trace
    unknown = identify(DirectChannel(GenericCard()))
    assert unknown.kind is CardKind.UNKNOWN and not unknown.supported
