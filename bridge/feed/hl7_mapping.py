"""ORU^R01 (v2.5) and MDM^T02/T10/T04 (v2.6) of the DPI to an outbox job: checked, then mapped to XDS metadata.

Sources (ANS implementation guide `ansforge/IG-hl7v2-volet-transmission-document-cda-r2`):
- input/pagecontent/profils-messages.md: MSH-9/MSH-12 pairs; the first OBX carries the CDA (OBX-2 ED,
  OBX-5.3 XML, OBX-5.4 Base64, OBX-5.5 the data); OBX-11 F (validated: publish), C (replace), D (delete);
  ORC-1 NW / RO / CA consistent with OBX-11 (ORU), the MDM event T02 / T10 / T04 likewise; TXA-12 the
  document's uniqueId and TXA-13 the replaced one (MDM); OBR-4 / OBX-3 the type code (LN or TRE_A05);
  the following OBX (OBX-3.3 « MetaDMPMSS ») carry MASQUE_PS, INVISIBLE_PATIENT, DESTDMP (Y/N);
  PID-3 must hold the patient ids of the CDA (recordTarget);
- input/pagecontent/mapping.md (« Mapping XDS »): patientId and sourcePatientId ← PID-3; uniqueId ←
  CDA id@root, TXA-12 for MDM; typeCode ← CDA code, OBR-4; confidentialityCode ← the CDA's then the
  MetaDMPMSS OBX; contentTypeCode ← PV1-2 (I→03, O→07, R→19, N→97); the other entry metadata ← the CDA.
- PAM France (Interop'Santé) / CI-SIS INS annex: PID-3 repetition with the INS OID (CX.4.2) and PID-32
  identity reliability code, VALI for a qualified identity. The INS is taken as qualified when PID-32
  holds VALI (the INSi call itself is not the bridge's here).

Anything else is refused with AE and the field to fix, before anything is queued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import hl7

from bridge.dmp.cda_header import read_cda_metadata
from bridge.dmp.codes import InsOid
from bridge.dmp.failures import DmpInputError
from bridge.dmp.xds_model import Code
from bridge.feed.hl7_message import Hl7Header, Hl7Problem, decode, read_header
from bridge.feed.outbox_model import DocumentSpec, JobKind

__all__ = ["FeedRequest", "parse_feed_message"]

#: (message type, event) → (HL7 version, OBX-11 status it must carry) per the IG.
_EVENTS = {
    ("ORU", "R01"): ("2.5", None),
    ("MDM", "T02"): ("2.6", "F"),
    ("MDM", "T10"): ("2.6", "C"),
    ("MDM", "T04"): ("2.6", "D"),
}
_STATUS_KIND = {"F": JobKind.SUBMIT, "C": JobKind.REPLACE, "D": JobKind.DELETE}
_ORC_STATUS = {"NW": "F", "RO": "C", "CA": "D"}
#: OBX-3.3 / OBR-4.3 coding systems of the type code.
_CODE_SYSTEMS = {"LN": "2.16.840.1.113883.6.1", "TRE_A05": "1.2.250.1.213.1.1.4.12"}
#: PV1-2 patient class → contentTypeCode (JDV_J59, TRE_R209), mapping.md.
_CONTENT_TYPES = {
    "I": Code("03", "1.2.250.1.213.2.2", "Hospitalisation complète"),
    "O": Code("07", "1.2.250.1.213.2.2", "Consultations soins externes"),
    "R": Code("19", "1.2.250.1.213.2.2", "Séances"),
    "N": Code("97", "1.2.250.1.213.2.2", "Non applicable"),
}
_INS_OIDS = frozenset(o.value for o in InsOid)
_MEDIA = {"XML": "text/xml", "PDF": "application/pdf"}


@dataclass(frozen=True)
class FeedRequest:
    """A checked message: the outbox job it becomes (with its DMP-bound metadata)."""

    header: Hl7Header
    kind: JobKind
    unique_id: str
    ins: str
    ins_oid: str
    ins_qualified: bool
    spec: DocumentSpec
    document: bytes
    #: False when the message says not to publish on the DMP (MetaDMPMSS DESTDMP = N).
    for_dmp: bool = True

    def __repr__(self) -> str:
        return f"FeedRequest({self.header.control_id!r}, {self.kind.value})"

    @property
    def source_key(self) -> str:
        """The idempotency key of the intake: sender and MSH-10 (a resent message is the same job)."""
        digest = hashlib.sha256(self.document).hexdigest()[:16]
        return f"{self.header.sending_app}|{self.header.sending_facility}|{self.header.control_id}|{digest}"


def _ae(code: str, text: str, location: str, reason_fr: str) -> Hl7Problem:
    return Hl7Problem("AE", code, text, location, reason_fr)


def _get(message: hl7.Message, segment: str, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    try:
        return str(message.extract_field(segment, 1, field, rep, comp, sub)).strip()
    except (KeyError, IndexError):
        return ""


def _has(message: hl7.Message, segment: str) -> bool:
    try:
        message.segment(segment)
    except KeyError:
        return False
    return True


def _patient(message: hl7.Message) -> tuple[str, str, bool]:
    if not _has(message, "PID"):
        raise _ae("100", "Segment sequence error", "PID", "Segment PID (patient) absent.")
    pid = message.segment("PID")
    ids = pid[3] if len(pid) > 3 else []
    for rep in range(1, len(ids) + 1):
        oid = _get(message, "PID", 3, rep, 4, 2)
        if oid in _INS_OIDS:
            ins = _get(message, "PID", 3, rep, 1)
            if not ins.isalnum() or not 13 <= len(ins) <= 22:
                raise _ae("102", "Data type error", "PID^1^3", "INS du patient (PID-3) mal formé.")
            reliability = {_get(message, "PID", 32, r) for r in range(1, 6)}
            return ins, oid, "VALI" in reliability
    raise _ae(
        "101", "Required field missing", "PID^1^3",
        "INS du patient absent de PID-3 (identifiant avec l'OID de l'INS attendu) : le DMP ne peut pas être alimenté.",
    )  # fmt: skip


def _document_obx(message: hl7.Message) -> int:
    for index, obx in enumerate(message.segments("OBX") if _has(message, "OBX") else [], start=1):
        if str(obx[2]).strip() == "ED":
            return index
    raise _ae("101", "Required field missing", "OBX^1^5", "Aucun segment OBX de type ED ne porte le document.")


def _obx(message: hl7.Message, index: int, field: int, comp: int = 1) -> str:
    try:
        return str(message.extract_field("OBX", index, field, 1, comp, 1)).strip()
    except (KeyError, IndexError):
        return ""


def _meta_flags(message: hl7.Message) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for index, _obx_segment in enumerate(message.segments("OBX"), start=1):
        if _obx(message, index, 3, 3) == "MetaDMPMSS":
            flags[_obx(message, index, 3, 1)] = _obx(message, index, 5, 1).upper() == "Y"
    return flags


def parse_feed_message(raw: bytes) -> FeedRequest:
    """Check an ORU/MDM message against the IG's rules and map it (Hl7Problem: the ACK to answer)."""
    try:
        message = hl7.parse(decode(raw))
    except (hl7.ParseException, IndexError, KeyError, ValueError) as exc:
        if isinstance(exc, Hl7Problem):
            raise
        raise _ae(
            "100", "Segment sequence error", "MSH", "Message HL7 illisible (segment MSH attendu en tête)."
        ) from None
    header = read_header(message)
    rule = _EVENTS.get((header.message_type, header.event))
    if rule is None:
        code = "200" if header.message_type not in ("ORU", "MDM") else "201"
        raise _ae(code, "Unsupported message type", "MSH^1^9", "Seuls ORU^R01 et MDM^T02/T10/T04 sont acceptés.")
    version, event_status = rule
    if header.version != version:
        raise _ae(
            "203", "Unsupported version id", "MSH^1^12", f"Version HL7 attendue : {version} pour {header.message_type}."
        )
    ins, ins_oid, qualified = _patient(message)
    index = _document_obx(message)
    status = _obx(message, index, 11)
    kind = _STATUS_KIND.get(status)
    if kind is None:
        raise _ae("103", "Table value not found", f"OBX^{index}^11", "OBX-11 doit valoir F, C ou D.")
    if event_status is not None and status != event_status:
        raise _ae(
            "207",
            "Application error",
            f"OBX^{index}^11",
            "OBX-11 ne correspond pas à l'évènement MDM (T02=F, T10=C, T04=D).",
        )
    if header.message_type == "ORU":
        orc = _get(message, "ORC", 1) if _has(message, "ORC") else ""
        if _ORC_STATUS.get(orc) != status:
            raise _ae("207", "Application error", "ORC^1^1", "ORC-1 (NW, RO, CA) ne correspond pas à OBX-11 (F, C, D).")
    subtype, encoding = _obx(message, index, 5, 3).upper(), _obx(message, index, 5, 4).lower()
    if subtype not in _MEDIA or encoding != "base64":
        raise _ae(
            "102",
            "Data type error",
            f"OBX^{index}^5",
            "Le document doit être en Base64 (OBX-5.4), de sous-type XML ou PDF (OBX-5.3).",
        )
    try:
        document = base64.b64decode(_obx(message, index, 5, 5).replace(" ", ""), validate=True)
    except (binascii.Error, ValueError):
        document = b""
    if not document:
        raise _ae("102", "Data type error", f"OBX^{index}^5", "Le document (OBX-5.5) n'est pas un Base64 valide.")
    return _mapped(message, header, kind, index, ins, ins_oid, qualified, document, _MEDIA[subtype])


