"""INSi SOAP 1.2 messages, built and parsed without I/O: the two searches, their RESULTAT, the faults.

Layout as the official sample `WS_INS2_rechercherInsAvecTraitsIdentite_request.xml`: header blocks in the
order ContexteBAM (Version 01_02, empty COUVERTURE), wsa:MessageID, wsa:Action, ContexteLPS (Version
01_00, LPS = IDAM R="4", Version, Instance, Nom), wsse:Security (the signed assertion, `bridge.ins.assertion`);
body RECSANSVITALE (traits) or RECVITALE (Vitale card). Operations and actions from the CNAM WSDL
DESIR_ICIR_EXP 1.5.0 (`urn:ServiceIdentiteCertifiee:1.0.0:<operation>`); the fault shape (SOAP 1.2 Fault,
Subcode `siram_NNN`, Detail `siram:Erreur code= severite=`) from `schema_faultSOAP_V01_01.xsd` and the
fault captured in `padoa/tlsi-ins` (`siram_100-desir_500-fake-idam.fixtures.ts`).

Clock, message ids and context ids are arguments, so output is comparable with the sample.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from bridge.dmp.codes import InsOid
from bridge.dmp.failures import DmpInputError
from bridge.dmp.ns import SOAP12, WSA, WSSE, q
from bridge.dmp.vihf import saml_instant
from bridge.ins.model import CrCode, InsIdentity, InsiOutcome, Traits
from bridge.xmlsafe import parse_xml

__all__ = [
    "CTXBAM",
    "CTXLPS",
    "RECSANS",
    "RECVIT",
    "RESULTAT",
    "SIRAM",
    "InsiFault",
    "LpsContext",
    "Operation",
    "VitaleQuery",
    "build_request",
    "parse_answer",
    "traits_body",
    "vitale_body",
]

CTXBAM = "urn:siram:bam:ctxbam"
CTXLPS = "urn:siram:lps:ctxlps"
RECSANS = "http://www.cnamts.fr/INSiRecSans"
RECVIT = "http://www.cnamts.fr/INSiRecVit"
RESULTAT = "http://www.cnamts.fr/INSiResultat"
SIRAM = "urn:siram"
#: An INSi answer is a few kilobytes; anything far larger is not one.
MAX_ANSWER = 256 * 1024


class Operation(enum.Enum):
    """The INSi operations (WSDL DESIR_ICIR_EXP 1.5.0, port ICIRService)."""

    TRAITS = "rechercherInsAvecTraitsIdentite"
    VITALE = "rechercherInsAvecCarteVitale"

    @property
    def action(self) -> str:
        """The wsa:Action (and SOAP action) of the request."""
        return f"urn:ServiceIdentiteCertifiee:1.0.0:{self.value}"


@dataclass(frozen=True, kw_only=True)
class LpsContext:
    """Who calls: ContexteBAM/ContexteLPS `Emetteur`, the CNAM authorisation number (IDAM), the software."""

    #: The caller's identifier (the PS's or the establishment's number, 11-12 characters in the sample).
    emitter: str
    #: Numéro d'autorisation of the software (IDAM, R="4"), given by the CNAM.
    idam: str
    version: str
    #: A stable id of this installation (UUID).
    instance: str
    name: str


@dataclass(frozen=True, kw_only=True)
class VitaleQuery:
    """RECVITALE: the beneficiary's own NIR as read from the card, with the card's ouvrant-droit NIR."""

    nir: str = field(repr=False)
    key: str = field(repr=False)
    holder_nir: str = field(repr=False)
    holder_key: str = field(repr=False)
    birth_name: str = field(repr=False)
    #: YYYY-MM-DD, lunar dates kept.
    birth_date: str = field(repr=False)
    rank: int | None = None


@dataclass(frozen=True, kw_only=True)
class InsiFault:
    """A SOAP fault of the INSi: SOAP code, siram subcode, reason, and the siram:Erreur detail."""

    code: str
    subcode: str | None = None
    reason: str = ""
    error_code: str | None = None
    severity: str | None = None


def _local(name: str | None) -> str | None:
    return None if name is None else name.strip().split(":")[-1]


def _text(parent: Any, tag: str, text: str) -> Any:
    el = etree.SubElement(parent, tag)
    el.text = text
    return el


def traits_body(traits: Traits, first_names: str) -> Any:
    """RECSANSVITALE for one attempt (`first_names`: one first name, or all of them)."""
    body = etree.Element(q(RECSANS, "RECSANSVITALE"), nsmap={"ins": RECSANS})
    _text(body, q(RECSANS, "NomNaissance"), traits.birth_name)
    _text(body, q(RECSANS, "Prenom"), first_names)
    _text(body, q(RECSANS, "Sexe"), traits.sex)
    _text(body, q(RECSANS, "DateNaissance"), traits.birth_date)
    if traits.birth_place:
        _text(body, q(RECSANS, "LieuNaissance"), traits.birth_place)
    return body


def vitale_body(query: VitaleQuery) -> Any:
    """RECVITALE (schema order: MatriculeIndividu, MatriculeOD, NomNaissance, DateNaissance, RangNaissance)."""
    body = etree.Element(q(RECVIT, "RECVITALE"), nsmap={"ins": RECVIT})
    for tag, number, key in (
        ("MatriculeIndividu", query.nir, query.key),
        ("MatriculeOD", query.holder_nir, query.holder_key),
    ):
        matricule = etree.SubElement(body, q(RECVIT, tag))
        _text(matricule, q(RECVIT, "NumIdentifiant"), number)
        _text(matricule, q(RECVIT, "Cle"), key)
    _text(body, q(RECVIT, "NomNaissance"), query.birth_name)
    _text(body, q(RECVIT, "DateNaissance"), query.birth_date)
    if query.rank is not None:
        _text(body, q(RECVIT, "RangNaissance"), str(query.rank))
    return body


def build_request(
    operation: Operation,
    body: Any,
    *,
    lps: LpsContext,
    now: dt.datetime,
    message_id: str,
    bam_id: str,
    lps_id: str,
    assertion: Any | None = None,
) -> bytes:
    """The whole SOAP 1.2 envelope as UTF-8 bytes (no XML declaration, like the sample)."""
    when = saml_instant(now)
    env = etree.Element(
        q(SOAP12, "Envelope"),
        nsmap={"soap": SOAP12, "urn": CTXBAM, "add": WSA, "urn1": CTXLPS, "oas": WSSE},
    )
    header = etree.SubElement(env, q(SOAP12, "Header"))
    bam = etree.SubElement(header, q(CTXBAM, "ContexteBAM"), Version="01_02")
    _text(bam, q(CTXBAM, "Id"), bam_id)
    _text(bam, q(CTXBAM, "Temps"), when)
    _text(bam, q(CTXBAM, "Emetteur"), lps.emitter)
    etree.SubElement(bam, q(CTXBAM, "COUVERTURE"))
    _text(header, q(WSA, "MessageID"), message_id)
    _text(header, q(WSA, "Action"), operation.action)
    ctx = etree.SubElement(header, q(CTXLPS, "ContexteLPS"), Version="01_00")
    _text(ctx, q(CTXLPS, "Id"), lps_id)
    _text(ctx, q(CTXLPS, "Temps"), when)
    _text(ctx, q(CTXLPS, "Emetteur"), lps.emitter)
    software = etree.SubElement(ctx, q(CTXLPS, "LPS"))
    _text(software, q(CTXLPS, "IDAM"), lps.idam).set("R", "4")
    _text(software, q(CTXLPS, "Version"), lps.version)
    _text(software, q(CTXLPS, "Instance"), lps.instance)
    _text(software, q(CTXLPS, "Nom"), lps.name)
    if assertion is not None:
        etree.SubElement(header, q(WSSE, "Security")).append(assertion)
    etree.SubElement(env, q(SOAP12, "Body")).append(body)
    return bytes(etree.tostring(env, encoding="utf-8"))


def _child_text(parent: Any, ns: str, name: str) -> str | None:
    el = parent.find(q(ns, name))
    if el is None or el.text is None:
        return None
    return str(el.text).strip()


def _identity(individu: Any) -> InsIdentity:
    active = individu.find(q(RESULTAT, "INSACTIF"))
    tiq = individu.find(q(RESULTAT, "TIQ"))
    if active is None or tiq is None:
        raise DmpInputError("INSi RESULTAT 00 without INSACTIF or TIQ")
    ident = active.find(q(RESULTAT, "IdIndividu"))
    number = _child_text(ident, RESULTAT, "NumIdentifiant") if ident is not None else None
    key = _child_text(ident, RESULTAT, "Cle") if ident is not None else None
    oid = _child_text(active, RESULTAT, "OID")
    if not number or not key or not oid or len(number) != 13 or len(key) != 2:
        raise DmpInputError("INSi INSACTIF incomplete")
    history = []
    for old in individu.iterfind(q(RESULTAT, "INSHISTO")):
        old_id = old.find(q(RESULTAT, "IdIndividu"))
        old_number = _child_text(old_id, RESULTAT, "NumIdentifiant") if old_id is not None else None
        history.append(
            ((old_number or "") + (_child_text(old_id, RESULTAT, "Cle") or ""), _child_text(old, RESULTAT, "OID") or "")
        )
    # The sample's TIQ has Prenom; padoa's captured answers have ListePrenom: take the list when present.
    first_names = _child_text(tiq, RESULTAT, "ListePrenom") or _child_text(tiq, RESULTAT, "Prenom") or ""
    return InsIdentity(
        number=number,
        key=key,
        oid=InsOid(oid),
        birth_name=_child_text(tiq, RESULTAT, "NomNaissance") or "",
        first_names=first_names,
        sex=_child_text(tiq, RESULTAT, "Sexe") or "",
        birth_date=_child_text(tiq, RESULTAT, "DateNaissance") or "",
        birth_place=_child_text(tiq, RESULTAT, "LieuNaissance"),
        history=tuple(history),
    )


def _fault(fault: Any) -> InsiFault:
    code = _local(fault.findtext(f"{q(SOAP12, 'Code')}/{q(SOAP12, 'Value')}")) or "Receiver"
    subcode = _local(fault.findtext(f"{q(SOAP12, 'Code')}/{q(SOAP12, 'Subcode')}/{q(SOAP12, 'Value')}"))
    reason = (fault.findtext(f"{q(SOAP12, 'Reason')}/{q(SOAP12, 'Text')}") or "").strip()
    erreur = fault.find(f"{q(SOAP12, 'Detail')}/{q(SIRAM, 'Erreur')}")
    return InsiFault(
        code=code,
        subcode=subcode,
        reason=reason[:500],
        error_code=erreur.get("code") if erreur is not None else None,
        severity=_local(erreur.get("severite")) if erreur is not None else None,
    )


def parse_answer(data: bytes) -> InsiOutcome | InsiFault:
    """Read an INSi answer: a RESULTAT (codes 00/01/02) or a SOAP fault; INVALID_INPUT for anything else."""
    root = parse_xml(data, max_bytes=MAX_ANSWER)
    if root.tag != q(SOAP12, "Envelope"):
        raise DmpInputError("INSi answer is not a SOAP 1.2 envelope")
    body = root.find(q(SOAP12, "Body"))
    if body is None or len(body) != 1:
        raise DmpInputError("INSi answer has no single body element")
    child = body[0]
    if child.tag == q(SOAP12, "Fault"):
        return _fault(child)
    if child.tag != q(RESULTAT, "RESULTAT"):
        raise DmpInputError("INSi answer is neither RESULTAT nor Fault")
    cr = child.find(q(RESULTAT, "CR"))
    code_text = _child_text(cr, RESULTAT, "CodeCR") if cr is not None else None
    try:
        code = CrCode(code_text)
    except ValueError:
        raise DmpInputError(f"INSi CodeCR {str(code_text)[:8]!r} unknown") from None
    label = (_child_text(cr, RESULTAT, "LibelleCR") or "") if cr is not None else ""
    individu = child.find(q(RESULTAT, "INDIVIDU"))
    if code is CrCode.FOUND:
        if individu is None:
            raise DmpInputError("INSi RESULTAT 00 without INDIVIDU")
        return InsiOutcome(code, label, _identity(individu))
    return InsiOutcome(code, label)
