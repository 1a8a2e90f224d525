"""The simulator's use of the rights matrix: one table with the client (`bridge.dmp.rights`, PDT-INF-526).

The simulator knows every fact the sheet's notes depend on (author, structure, médecin traitant), so it
decides each case; a refusal is the SOAP fault DMPAccessDeniedByRightsService, the code PDT-INF-527 gives
for a transaction the rights service refuses. The simulator has no record of patients' authorisations
for masked documents in bris de glace / centre 15 (note (7)): it treats them as not given.
"""

from __future__ import annotations

from bridge.dmp import rights
from bridge.sim.dmp.access import Caller
from bridge.sim.dmp.constants import NS, AvailabilityStatus, ConfidentialityCode
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import EntryRow
from bridge.xmlsafe import parse_xml

__all__ = ["enforce", "own_document", "read_operations", "structure_document"]

_RIM = NS["rim"]
_OP = rights.Operation
_AUTHOR_SCHEME = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"


def enforce(caller: Caller, operation: rights.Operation, **facts: bool | None) -> None:
    """Refuse what the matrix refuses to this caller (SOAP fault DMPAccessDeniedByRightsService)."""
    try:
        rights.require(caller.actor, caller.access_mode, operation, **facts)  # type: ignore[arg-type]
    except rights.NotPermitted as exc:
        decision = exc.decision
        why = "" if decision.reason in {"matrix", "no-column"} else f" (note {decision.reason})"
        raise SoapFault(
            FaultCode.ACCESS_DENIED_BY_RIGHTS,
            f"{operation.transaction} « {operation.label} » refusé à l'acteur « {decision.actor.value} » "
            f"en mode d'accès {decision.mode.value}{why}",
        ) from None


def own_document(caller: Caller, row: EntryRow) -> bool:
    """The caller is the document's author (or the one who sent it)."""
    return caller.vihf.name_id in {row.author_id, row.submitter_id}


def structure_document(caller: Caller, row: EntryRow) -> bool:
    """One of the document's authors belongs to the caller's structure (authorInstitution id)."""
    element = parse_xml(row.metadata)
    for cls in element.iterfind(f"{{{_RIM}}}Classification"):
        if cls.get("classificationScheme") != _AUTHOR_SCHEME:
            continue
        for slot in cls.iterfind(f"{{{_RIM}}}Slot[@name='authorInstitution']"):
            for value in slot.iterfind(f"{{{_RIM}}}ValueList/{{{_RIM}}}Value"):
                if (value.text or "").strip().split("^")[-1] == caller.vihf.structure_id:
                    return True
    return own_document(caller, row)


def read_operations(row: EntryRow) -> list[rights.Operation]:
    """The TD3.2 lines of the sheet that reading this version falls under."""
    ops = [_OP.TD3_2_MASKED if ConfidentialityCode.MASQUE_PS.value in row.confidentiality else _OP.TD3_2_UNMASKED]
    if ConfidentialityCode.INVISIBLE_PATIENT.value in row.confidentiality:
        ops.append(_OP.TD3_2_INVISIBLE_PATIENT)
    if row.status is AvailabilityStatus.ARCHIVED:
        ops.append(_OP.TD3_2_ARCHIVED)
    if row.status is AvailabilityStatus.DEPRECATED:
        ops.append(_OP.TD3_2_OBSOLETE)
    return ops
