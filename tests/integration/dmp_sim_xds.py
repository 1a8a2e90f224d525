"""Raw XDS requests built in tests from the official samples (TD2.1, TD3.1, TD3.2, TD3.3d) for the simulator."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from tests.integration.dmp_sim_support import (
    NS,
    Answer,
    DmpClient,
    Practitioner,
    cx,
    multipart,
    sample_envelope,
    sample_part,
    sign_vihf,
    with_vihf,
    xades_signature,
)

__all__ = [
    "Submitted",
    "cda_for",
    "confidentiality_of",
    "find",
    "retrieve",
    "set_status",
    "set_visibility",
    "submit",
    "td21_envelope",
    "unique_id_of",
]

TD21 = "TD2.1_Alimentation_request.xml"
CDA_CID = "WS_DMP_TD2.1-DocumentME2.xml"
XADES_CID = "WS_DMP_TD2.1-SignatureXades.xml"
SCHEME = {
    "ss_patient": "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
    "ss_unique": "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",
    "de_patient": "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "de_unique": "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
    "conf": "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
    "class": "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
}
RIM = NS["rim"]
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
ARCHIVED = "urn:asip:ci-sis:2010:StatusType:Archived"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
DELETED = "urn:asip:ci-sis:2010:StatusType:Deleted"


def new_oid(arc: str) -> str:
    """A fresh OID under the samples' LPS root."""
    return f"1.2.250.1.999.1.1.7898.{arc}.{uuid.uuid4().int % 10**15}"


def cda_for(unique_id: str, ins: str) -> bytes:
    """The sample CDA with its own id and patient (bytes as captured, BOM and all)."""
    data = sample_part(TD21, CDA_CID)
    return data.replace(b"1.2.250.1.999.1.1.7898.4.9956570902", unique_id.encode()).replace(
        b"207058575627097", ins.encode()
    )


def _ext(root: etree._Element, scheme: str) -> list[etree._Element]:
    return [e for e in root.iter(f"{{{RIM}}}ExternalIdentifier") if e.get("identificationScheme") == scheme]


def _classification(owner: str, scheme: str, code: str, coding: str) -> etree._Element:
    cls = etree.Element(
        f"{{{RIM}}}Classification",
        classificationScheme=scheme,
        classifiedObject=owner,
        id=f"cla-{uuid.uuid4().hex[:8]}",
        nodeRepresentation=code,
    )
    slot = etree.SubElement(cls, f"{{{RIM}}}Slot", name="codingScheme")
    etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = coding
    return cls


#: classificationScheme of a DocumentEntry author.
AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"


