"""The INSi's answers that are not an identity, mapped to stable error codes: one table.

A RESULTAT 01 (no identity) is INS_NOT_FOUND and 02 (several) INS_MULTIPLE_MATCHES. A SOAP fault is
looked up by (siram subcode, siram:Erreur code), then by subcode, then by SOAP code (Sender: the request
or its authentication was refused; Receiver: the service failed). The detail carries the service's own
codes (never patient data) so a helpdesk can name them to the CNAM.

Public sources settle one pair only: `siram_100` / `desir_550` "Numéro d'autorisation du logiciel
inconnu" (fault captured in `padoa/tlsi-ins`). The other subcodes of the real service are not
published; they fall back on the SOAP code.
"""

from __future__ import annotations

from bridge.errors import BridgeError, ErrorCode
from bridge.ins.messages import InsiFault
from bridge.ins.model import CrCode

__all__ = ["FAULT_TABLE", "fault_error", "outcome_error"]

#: (siram subcode, siram:Erreur code or None for any) -> error code. The first match wins.
FAULT_TABLE: dict[tuple[str | None, str | None], ErrorCode] = {
    ("siram_100", "desir_550"): ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED,
    ("siram_100", None): ErrorCode.INSI_REFUSED,
    (None, "Sender"): ErrorCode.INSI_REFUSED,
    (None, "Receiver"): ErrorCode.INSI_UNAVAILABLE,
}


def fault_error(fault: InsiFault) -> BridgeError:
    """The BridgeError for an INSi SOAP fault."""
    code = (
        FAULT_TABLE.get((fault.subcode, fault.error_code))
        or FAULT_TABLE.get((fault.subcode, None))
        or FAULT_TABLE.get((None, fault.code))
        or ErrorCode.INSI_UNAVAILABLE
    )
    service_code = fault.error_code or fault.subcode or fault.code
    extra: dict[str, object] = {"insiCode": service_code}
    if fault.subcode:
        extra["insiSubcode"] = fault.subcode
    return BridgeError(code, service_code, **extra)


def outcome_error(code: CrCode) -> BridgeError | None:
    """INS_NOT_FOUND for 01, INS_MULTIPLE_MATCHES for 02, None for 00."""
    if code is CrCode.NOT_FOUND:
        return BridgeError(ErrorCode.INS_NOT_FOUND, "CR01", insiCode=code.value)
    if code is CrCode.MULTIPLE:
        return BridgeError(ErrorCode.INS_MULTIPLE_MATCHES, "CR02", insiCode=code.value)
    return None
