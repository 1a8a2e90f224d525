"""A submitted CDA's header against its XDS metadata: the DMP registers what the document says.

Compared: the document's `code` (typeCode) and the recordTarget INS (patientId). The id, dates, title and
authors are not compared: the official TD2.1 sample, which the DMP accepted, registers its CDA (id
…7898.4.9956570902, effectiveTime 2019-02-21, title « Exemple de Document CDA R2 non Structure ») as
uniqueId …7898.3.1622814651504 with creationTime 2010-03-19 and title « Document 1 », and the simulator
accepts the official samples; the bridge's client makes them agree (`bridge.dmp.cda_header`).
A disagreement is XDSRegistryMetadataError naming the field. Independent of the client's CDA code.
"""

from __future__ import annotations

from bridge.sim.dmp.errors import XdsError, XdsErrorCode
from bridge.sim.dmp.metadata import DocEntry
from bridge.xmlsafe import XmlInputError, parse_xml

__all__ = ["check_cda_header"]

_HL7 = "urn:hl7-org:v3"
_INS_ROOTS = frozenset({"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9", "1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"})


def _h(path: str) -> str:
    return "/".join(f"{{{_HL7}}}{part}" for part in path.split("/"))


def _refuse(what: str, location: str) -> XdsError:
    return XdsError(XdsErrorCode.REGISTRY_METADATA, f"Métadonnées contraires à l'en-tête du CDA : {what}", location)


def check_cda_header(entry: DocEntry, content: bytes) -> None:
    """Refuse metadata that contradicts the header of the CDA it describes (a CDA R2 only)."""
    location = entry.symbolic_id
    try:
        root = parse_xml(content, large_text=True)
    except XmlInputError:
        raise _refuse("document illisible", location) from None
    if root.tag != f"{{{_HL7}}}ClinicalDocument":
        return  # not a CDA: nothing to compare (the DMP takes CDA R2; other checks refuse the rest)
    code = root.find(_h("code"))
    if code is None or code.get("code") != entry.type_code:
        raise _refuse("code du document ≠ typeCode", location)
    ins = [i.get("extension") for i in root.iterfind(_h("recordTarget/patientRole/id")) if i.get("root") in _INS_ROOTS]
    if ins and ins[0] != entry.patient.value:
        raise _refuse("INS du recordTarget ≠ patientId", location)
