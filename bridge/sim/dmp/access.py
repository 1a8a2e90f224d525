"""Who may see what: the caller of a transaction and the DMP visibility rules (notes §5, TRE_A07).

- MASQUE_PS: hidden from health professionals except the document's author (or the one who sent it);
  the patient still sees it.
- INVISIBLE_PATIENT: hidden from the patient (the simulator's patient view, see `Caller.patient_view`).
- Deleted entries are never shown; Deprecated/Archived only when the query asks for those statuses.
- The patient's médecin traitant sees masked documents (PDT-INF-526, TD3.2 « Documents masqués aux PS »).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from bridge.dmp import rights
from bridge.sim.dmp.constants import NS, AvailabilityStatus, ConfidentialityCode
from bridge.sim.dmp.errors import FAILURE, SUCCESS, XdsError, XdsErrorCode, error_list
from bridge.sim.dmp.ins import Ins
from bridge.sim.dmp.soap import FaultCode, SoapFault
from bridge.sim.dmp.store import DmpStore, EntryRow, PatientRow
from bridge.sim.dmp.vihf import Vihf

__all__ = ["Caller", "Reply", "latest_versions", "registry_response", "require_patient", "visible", "visible_now"]


_PROFESSION_SYSTEM = "1.2.250.1.71.1.2.7"


@dataclass(frozen=True)
class Caller:
    """The checked VIHF plus the simulator-only patient view flag (HTTP header `X-DMP-Sim-Viewer: patient`)."""

    vihf: Vihf
    patient_view: bool = False
    #: The VIHF's user is the médecin traitant of the VIHF's patient (the simulator's own data).
    medecin_traitant: bool = False

    @classmethod
    def of(cls, store: DmpStore, vihf: Vihf, patient_view: bool = False) -> Caller:
        """The caller of a request, with what the DMP knows about it (médecin traitant)."""
        return cls(vihf, patient_view, store.medecin_traitant(vihf.ins.value) == vihf.name_id)

    @property
    def actor(self) -> rights.Actor:
        """The rights matrix's actor: from the VIHF mode and profession, MT from the DMP's own data."""
        profession = next((code for code, system in self.vihf.roles if system == _PROFESSION_SYSTEM), "")
        actor = rights.actor_of(self.vihf.mode, profession)
        if actor is rights.Actor.MEDECIN and self.medecin_traitant and self.vihf.mode == "DIRECTE":
            return rights.Actor.MEDECIN_TRAITANT
        return actor

    @property
    def access_mode(self) -> rights.AccessMode:
        """The rights matrix's access mode (VIHF purpose of use)."""
        return rights.access_mode_of(self.vihf.purpose)


@dataclass(frozen=True)
class Reply:
    """The answer of a transaction: the SOAP Body child and MTOM attachments (content-id, media type, bytes)."""

    body_child: etree._Element
    attachments: tuple[tuple[str, str, bytes], ...] = ()


def visible(entry: EntryRow, caller: Caller) -> bool:
    """The DMP visibility rules for one entry version."""
    if entry.status is AvailabilityStatus.DELETED:
        return False
    if caller.patient_view:
        return ConfidentialityCode.INVISIBLE_PATIENT.value not in entry.confidentiality
    if ConfidentialityCode.MASQUE_PS.value in entry.confidentiality:
        return caller.medecin_traitant or caller.vihf.name_id in {entry.author_id, entry.submitter_id}
    return True


def latest_versions(rows: list[EntryRow]) -> dict[str, EntryRow]:
    """The latest version of each logical document (lid) among `rows`."""
    latest: dict[str, EntryRow] = {}
    for row in rows:
        if row.lid not in latest or row.version > latest[row.lid].version:
            latest[row.lid] = row
    return latest


def visible_now(entry: EntryRow, latest: EntryRow, caller: Caller) -> bool:
    """An entry version is visible if it and the current version of its document are: a document masked
    today must not leak through its older, Deprecated versions."""
    return visible(entry, caller) and visible(latest, caller)


def require_patient(store: DmpStore, ins: Ins, caller: Caller) -> PatientRow:
    """The patient named by a request: must be the VIHF's patient, exist, and have an open DMP."""
    if ins.value != caller.vihf.ins.value or ins.oid is not caller.vihf.ins.oid:
        raise XdsError(XdsErrorCode.PATIENT_ID_DOES_NOT_MATCH, "Le patient de la requête n'est pas celui du VIHF")
    patient = store.patient(ins.value)
    if patient is None or patient.oid != ins.oid.value:
        raise XdsError(XdsErrorCode.UNKNOWN_PATIENT_ID, "Aucun DMP pour cet INS")
    if patient.status != "active":
        raise SoapFault(FaultCode.DMP_CLOSED, "Le DMP de ce patient est fermé")
    return patient


def registry_response(errors: list[XdsError]) -> etree._Element:
    """`rs:RegistryResponse` Success, or Failure with its error list (namespaces as in the samples)."""
    rs = NS["rs"]
    node = etree.Element(
        f"{{{rs}}}RegistryResponse",
        nsmap={"ns2": rs, "ns3": NS["lcm"], "ns4": NS["xds"], "ns5": NS["rim"], "ns6": NS["query"]},
        status=FAILURE if errors else SUCCESS,
    )
    if errors:
        node.append(error_list(errors))
    return node
