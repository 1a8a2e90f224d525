"""Real TLS peers for the TLS/HTTPS tests and benchmark: a small PKI, OpenSSL-backed servers, a counting key.

`MiniPki` issues a root, a server certificate (localhost, 127.0.0.1) and a client certificate with
`cryptography`; `SslHttpServer` is Python's `ssl` (OpenSSL) server requiring and verifying a client
certificate, speaking just enough HTTP/1.1 (keep-alive, Content-Length or chunked replies) to answer
with the SHA-256 of what it received and the client subject it saw; `openssl_s_server` runs the
`openssl` binary as a second, independent peer. `CountingKey` is an RSAPrivateKey-interface key (the
same interface as the card-backed key) that counts its signatures and can be told to fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CountingKey", "Issued", "MiniPki", "ServerFiles", "SslHttpServer", "cert_name", "openssl_s_server"]


@dataclass(frozen=True)
class Issued:
    """A certificate, its key and the chain above it (root excluded)."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...] = ()


def cert_name(cn: str, ou: str | None = None) -> x509.Name:
    """A test certificate name: C=FR, O=TEST, then OU if given, then CN."""
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST")]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class MiniPki:
    """A root CA issuing one server and one client certificate (files written under `directory`)."""

    def __init__(self, directory: Path, root_cn: str = "TEST IGC-SANTE ROOT") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        self._now = now
        self.root_key = _key()
        root_name = cert_name(root_cn)
        self.root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(self.root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.root_key.public_key()), critical=False)
            .sign(self.root_key, hashes.SHA256())
        )
        self.ca_path = directory / "ca.pem"
        self.ca_path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        self.server = self._issue(cert_name("localhost"), server=True)
        self.client = self._issue(cert_name("DR TEST CPS", ou="899700000000"), server=False)
        self.server_cert_path = directory / "server.pem"
        self.server_key_path = directory / "server.key"
        self.client_cert_path = directory / "client.pem"
        self.client_key_path = directory / "client.key"
        self._write(self.server, self.server_cert_path, self.server_key_path)
        self._write(self.client, self.client_cert_path, self.client_key_path)

    def _issue(self, subject: x509.Name, server: bool) -> Issued:
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.root.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._now - dt.timedelta(days=1))
            .not_valid_after(self._now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, server, False, False, False, False, False, False), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.root_key.public_key()), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return Issued(builder.sign(self.root_key, hashes.SHA256()), key)

    def issue_client(self, cn: str) -> Issued:
        """Another client certificate from the same root (e.g. a second practitioner's card)."""
        return self._issue(cert_name(cn, ou="899700000001"), server=False)

    @staticmethod
    def _write(issued: Issued, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            issued.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def client_p12(self, password: bytes) -> bytes:
        """The client identity as PKCS#12 (like an AUTH_CLI file)."""
        from cryptography.hazmat.primitives.serialization import pkcs12

        return pkcs12.serialize_key_and_certificates(
            b"client",
            self.client.key,
            self.client.certificate,
            None,
            serialization.BestAvailableEncryption(password),
        )


@dataclass(frozen=True)
class ServerFiles:
    """What `SslHttpServer` needs from a PKI: its certificate chain and key files, and the client CA file."""

    server_cert_path: Path
    server_key_path: Path
    ca_path: Path


class CountingKey(rsa.RSAPrivateKey):
    """An RSAPrivateKey-interface key (like the card-backed one) counting sign() calls.

    `fail_with` makes sign() raise that exception (a wrong PIN, a card pulled mid-handshake).
    """

    def __init__(
        self, key: rsa.RSAPrivateKey, fail_with: BaseException | None = None, gate: threading.Event | None = None
    ) -> None:
        self._key = key
        self.fail_with = fail_with
        #: When set, sign() announces itself on `signing` and waits for `gate` (a slow card, a PIN pad).
        self.gate = gate
        self.signing = threading.Event()
        self.sign_calls = 0
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def sign(self, data: bytes, padding: padding.AsymmetricPadding, algorithm: Any) -> bytes:  # type: ignore[override]
        with self._lock:
            self.sign_calls += 1
        self.calls.append((type(padding).__name__, len(data)))
        self.signing.set()
        if self.gate is not None and not self.gate.wait(30):
            raise TimeoutError("gate never opened")
        if self.fail_with is not None:
            raise self.fail_with
        # A card accepts only PKCS#1 v1.5 over a digest: insist on it here too.
        assert isinstance(padding, type(padding)) and padding.name == "EMSA-PKCS1-v1_5"
        assert isinstance(algorithm, Prehashed)
        return self._key.sign(data, padding, algorithm)

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:  # type: ignore[override]
        raise NotImplementedError("a card authentication key does not decrypt here")

    @property
    def key_size(self) -> int:
        return self._key.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        raise NotImplementedError("not exportable")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise NotImplementedError("not exportable")

    def __copy__(self) -> CountingKey:
        return self

    def __deepcopy__(self, memo: Any) -> CountingKey:
        return self


@dataclass
class _Stats:
    handshakes: int = 0
    resumed: int = 0
    requests: int = 0
    client_subjects: list[str] = field(default_factory=list)


class SslHttpServer:
    """Python `ssl` (OpenSSL) HTTPS server on loopback, client certificate required and verified.

    Replies to any request with JSON {"sha256", "length", "client", "resumed", "path"}; `chunked=True`
    sends replies with chunked transfer-encoding; `close_after` closes each connection after that many
    requests (as a server ending keep-alive does) without a close_notify-free surprise for the client.
    """

    def __init__(
        self,
        pki: MiniPki | ServerFiles,
        client_ca: Path | None = None,
        chunked: bool = False,
        close_after: int | None = None,
        require_client_cert: bool = True,
        drop_after: int | None = None,
    ) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(pki.server_cert_path, pki.server_key_path)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
        ctx.load_verify_locations(cafile=str(client_ca or pki.ca_path))
        self.context = ctx
        self.chunked = chunked
        self.close_after = close_after
        #: After this many answered requests on a connection, read the next one and close without a word
        #: (a server ending keep-alive just as the request crosses it).
        self.drop_after = drop_after
        self.stats = _Stats()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accept = threading.Thread(target=self._serve, name="ssl-http-server", daemon=True)

    def __enter__(self) -> SslHttpServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            # close() alone does not wake a thread blocked in accept(); shutdown() does (Linux).
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._accept.join(5)
        for t in self._threads:
            t.join(5)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            self._conns.append(raw)
            t = threading.Thread(target=self._handle, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _handle(self, raw: socket.socket) -> None:
        raw.settimeout(30)
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with contextlib.closing(tls):
            self.stats.handshakes += 1
            if tls.session_reused:
                self.stats.resumed += 1
            peer = tls.getpeercert()
            subject = ",".join(f"{k}={v}" for rdn in (peer or {}).get("subject", ()) for k, v in rdn)
            self.stats.client_subjects.append(subject)
            reader = tls.makefile("rb")
            served = 0
            while True:
                try:
                    request = _read_request(reader)
                except (OSError, ValueError):
                    return
                if request is None:
                    return
                path, body = request
                if self.drop_after is not None and served >= self.drop_after:
                    self.stats.requests += 1
                    return
                served += 1
                self.stats.requests += 1
                last = self.close_after is not None and served >= self.close_after
                reply = json.dumps(
                    {
                        "sha256": hashlib.sha256(body).hexdigest(),
                        "length": len(body),
                        "client": subject,
                        "resumed": tls.session_reused,
                        "path": path,
                    }
                ).encode()
                head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                if last:
                    head += "Connection: close\r\n"
                if self.chunked:
                    half = len(reply) // 2
                    payload = (
                        f"{half:x}\r\n".encode()
                        + reply[:half]
                        + b"\r\n"
                        + f"{len(reply) - half:x}\r\n".encode()
                        + reply[half:]
                        + b"\r\n0\r\n\r\n"
                    )
                    tls.sendall(head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + payload)
                else:
                    tls.sendall(head.encode() + f"Content-Length: {len(reply)}\r\n\r\n".encode() + reply)
                if last:
                    with contextlib.suppress(OSError, ssl.SSLError):
                        tls.unwrap()
                    return


def _read_request(reader: Any) -> tuple[str, bytes] | None:
    line = reader.readline(65536)
    if not line:
        return None
    _method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = reader.readline(65536)
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode("latin-1").split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = b""
    if "content-length" in headers:
        body = reader.read(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                reader.readline()
                break
            parts.append(reader.read(size))
            reader.readline()
        body = b"".join(parts)
    return path, body


@contextlib.contextmanager
def openssl_s_server(
    pki: MiniPki | ServerFiles, extra: tuple[str, ...] = ()
) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """`openssl s_server -Verify 1 -tls1_2 -www` on a free loopback port; yields (port, process)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [
            "openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-tls1_2", "-Verify", "1",
            "-cert", str(pki.server_cert_path), "-key", str(pki.server_key_path),
            "-CAfile", str(pki.ca_path), "-www", *extra,
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        # s_server prints ACCEPT once listening: wait on that line rather than sleeping.
        for line in proc.stdout:
            if line.startswith("ACCEPT"):
                break
        else:
            raise RuntimeError("openssl s_server did not start")
        # Keep reading its output (in raw mode it echoes what it receives) so it never blocks on the pipe.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(10)
