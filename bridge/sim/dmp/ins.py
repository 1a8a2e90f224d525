"""INS checks: 15-digit NIR with its key, CX form `<INS>^^^&<oid>&ISO^NH` (notes §3.1, §5)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bridge.sim.dmp.constants import InsOid

__all__ = ["Ins", "InsError", "nir_key", "parse_ins", "parse_ins_cx", "valid_nir"]

_NIR = re.compile(r"^[12378][0-9]{4}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}$")
_CX = re.compile(r"^([0-9AB]{15})\^\^\^&([0-9.]+)&ISO\^NH(?:\^.*)?$")


class InsError(ValueError):
    """The INS is malformed, has a wrong key or an unknown assigning authority."""


@dataclass(frozen=True)
class Ins:
    """A patient INS: the 15-character identifier and its OID."""

    value: str
    oid: InsOid

    def cx(self) -> str:
        """The HL7 CX form used by XDS and the VIHF (without the trailing date)."""
        return f"{self.value}^^^&{self.oid.value}&ISO^NH"


def nir_key(first13: str) -> int:
    """The NIR key: 97 - (number mod 97), Corsica departments 2A/2B counted as 19/18."""
    number = first13.replace("2A", "19").replace("2B", "18")
    return 97 - int(number) % 97


def valid_nir(value: str) -> bool:
    """True if `value` is a 15-character NIR (sex, year, month, place, order) whose key checks."""
    if not _NIR.match(value):
        return False
    return nir_key(value[:13]) == int(value[13:])


def parse_ins(value: str, oid: str) -> Ins:
    """Check an identifier and its OID; raise InsError with a short reason."""
    try:
        ins_oid = InsOid(oid)
    except ValueError:
        raise InsError(f"autorité d'affectation INS inconnue : {oid}") from None
    if not valid_nir(value):
        raise InsError("INS invalide (15 caractères et clé NIR attendus)")
    return Ins(value, ins_oid)


def parse_ins_cx(text: str) -> Ins:
    """Parse `<INS>^^^&<oid>&ISO^NH[^...]`, as in patientId and the VIHF resource-id."""
    match = _CX.match(text.strip())
    if not match:
        raise InsError("identifiant patient mal formé (CX INS^^^&OID&ISO^NH attendu)")
    return parse_ins(match.group(1), match.group(2))
