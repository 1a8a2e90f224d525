"""Which card is in the reader: ATR matching with masks, and an application probe for ambiguous ATRs.

The ATR table comes from the public lists gathered in the reference notes (cards.md §1.2, §2.1):
the ANS Cryptolib CPS ATRs, OpenSC's CPx mask and pcsc-tools' smartcard_list. An exact entry is
tried before a masked one. A masked-only match, or an ATR that only carries the ANS historical
bytes ``12 25 00 64 80``, is *ambiguous*: `identify` then asks the card itself with `probe`, which
selects the applications by AID (no PIN, no state change apart from the current file).

Where a mask hides bytes that the TCK check byte depends on (contactless CPS3), the TCK is masked too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command
from bridge.pcsc.channel import CardChannel

__all__ = [
    "AID_CPS4_CHIPDOC",
    "AID_IAS",
    "AID_IAS_CONTACTLESS",
    "AID_VITALE",
    "CardIdentity",
    "CardKind",
    "identify",
    "identify_atr",
    "probe",
    "require_supported",
]

AID_IAS = bytes.fromhex("E828BD080F8025000001FF0010")
AID_IAS_CONTACTLESS = bytes.fromhex("E828BD080F8025000001FF0020")
AID_CPS4_CHIPDOC = bytes.fromhex("8025000001FF0100")
AID_VITALE = bytes.fromhex("D250000002") + b"VITALE"

_ANS_HISTORICAL = bytes.fromhex("1225006480")  # compact-TLV tag 1 = 25 00, tag 6 = 80 ... (ANS issuer data)


class CardKind(enum.Enum):
    """Card families the bridge tells apart; the value is what the API and logs show."""

    #: CPS3 (IAS-ECC, contact interface): CPS/CPE/CPF... "CPx" of the current generation.
    CPS3 = "CPS3"
    #: CPS3 seen through its contactless interface: identity only, no PIN, no signature.
    CPS3_CONTACTLESS = "CPS3_CONTACTLESS"
    #: CPS4 (NXP ChipDoc applet on logical channel 1).
    CPS4 = "CPS4"
    #: Carte Vitale 2 (and later batches): beneficiaries and NIR readable without PIN.
    VITALE2 = "VITALE2"
    #: Carte Vitale 1 (Bull CP8, inverse convention): no public protocol, unsupported.
    VITALE1 = "VITALE1"
    #: Anything else.
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class CardIdentity:
    """What the bridge concluded about a card, with a French label and note for the user/helpdesk."""

    kind: CardKind
    supported: bool
    label_fr: str
    note: str
    atr_hex: str
    #: False when the ATR alone was not conclusive (see `identify`, which then probes).
    certain: bool = True

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (API `card` payloads, `dmp-bridge card --json`, doctor report)."""
        return {
            "kind": self.kind.value,
            "supported": self.supported,
            "label": self.label_fr,
            "note": self.note,
            "atr": self.atr_hex,
            "certain": self.certain,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    pattern: bytes
    mask: bytes | None  # None = exact comparison
    kind: CardKind
    label: str

    def matches(self, atr: bytes) -> bool:
        if len(atr) != len(self.pattern):
            return False
        if self.mask is None:
            return atr == self.pattern
        return all((a & m) == (p & m) for a, p, m in zip(atr, self.pattern, self.mask, strict=True))


def _h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", "").replace(":", ""))


# Exact entries first, then masked ones (first match wins).
_TABLE: tuple[_Entry, ...] = (
    _Entry(_h("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"), None, CardKind.CPS3, "CPS3"),
    _Entry(_h("3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E"), None, CardKind.CPS3_CONTACTLESS, ""),
    _Entry(_h("3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44"), None, CardKind.CPS4, "CPS4"),
    _Entry(_h("3B 9B 18 80 01 00 12 25 00 64 80 00 04 01 00 90 44"), None, CardKind.CPS4, "CPS4 (pré-série)"),
    _Entry(_h("3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00"), None, CardKind.CPS4, "CPS4 (T=0)"),
    _Entry(_h("3B 75 13 00 00 43 09 EA 90 00"), None, CardKind.VITALE2, "Vitale 2"),
    _Entry(_h("3B 75 13 00 00 44 09 EA 90 00"), None, CardKind.VITALE2, "Vitale 2 avec photo"),
    # OpenSC "IAS/ECC CPx" mask: also matches "3B AC ... 80 82 02 12 ..." (a CPS listed by pcsc-tools only).
    _Entry(
        _h("3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00"),
        _h("FF 00 00 00 00 FF FF FF FF FF FF 00 00 00 FF FF FF"),
        CardKind.CPS3,
        "CPS3",
    ),
    # ANS CPS3_CL mask; bytes 9-10 vary, so does the TCK.
    _Entry(
        _h("3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E"),
        _h("FF FF FF FF FF FF FF FF 00 00 FF C0 FF FF FF FF FF FF FF 00"),
        CardKind.CPS3_CONTACTLESS,
        "",
    ),
    # Vitale batches: 3B 75 13 00 00 4x 09 EA|FA 90 00.
    _Entry(_h("3B 75 13 00 00 40 09 EA 90 00"), _h("FF FF FF FF FF F0 FF EF FF FF"), CardKind.VITALE2, "Vitale"),
    # Vitale 1 (inverse convention): 3F 65 25 00 xx 09 xx 90 00.
    _Entry(_h("3F 65 25 00 00 09 00 90 00"), _h("FF FF FF FF 00 FF 00 FF FF"), CardKind.VITALE1, "Vitale 1"),
)
_EXACT_COUNT = 7

_LABELS = {
    CardKind.CPS3: "Carte CPS3 (professionnel de santé)",
    CardKind.CPS3_CONTACTLESS: "Carte CPS3 lue en sans contact",
    CardKind.CPS4: "Carte CPS4 (professionnel de santé)",
    CardKind.VITALE2: "Carte Vitale",
    CardKind.VITALE1: "Carte Vitale 1 (ancienne génération)",
    CardKind.UNKNOWN: "Carte non reconnue",
}
_NOTES = {
    CardKind.CPS3: "Authentification, signature et lecture d'identité prises en charge.",
    CardKind.CPS3_CONTACTLESS: (
        "Identification seulement : l'interface sans contact n'a ni code porteur ni signature. "
        "Insérez la carte dans un lecteur à contact pour vous connecter ou signer."
    ),
    CardKind.CPS4: "Authentification, signature (PKCS#1 v1.5 et RSA-PSS) et lecture d'identité prises en charge.",
    CardKind.VITALE2: "Lecture des bénéficiaires (nom, prénom, date de naissance, NIR) prise en charge.",
    CardKind.VITALE1: (
        "Carte Vitale 1 non prise en charge : son protocole n'est pas public. Le bénéficiaire doit "
        "faire renouveler sa carte (Vitale 2) ; en attendant, saisissez son identité manuellement."
    ),
}
_SUPPORTED = frozenset({CardKind.CPS3, CardKind.CPS4, CardKind.VITALE2})


def _identity(kind: CardKind, atr: bytes, certain: bool, label: str = "") -> CardIdentity:
    atr_hex = atr.hex(" ").upper()
    label_fr = _LABELS[kind] if not label or kind is not CardKind.VITALE2 else f"Carte {label}"
    if kind is CardKind.UNKNOWN:
        note = (
            "Carte non reconnue par le pont DMP. Si c'est une carte de santé, communiquez cet ATR au "
            f"support : {atr_hex}"
        )
    elif certain:
        note = _NOTES[kind]
    else:
        label = _LABELS[kind][0].lower() + _LABELS[kind][1:]
        note = f"ATR proche de celui d'une {label}, à confirmer en interrogeant la carte ({atr_hex})."
    return CardIdentity(kind, kind in _SUPPORTED and certain, label_fr, note, atr_hex, certain)


def identify_atr(atr: bytes) -> CardIdentity:
    """Identify a card from its ATR alone; `certain` is False when only a mask or the ANS bytes matched."""
    atr = bytes(atr)
    for i, entry in enumerate(_TABLE):
        if entry.matches(atr):
            certain = i < _EXACT_COUNT or entry.kind in (CardKind.VITALE2, CardKind.VITALE1)
            return _identity(entry.kind, atr, certain, entry.label)
    if _ANS_HISTORICAL in atr:
        return _identity(CardKind.CPS3, atr, certain=False)  # an unlisted CPx: let the card say which
    return _identity(CardKind.UNKNOWN, atr, certain=False)


def _selectable(channel: CardChannel, aid: bytes, cla: int = 0x00) -> bool:
    """SELECT by AID without asking for data (P2=0C); cards refusing that form are asked for the FCI."""
    response = channel.transmit(Command(cla, 0xA4, 0x04, 0x0C, aid))
    if response.sw.value in (0x6A86, 0x6A87, 0x6700):
        response = channel.transmit(Command(cla, 0xA4, 0x04, 0x00, aid, le=256))
    return response.sw.ok


def probe(channel: CardChannel) -> CardKind:
    """Ask the card which applications it has: Vitale, IAS contact (CPS3, or CPS4 with ChipDoc), IAS contactless."""
    if _selectable(channel, AID_VITALE):
        return CardKind.VITALE2
    if _selectable(channel, AID_IAS):
        # The CPS4 ChipDoc applet lives on logical channel 1 (ANS card-cps4.c).
        return CardKind.CPS4 if _selectable(channel, AID_CPS4_CHIPDOC, cla=0x01) else CardKind.CPS3
    if _selectable(channel, AID_IAS_CONTACTLESS):
        return CardKind.CPS3_CONTACTLESS
    return CardKind.UNKNOWN


def identify(channel: CardChannel) -> CardIdentity:
    """Identify by ATR, and probe the applications when the ATR is not conclusive."""
    by_atr = identify_atr(channel.atr)
    if by_atr.certain:
        return by_atr
    kind = probe(channel)
    return _identity(kind, bytes(channel.atr), certain=kind is not CardKind.UNKNOWN)


def require_supported(identity: CardIdentity, wanted: CardKind | None = None) -> None:
    """Raise UNSUPPORTED_CARD (with the French note as detail) unless the card can be used (as `wanted`)."""
    if not identity.supported:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, identity.note, kind=identity.kind.value, atr=identity.atr_hex)
    if wanted is not None and identity.kind is not wanted:
        detail = f"{identity.label_fr} présente ; {_LABELS[wanted]} attendue."
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, detail, kind=identity.kind.value, atr=identity.atr_hex)
