"""A test PKI shaped like IGC-Santé, generated on demand for the sandbox and the tests.

It mimics the TEST chain of IGC-Santé (cps-data-and-pki.md §2): issuer DNs
`C=FR, O=ASIP-SANTE, OU=0002 187512751, OU=IGC-SANTE TEST, CN=TEST AC ...`, the test certificate policy
`1.2.250.1.213.1.7.2.1.1.1.1`, person subjects with the multi-valued RDN {GN + SN + CN=PS_IdNat}, and
the ANS private extensions (card type G02, card serial, product category G01, profession G15,
specialty R01). Choices of ours, not the real IGC: a single root (the "STANDARD" gamme) issues both
intermediates, all keys are RSA-2048, and the keys are generated here. Nothing in it is trusted by any
real service.

Everything is persisted under `bridge.paths.data_dir() / "test-pki"` (keys mode 0600, folder 0700) and
reused: asking twice for the same subject returns the same key and certificate. A certificate is
re-issued (with the same key) when its parameters, its issuer or, for default validity, its expiry
changed. Private keys only ever live in that folder; they are test material for virtual cards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from bridge.dmp.codes import PROFESSION_LABELS
from bridge.paths import data_dir, ensure_private_dir

try:  # POSIX: serialise creation between processes (sandbox and tests may race)
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process creates the PKI at a time
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "CARD_ISSUER_PREFIX",
    "OID_CARD_SERIAL",
    "OID_CARD_TYPE",
    "OID_PRODUCT_CATEGORY",
    "OID_PROFESSION",
    "OID_SPECIALTY",
    "OID_TEST_POLICY",
    "EstablishmentCerts",
    "Issued",
    "PersonCerts",
    "TestPki",
    "card_serial_from_certificate",
    "default_card_number",
]

# ANS nomenclature OIDs used as private certificate extensions (cps-data-and-pki.md §2.3).
OID_CARD_TYPE = ObjectIdentifier("1.2.250.1.71.1.2.2")  # TRE_G02 TypeProduit, INTEGER
OID_CARD_SERIAL = ObjectIdentifier("1.2.250.1.71.1.2.3")  # PrintableString "8025000001/<card no>"
OID_PRODUCT_CATEGORY = ObjectIdentifier("1.2.250.1.71.1.2.5")  # TRE_G01, OCTET STRING of one byte
OID_PROFESSION = ObjectIdentifier("1.2.250.1.71.1.2.7")  # TRE_G15 ProfessionSante, INTEGER
OID_SPECIALTY = ObjectIdentifier("1.2.250.1.71.4.2.5")  # TRE_R01 savoir-faire, SEQUENCE { UTF8String }
OID_TEST_POLICY = ObjectIdentifier("1.2.250.1.213.1.7.2.1.1.1.1")  # every IGC-Santé TEST leaf
_OID_MS_SMARTCARD_LOGON = ObjectIdentifier("1.3.6.1.4.1.311.20.2.2")
_OID_MS_UPN = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")

CARD_ISSUER_PREFIX = "8025000001"  # ANS issuer number, as in EF.SN.ICC
_CPS_URI = "http://igc-sante.esante.gouv.fr/PC%20TEST"
_CRL_BASE = "http://igc-sante.esante.gouv.fr/CRL/"
_CA_DN_HEAD = (
    (NameOID.COUNTRY_NAME, "FR"),
    (NameOID.ORGANIZATION_NAME, "ASIP-SANTE"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "0002 187512751"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "IGC-SANTE TEST"),
)
_ROOT_CN = "TEST AC RACINE IGC-SANTE STANDARD"
_PERSONS_CN = "TEST AC IGC-SANTE STANDARD PERSONNES"
_ORGS_CN = "TEST AC IGC-SANTE STANDARD ORGANISATIONS"

# Certificate `title` of a holder without a listed TRE_G15 profession (PROFESSION_LABELS gives the others).
_NON_PS_TITLE = "Personnel santé ou social"

# TRE_G02 TypeProduit codes per card type.
_CARD_TYPE_CODES = {"CPS": 0, "CPF": 1, "CPE": 2, "CDE": 2, "CPA": 3, "CDA": 3}

_KEY_SIZE = 2048
_CA_YEARS = 20
_LEAF_DAYS = 3 * 365
_SKEW = dt.timedelta(days=1)  # back-date not_before: workstation clocks drift


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV (definite length)."""
    n = len(content)
    if n < 0x80:
        length = bytes((n,))
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes((0x80 | len(raw),)) + raw
    return bytes((tag,)) + length + content


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    return _der(0x02, raw)


