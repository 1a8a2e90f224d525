"""VIHF attribute values checked against the signer's certificate and the value sets.

- Codes: the profession role in TRE_G15, the specialty role in TRE_R01, Secteur_Activite in TRE_R02 (the
  one value-set store shared with the client, `bridge.dmp.valuesets`).
- DIRECTE (a CPx card signs): NameID is the card holder's national id, the certificate's CN; the
  profession role is the one the certificate carries (extension 1.2.250.1.71.1.2.7), when it carries one.
- Indirect modes (an establishment's « cachet » signs): Identifiant_Structure is the establishment's
  identifier, the certificate's OU (IGC-Santé ORG certificates, notes §2 and DRIMbox README).
A mismatch is the SOAP fault DMPInvalidVIHF (the simulator's name for a VIHF defect: no public catalogue).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

from bridge.dmp import valuesets
from bridge.errors import BridgeError
from bridge.sim.dmp.soap import FaultCode, SoapFault

__all__ = ["check_vihf_values"]

_PROFESSION_EXTENSION = ObjectIdentifier("1.2.250.1.71.1.2.7")


def _fail(reason: str) -> SoapFault:
    return SoapFault(FaultCode.INVALID_VIHF, f"VIHF : {reason}")


def _attribute(cert: x509.Certificate, oid: ObjectIdentifier) -> str:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else ""


def _card_profession(cert: x509.Certificate) -> str | None:
    """The TRE_G15 profession in a CPx certificate's private extension (DER INTEGER), if any."""
    try:
        ext = cert.extensions.get_extension_for_oid(_PROFESSION_EXTENSION).value
    except x509.ExtensionNotFound:
        return None
    der = getattr(ext, "value", b"")
    if len(der) < 3 or der[0] != 0x02 or der[1] != len(der) - 2:
        return None
    return str(int.from_bytes(der[2:], "big"))


def _known(system: str, code: str, what: str) -> None:
    try:
        valuesets.validate(system, code, field=what)
    except BridgeError:
        raise _fail(f"{what} {code[:32]!r} hors du jeu de valeurs") from None


def check_vihf_values(
    *,
    mode: str,
    name_id: str,
    structure_id: str,
    sector: str,
    roles: tuple[tuple[str, str], ...],
    signer: x509.Certificate,
) -> None:
    """Refuse a VIHF whose attribute values the signer's certificate or the value sets contradict."""
    _known(valuesets.FACILITY, sector.split("^", 1)[0], "Secteur_Activite")
    profession = ""
    for code, system in roles:
        if system == valuesets.PROFESSION:
            _known(system, code, "rôle (profession)")
            profession = profession or code
        elif system == valuesets.SPECIALTY:
            _known(system, code, "rôle (spécialité)")
    if mode == "DIRECTE":
        if name_id != _attribute(signer, NameOID.COMMON_NAME):
            raise _fail("NameID n'est pas l'identifiant du porteur de la carte (CN du certificat)")
        card = _card_profession(signer)
        if card is not None and profession and profession != card:
            raise _fail("la profession du rôle n'est pas celle de la carte")
    elif structure_id != _attribute(signer, NameOID.ORGANIZATIONAL_UNIT_NAME):
        raise _fail("Identifiant_Structure n'est pas celui du certificat de l'établissement (OU)")