def td21_envelope(
    *, ins: str, ss_uid: str, doc_uid: str, sig_uid: str, author_id: str, extra_conf: tuple[str, ...] = (),
    replaces: str | None = None, extra_metadata: bool = False,
) -> etree._Element:  # fmt: skip
    """The official TD2.1 envelope (SOAP 1.2) with our patient, ids, author, visibility and RPLC."""
    env = sample_envelope(TD21)
    for e in _ext(env, SCHEME["ss_patient"]) + _ext(env, SCHEME["de_patient"]):
        e.set("value", cx(ins))
    _ext(env, SCHEME["ss_unique"])[0].set("value", ss_uid)
    for e in _ext(env, SCHEME["de_unique"]):
        e.set("value", doc_uid if e.get("registryObject") == "DocumentME2" else sig_uid)
    for slot in env.iter(f"{{{RIM}}}Slot"):
        value = slot.find(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
        if value is None:
            continue
        if slot.get("name") in {"authorPerson", "legalAuthenticator"}:
            value.text = f"{author_id}^MEDECIN^ALICE^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
        if slot.get("name") == "sourcePatientId" and "NH" in (value.text or ""):
            value.text = cx(ins)
    doc = next(e for e in env.iter(f"{{{RIM}}}ExtrinsicObject") if e.get("id") == "DocumentME2")
    anchor = next(
        c for c in doc.iterfind(f"{{{RIM}}}Classification") if c.get("classificationScheme") == SCHEME["conf"]
    )
    for code in extra_conf:
        anchor.addnext(_classification("DocumentME2", SCHEME["conf"], code, "1.2.250.1.213.1.1.4.13"))
    if extra_metadata:
        # What another LPS may register and the bridge's model does not interpret: a second author, a
        # referenceIdList, a slot of its own.
        author = next(c for c in doc.iterfind(f"{{{RIM}}}Classification") if c.get("classificationScheme") == AUTHOR)
        second = copy.deepcopy(author)
        second.set("id", "cla-second-author")
        for value in second.iterfind(f"{{{RIM}}}Slot[@name='authorPerson']/{{{RIM}}}ValueList/{{{RIM}}}Value"):
            value.text = "899900000099^SECOND^AUTEUR^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
        author.addnext(second)
        first_slot = doc.find(f"{{{RIM}}}Slot")
        assert first_slot is not None
        for name, values in (
            ("referenceIdList", ["1234^^^&1.2.250.1.999.1.1&ISO^urn:ihe:iti:xds:2013:order"]),
            ("urn:example:lps:extra", ["une valeur", "une autre"]),
        ):
            extra = etree.Element(f"{{{RIM}}}Slot", name=name)
            holder = etree.SubElement(extra, f"{{{RIM}}}ValueList")
            for text in values:
                etree.SubElement(holder, f"{{{RIM}}}Value").text = text
            first_slot.addprevious(extra)
    if replaces:
        objects = doc.getparent()
        assert objects is not None
        etree.SubElement(
            objects,
            f"{{{RIM}}}Association",
            associationType="urn:ihe:iti:2007:AssociationType:RPLC",
            id="assoc-rplc",
            sourceObject="DocumentME2",
            targetObject=replaces,
        )
    return env


@dataclass(frozen=True)
class Submitted:
    """What a test submitted."""

    answer: Answer
    doc_uid: str
    cda: bytes


async def submit(
    client: DmpClient, who: Practitioner, ins: str, *, extra_conf: tuple[str, ...] = (), replaces: str | None = None,
    tamper: bool = False, extra_metadata: bool = False, edit: Callable[[etree._Element], None] | None = None,
    xades_options: dict[str, Any] | None = None,
) -> Submitted:  # fmt: skip
    """TD2.1 of a fresh document for `ins`, signed (VIHF and XAdES) by `who`."""
    ss_uid, doc_uid, sig_uid = new_oid("1"), new_oid("3"), new_oid("4")
    env = td21_envelope(
        ins=ins, ss_uid=ss_uid, doc_uid=doc_uid, sig_uid=sig_uid, author_id=who.name_id, extra_conf=extra_conf,
        replaces=replaces, extra_metadata=extra_metadata,
    )  # fmt: skip
    if edit is not None:
        edit(env)
    cda = cda_for(doc_uid, ins)
    xades = xades_signature(who.certs.sign, ss_uid, [(doc_uid, cda)], **(xades_options or {}))
    if tamper:
        cda = cda.replace(b"Exemple", b"EXEMPLE")
    ctype, body = multipart(with_vihf(env, sign_vihf(who, ins)), [(CDA_CID, cda), (XADES_CID, xades)])
    return Submitted(await client.post("repository", body, ctype), doc_uid, cda)


async def find(
    client: DmpClient, who: Practitioner, ins: str, statuses: tuple[str, ...] = (APPROVED,), *, patient: bool = False
) -> list[etree._Element]:
    """TD3.1 FindDocuments (official sample request) -> the returned ExtrinsicObjects."""
    env = sample_envelope("TD3.1_Recherche-de-document_request.xml")
    for slot in env.iter(f"{{{RIM}}}Slot"):
        value = slot.find(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
        assert value is not None
        if slot.get("name") == "$XDSDocumentEntryPatientId":
            value.text = f"'{cx(ins)}'"
        elif slot.get("name") == "$XDSDocumentEntryStatus":
            value.text = "(" + ",".join(f"'{s}'" for s in statuses) + ")"
    answer = await client.post("registry", with_vihf(env, sign_vihf(who, ins)), patient=patient)
    assert answer.status == 200 and answer.registry_status() == "Success", answer.raw[:3000]
    return list(answer.envelope.iter(f"{{{RIM}}}ExtrinsicObject"))


async def retrieve(client: DmpClient, who: Practitioner, ins: str, unique_id: str, *, patient: bool = False) -> Answer:
    """TD3.2 with the official sample request."""
    env = sample_envelope("TD3.2_Consultation-dun-document_request.xml")
    node = env.find(f".//{{{NS['xds']}}}DocumentUniqueId")
    assert node is not None
    node.text = unique_id
    return await client.post("repository", with_vihf(env, sign_vihf(who, ins)), patient=patient)


def _update_envelope(ins: str) -> etree._Element:
    env = sample_envelope("TD3.3d_Archiver-un-document_request.xml")
    for e in _ext(env, SCHEME["ss_patient"]):
        e.set("value", cx(ins))
    _ext(env, SCHEME["ss_unique"])[0].set("value", new_oid("1"))
    return env


async def set_status(
    client: DmpClient, who: Practitioner, ins: str, entry_uuid: str, original: str, new: str
) -> Answer:
    """TD3.3c/d with the official TD3.3d sample: UpdateAvailabilityStatus original -> new."""
    env = _update_envelope(ins)
    assoc = env.find(f".//{{{RIM}}}Association")
    assert assoc is not None
    assoc.set("targetObject", entry_uuid)
    for slot in assoc.iterfind(f"{{{RIM}}}Slot"):
        value = slot.find(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
        assert value is not None
        value.text = original if slot.get("name") == "OriginalStatus" else new
    return await client.post("registry", with_vihf(env, sign_vihf(who, ins)))


async def set_visibility(
    client: DmpClient, who: Practitioner, ins: str, entry: etree._Element, *, add: tuple[str, ...] = (),
    remove: tuple[str, ...] = (), previous: str | None = None, drop_slots: tuple[str, ...] = (),
) -> Answer:  # fmt: skip
    """TD3.3a/b as the kit's template_masquage: new version of the registry entry with changed codes."""
    env = _update_envelope(ins)
    objects = env.find(f".//{{{RIM}}}RegistryObjectList")
    assert objects is not None
    for old in objects.findall(f"{{{RIM}}}Association"):
        objects.remove(old)
    version = entry.find(f"{{{RIM}}}VersionInfo")
    assert version is not None
    assoc = etree.SubElement(
        objects, f"{{{RIM}}}Association", associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
        id="association1", sourceObject="SubmissionSet01", targetObject="Document01",
    )  # fmt: skip
    for name, value in (
        ("SubmissionSetStatus", "Original"),
        ("PreviousVersion", previous or version.get("versionName")),
    ):
        slot = etree.SubElement(assoc, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    new = copy.deepcopy(entry)
    new.set("id", "Document01")
    for slot in new.findall(f"{{{RIM}}}Slot"):
        if slot.get("name") in drop_slots:
            new.remove(slot)
    for cls in new.findall(f"{{{RIM}}}Classification"):
        if cls.get("classificationScheme") == SCHEME["conf"] and cls.get("nodeRepresentation") in remove:
            new.remove(cls)
    anchor = next(
        c for c in new.iterfind(f"{{{RIM}}}Classification") if c.get("classificationScheme") == SCHEME["conf"]
    )
    for code in add:
        anchor.addnext(_classification("Document01", SCHEME["conf"], code, "1.2.250.1.213.1.1.4.13"))
    objects.append(new)
    return await client.post("registry", with_vihf(env, sign_vihf(who, ins)))


def unique_id_of(entry: etree._Element) -> str:
    """XDSDocumentEntry.uniqueId of a returned entry."""
    return str(next(e.get("value", "") for e in _ext(entry, SCHEME["de_unique"])))


def confidentiality_of(entry: etree._Element) -> set[str]:
    """Confidentiality codes of a returned entry."""
    return {
        c.get("nodeRepresentation", "")
        for c in entry.iterfind(f"{{{RIM}}}Classification")
        if c.get("classificationScheme") == SCHEME["conf"]
    }
