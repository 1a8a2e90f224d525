"""The INSi simulator's reading of a request: SOAP 1.2 envelope, header blocks and body, checked strictly.

What is checked, and against what:
- header blocks in the official sample's order (ContexteBAM, wsa:MessageID, wsa:Action, ContexteLPS,
  then wsse:Security when present), each context block valid against its CNAM schema
  (`xsd/ROOT_ctxbam_CTXBAM_V01_02.xsd`, `xsd/ROOT_ctxlps_CTXLPS_V01_00.xsd`);
- the body valid against `INSi_RECSANS_INS.xsd` or `INSi_RECVITALE_INS.xsd`, and the one the Action names;
- names in the referential's alphabet (capitals A-Z, space, hyphen, apostrophe: the simulator refuses
  lower case and diacritics; whether the real service normalises them is not published).

The simulator never imports the client's builders (`bridge.ins.messages`): it reads the wire on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

from bridge.xmlsafe import parse_xml

__all__ = ["NS", "InsiRequest", "RequestError", "parse_request", "schema"]

NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ctxbam": "urn:siram:bam:ctxbam",
    "ctxlps": "urn:siram:lps:ctxlps",
    "recsans": "http://www.cnamts.fr/INSiRecSans",
    "recvit": "http://www.cnamts.fr/INSiRecVit",
    "resultat": "http://www.cnamts.fr/INSiResultat",
    "siram": "urn:siram",
}
_XSD = Path(__file__).with_name("xsd")
_ACTIONS = {
    "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecTraitsIdentite": f"{{{NS['recsans']}}}RECSANSVITALE",
    "urn:ServiceIdentiteCertifiee:1.0.0:rechercherInsAvecCarteVitale": f"{{{NS['recvit']}}}RECVITALE",
}
_ORDER = [
    f"{{{NS['ctxbam']}}}ContexteBAM",
    f"{{{NS['wsa']}}}MessageID",
    f"{{{NS['wsa']}}}Action",
    f"{{{NS['ctxlps']}}}ContexteLPS",
]
_NAME = re.compile(r"^[A-Z]+(?:(?:--?|[' ])[A-Z]+)*$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class RequestError(ValueError):
    """The request is not one the service would accept; the message is the fault reason (French)."""


@cache
def schema(name: str) -> etree.XMLSchema:
    """One of the CNAM schemas of `xsd/`, compiled once."""
    return etree.XMLSchema(etree.parse(str(_XSD / name)))


@dataclass(frozen=True)
class InsiRequest:
    """What the simulator acts on."""

    action: str
    message_id: str
    idam: str
    emitter: str
    #: The SAML assertion of CPS mode, None when the caller authenticates by its certificate only.
    assertion: etree._Element | None
    #: The body element (RECSANSVITALE or RECVITALE).
    body: etree._Element


def _valid(element: etree._Element, xsd: str, what: str) -> None:
    standalone = parse_xml(etree.tostring(element))
    checker = schema(xsd)
    if not checker.validate(standalone):
        first = checker.error_log.filter_from_errors()[0] if checker.error_log.filter_from_errors() else None
        raise RequestError(f"{what} non conforme au schéma : {first.message if first else 'invalide'}"[:300])


def _text(element: etree._Element, path: str) -> str:
    return (element.findtext(path, namespaces=NS) or "").strip()


def _check_names(body: etree._Element) -> None:
    for tag in ("NomNaissance", "Prenom"):
        for el in body.iter(f"{{{body.tag.split('}')[0][1:]}}}{tag}"):
            if not _NAME.match((el.text or "").strip()):
                raise RequestError(f"{tag} : majuscules sans accents, espace, tiret ou apostrophe attendus")
    for el in body.iter(f"{{{body.tag.split('}')[0][1:]}}}DateNaissance"):
        if not _DATE.match((el.text or "").strip()):
            raise RequestError("DateNaissance : AAAA-MM-JJ attendu")


def parse_request(data: bytes) -> InsiRequest:
    """Parse and check one request (see the module docstring); RequestError says what is wrong."""
    root = parse_xml(data, max_bytes=256 * 1024)
    if root.tag != f"{{{NS['soap']}}}Envelope":
        raise RequestError("enveloppe SOAP 1.2 attendue")
    header = root.find("soap:Header", NS)
    body = root.find("soap:Body", NS)
    if header is None or body is None or len(body) != 1:
        raise RequestError("en-tête et corps SOAP attendus, un seul élément dans le corps")
    blocks = [child for child in header if isinstance(child.tag, str)]
    tags = [b.tag for b in blocks]
    security = f"{{{NS['wsse']}}}Security"
    if tags not in (_ORDER, [*_ORDER, security]):
        raise RequestError("en-têtes attendus dans l'ordre : ContexteBAM, MessageID, Action, ContexteLPS, Security")
    bam, message_id, action, lps = blocks[:4]
    _valid(bam, "ROOT_ctxbam_CTXBAM_V01_02.xsd", "ContexteBAM")
    _valid(lps, "ROOT_ctxlps_CTXLPS_V01_00.xsd", "ContexteLPS")
    if bam.get("Version") != "01_02" or lps.get("Version") != "01_00":
        raise RequestError("versions de contexte attendues : ContexteBAM 01_02, ContexteLPS 01_00")
    action_uri = (action.text or "").strip()
    expected = _ACTIONS.get(action_uri)
    if expected is None:
        raise RequestError("Action inconnue du service")
    child = body[0]
    if child.tag != expected:
        raise RequestError("le corps ne correspond pas à l'Action")
    xsd = "INSi_RECSANS_INS.xsd" if child.tag.endswith("RECSANSVITALE") else "INSi_RECVITALE_INS.xsd"
    _valid(child, xsd, "Corps")
    _check_names(child)
    idam = _text(lps, "ctxlps:LPS/ctxlps:IDAM")
    emitter = _text(lps, "ctxlps:Emetteur")
    if not idam or not emitter or not (message_id.text or "").strip():
        raise RequestError("IDAM, Emetteur et MessageID sont obligatoires")
    assertion = None
    if len(blocks) == 5:
        found = blocks[4].findall("saml:Assertion", NS)
        if len(found) != 1:
            raise RequestError("Security doit contenir une assertion SAML")
        assertion = found[0]
    return InsiRequest(action_uri, (message_id.text or "").strip(), idam, emitter, assertion, child)
