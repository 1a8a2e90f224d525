"""ITI-57 new versions (TD3.3a/b): the new ExtrinsicObject must be the current one with only its visibility changed.

The kit's `template_masquage.xml` sends the whole current entry back (every slot, hash, size,
repositoryUniqueId, status, VersionInfo, every author, extra slots), changing only a confidentiality code;
the simulator refuses a new version that omits or alters anything else (XDSMetadataUpdateError) instead of
completing it from what it stored. Ids the registry assigned (Classification and ExternalIdentifier ids,
classifiedObject) are not compared: a new version gets new ones.

The visibility changes the DMP offers (PDT-INF-526): add MASQUE_PS (TD3.3a mask), remove MASQUE_PS
(TD3.3a unmask), remove INVISIBLE_PATIENT (TD3.3b make visible); hiding from the patient exists only at
submission.
"""

from __future__ import annotations

from collections import Counter

from lxml import etree

from bridge.dmp import rights
from bridge.sim.dmp.access import Caller
from bridge.sim.dmp.constants import NS, ConfidentialityCode, XdsScheme
from bridge.sim.dmp.errors import XdsError, XdsErrorCode
from bridge.sim.dmp.rights_check import enforce, own_document
from bridge.sim.dmp.store import EntryRow
from bridge.xmlsafe import parse_xml

__all__ = ["check_new_version"]

_RIM = NS["rim"]
_OP = rights.Operation
_MASK = ConfidentialityCode.MASQUE_PS.value
_HIDE = ConfidentialityCode.INVISIBLE_PATIENT.value
Classified = tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...], str]


def _slots(element: etree._Element) -> dict[str, tuple[str, ...]]:
    return {
        s.get("name", ""): tuple((v.text or "").strip() for v in s.iterfind(f"{{{_RIM}}}ValueList/{{{_RIM}}}Value"))
        for s in element.iterfind(f"{{{_RIM}}}Slot")
    }


def _text(element: etree._Element, local: str) -> str | None:
    found = element.find(f"{{{_RIM}}}{local}/{{{_RIM}}}LocalizedString")
    return found.get("value") if found is not None else None


def _classifications(element: etree._Element) -> Counter[Classified]:
    out: Counter[Classified] = Counter()
    for cls in element.iterfind(f"{{{_RIM}}}Classification"):
        slots = tuple(sorted(_slots(cls).items()))
        scheme, node = cls.get("classificationScheme", ""), cls.get("nodeRepresentation", "")
        out[(scheme, node, slots, _text(cls, "Name") or "")] += 1
    return out


def _external_ids(element: etree._Element) -> Counter[tuple[str, str]]:
    found = element.iterfind(f"{{{_RIM}}}ExternalIdentifier")
    return Counter((e.get("identificationScheme", ""), e.get("value", "")) for e in found)


def _without_confidentiality(classified: Counter[Classified]) -> Counter[Classified]:
    return Counter({k: n for k, n in classified.items() if k[0] != XdsScheme.DE_CONFIDENTIALITY.value})


def _codes(element: etree._Element) -> set[str]:
    return {
        c.get("nodeRepresentation", "")
        for c in element.iterfind(f"{{{_RIM}}}Classification")
        if c.get("classificationScheme") == XdsScheme.DE_CONFIDENTIALITY.value
    }


def check_new_version(caller: Caller, new: etree._Element, current: EntryRow, previous: str) -> None:
    """Refuse a new version that is not the current one with only a visibility change the DMP offers."""
    where = new.get("id", "")
    stored = parse_xml(current.metadata)

    def refuse(what: str) -> XdsError:
        return XdsError(XdsErrorCode.METADATA_UPDATE, f"Nouvelle version incomplète ou modifiée : {what}", where)

    for attribute in ("mimeType", "objectType", "lid"):
        if new.get(attribute) != stored.get(attribute):
            raise refuse(f"attribut {attribute}")
    if new.get("status") != current.status.value:
        raise refuse("status absent ou différent du statut courant")
    version = new.find(f"{{{_RIM}}}VersionInfo")
    if version is None or version.get("versionName") != previous:
        raise refuse("VersionInfo absent ou différent de la version courante")
    ours, theirs = _slots(new), _slots(stored)
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) != theirs.get(name):
            raise refuse(f"Slot {name}")
    for local in ("Name", "Description"):
        if _text(new, local) != _text(stored, local):
            raise refuse(local)
    if _without_confidentiality(_classifications(new)) != _without_confidentiality(_classifications(stored)):
        raise refuse("Classification (auteur, classCode, typeCode, formatCode, secteur, cadre, eventCode)")
    if _external_ids(new) != _external_ids(stored):
        raise refuse("ExternalIdentifier (patientId, uniqueId)")
    before, after = _codes(stored), _codes(new)
    added, removed = after - before, before - after
    if _HIDE in added:
        raise XdsError(
            XdsErrorCode.METADATA_UPDATE,
            "Un document ne peut être rendu invisible au patient qu'à son dépôt (TD3.3b le rend seulement visible)",
            where,
        )
    if (added | removed) - {_MASK, _HIDE}:
        raise XdsError(XdsErrorCode.METADATA_UPDATE, "Seule la visibilité (MASQUE_PS, INVISIBLE_PATIENT) change", where)
    own = own_document(caller, current)
    if _MASK in added:
        enforce(caller, _OP.TD3_3A_MASK, own_document=own)
    if _MASK in removed:
        enforce(caller, _OP.TD3_3A_UNMASK, own_document=own)
    if _HIDE in removed:
        enforce(caller, _OP.TD3_3B_MAKE_VISIBLE, own_document=own)
