"""HL7 v2 messages of the DPI link without I/O: decoding, the header, the ACK and the feeding acknowledgement.

Source: ANS, « Transmission de documents CDA-R2 en HL7v2 » (CI-SIS), implementation guide
`ansforge/IG-hl7v2-volet-transmission-document-cda-r2`, input/pagecontent/profils-messages.md:
- the ACK (« Le message d'acquittement du message HL7v2 »): MSH with sender and receiver swapped,
  MSH-9 ACK^<event>^ACK, MSH-12 2.5 for ORU and 2.6 for MDM; MSA-1 AA (accepted and taken in charge),
  AE (errors in the message) or AR (refused for a circumstance, may be sent again later), MSA-2 the
  message's MSH-10; ERR-2 location, ERR-3 HL7 table 0357 code, ERR-4 severity (table 0516);
- the feeding acknowledgement (« Accusé de réception DMP »): ZAM^Z01^ZAM_Z01, version 2.6,
  MSH-21 2.1^CISIS_CDA_HL7_V2, OBX-3 ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM,
  OBX-4 the original message's MSH-10, OBX-5 Y or N ^^expandedYes-NoIndicator, OBX-11 F; on failure
  ERR-3 207^Application error^messageErrorCondition and ERR-5 the DMP's code ^label^DMP_ERROR_CODE.

We add ERR-8 (user message): the French reason a person at the DPI can act on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import asdict, dataclass

import hl7

__all__ = [
    "Hl7Header",
    "Hl7Problem",
    "build_ack",
    "build_feeding_ack",
    "decode",
    "parse_ack",
    "read_header",
]

_CHARSETS = {"UNICODE UTF-8": "utf-8", "8859/15": "iso-8859-15", "8859/1": "iso-8859-1", "ASCII": "ascii", "": "utf-8"}
_UNSAFE = re.compile(r"[|^~\\&\r\n]")
PROFILE = "2.1^CISIS_CDA_HL7_V2"


@dataclass(frozen=True)
class Hl7Problem(Exception):
    """Why a message is not accepted: MSA-1 (AE/AR), HL7 table 0357 code, location, French reason."""

    ack_code: str
    error_code: str
    error_text: str
    location: str
    reason_fr: str

    def __str__(self) -> str:
        return f"{self.ack_code} {self.error_code} {self.location}"


@dataclass(frozen=True)
class Hl7Header:
    """What the ACK and the feeding acknowledgement need from a message's MSH."""

    control_id: str
    message_type: str
    event: str
    version: str
    processing_id: str
    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str

    def to_json(self) -> str:
        """Stored with the job (`reply_to`) so that the feeding acknowledgement survives restarts."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Hl7Header:
        """Read back."""
        return cls(**json.loads(text))


def _safe(text: str, limit: int = 200) -> str:
    return _UNSAFE.sub(" ", text)[:limit]


def decode(raw: bytes) -> str:
    """The message text, decoded with the charset MSH-18 names (UTF-8 when absent); segments end with CR."""
    head = raw.split(b"\r", 1)[0].decode("latin-1")
    fields = head.split("|")
    charset = fields[17].strip() if len(fields) > 17 else ""
    codec = _CHARSETS.get(charset.upper())
    if codec is None:
        raise Hl7Problem(
            "AE",
            "103",
            "Table value not found",
            "MSH^1^18",
            f"Jeu de caractères non pris en charge : {_safe(charset, 40)}.",
        )
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        raise Hl7Problem(
            "AE",
            "102",
            "Data type error",
            "MSH^1^18",
            "Le message n'est pas encodé dans le jeu de caractères annoncé (MSH-18).",
        ) from None
    return text.replace("\r\n", "\r").replace("\n", "\r")


def read_header(message: hl7.Message) -> Hl7Header:
    """The MSH fields (MSH-10 missing: AE 101)."""

    def field(n: int, comp: int = 1) -> str:
        try:
            return str(message.extract_field("MSH", 1, n, 1, comp)).strip()
        except (KeyError, IndexError):
            return ""

    header = Hl7Header(
        control_id=field(10),
        message_type=field(9, 1),
        event=field(9, 2),
        version=field(12),
        processing_id=field(11) or "P",
        sending_app=field(3),
        sending_facility=field(4),
        receiving_app=field(5),
        receiving_facility=field(6),
    )
    if not header.control_id:
        raise Hl7Problem("AE", "101", "Required field missing", "MSH^1^10", "Identifiant du message (MSH-10) absent.")
    return header


def _timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S")


def _msh(
    header: Hl7Header, message_type: str, control_id: str, version: str, now: dt.datetime, profile: str = ""
) -> str:
    fields = [
        "MSH", "^~\\&", _safe(header.receiving_app) or "DMP-BRIDGE", _safe(header.receiving_facility),
        _safe(header.sending_app), _safe(header.sending_facility), _timestamp(now), "", message_type, control_id,
        _safe(header.processing_id, 3) or "P", version, "", "", "", "", "FRA", "UNICODE UTF-8",
    ]  # fmt: skip
    if profile:
        fields += ["", "", profile]
    return "|".join(fields)


def build_ack(
    header: Hl7Header | None, code: str, control_id: str, now: dt.datetime, problem: Hl7Problem | None = None
) -> bytes:
    """The ACK of a message: AA, or AE/AR with an ERR segment (header None: the MSH was unreadable)."""
    known = header or Hl7Header("", "", "", "2.5", "P", "", "", "DMP-BRIDGE", "")
    version = "2.6" if known.message_type == "MDM" else "2.5"
    event = _safe(known.event, 3)
    segments = [
        _msh(known, f"ACK^{event}^ACK" if event else "ACK", control_id, version, now),
        f"MSA|{code}|{_safe(known.control_id, 199)}",
    ]
    if problem is not None:
        segments.append(
            f"ERR||{problem.location}|{problem.error_code}^{_safe(problem.error_text, 80)}^messageErrorCondition|E||||"
            f"{_safe(problem.reason_fr, 500)}"
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


def build_feeding_ack(
    header: Hl7Header,
    *,
    ok: bool,
    control_id: str,
    now: dt.datetime,
    dmp_code: str | None = None,
    reason_fr: str | None = None,
) -> bytes:
    """ZAM^Z01^ZAM_Z01: the DMP's outcome for the document of message `header` (see the module docstring)."""
    segments = [
        _msh(header, "ZAM^Z01^ZAM_Z01", control_id, "2.6", now, PROFILE),
        f"OBX|1|CWE|ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM|{_safe(header.control_id, 199)}|"
        f"{'Y' if ok else 'N'}^^expandedYes-NoIndicator||||||F",
    ]
    if not ok:
        code = _safe(dmp_code or "ERREUR", 60)
        segments.append(
            f"ERR|||207^Application error^messageErrorCondition|E|{code}^{_safe(reason_fr or code, 200)}"
            f"^DMP_ERROR_CODE|||{_safe(reason_fr or '', 500)}"
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


def parse_ack(raw: bytes) -> tuple[str, str]:
    """(MSA-1, MSA-2) of an acknowledgement received from the DPI (ValueError when it has no MSA)."""
    try:
        message = hl7.parse(decode(raw))
        return str(message.extract_field("MSA", 1, 1)).strip(), str(message.extract_field("MSA", 1, 2)).strip()
    except (KeyError, IndexError, Hl7Problem, hl7.ParseException) as exc:
        raise ValueError("not an HL7 acknowledgement") from exc