def _mapped(
    message: hl7.Message, header: Hl7Header, kind: JobKind, index: int, ins: str, ins_oid: str, qualified: bool,
    document: bytes, media: str,
) -> FeedRequest:  # fmt: skip
    flags = _meta_flags(message)
    type_code = _type_code(message, index)
    cda_id: str | None = None
    title = _obx(message, index, 3, 2) or type_code.display
    if media == "text/xml":
        try:
            info = read_cda_metadata(document)
        except (DmpInputError, ValueError):
            raise _ae("102", "Data type error", f"OBX^{index}^5", "Le document n'est pas un CDA R2 lisible.") from None
        cda_id, title = info.document_id, info.title or title
        type_code = info.type_code if info.type_code.code else type_code
    txa_id = _get(message, "TXA", 12) if _has(message, "TXA") else ""
    if header.message_type == "MDM" and not txa_id:
        raise _ae("101", "Required field missing", "TXA^1^12", "Identifiant unique du document (TXA-12) absent.")
    if cda_id is not None and txa_id and txa_id != cda_id:
        raise _ae("207", "Application error", "TXA^1^12", "TXA-12 ne correspond pas à l'identifiant du CDA (id@root).")
    unique_id = cda_id or txa_id
    if not unique_id:
        raise _ae("101", "Required field missing", f"OBX^{index}^5", "Identifiant unique du document introuvable.")
    replaces = _get(message, "TXA", 13) if _has(message, "TXA") else ""
    if kind is JobKind.REPLACE and not replaces:
        raise _ae(
            "101",
            "Required field missing",
            "TXA^1^13",
            "Remplacement : identifiant du document remplacé (TXA-13) absent.",
        )
    content_type = _CONTENT_TYPES.get(_get(message, "PV1", 2)) if _has(message, "PV1") else None
    spec = DocumentSpec(
        mime_type=media,
        title=title[:255],
        type_code=type_code,
        content_type=content_type,
        hidden_from_professionals=flags.get("MASQUE_PS", False),
        hidden_from_patient=flags.get("INVISIBLE_PATIENT", False),
        replaces=replaces or None,
        identity=None if media == "text/xml" else _identity(message),
    )
    return FeedRequest(
        header=header, kind=kind, unique_id=unique_id, ins=ins, ins_oid=ins_oid, ins_qualified=qualified,
        spec=spec, document=document, for_dmp=flags.get("DESTDMP", True),
    )  # fmt: skip


def _type_code(message: hl7.Message, index: int) -> Code:
    code, label, system = (_obx(message, index, 3, c) for c in (1, 2, 3))
    if not code and _has(message, "OBR"):
        code, label, system = (_get(message, "OBR", 4, 1, c) for c in (1, 2, 3))
    if not code:
        raise _ae("101", "Required field missing", f"OBX^{index}^3", "Type du document (OBX-3 / OBR-4) absent.")
    return Code(code, _CODE_SYSTEMS.get(system, system), label)


def _identity(message: hl7.Message) -> tuple[str, str, str, str]:
    """PID-5 names, PID-8 gender, PID-7 birth date: the recordTarget of a PDF wrapped into a CDA."""
    family, given = _get(message, "PID", 5, 1, 1), _get(message, "PID", 5, 1, 2)
    gender, birth = _get(message, "PID", 8) or "U", _get(message, "PID", 7)[:8]
    if not family or gender not in ("M", "F", "U") or not (birth.isdigit() and len(birth) == 8):
        raise _ae(
            "101", "Required field missing", "PID^1^5", "Un PDF demande les traits du patient (PID-5, PID-7, PID-8)."
        )
    return family, given, gender, birth
