"""Benchmark of the card-capable TLS client (tlslite-ng + cryptography record layer), in one run.

(a) card signatures per 20 DMP-like SOAP calls on one keep-alive connection (target: 1), and per
    reconnect (target: 0, session resumption);
(b) upload throughput of a 10 MB body, our client vs the stdlib `ssl` client (software key), both to
    the same local OpenSSL-backed server; prints MB/s for both and the ratio (target >= 0.15).

Run: `python -m tests.bench.bench_tls` from the repository root.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.http import HttpsClient
from tests.tls_peers import CountingKey, MiniPki, SslHttpServer, openssl_s_server

BODY_MB = 10
ROUNDS = 5


def _endpoint(pki: MiniPki, port: int, key: CountingKey) -> TlsEndpoint:
    return TlsEndpoint(
        "127.0.0.1",
        port,
        ServerTrust((pki.root,)),
        ClientIdentity((pki.client.certificate,), key),
        server_name="localhost",
    )


async def signatures_per_calls(pki: MiniPki, port: int) -> tuple[int, int, float]:
    """(signatures for 20 calls on one connection, extra signatures for a resumed reconnect, ms/call)."""
    key = CountingKey(pki.client.key)
    sessions = TlsSessionCache()
    soap = b"<soap:Envelope>" + b"x" * 4000 + b"</soap:Envelope>"
    async with HttpsClient(_endpoint(pki, port, key), sessions=sessions) as client:
        await client.connect()
        start = time.perf_counter()
        for _ in range(20):
            response = await client.post("/si-dmp-server/v2/services/registry", soap, "application/soap+xml")
            assert response.status == 200
        per_call = (time.perf_counter() - start) / 20 * 1000
    first = key.sign_calls
    async with HttpsClient(_endpoint(pki, port, key), sessions=sessions) as client:
        await client.get("/")
        assert client.handshakes[0].resumed
    return first, key.sign_calls - first, per_call


async def ours_upload(pki: MiniPki, port: int, body: bytes) -> float:
    """Seconds to POST `body` and get the reply, on an already established connection."""
    key = CountingKey(pki.client.key)
    async with HttpsClient(_endpoint(pki, port, key)) as client:
        await client.connect()
        start = time.perf_counter()
        response = await client.post("/upload", body, "application/octet-stream")
        elapsed = time.perf_counter() - start
    assert json.loads(response.body)["sha256"] == hashlib.sha256(body).hexdigest()
    return elapsed


def stdlib_upload(pki: MiniPki, port: int, body: bytes) -> float:
    """The same exchange with Python's ssl module and a software key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=str(pki.ca_path))
    ctx.load_cert_chain(pki.client_cert_path, pki.client_key_path)
    with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        head = f"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        start = time.perf_counter()
        tls.sendall(head)
        tls.sendall(body)
        data = b""
        while not data.endswith(b"}"):
            data += tls.recv(65536)
        elapsed = time.perf_counter() - start
    assert hashlib.sha256(body).hexdigest().encode() in data
    return elapsed


def raw_send_rates(pki: MiniPki, body: bytes) -> tuple[float, float]:
    """MB/s pushing `body` as application data into `openssl s_server` (a C sink, not the bottleneck)."""
    from bridge.crypto.tls_connection import TlsConnection

    ours, stdlib = [], []
    with openssl_s_server(pki, ("-naccept", str(2 * ROUNDS))) as (port, _proc):
        for _ in range(ROUNDS):
            conn = TlsConnection.open(_endpoint(pki, port, CountingKey(pki.client.key)))
            start = time.perf_counter()
            conn.send_all(body)
            ours.append(time.perf_counter() - start)
            conn.close()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_verify_locations(cafile=str(pki.ca_path))
            ctx.load_cert_chain(pki.client_cert_path, pki.client_key_path)
            with (
                socket.create_connection(("127.0.0.1", port)) as raw,
                ctx.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                start = time.perf_counter()
                tls.sendall(body)
                stdlib.append(time.perf_counter() - start)
    mb = len(body) / 1024 / 1024
    return mb / statistics.median(ours), mb / statistics.median(stdlib)


def record_cipher_rates() -> tuple[float, float]:
    """MB/s sealing 16 KiB records: our cryptography AES-GCM vs tlslite's default pure-Python one."""
    from tlslite.utils.cipherfactory import createAESGCM

    from bridge.crypto.tls_aead import AeadCipher

    key, nonce, aad, record = bytes(16), bytes(12), bytes(13), bytes(16384)
    ours = AeadCipher(key)
    start = time.perf_counter()
    for _ in range(640):  # 10 MiB
        ours.seal(nonce, record, aad)
    ours_rate = 10 / (time.perf_counter() - start)
    python = createAESGCM(bytearray(key), ["python"])
    start = time.perf_counter()
    for _ in range(8):  # 128 KiB is enough to time it
        python.seal(bytearray(nonce), bytearray(record), bytearray(aad))
    python_rate = 0.125 / (time.perf_counter() - start)
    return ours_rate, python_rate


def main() -> int:
    """Run both measurements and print the figures."""
    body = hashlib.shake_256(b"bench").digest(BODY_MB * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        pki = MiniPki(Path(tmp))
        with SslHttpServer(pki) as server:
            signed, resumed_signed, per_call = asyncio.run(signatures_per_calls(pki, server.port))
            print(f"(a) card signatures for 20 SOAP calls on one connection: {signed} (target 1)")
            print(f"    extra card signatures for a reconnect (resumed session): {resumed_signed} (target 0)")
            print(f"    mean time per 4 KB SOAP call on the kept-alive connection: {per_call:.2f} ms")
            ours, stdlib = [], []
            for _ in range(ROUNDS):  # interleaved so both see the same machine load
                ours.append(asyncio.run(ours_upload(pki, server.port, body)))
                stdlib.append(stdlib_upload(pki, server.port, body))
    ours_rate = BODY_MB / statistics.median(ours)
    std_rate = BODY_MB / statistics.median(stdlib)
    ratio = ours_rate / std_rate
    print(f"(b) {BODY_MB} MB upload, median of {ROUNDS} (includes the server reading and hashing the body):")
    print(f"    ours (tlslite-ng + cryptography AEAD): {ours_rate:8.1f} MB/s")
    print(f"    stdlib ssl (OpenSSL):                  {std_rate:8.1f} MB/s")
    print(f"    ratio ours/stdlib: {ratio:.2f} (target >= 0.15) -> {'OK' if ratio >= 0.15 else 'BELOW TARGET'}")
    with tempfile.TemporaryDirectory() as tmp:
        raw_ours, raw_std = raw_send_rates(MiniPki(Path(tmp)), body)
    print(f"(b') {BODY_MB} MB raw send into openssl s_server (C sink; socket buffers make both slightly optimistic):")
    print(f"    ours {raw_ours:8.1f} MB/s, stdlib ssl {raw_std:8.1f} MB/s, ratio {raw_ours / raw_std:.2f}")
    fast, slow = record_cipher_rates()
    print(f"(c) AES-128-GCM record sealing: cryptography {fast:.0f} MB/s vs tlslite pure Python {slow:.2f} MB/s")
    return 0 if signed == 1 and resumed_signed == 0 and ratio >= 0.15 else 1


if __name__ == "__main__":
    sys.exit(main())
