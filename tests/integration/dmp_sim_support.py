"""Test-side tools for the DMP simulator: our own VIHF and XAdES signers, raw SOAP from the official samples.

Written independently of `bridge.dmp` (the client's builders): the simulator is checked against
messages built here from the official samples, signed with a minimal XML-DSig implementation.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from bridge.crypto.pki import Issued, PersonCerts, TestPki
from bridge.sim.dmp import DmpSimulator, SimConfig
from tests.dmp_fixtures import server_files

__all__ = [
    "MESSAGES",
    "NS",
    "REFERENCE",
    "SAMPLE_INS",
    "Answer",
    "DmpClient",
    "Practitioner",
    "build_vihf",
    "client_context",
    "cx",
    "make_practitioners",
    "multipart",
    "parse_multipart",
    "requires_reference",
    "sample_envelope",
    "sample_part",
    "server_files",
    "sign_vihf",
    "sim_config",
    "started",
    "with_vihf",
    "xades_signature",
]

REFERENCE = Path("/work/shared/reference/dmp")
MESSAGES = REFERENCE / "messages"
NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "saml2": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "query": "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0",
    "xds": "urn:ihe:iti:xds-b:2007",
    "hl7": "urn:hl7-org:v3",
    "xop": "http://www.w3.org/2004/08/xop/include",
}
TEST_OID = "1.2.250.1.213.1.4.10"
SAMPLE_INS = "207058575627097"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

requires_reference = pytest.mark.skipif(not MESSAGES.is_dir(), reason="official DMP samples not present")


def cx(ins: str) -> str:
    """The CX form of a test INS."""
    return f"{ins}^^^&{TEST_OID}&ISO^NH"


# -- minimal XML-DSig ---------------------------------------------------------------------------


def _ds(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS['ds']}}}{name}", **attrs)


def _b64_digest(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _sign(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def _subset_c14n(element: etree._Element) -> bytes:
    """Inclusive C14N 1.0 of an element in its document (copied out first: libxml2 wrongly writes
    xmlns="" on some descendants when canonicalising a subtree whose default namespace is inherited)."""
    return bytes(etree.tostring(etree.fromstring(etree.tostring(element)), method="c14n"))


def _cert_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


# -- VIHF ---------------------------------------------------------------------------------------


def _attr(statement: etree._Element, name: str, value: str | etree._Element) -> None:
    attr = etree.SubElement(statement, f"{{{NS['saml2']}}}Attribute", Name=name)
    av = etree.SubElement(attr, f"{{{NS['saml2']}}}AttributeValue")
    if isinstance(value, str):
        av.text = value
    else:
        av.append(value)


def _coded(tag: str, code: str, system: str) -> etree._Element:
    el = etree.Element(f"{{{NS['hl7']}}}{tag}", nsmap={None: NS["hl7"]}, code=code, codeSystem=system)
    el.set("{http://www.w3.org/2001/XMLSchema-instance}type", "CE")
    return el


def build_vihf(
    *,
    signer: Issued | None,
    issuer_dn: str,
    name_id: str,
    ins: str,
    mode: str = "DIRECTE",
    issued: dt.datetime | None = None,
    roles: Iterable[tuple[str, str]] = (("10", "1.2.250.1.71.1.2.7"), ("SM26", "1.2.250.1.71.4.2.5")),
    purpose: str = "normal",
    omit: Iterable[str] = (),
    structure: str = "499900063480001",
) -> etree._Element:
    """A VIHF like the official DIRECTE sample, enveloped-signed (exc-c14n, RSA-SHA256) if `signer`."""
    saml = NS["saml2"]
    assertion_id = f"_{uuid.uuid4()}"
    when = (issued or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assertion = etree.Element(
        f"{{{saml}}}Assertion",
        nsmap={"saml2": saml, "xsi": "http://www.w3.org/2001/XMLSchema-instance"},
        ID=assertion_id,
        IssueInstant=when,
        Version="2.0",
    )
    issuer = etree.SubElement(
        assertion, f"{{{saml}}}Issuer", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName"
    )
    issuer.text = issuer_dn
    etree.SubElement(etree.SubElement(assertion, f"{{{saml}}}Subject"), f"{{{saml}}}NameID").text = name_id
    authn = etree.SubElement(assertion, f"{{{saml}}}AuthnStatement", AuthnInstant=when)
    ref = etree.SubElement(etree.SubElement(authn, f"{{{saml}}}AuthnContext"), f"{{{saml}}}AuthnContextClassRef")
    ref.text = "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI"
    statement = etree.SubElement(assertion, f"{{{saml}}}AttributeStatement")
    values: list[tuple[str, str | etree._Element]] = [
        ("Identifiant_Structure", structure),
        ("Secteur_Activite", "SA07^1.2.250.1.71.4.2.4"),
        *(("urn:oasis:names:tc:xacml:2.0:subject:role", _coded("Role", c, s)) for c, s in roles),
        ("VIHF_Version", "3.0"),
        ("Authentification_mode", mode),
        ("urn:oasis:names:tc:xacml:2.0:resource:resource-id", cx(ins)),
        ("Ressource_URN", "urn:dmp"),
        (
            "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
            _coded("PurposeOfUse", purpose, "1.2.250.1.213.1.1.4.248"),
        ),
        ("LPS_ID", "01.01.01.01"),
        ("LPS_Nom", "TESTS DMP-BRIDGE"),
        ("LPS_Version", "1"),
        ("LPS_ID_HOMOLOGATION_DMP", "TST-0000000-tmp1"),
    ]
    if mode != "DIRECTE":
        values.append(("urn:oasis:names:tc:xspa:1.0:subject:subject-id", "ALICE MEDECIN"))
    roles_done: etree._Element | None = None
    for name, value in values:
        if name in omit:
            continue
        if name == "urn:oasis:names:tc:xacml:2.0:subject:role" and roles_done is not None:
            av = etree.SubElement(roles_done, f"{{{saml}}}AttributeValue")
            assert not isinstance(value, str)
            av.append(value)
            continue
        _attr(statement, name, value)
        if name == "urn:oasis:names:tc:xacml:2.0:subject:role":
            roles_done = statement[-1]
    if signer is not None:
        _envelope_sign(assertion, issuer, signer)
    return assertion


def _envelope_sign(assertion: etree._Element, after: etree._Element, signer: Issued) -> None:
    digest = _b64_digest(etree.tostring(assertion, method="c14n", exclusive=True))
    signature = etree.Element(f"{{{NS['ds']}}}Signature", nsmap={"ds": NS["ds"]})
    info = _ds(signature, "SignedInfo")
    _ds(info, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _ds(info, "SignatureMethod", Algorithm=RSA_SHA256)
    reference = _ds(info, "Reference", URI="#" + assertion.get("ID", ""))
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    _ds(transforms, "Transform", Algorithm=EXC_C14N)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    _ds(reference, "DigestValue").text = digest
    value = _ds(signature, "SignatureValue")
    _ds(_ds(_ds(signature, "KeyInfo"), "X509Data"), "X509Certificate").text = _cert_b64(signer.certificate)
    after.addnext(signature)
    value.text = _sign(signer.key, etree.tostring(info, method="c14n", exclusive=True))


def sign_vihf(practitioner: Practitioner, ins: str, **kwargs: object) -> etree._Element:
    """A valid signed VIHF of `practitioner` for patient `ins` (kwargs go to build_vihf)."""
    signer = kwargs.pop("signer", practitioner.certs.sign)
    name_id = kwargs.pop("name_id", practitioner.name_id)
    return build_vihf(
        signer=signer,  # type: ignore[arg-type]
        issuer_dn=practitioner.certs.sign.certificate.subject.rfc4514_string(),
        name_id=name_id,  # type: ignore[arg-type]
        ins=ins,
        **kwargs,  # type: ignore[arg-type]
    )


# -- XAdES of a submission ----------------------------------------------------------------------


def xades_signature(
    signer: Issued,
    submission_uid: str,
    documents: list[tuple[str, bytes]],
    *,
    named: x509.Certificate | None = None,
    issuer_serial: bool = True,
) -> bytes:
    """A signature document shaped like the official TD2.1-SignatureXades (SHA-256 instead of SHA-1).

    SigningCertificate names `named` (default: the signer), with its IssuerSerial unless `issuer_serial`
    is False.
    """
    named = named or signer.certificate
    ds = NS["ds"]
    sig_id = str(uuid.uuid4())
    # A ds: prefix (the sample uses a default namespace): lxml cannot write the no-namespace
    # SignatureProperties under a default-namespace parent (it would land in the ds namespace).
    signature = etree.Element(f"{{{ds}}}Signature", nsmap={"ds": ds}, Id=sig_id)
    info = _ds(signature, "SignedInfo")
    _ds(info, "CanonicalizationMethod", Algorithm=C14N_COMMENTS)
    _ds(info, "SignatureMethod", Algorithm=RSA_SHA256)
    ref_manifest = _ds(info, "Reference", Type="http://www.w3.org/2000/09/xmldsig#Manifest", URI="#IHEManifest")
    ref_props = _ds(
        info, "Reference", Type="http://uri.etsi.org/01903/v1.1.1#SignedProperties", URI="#S0-SignedProperties"
    )
    value = _ds(signature, "SignatureValue")
    _ds(_ds(_ds(signature, "KeyInfo"), "X509Data"), "X509Certificate").text = _cert_b64(signer.certificate)
    manifest = _ds(_ds(signature, "Object"), "Manifest", Id="IHEManifest")
    first = _ds(manifest, "Reference", URI=f"urn:oid:{submission_uid}")
    _ds(first, "DigestMethod", Algorithm="http://www.w3.org/2000/09/xmldsig#sha1")
    _ds(first, "DigestValue").text = "AA=="
    for unique_id, content in documents:
        ref = _ds(manifest, "Reference", URI=f"urn:oid:{unique_id}")
        _ds(_ds(ref, "Transforms"), "Transform", Algorithm=C14N_COMMENTS)
        _ds(ref, "DigestMethod", Algorithm=SHA256)
        tree = etree.fromstring(content).getroottree()
        _ds(ref, "DigestValue").text = _b64_digest(etree.tostring(tree, method="c14n", with_comments=True))
    props_object = _ds(signature, "Object")
    props = etree.SubElement(props_object, "SignatureProperties")  # no namespace, as in the sample
    prop = etree.SubElement(props, "SignatureProperty", Id="purposeOfSignature", Target=f"#{sig_id}")
    prop.text = "1.2.840.10065.1.12.1.14"
    xa = "http://uri.etsi.org/01903/v1.1.1#"
    qualifying = etree.SubElement(
        _ds(signature, "Object"), f"{{{xa}}}QualifyingProperties", nsmap={None: xa}, Target=f"#{sig_id}"
    )
    signed_props = etree.SubElement(qualifying, f"{{{xa}}}SignedProperties", Id="S0-SignedProperties")
    ssp = etree.SubElement(signed_props, f"{{{xa}}}SignedSignatureProperties")
    etree.SubElement(ssp, f"{{{xa}}}SigningTime").text = dt.datetime.now(dt.UTC).isoformat()
    cert_el = etree.SubElement(etree.SubElement(ssp, f"{{{xa}}}SigningCertificate"), f"{{{xa}}}Cert")
    cert_digest = etree.SubElement(cert_el, f"{{{xa}}}CertDigest")
    etree.SubElement(cert_digest, f"{{{xa}}}DigestMethod", Algorithm=SHA256)
    etree.SubElement(cert_digest, f"{{{xa}}}DigestValue").text = base64.b64encode(
        named.fingerprint(hashes.SHA256())
    ).decode()
    if issuer_serial:
        serial = etree.SubElement(cert_el, f"{{{xa}}}IssuerSerial")
        etree.SubElement(serial, f"{{{ds}}}X509IssuerName").text = named.issuer.rfc4514_string()
        etree.SubElement(serial, f"{{{ds}}}X509SerialNumber").text = str(named.serial_number)
    etree.SubElement(etree.SubElement(ssp, f"{{{xa}}}SignaturePolicyIdentifier"), f"{{{xa}}}SignaturePolicyImplied")
    etree.SubElement(signed_props, f"{{{xa}}}SignedDataObjectProperties")
    for ref, target in ((ref_manifest, manifest), (ref_props, signed_props)):
        _ds(ref, "DigestMethod", Algorithm=SHA256)
        _ds(ref, "DigestValue").text = _b64_digest(_subset_c14n(target))
    value.text = _sign(signer.key, etree.tostring(info, method="c14n", with_comments=True))
    return bytes(etree.tostring(signature))


# -- MIME ---------------------------------------------------------------------------------------


def multipart(envelope: bytes, attachments: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """An MTOM request: (content type, body); attachments are (content-id, bytes)."""
    boundary = f"----=_Part_{uuid.uuid4().hex}"
    out = (
        f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        "Content-Transfer-Encoding: 8bit\r\nContent-ID: <rootpart@tests>\r\n\r\n"
    ).encode() + envelope
    for cid, content in attachments:
        out += (
            f"\r\n--{boundary}\r\nContent-Type: text/xml\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{cid}>\r\n\r\n"
        ).encode() + content
    out += f"\r\n--{boundary}--\r\n".encode()
    content_type = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
        'start="<rootpart@tests>"; start-info="application/soap+xml"'
    )
    return content_type, out


def parse_multipart(content_type: str, body: bytes) -> tuple[etree._Element, dict[str, bytes]]:
    """A test-side MTOM reader: the envelope root and attachments by Content-ID."""
    boundary = re.search(r'boundary="([^"]+)"', content_type)
    assert boundary, content_type
    parts = body.split(b"--" + boundary.group(1).encode())[1:-1]
    parsed: list[tuple[dict[str, str], bytes]] = []
    for part in parts:
        # Exactly one CRLF after the delimiter line and one before the next delimiter belong to MIME.
        part = part.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, _, content = part.partition(b"\r\n\r\n")
        headers = dict(
            (k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in head.decode().split("\r\n"))
        )
        parsed.append((headers, content))
    root = etree.fromstring(parsed[0][1])
    return root, {h["content-id"].strip("<>"): c for h, c in parsed[1:]}


# -- samples ------------------------------------------------------------------------------------


def sample_envelope(name: str) -> etree._Element:
    """A sample request envelope (first MIME part for captures), SOAP 1.2 namespace."""
    data = (MESSAGES / name).read_bytes()
    start = data.index(b"<soap:Envelope")
    end = data.index(b"</soap:Envelope>") + len(b"</soap:Envelope>")
    envelope = data[start:end].replace(b"http://schemas.xmlsoap.org/soap/envelope/", NS["soap"].encode())
    return etree.fromstring(envelope)


def sample_part(name: str, content_id: str) -> bytes:
    """The content of one MIME part of a sample capture (LF line ends, as captured)."""
    data = (MESSAGES / name).read_bytes()
    marker = f"Content-ID: <{content_id}>".encode()
    start = data.index(b"\n\n", data.index(marker)) + 2
    end = data.index(b"\n------=_Part_9_", start)
    return data[start:end]


def with_vihf(envelope: etree._Element, vihf: etree._Element | None) -> bytes:
    """The envelope with its wsse:Security content replaced by `vihf` (or emptied).

    The signed assertion is spliced in as bytes: appending the element with lxml could rewrite its
    namespace prefixes to ones of the envelope (e.g. `urn:` for HL7) and so change what was signed.
    """
    env = copy.deepcopy(envelope)
    security = env.find(f".//{{{NS['wsse']}}}Security")
    assert security is not None
    for child in list(security):
        security.remove(child)
    security.text = "@@VIHF@@"
    data = bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))
    return data.replace(b"@@VIHF@@", etree.tostring(vihf) if vihf is not None else b"")


# -- PKI and practitioners ----------------------------------------------------------------------


@dataclass(frozen=True)
class Practitioner:
    """A test health professional: national id (VIHF NameID, authorPerson) and card certificates."""

    name_id: str
    certs: PersonCerts


def make_practitioners(pki: TestPki) -> tuple[Practitioner, Practitioner]:
    """Two doctors of the test PKI."""
    out = []
    for index, (last, first) in enumerate((("MEDECIN", "ALICE"), ("DOCTEUR", "BRUNO")), start=1):
        national_id = f"89990000000{index}"
        certs = pki.person(
            f"dmpsim-dr{index}",
            last_name=last,
            first_name=first,
            national_id=national_id,
            profession_code="10",
            specialty_code="SM26",
            card_type="CPS",
        )
        out.append(Practitioner(national_id, certs))
    return out[0], out[1]


def sim_config(pki: TestPki, directory: Path, dump: Path | None = None) -> SimConfig:
    """A simulator configuration with its own data folder under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, ca = server_files(pki, directory)
    return SimConfig(data_dir=directory / "data", cert_file=cert, key_file=key, ca_file=ca, dump_dir=dump)


