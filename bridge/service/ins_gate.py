"""The qualified-INS rule of TD2.1: a document goes to the DMP with a qualified INS unless the caller says otherwise.

Qualified means the INSi returned this INS in this daemon (`InsService.remember`), or the caller states
it was qualified earlier (`insQualified`: its DPI keeps the identity status), or the caller accepts an
unqualified INS explicitly (`allowUnqualifiedIns`). Anything else is INS_NOT_QUALIFIED, before any
card or DMP access. Every path that feeds a document (the API's `dmp.documents.submit`, the outbox)
applies this one function.
"""

from __future__ import annotations

from typing import Any, Protocol

from bridge.dmp.codes import InsOid
from bridge.dmp.vihf import PatientIns
from bridge.errors import BridgeError, ErrorCode

__all__ = ["QUALIFICATIONS", "SUBMIT_FLAGS", "QualifiedIns", "qualification"]

#: The submit params that state the INS's status.
SUBMIT_FLAGS: dict[str, Any] = {
    "insQualified": {
        "type": "boolean",
        "description": "the caller states the INS was qualified with the INSi earlier (its DPI holds it so)",
    },
    "allowUnqualifiedIns": {
        "type": "boolean",
        "description": "send even though the INS is not qualified (without it: INS_NOT_QUALIFIED)",
    },
}
#: How the INS of a submitted document was known to be qualified (the submit result's `insQualification`).
QUALIFICATIONS = ["insi", "stated", "unqualified"]


class QualifiedIns(Protocol):
    """Whether an INS came back from the INSi (bridge.service.ins.InsService)."""

    def is_qualified(self, ins: str, oid: InsOid) -> bool:
        """True when the INSi returned this INS."""


def qualification(ins: QualifiedIns | None, patient: PatientIns, params: dict[str, Any]) -> str:
    """ "insi", "stated" or "unqualified" (see the module docstring); INS_NOT_QUALIFIED otherwise."""
    if ins is None or ins.is_qualified(patient.value, patient.oid):
        return "insi"
    if params.get("insQualified"):
        return "stated"
    if params.get("allowUnqualifiedIns"):
        return "unqualified"
    raise BridgeError(ErrorCode.INS_NOT_QUALIFIED, "ins-not-qualified")
