"""What a CPS shows, whatever reads it (PC/SC driver or PKCS#11 module): holder, card, certificates, PIN counter.

One JSON form (`CpsCardInfo.to_json`) serves the API (`cps.read`) and `dmp-bridge card --json`.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from bridge.cards.cps_data import CardIdentity, HolderName, ProfessionalInfo, Situation

__all__ = ["CpsCardInfo", "PinStatus", "Practitioner", "certificate_summary"]

# Short names for the attributes IGC-Santé subjects use, as the DMP kit writes them (GN=, SN=, T=).
_DN_NAMES = {NameOID.GIVEN_NAME: "GN", NameOID.SURNAME: "SN", NameOID.TITLE: "T"}


@dataclass(frozen=True)
class PinStatus:
    """The PIN's try counter."""

    tries_left: int
    tries_max: int

    @property
    def blocked(self) -> bool:
        """No try left."""
        return self.tries_left == 0


@dataclass(frozen=True)
class Practitioner:
    """The card holder as a DMP VIHF names them: NameID, subject-id, roles, structure and sector.

    Codes are bare; their systems are TRE_G15 (`OID_PROFESSION`), TRE_R01 (`OID_SPECIALTY`) and TRE_R02
    (`OID_ACTIVITY_SECTOR`) from `bridge.cards.cps_data`.
    """

    national_id: str
    display_name: str
    profession_code: str
    specialty_code: str
    structure_id: str
    activity_sector: str

    def __repr__(self) -> str:  # identifiers and names stay out of logs
        return f"Practitioner(profession={self.profession_code!r}, sector={self.activity_sector!r})"


@dataclass(frozen=True)
class CpsCardInfo:
    """What a CPS shows without the PIN, and which card generation and backend read it."""

    serial: str
    identity: CardIdentity
    holder: HolderName
    professional: ProfessionalInfo
    auth_certificate: x509.Certificate
    sign_certificate: x509.Certificate
    pin: PinStatus
    #: "CPS3" (IAS-ECC) or "CPS4" (ChipDoc).
    generation: str = "CPS3"
    #: "pkcs11" (the ANS Cryptolib) or "pcsc" (the bridge's own PC/SC driver).
    backend: str = "pcsc"

    def __repr__(self) -> str:  # names and identifiers stay out of logs
        return f"CpsCardInfo(card_type={self.identity.card_type!r}, pin={self.pin!r})"

    def practitioner(self, situation: Situation) -> Practitioner:
        """What a DIRECTE VIHF says of the holder acting in `situation` (one of this card's situations).

        Structure and sector come from the same situation (the DMP checks they belong together). The
        profession and specialty are the card holder's own (CPS_INFO_PS, what the certificates and the
        RPPS say); a situation's codes only fill in when the card has none.
        """
        pro = self.professional
        return Practitioner(
            national_id=self.holder.national_id or pro.national_id,
            display_name=f"{self.holder.first_name} {self.holder.last_name}".strip(),
            profession_code=pro.profession_code or situation.profession_code,
            specialty_code=pro.specialty_code or situation.specialty_code,
            structure_id=situation.structure_id,
            activity_sector=situation.activity_sector,
        )

    def to_json(self, now: dt.datetime | None = None) -> dict[str, object]:
        """The one JSON form of a CPS (API `cps.read`, `dmp-bridge card --json`); `now` fixes the days left.

        Shape: serial, cardType, cardNumber, validity {notBefore, notAfter} (dates), holder {idType,
        nationalId, civility, lastName, firstName, professionCode, specialtyCode}, certificates
        {authentication, signature} (each `certificate_summary` plus `der`, base64), pin {triesLeft,
        triesMax, blocked}.
        """
        now = now or dt.datetime.now(dt.UTC)
        identity, holder, pro = self.identity, self.holder, self.professional
        return {
            "serial": self.serial,
            "generation": self.generation,
            "backend": self.backend,
            "cardType": identity.card_type,
            "cardNumber": identity.card_number,
            "validity": {
                "notBefore": identity.not_before.isoformat() if identity.not_before else None,
                "notAfter": identity.not_after.isoformat() if identity.not_after else None,
            },
            "holder": {
                "idType": holder.id_type,
                "nationalId": holder.national_id,
                "civility": holder.civility,
                "lastName": holder.last_name,
                "firstName": holder.first_name,
                "professionCode": pro.profession_code,
                "specialtyCode": pro.specialty_code,
            },
            "certificates": {
                "authentication": certificate_summary("authentication", self.auth_certificate, now, der=True),
                "signature": certificate_summary("signature", self.sign_certificate, now, der=True),
            },
            "pin": {"triesLeft": self.pin.tries_left, "triesMax": self.pin.tries_max, "blocked": self.pin.blocked},
        }


def certificate_summary(
    usage: str, cert: x509.Certificate, now: dt.datetime, *, der: bool = False
) -> dict[str, object]:
    """Subject, issuer, validity and days left of a certificate (expired ones have negative days); `der`: base64 DER."""
    not_after = cert.not_valid_after_utc
    summary: dict[str, object] = {
        "usage": usage,
        "subject": cert.subject.rfc4514_string(_DN_NAMES),
        "issuer": cert.issuer.rfc4514_string(_DN_NAMES),
        "serialNumber": format(cert.serial_number, "X"),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": not_after.isoformat(),
        "daysLeft": (not_after - now).days,
        "expired": not_after <= now,
    }
    if der:
        summary["der"] = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
    return summary