def client_context(pki: TestPki, issued: Issued | None, directory: Path) -> ssl.SSLContext:
    """A TLS client context trusting the test CA, presenting `issued` (card authentication certificate)."""
    ctx = ssl.create_default_context(cafile=str(pki.ca_bundle_path()))
    if issued is not None:
        name = uuid.uuid4().hex
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        cert.write_bytes(issued.cert_pem() + issued.chain_pem())
        key.write_bytes(issued.key_pem())
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


@dataclass
class Answer:
    """An HTTP answer: status, content type, the envelope and attachments."""

    status: int
    content_type: str
    envelope: etree._Element
    attachments: dict[str, bytes]
    raw: bytes

    def fault_subcode(self) -> str:
        """The SOAP fault subcode (or Code value when there is no subcode), '' if not a fault."""
        sub = self.envelope.findtext(".//soap:Fault/soap:Code/soap:Subcode/soap:Value", namespaces=NS)
        code = self.envelope.findtext(".//soap:Fault/soap:Code/soap:Value", namespaces=NS)
        return str(sub or code or "").strip()

    def registry_status(self) -> str:
        """The @status of the RegistryResponse / AdhocQueryResponse."""
        for path in (".//rs:RegistryResponse", ".//query:AdhocQueryResponse"):
            node = self.envelope.find(path, NS)
            if node is not None:
                return str(node.get("status", "")).rsplit(":", 1)[-1]
        return ""

    def errors(self) -> list[tuple[str, str]]:
        """(errorCode, codeContext) of each RegistryError, or the fault reason."""
        reason = self.envelope.findtext(".//soap:Reason/soap:Text", namespaces=NS)
        found = [
            (e.get("errorCode", ""), e.get("codeContext", ""))
            for e in self.envelope.iterfind(".//rs:RegistryError", NS)
        ]
        return found or ([("fault", reason)] if reason else [])

    def error_codes(self) -> list[str]:
        """RegistryError/@errorCode values."""
        return [e.get("errorCode", "") for e in self.envelope.iterfind(".//rs:RegistryError", NS)]


class DmpClient:
    """Raw SOAP over mutual TLS to the simulator (aiohttp client with the practitioner's auth certificate)."""

    def __init__(self, base_url: str, ctx: ssl.SSLContext) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))

    async def close(self) -> None:
        """Close the session."""
        await self.session.close()

    async def post(
        self,
        service: str,
        body: bytes,
        content_type: str = "application/soap+xml; charset=UTF-8",
        *,
        patient: bool = False,
    ) -> Answer:
        """POST and decode the answer (plain SOAP or MTOM)."""
        headers = {"Content-Type": content_type}
        if patient:
            headers["X-DMP-Sim-Viewer"] = "patient"
        async with self.session.post(f"{self.base_url}/{service}", data=body, headers=headers) as response:
            raw = await response.read()
            ctype = response.headers.get("Content-Type", "")
        if ctype.startswith("multipart/related"):
            envelope, attachments = parse_multipart(ctype, raw)
        else:
            envelope, attachments = etree.fromstring(raw), {}
        return Answer(response.status, ctype, envelope, attachments, raw)


async def started(config: SimConfig) -> AsyncIterator[DmpSimulator]:
    """Start a simulator, yield it, stop it."""
    sim = DmpSimulator(config)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()
