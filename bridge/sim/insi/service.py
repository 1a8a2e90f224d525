"""The INSi simulator's behaviour: who may call, what the searches find, and the answers and faults.

Authentication, as `padoa/tlsi-ins` shows the two ways in: a CPS (TLS with the card's authentication
certificate, plus a SAML assertion signed by the card, NameID NameQualifier="CPS" = the holder's
identifier) or an establishment certificate whose subject CN is INSI-AUTO (unattended) or INSI-MANU
(a person at the keyboard) with no assertion. Anything else is refused with a siram_100 fault.
The software's authorisation number (IDAM) must be one the simulator knows, else siram_100/desir_550
"Numéro d'autorisation du logiciel inconnu" (the only fault pair a public source shows). The simulator's
own refusals carry codes `SIM_*` in siram:Erreur so they cannot be mistaken for the real service's.

Answers: RESULTAT with CR 00 (one identity: INSACTIF, INSHISTO, TIQ with ListePrenom), 01 or 02,
namespaces as the official sample answer; every answer validates against `INSi_RESULTAT_INS.xsd`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from bridge.sim.dmp.trust import TrustError, TrustStore, require_signature_usage
from bridge.sim.dmp.xmldsig import SignatureError, signer_certificate, verify
from bridge.sim.insi.identities import IDENTITIES, SimIdentity, match
from bridge.sim.insi.requests import NS, InsiRequest, RequestError
from bridge.xmlsafe import parse_xml

__all__ = ["ESTABLISHMENT_CNS", "InsiFaultReply", "InsiPolicy", "answer", "authenticate", "build_fault"]

#: Subject CNs of the establishment certificates the INSi accepts without a card.
ESTABLISHMENT_CNS = frozenset({"INSI-AUTO", "INSI-MANU"})
_DS = "http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class InsiFaultReply(Exception):
    """A fault to answer: SOAP code (Sender/Receiver), siram subcode, Erreur code, French reason."""

    code: str
    subcode: str
    error_code: str
    reason: str
    status: int = 500


@dataclass(frozen=True)
class InsiPolicy:
    """What the simulator accepts and knows."""

    #: Known software authorisation numbers (ContexteLPS/LPS/IDAM).
    idams: frozenset[str] = frozenset({"DMP-BRIDGE-TEST-IDAM"})
    identities: tuple[SimIdentity, ...] = IDENTITIES
    #: Answer every request with a Receiver fault (the service is down behind its front end).
    unavailable: bool = False
    max_assertion_age: dt.timedelta = field(default=dt.timedelta(hours=1))


def _refuse(error_code: str, reason: str) -> InsiFaultReply:
    return InsiFaultReply("Sender", "siram_100", error_code, reason)


def _cn(cert: x509.Certificate) -> str:
    found = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else ""


def authenticate(
    request: InsiRequest, peer: x509.Certificate | None, trust: TrustStore, policy: InsiPolicy, now: dt.datetime
) -> str:
    """ "cps" or the establishment CN; InsiFaultReply when the caller is not who the service accepts."""
    if peer is None:
        raise _refuse("SIM_AUTH", "Certificat client absent")
    if request.idam not in policy.idams:
        raise InsiFaultReply(
            "Sender", "siram_100", "desir_550", "L'accès par ce progiciel au service n'est pas autorisé."
        )
    if request.assertion is None:
        if _cn(peer) in ESTABLISHMENT_CNS:
            return _cn(peer)
        raise _refuse("SIM_AUTH", "Assertion absente et certificat autre que INSI-AUTO ou INSI-MANU")
    standalone = parse_xml(etree.tostring(request.assertion, with_tail=False))
    signatures = standalone.findall(f"{{{_DS}}}Signature")
    if len(signatures) != 1:
        raise _refuse("SIM_SIGNATURE", "Assertion : une signature attendue")
    try:
        cert = signer_certificate(signatures[0])
        trust.verify(cert, at=now)
        require_signature_usage(cert)
        references = verify(signatures[0], standalone, cert)
    except (SignatureError, TrustError) as exc:
        raise _refuse("SIM_SIGNATURE", f"Assertion : signature invalide ({exc})"[:200]) from None
    if len(references) != 1 or references[0].element is not standalone:
        raise _refuse("SIM_SIGNATURE", "La signature ne couvre pas l'assertion")
    if cert.subject != peer.subject:
        raise _refuse("SIM_AUTH", "Le porteur du certificat TLS n'est pas le signataire de l'assertion")
    name_id = standalone.find("saml:Subject/saml:NameID", NS)
    if name_id is None or name_id.get("NameQualifier") != "CPS" or (name_id.text or "").strip() != _cn(cert):
        raise _refuse("SIM_AUTH", "NameID (NameQualifier CPS) différent de l'identifiant du porteur")
    issued = standalone.get("IssueInstant", "")
    try:
        when = dt.datetime.fromisoformat(issued.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse("SIM_AUTH", "IssueInstant illisible") from None
    if not (now - policy.max_assertion_age <= when <= now + dt.timedelta(minutes=5)):
        raise _refuse("SIM_AUTH", "Assertion périmée")
    return "cps"


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS['resultat']}}}{name}")
    if text is not None:
        el.text = text
    return el


def _resultat(code: str, label: str, person: SimIdentity | None) -> etree._Element:
    root = etree.Element(
        f"{{{NS['resultat']}}}RESULTAT",
        nsmap={"ns2": NS["resultat"], "ns3": NS["recvit"], None: NS["recsans"]},
    )
    cr = _el(root, "CR")
    _el(cr, "CodeCR", code)
    _el(cr, "LibelleCR", label)
    if person is not None:
        individu = _el(root, "INDIVIDU")
        for tag, number, key, oid in [("INSACTIF", person.number, person.key, person.oid)] + [
            ("INSHISTO", n, k, o) for n, k, o in person.history
        ]:
            ins = _el(individu, tag)
            ident = _el(ins, "IdIndividu")
            _el(ident, "NumIdentifiant", number)
            _el(ident, "Cle", key)
            _el(ins, "OID", oid)
        tiq = _el(individu, "TIQ")
        _el(tiq, "NomNaissance", person.birth_name)
        _el(tiq, "Prenom", person.first_names.split(" ")[0])
        _el(tiq, "ListePrenom", person.first_names)
        _el(tiq, "Sexe", person.sex)
        _el(tiq, "DateNaissance", person.birth_date)
        _el(tiq, "LieuNaissance", person.birth_place)
    return root


def _envelope(body_child: etree._Element) -> bytes:
    env = etree.Element(f"{{{NS['soap']}}}Envelope", nsmap={"soap": NS["soap"]})
    body = etree.SubElement(env, f"{{{NS['soap']}}}Body", nsmap={"env": NS["soap"]})
    body.append(body_child)
    return bytes(etree.tostring(env, encoding="UTF-8", xml_declaration=True))


def answer(request: InsiRequest, policy: InsiPolicy) -> bytes:
    """The RESULTAT for a checked, authenticated request."""
    if policy.unavailable:
        raise InsiFaultReply("Receiver", "siram_500", "SIM_UNAVAILABLE", "Service momentanément indisponible")
    body = request.body
    ns = body.tag.split("}")[0][1:]

    def text(path: str) -> str:
        return (body.findtext(path.replace("x:", f"{{{ns}}}")) or "").strip()

    if body.tag.endswith("RECVITALE"):
        number = text("x:MatriculeIndividu/x:NumIdentifiant")
        key = text("x:MatriculeIndividu/x:Cle")
        birth = text("x:DateNaissance")
        if not number:
            raise _refuse("SIM_REQUEST", "MatriculeIndividu obligatoire")
        found = [p for p in policy.identities if (p.number, p.key, p.birth_date) == (number, key, birth)]
    else:
        prenoms = [(p.text or "").strip() for p in body.findall(f"{{{ns}}}Prenom")]
        if len(prenoms) != 1:
            raise _refuse("SIM_REQUEST", "un élément Prenom attendu")
        if not all(text(f"x:{t}") for t in ("NomNaissance", "Sexe", "DateNaissance")):
            raise _refuse("SIM_REQUEST", "NomNaissance, Prenom, Sexe et DateNaissance sont obligatoires")
        found = match(
            policy.identities,
            birth_name=text("x:NomNaissance"),
            first_names=prenoms[0],
            sex=text("x:Sexe"),
            birth_date=text("x:DateNaissance"),
            birth_place=text("x:LieuNaissance") or None,
        )
    if len(found) == 1:
        return _envelope(_resultat("00", "OK", found[0]))
    if not found:
        return _envelope(_resultat("01", "Aucune identite trouvee", None))
    return _envelope(_resultat("02", "Plusieurs identites trouvees", None))


def build_fault(fault: InsiFaultReply, message_id: str | None) -> bytes:
    """A SOAP 1.2 fault shaped like the one `padoa/tlsi-ins` captured from the CNAM platform."""
    soap = NS["soap"]
    env = etree.Element(f"{{{soap}}}Envelope", nsmap={"soap": soap})
    body = etree.SubElement(env, f"{{{soap}}}Body", nsmap={"env": soap})
    node = etree.SubElement(body, f"{{{soap}}}Fault")
    code = etree.SubElement(node, f"{{{soap}}}Code")
    etree.SubElement(code, f"{{{soap}}}Value").text = f"soap:{fault.code}"
    sub = etree.SubElement(code, f"{{{soap}}}Subcode")
    etree.SubElement(sub, f"{{{soap}}}Value").text = f"soap:{fault.subcode}"
    reason = etree.SubElement(node, f"{{{soap}}}Reason")
    text = etree.SubElement(reason, f"{{{soap}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    text.text = fault.reason
    detail = etree.SubElement(node, f"{{{soap}}}Detail")
    erreur = etree.SubElement(detail, f"{{{NS['siram']}}}Erreur", nsmap={"siram": NS["siram"]})
    erreur.set("code", fault.error_code)
    if message_id:
        erreur.set("messageID", message_id[:100])
    erreur.set("severite", "erreur")
    erreur.text = fault.reason
    return bytes(etree.tostring(env, encoding="UTF-8", xml_declaration=True))


def request_fault(exc: RequestError) -> InsiFaultReply:
    """A malformed or non-conforming request."""
    return _refuse("SIM_REQUEST", str(exc))