def default_card_number(profile_id: str) -> str:
    """A stable 10-digit card number derived from a profile id (for profiles that give none)."""
    return f"{int.from_bytes(hashlib.sha256(profile_id.encode()).digest()[:8], 'big') % 10**10:010d}"


def card_serial_from_certificate(cert: x509.Certificate) -> str | None:
    """The card number from the ANS card-serial extension ("8025000001/<no>" -> "<no>"), or None."""
    try:
        ext = cert.extensions.get_extension_for_oid(OID_CARD_SERIAL).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(ext, x509.UnrecognizedExtension) or len(ext.value) < 2 or ext.value[0] != 0x13:
        return None
    text = ext.value[2:].decode("ascii", "replace")
    return text.split("/", 1)[1] if "/" in text else text


@dataclass(frozen=True)
class Issued:
    """A certificate, its private key and its issuers (nearest first, root last)."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]

    def cert_pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM (test material only)."""
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def chain_pem(self) -> bytes:
        """The issuers in PEM, nearest first, root last."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    def fullchain_pem(self) -> bytes:
        """The certificate then its intermediates (no root): what a TLS peer sends."""
        return self.cert_pem() + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain[:-1])

    def __repr__(self) -> str:  # subjects carry names: keep them out of logs
        return f"Issued(serial={self.certificate.serial_number:X})"


@dataclass(frozen=True)
class PersonCerts:
    """The two key pairs of a CPx card: authentication (TLS, ref 0x82) and signature (ref 0x81)."""

    auth: Issued
    sign: Issued


@dataclass(frozen=True)
class EstablishmentCerts:
    """An establishment's (personne morale) software certificates for the DMP indirect mode."""

    auth_cli: Issued
    sign: Issued
    auth_cli_p12: Path
    sign_p12: Path
    p12_password: bytes

    def __repr__(self) -> str:
        return f"EstablishmentCerts(auth_cli={self.auth_cli!r}, sign={self.sign!r})"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 (keys and passwords)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes | str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    # Our own files: skipping OpenSSL's RSA consistency check makes reopening the PKI ~10x faster.
    key = serialization.load_pem_private_key(path.read_bytes(), password=None, unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA key")
    return key


def _key_at(path: Path) -> rsa.RSAPrivateKey:
    """The key stored at `path`, generated and stored first if absent."""
    if path.exists():
        return _load_key(path)
    key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_SIZE)
    _write_private(
        path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return key


def _ca_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in (*_CA_DN_HEAD, (NameOID.COMMON_NAME, cn))])


def _policies(any_policy: bool) -> x509.CertificatePolicies:
    oid = x509.oid.CertificatePoliciesOID.ANY_POLICY if any_policy else OID_TEST_POLICY
    return x509.CertificatePolicies([x509.PolicyInformation(oid, [_CPS_URI])])


def _same_key(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    """True when `cert` certifies the public half of `key`."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def _ski_hex(cert: x509.Certificate) -> str:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


class TestPki:
    """The test IGC-Santé: a root, a PERSONNES and an ORGANISATIONS intermediate, and leaves on demand."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path, root: Issued, persons_ca: Issued, orgs_ca: Issued) -> None:
        self._dir = directory
        self._root = root
        self._persons_ca = persons_ca
        self._orgs_ca = orgs_ca
        self._lock = threading.RLock()
        self._lock_depth = 0

    def __repr__(self) -> str:
        return f"TestPki({str(self._dir)!r})"

    @classmethod
    def load_or_create(cls, directory: Path | None = None) -> TestPki:
        """Open the PKI stored in `directory` (default: data_dir()/test-pki), creating what is missing."""
        directory = ensure_private_dir(directory if directory is not None else data_dir() / "test-pki")
        with _file_lock(directory):
            now = _now()
            root_key = _key_at(directory / "root.key.pem")
            root_cert = _load_or_issue_ca(directory / "root.cert.pem", _ROOT_CN, root_key, None, now)
            root = Issued(root_cert, root_key, ())
            cas = []
            for stem, cn in (("persons-ca", _PERSONS_CN), ("orgs-ca", _ORGS_CN)):
                key = _key_at(directory / f"{stem}.key.pem")
                cert = _load_or_issue_ca(directory / f"{stem}.cert.pem", cn, key, root, now)
                cas.append(Issued(cert, key, (root_cert,)))
            pki = cls(directory, root, cas[0], cas[1])
            bundle = b"".join(
                c.public_bytes(serialization.Encoding.PEM) for c in (root_cert, *(ca.certificate for ca in cas))
            )
            bundle_path = directory / "ca-bundle.pem"
            if not bundle_path.exists() or bundle_path.read_bytes() != bundle:
                _write_public(bundle_path, bundle)
            return pki

    @property
    def directory(self) -> Path:
        """Where the PKI is stored."""
        return self._dir

    @property
    def root(self) -> x509.Certificate:
        """The root certificate (trust anchor)."""
        return self._root.certificate

    @property
    def persons_ca(self) -> Issued:
        """The intermediate CA that issues card (person) certificates."""
        return self._persons_ca

    @property
    def orgs_ca(self) -> Issued:
        """The intermediate CA that issues establishment and server certificates."""
        return self._orgs_ca

    def ca_bundle_path(self) -> Path:
        """PEM file with the root and both intermediates (for ssl cafile, xmlsec1, openssl verify)."""
        return self._dir / "ca-bundle.pem"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Threads of this process through an RLock; other processes through the folder's file lock."""
        with self._lock:
            self._lock_depth += 1
            try:
                if self._lock_depth == 1:
                    with _file_lock(self._dir):
                        yield
                else:
                    yield
            finally:
                self._lock_depth -= 1

    # -- leaves ---------------------------------------------------------------------------------

    def server(self, hostname: str) -> Issued:
        """A TLS server certificate for `hostname` (SAN DNS=hostname, IP=127.0.0.1), for the DMP simulator."""
        _check_component(hostname)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DMP-BRIDGE SANDBOX"),
                x509.NameAttribute(NameOID.COMMON_NAME, hostname),
            ]
        )
        sans: list[x509.GeneralName] = [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]

        def extend(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
            b = b.add_extension(_key_usage(digital_signature=True, key_encipherment=True), critical=True)
            return b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)

        params = {"hostname": hostname}
        return self._leaf(f"servers/{hostname}", "tls", params, name, self._orgs_ca, "ACI-ST-ORG-TEST", extend)

    def person(
        self,
        profile_id: str,
        *,
        last_name: str,
        first_name: str,
        national_id: str,
        profession_code: str,
        specialty_code: str,
        card_type: str,
        not_after: dt.datetime | None = None,
        not_before: dt.datetime | None = None,
        card_number: str | None = None,
        organization: str | None = None,
        structure_id: str | None = None,
        department: str | None = None,
    ) -> PersonCerts:
        """The authentication and signature certificates of a CPx card holder (RSA-2048 keys).

        `national_id` is the PS_IdNat put in CN (e.g. "810012345678" = 8 + RPPS, or "30B0057881/CPET0002"
        for a CPE); `profession_code` is TRE_G15 ("10" médecin; "" for none), `specialty_code` TRE_R01
        ("SM26"; "" for none), `card_type` "CPS", "CPE", "CPF", "CPA". CPE/CPA certificates also carry
        `organization` (O), `structure_id` (OU) and `department` (ST) when given. The card number (in
        the card-serial extension and EF.SN.ICC) defaults to one derived from `profile_id`.
        """
        _check_component(profile_id)
        if card_type not in _CARD_TYPE_CODES:
            raise ValueError(f"card_type must be one of {sorted(_CARD_TYPE_CODES)}, got {card_type!r}")
        number = card_number or default_card_number(profile_id)
        if not (number.isdigit() and len(number) == 10):
            raise ValueError("card_number must be 10 digits")
        attrs: list[x509.RelativeDistinguishedName] = [_rdn(NameOID.COUNTRY_NAME, "FR")]
        if department:
            attrs.append(_rdn(NameOID.STATE_OR_PROVINCE_NAME, department))
        if organization:
            attrs.append(_rdn(NameOID.ORGANIZATION_NAME, organization))
        if structure_id:
            attrs.append(_rdn(NameOID.ORGANIZATIONAL_UNIT_NAME, structure_id))
        attrs.append(_rdn(NameOID.TITLE, PROFESSION_LABELS.get(profession_code, _NON_PS_TITLE)))
        attrs.append(
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.GIVEN_NAME, first_name),
                    x509.NameAttribute(NameOID.SURNAME, last_name),
                    x509.NameAttribute(NameOID.COMMON_NAME, national_id),
                ]
            )
        )
        subject = x509.Name(attrs)
        private = [
            (OID_PRODUCT_CATEGORY, _der(0x04, b"\x80")),  # 80 = "CPx de TEST"
            (OID_CARD_TYPE, _der_int(_CARD_TYPE_CODES[card_type])),
            (OID_CARD_SERIAL, _der(0x13, f"{CARD_ISSUER_PREFIX}/{number}".encode("ascii"))),
        ]
        if profession_code.isdigit():
            private.append((OID_PROFESSION, _der_int(int(profession_code))))
        if specialty_code:
            private.append((OID_SPECIALTY, _der(0x30, _der(0x0C, specialty_code.encode()))))
        upn = _der(0x0C, f"{national_id}@carte-cps.fr".encode())

        def add_private(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            for oid, value in private:
                b = b.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
            return b

        def auth_ext(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(_key_usage(digital_signature=True), critical=True)
            b = b.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, _OID_MS_SMARTCARD_LOGON]), critical=False
            )
            b = b.add_extension(x509.SubjectAlternativeName([x509.OtherName(_OID_MS_UPN, upn)]), critical=False)
            return add_private(b)

        def sign_ext(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(_key_usage(content_commitment=True), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            return add_private(b)

        params: dict[str, Any] = {
            "subject": subject.rfc4514_string(),
            "card_type": card_type,
            "card_number": number,
            "profession": profession_code,
            "specialty": specialty_code,
            "not_before": not_before.isoformat() if not_before else None,
            "not_after": not_after.isoformat() if not_after else None,
        }
        validity = (not_before, not_after)
        folder = f"persons/{profile_id}"
        auth = self._leaf(folder, "auth", params, subject, self._persons_ca, "ACI-ST-PP-TEST", auth_ext, validity)
        sign = self._leaf(folder, "sign", params, subject, self._persons_ca, "ACI-ST-PP-TEST", sign_ext, validity)
        return PersonCerts(auth=auth, sign=sign)

    def establishment(self, finess_or_id: str, name: str, *, department: str = "Paris (75)") -> EstablishmentCerts:
        """An establishment's AUTH_CLI (TLS client) and signature ("cachet") certificates, also as PKCS#12.

        `finess_or_id` is the Struct_IdNat put in OU (e.g. "10B0127189" = 1 + FINESS); `name` the raison
        sociale (O). The PKCS#12 files share one random password, stored next to them (mode 0600).
        """
        _check_component(finess_or_id)
        base = [
            _rdn(NameOID.COUNTRY_NAME, "FR"),
            _rdn(NameOID.STATE_OR_PROVINCE_NAME, department),
            _rdn(NameOID.ORGANIZATION_NAME, name),
            _rdn(NameOID.ORGANIZATIONAL_UNIT_NAME, finess_or_id),
        ]
        category = x509.UnrecognizedExtension(OID_PRODUCT_CATEGORY, _der(0x04, b"\x83"))  # logiciel de TEST

        def auth_ext(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(_key_usage(digital_signature=True), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            return b.add_extension(category, critical=False)

        def sign_ext(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            return b.add_extension(category, critical=False)

        folder = f"establishments/{finess_or_id}"
        auth_name = x509.Name([*base, _rdn(NameOID.COMMON_NAME, "DMP-BRIDGE AUTH_CLI")])
        sign_name = x509.Name([*base, _rdn(NameOID.COMMON_NAME, "DMP-BRIDGE SIGNATURE")])
        params = {"id": finess_or_id, "name": name, "department": department}
        with self._locked():
            auth = self._leaf(folder, "auth-cli", params, auth_name, self._orgs_ca, "ACI-ST-ORG-TEST", auth_ext)
            sign = self._leaf(folder, "sign", params, sign_name, self._orgs_ca, "ACI-ST-ORG-TEST", sign_ext)
            where = self._dir / folder
            password_path = where / "p12-password"
            if not password_path.exists():
                _write_private(password_path, secrets.token_urlsafe(18).encode("ascii"))
            password = password_path.read_bytes()
            paths = []
            for stem, issued in (("auth-cli", auth), ("sign", sign)):
                p12_path = where / f"{stem}.p12"
                stamp = where / f"{stem}.p12.for"
                fingerprint = issued.certificate.fingerprint(hashes.SHA256()).hex()
                if not p12_path.exists() or not stamp.exists() or stamp.read_text() != fingerprint:
                    blob = pkcs12.serialize_key_and_certificates(
                        stem.encode(),
                        issued.key,
                        issued.certificate,
                        list(issued.chain),
                        serialization.BestAvailableEncryption(password),
                    )
                    _write_private(p12_path, blob)
                    _write_public(stamp, fingerprint)
                paths.append(p12_path)
        return EstablishmentCerts(auth, sign, paths[0], paths[1], password)

    def insi_certificate(self, finess_or_id: str, name: str, cn: str = "INSI-AUTO") -> tuple[Issued, Path, bytes]:
        """An establishment's INSi client certificate (subject CN INSI-AUTO or INSI-MANU), also as PKCS#12.

        Returns the issued certificate, the PKCS#12 path and its password (the establishment's, see
        `establishment`). The INSi accepts these for unattended (AUTO) or attended (MANU) calls without a card.
        """
        if cn not in ("INSI-AUTO", "INSI-MANU"):
            raise ValueError("cn must be INSI-AUTO or INSI-MANU")
        certs = self.establishment(finess_or_id, name)
        subject = x509.Name(
            [
                _rdn(NameOID.COUNTRY_NAME, "FR"),
                _rdn(NameOID.ORGANIZATION_NAME, name),
                _rdn(NameOID.ORGANIZATIONAL_UNIT_NAME, finess_or_id),
                _rdn(NameOID.COMMON_NAME, cn),
            ]
        )

        def auth_ext(b: x509.CertificateBuilder) -> x509.CertificateBuilder:
            b = b.add_extension(_key_usage(digital_signature=True), critical=True)
            return b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)

        folder = f"establishments/{finess_or_id}"
        stem = cn.lower()
        issued = self._leaf(
            folder,
            stem,
            {"id": finess_or_id, "name": name, "cn": cn},
            subject,
            self._orgs_ca,
            "ACI-ST-ORG-TEST",
            auth_ext,
        )
        with self._locked():
            p12_path = self._dir / folder / f"{stem}.p12"
            stamp = self._dir / folder / f"{stem}.p12.for"
            fingerprint = issued.certificate.fingerprint(hashes.SHA256()).hex()
            if not p12_path.exists() or not stamp.exists() or stamp.read_text() != fingerprint:
                blob = pkcs12.serialize_key_and_certificates(
                    stem.encode(),
                    issued.key,
                    issued.certificate,
                    list(issued.chain),
                    serialization.BestAvailableEncryption(certs.p12_password),
                )
                _write_private(p12_path, blob)
                _write_public(stamp, fingerprint)
        return issued, p12_path, certs.p12_password

    def _leaf(
        self,
        folder: str,
        stem: str,
        params: dict[str, Any],
        subject: x509.Name,
        issuer: Issued,
        crl_name: str,
        extend: Callable[[x509.CertificateBuilder], x509.CertificateBuilder],
        validity: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
    ) -> Issued:
        """Load the leaf `folder/stem` if still right for `params` and `issuer`, else (re)issue it."""
        with self._locked():
            where = ensure_private_dir(self._dir / folder)
            key = _key_at(where / f"{stem}.key.pem")
            cert_path, params_path = where / f"{stem}.cert.pem", where / f"{stem}.params.json"
            wanted = json.dumps({**params, "issuer_ski": _ski_hex(issuer.certificate)}, sort_keys=True)
            now = _now()
            if cert_path.exists() and params_path.exists() and params_path.read_text() == wanted:
                cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                still_valid = validity[1] is not None or cert.not_valid_after_utc > now
                if still_valid and _same_key(cert, key):
                    return Issued(cert, key, (issuer.certificate, *issuer.chain))
            not_before = validity[0] or now - _SKEW
            not_after = validity[1] or now + dt.timedelta(days=_LEAF_DAYS)
            builder = _builder(subject, issuer, key.public_key(), not_before, not_after)
            builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            builder = builder.add_extension(_policies(any_policy=False), critical=False)
            builder = builder.add_extension(_crl_points(crl_name), critical=False)
            cert = extend(builder).sign(issuer.key, hashes.SHA256())
            _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
            _write_public(params_path, wanted)
            return Issued(cert, key, (issuer.certificate, *issuer.chain))


def _rdn(oid: ObjectIdentifier, value: str) -> x509.RelativeDistinguishedName:
    return x509.RelativeDistinguishedName([x509.NameAttribute(oid, value)])


def _check_component(value: str) -> None:
    # These strings become folder names: refuse anything that could leave the PKI folder.
    if not value or value.startswith(".") or any(ch in value for ch in ("/", "\\", "\x00")):
        raise ValueError(f"identifier {value!r} must be non-empty, without path separators, not starting with a dot")


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _crl_points(name: str) -> x509.CRLDistributionPoints:
    point = x509.DistributionPoint([x509.UniformResourceIdentifier(f"{_CRL_BASE}{name}.crl")], None, None, None)
    return x509.CRLDistributionPoints([point])


def _builder(
    subject: x509.Name,
    issuer: Issued | None,
    public_key: rsa.RSAPublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """Common fields: names, serial, validity, SKI and AKI (OpenSSL strict mode wants both)."""
    issuer_name = issuer.certificate.subject if issuer else subject
    authority_public = issuer.key.public_key() if issuer else public_key
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_public), critical=False)
    )


def _load_or_issue_ca(
    path: Path, cn: str, key: rsa.RSAPrivateKey, issuer: Issued | None, now: dt.datetime
) -> x509.Certificate:
    """A CA certificate: loaded when it matches key, issuer and is valid; otherwise issued again."""
    if path.exists():
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        issuer_cert = issuer.certificate if issuer else cert
        matches = _same_key(cert, key) and cert.issuer == issuer_cert.subject and cert.not_valid_after_utc > now
        if matches:
            with contextlib.suppress(Exception):
                cert.verify_directly_issued_by(issuer_cert)
                return cert
    # Back-dated by years so that deliberately expired test leaves still fall inside the CA's validity.
    not_before = now - dt.timedelta(days=4 * 365)
    builder = _builder(_ca_name(cn), issuer, key.public_key(), not_before, now + dt.timedelta(days=_CA_YEARS * 365))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else None), critical=True)
    builder = builder.add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
    builder = builder.add_extension(_policies(any_policy=True), critical=False)
    if issuer is not None:
        builder = builder.add_extension(_crl_points("ACR-ST-TEST"), critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    _write_public(path, cert.public_bytes(serialization.Encoding.PEM))
    return cert


@contextlib.contextmanager
def _file_lock(directory: Path) -> Iterator[None]:
    """An exclusive inter-process lock on the PKI folder while files are created."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(directory / ".lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
