"""TLS 1.2 client authentication with a sign-only key, against real OpenSSL peers on loopback.

Peers: Python's `ssl` server (CERT_REQUIRED against the test CA) and `openssl s_server -Verify 1
-tls1_2`. The client key is a `CountingKey` (the RSAPrivateKey interface the card-backed key
implements), so the number of "card" signatures is measured, not assumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.crypto.tls_connection import TlsConnection
from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint
from bridge.crypto.tls_errors import TlsError
from bridge.crypto.tls_handshake import DMP_CIPHER_SUITES
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.http import HttpsClient
from bridge.errors import BridgeError, ErrorCode
from tests.tls_peers import CountingKey, MiniPki, SslHttpServer, openssl_s_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> MiniPki:
    return MiniPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> MiniPki:
    return MiniPki(tmp_path_factory.mktemp("other-pki"), root_cn="SOME OTHER ROOT")


@pytest.fixture
def server(pki: MiniPki) -> Iterator[SslHttpServer]:
    with SslHttpServer(pki) as srv:
        yield srv


def endpoint(pki: MiniPki, port: int, key: CountingKey, **kw: object) -> TlsEndpoint:
    options: dict[str, object] = {"server_name": "localhost", "trust": ServerTrust((pki.root,))}
    options.update(kw)
    return TlsEndpoint(
        "127.0.0.1",
        port,
        identity=ClientIdentity((pki.client.certificate,), key),
        **options,  # type: ignore[arg-type]
    )


async def test_python_ssl_server_sees_the_client_certificate(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    async with HttpsClient(endpoint(pki, server.port, key)) as client:
        response = await client.get("/status")
    assert response.status == 200
    seen = json.loads(response.body)
    assert seen["client"] == (
        "countryName=FR,organizationName=TEST,organizationalUnitName=899700000000,commonName=DR TEST CPS"
    )
    assert server.stats.client_subjects == [seen["client"]]
    assert key.sign_calls == 1
    # The card is asked for PKCS#1 v1.5 over a SHA-256 digest (the DigestInfo is built by the card key).
    assert key.calls == [("PKCS1v15", 32)]
    info = client.handshakes[0]
    assert info.cipher_suite in DMP_CIPHER_SUITES.values()
    assert info.client_authenticated and not info.resumed
    assert info.server_chain[0].subject.rfc4514_string() == "CN=localhost,O=TEST,C=FR"


async def test_openssl_s_server_sees_the_client_certificate(pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with openssl_s_server(pki) as (port, _proc):
        async with HttpsClient(endpoint(pki, port, key)) as client:
            response = await client.get("/")
    page = response.body.decode()
    assert response.status == 200
    assert "Verify return code: 0 (ok)" in page
    assert "Subject: C=FR, O=TEST, OU=899700000000, CN=DR TEST CPS" in page
    # What both ends have in common is exactly the DMP's list (PDT-INF-579v4).
    common = page.split("Ciphers common between both SSL end points:\n", 1)[1].split("Signature Algorithms", 1)[0]
    assert sorted(common.split()) == [
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
    assert "Protocol  : TLSv1.2" in page
    assert key.sign_calls == 1


@pytest.mark.parametrize(
    ("openssl_cipher", "expected"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        ("ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    ],
)
async def test_each_dmp_suite_works_with_openssl(pki: MiniPki, openssl_cipher: str, expected: str) -> None:
    key = CountingKey(pki.client.key)
    with openssl_s_server(pki, ("-cipher", openssl_cipher)) as (port, _proc):
        async with HttpsClient(endpoint(pki, port, key)) as client:
            response = await client.get("/")
    assert client.handshakes[0].cipher_suite == expected
    assert f"Cipher is {openssl_cipher}" in response.body.decode()


async def test_a_server_without_a_dmp_suite_is_refused(pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with openssl_s_server(pki, ("-cipher", "ECDHE-RSA-AES128-SHA")) as (port, _proc), pytest.raises(TlsError) as err:
        async with HttpsClient(endpoint(pki, port, key)) as client:
            await client.get("/")
    assert err.value.code is ErrorCode.DMP_UNREACHABLE
    assert "refused the TLS handshake" in (err.value.detail or "")
    assert key.sign_calls == 0


async def test_untrusted_server_is_refused_before_any_card_signature(
    pki: MiniPki, other_pki: MiniPki, server: SslHttpServer
) -> None:
    key = CountingKey(pki.client.key)
    client = HttpsClient(endpoint(pki, server.port, key, trust=ServerTrust((other_pki.root,))))
    with pytest.raises(TlsError) as err:
        await client.get("/")
    await client.aclose()
    assert err.value.code is ErrorCode.DMP_UNREACHABLE
    assert (err.value.detail or "").startswith("server certificate not trusted")
    assert key.sign_calls == 0  # the card was never asked
    assert server.stats.requests == 0


async def test_host_name_mismatch_is_refused(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    client = HttpsClient(endpoint(pki, server.port, key, server_name="lps2.dmp.gouv.fr"))
    with pytest.raises(TlsError) as err:
        await client.get("/")
    await client.aclose()
    assert err.value.detail == "host name mismatch: certificate is for localhost, 127.0.0.1"
    assert key.sign_calls == 0


async def test_the_ip_address_in_the_certificate_is_accepted(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    async with HttpsClient(endpoint(pki, server.port, key, server_name=None)) as client:
        assert (await client.get("/")).status == 200


async def test_server_refusing_our_certificate_is_a_clear_error(pki: MiniPki, other_pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with SslHttpServer(pki, client_ca=other_pki.ca_path) as srv:
        client = HttpsClient(endpoint(pki, srv.port, key))
        with pytest.raises(TlsError) as err:
            await client.get("/")
        await client.aclose()
    assert "refused the TLS handshake" in (err.value.detail or "")
    assert key.sign_calls == 1


@pytest.mark.parametrize("code", [ErrorCode.PIN_INCORRECT, ErrorCode.CARD_REMOVED])
async def test_a_card_error_surfaces_unchanged_and_promptly(
    pki: MiniPki, server: SslHttpServer, code: ErrorCode
) -> None:
    failure = BridgeError(code, "from the card")
    key = CountingKey(pki.client.key, fail_with=failure)
    client = HttpsClient(endpoint(pki, server.port, key))
    with pytest.raises(BridgeError) as err:
        await asyncio.wait_for(client.post("/x", b"<soap/>", "application/soap+xml"), 10)
    assert err.value is failure
    assert key.sign_calls == 1
    # The connection is not left half-open: the next call makes a new handshake (and asks the card again).
    key.fail_with = None
    assert (await asyncio.wait_for(client.get("/"), 10)).status == 200
    assert key.sign_calls == 2
    await client.aclose()


async def test_a_slow_card_signature_does_not_block_the_event_loop(pki: MiniPki, server: SslHttpServer) -> None:
    gate = threading.Event()
    key = CountingKey(pki.client.key, gate=gate)
    async with HttpsClient(endpoint(pki, server.port, key)) as client:
        request = asyncio.create_task(client.get("/"))
        # The handshake is now waiting for the "card" on the client's worker thread...
        assert await asyncio.to_thread(key.signing.wait, 10)
        # ...while the loop keeps running other work.
        ticks = 0
        for _ in range(10):
            await asyncio.sleep(0)
            ticks += 1
        assert not request.done() and ticks == 10
        gate.set()  # the card answers
        response = await asyncio.wait_for(request, 10)
    assert response.status == 200 and key.sign_calls == 1


async def test_keep_alive_twenty_posts_one_signature(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    async with HttpsClient(endpoint(pki, server.port, key)) as client:
        for i in range(20):
            body = f"<Envelope n='{i}'/>".encode()
            response = await client.post("/si-dmp-server/v2/services/registry", body, "application/soap+xml")
            assert json.loads(response.body)["sha256"] == hashlib.sha256(body).hexdigest()
    assert key.sign_calls == 1
    assert server.stats.handshakes == 1
    assert server.stats.requests == 20


async def test_reconnect_resumes_without_a_new_signature(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    sessions = TlsSessionCache()
    async with HttpsClient(endpoint(pki, server.port, key), sessions=sessions) as client:
        await client.get("/")
    async with HttpsClient(endpoint(pki, server.port, key), sessions=sessions) as client:
        response = await client.get("/")
    assert json.loads(response.body)["resumed"] is True
    assert client.handshakes[0].resumed
    assert client.handshakes[0].client_authenticated
    assert key.sign_calls == 1
    assert server.stats.handshakes == 2 and server.stats.resumed == 1


async def test_a_session_is_never_resumed_for_another_card(pki: MiniPki, server: SslHttpServer) -> None:
    sessions = TlsSessionCache()
    first = CountingKey(pki.client.key)
    async with HttpsClient(endpoint(pki, server.port, first), sessions=sessions) as client:
        await client.get("/")
    other = pki.issue_client("DR OTHER CPS")
    second = CountingKey(other.key)
    other_endpoint = TlsEndpoint(
        "127.0.0.1",
        server.port,
        ServerTrust((pki.root,)),
        ClientIdentity((other.certificate,), second),
        server_name="localhost",
    )
    async with HttpsClient(other_endpoint, sessions=sessions) as client:
        response = await client.get("/")
    assert json.loads(response.body)["client"].endswith("commonName=DR OTHER CPS")
    assert not client.handshakes[0].resumed
    assert (first.sign_calls, second.sign_calls) == (1, 1)
    # After a logout / card removal nothing is resumed any more.
    sessions.clear()
    async with HttpsClient(endpoint(pki, server.port, first), sessions=sessions) as client:
        await client.get("/")
    assert not client.handshakes[0].resumed and first.sign_calls == 2


async def test_server_closing_keep_alive_is_transparent_and_resumed(pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with SslHttpServer(pki, close_after=3, chunked=True) as srv:
        async with HttpsClient(endpoint(pki, srv.port, key)) as client:
            for i in range(7):
                body = b"x" * (i * 1000)
                response = await client.post("/", body, "application/octet-stream")
                assert json.loads(response.body)["length"] == len(body)
    assert key.sign_calls == 1
    assert srv.stats.handshakes == 3 and srv.stats.resumed == 2
    assert [h.resumed for h in client.handshakes] == [False, True, True]


@pytest.mark.parametrize("resumption", ["ticket", "session-id"])
async def test_idle_connection_closed_by_server_is_reopened_resumed(pki: MiniPki, resumption: str) -> None:
    # openssl s_server -www answers once then closes; -no_ticket makes it resume by session ID instead.
    key = CountingKey(pki.client.key)
    extra = ("-no_ticket",) if resumption == "session-id" else ()
    with openssl_s_server(pki, extra) as (port, _proc):
        async with HttpsClient(endpoint(pki, port, key)) as client:
            for _ in range(3):
                assert (await client.get("/")).status == 200
    assert key.sign_calls == 1
    assert [h.resumed for h in client.handshakes] == [False, True, True]


async def test_read_dropped_by_a_closing_server_is_sent_again_once(pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with SslHttpServer(pki, drop_after=1) as srv:
        async with HttpsClient(endpoint(pki, srv.port, key)) as client:
            first = await client.post("/", b"one", "text/plain", idempotent=True)
            second = await client.post("/", b"two", "text/plain", idempotent=True)
    assert (
        json.loads(first.body)["length"] == 3
        and json.loads(second.body)["sha256"] == hashlib.sha256(b"two").hexdigest()
    )
    # Request 2 reached a closing connection, was dropped, then sent again on a resumed connection.
    assert srv.stats.requests == 3
    assert [h.resumed for h in client.handshakes] == [False, True]
    assert key.sign_calls == 1


async def test_a_write_without_answer_is_never_sent_again(pki: MiniPki) -> None:
    # The server read the whole second request and closed without answering: it may have applied it.
    key = CountingKey(pki.client.key)
    with SslHttpServer(pki, drop_after=1) as srv:
        async with HttpsClient(endpoint(pki, srv.port, key)) as client:
            await client.post("/", b"one", "text/plain")
            with pytest.raises(BridgeError) as err:
                await client.post("/", b"two", "text/plain")
    assert err.value.code is ErrorCode.DMP_OUTCOME_UNKNOWN
    assert srv.stats.requests == 2  # the old client sent it a third time behind the caller's back


async def test_a_fresh_connection_failing_is_not_retried(pki: MiniPki) -> None:
    key = CountingKey(pki.client.key)
    with SslHttpServer(pki, drop_after=0) as srv:
        async with HttpsClient(endpoint(pki, srv.port, key)) as client:
            with pytest.raises(TlsError, match="closed the connection without answering"):
                await client.post("/", b"one", "text/plain", idempotent=True)
            with pytest.raises(BridgeError) as err:
                await client.post("/", b"two", "text/plain")
    assert err.value.code is ErrorCode.DMP_OUTCOME_UNKNOWN
    assert srv.stats.requests == 2


@pytest.mark.parametrize("shape", ["bytes", "parts", "file"])
async def test_ten_megabyte_post_arrives_intact(
    pki: MiniPki, server: SslHttpServer, tmp_path: Path, shape: str
) -> None:
    payload = hashlib.shake_256(b"dmp").digest(10 * 1024 * 1024 + 7)
    body: object
    if shape == "bytes":
        body = payload
    elif shape == "parts":
        body = [b"--MIME\r\nContent-Type: application/xop+xml\r\n\r\n", memoryview(payload), b"\r\n--MIME--\r\n"]
    else:
        path = tmp_path / "doc.bin"
        path.write_bytes(payload)
        body = open(path, "rb")  # noqa: SIM115  (closed below)
    key = CountingKey(pki.client.key)
    try:
        async with HttpsClient(endpoint(pki, server.port, key)) as client:
            response = await client.post("/repository", body, "multipart/related")  # type: ignore[arg-type]
    finally:
        if isinstance(body, io.BufferedReader):
            body.close()
    seen = json.loads(response.body)
    expected = payload if shape != "parts" else b"".join(bytes(p) for p in body)  # type: ignore[union-attr]
    assert seen["length"] == len(expected)
    assert seen["sha256"] == hashlib.sha256(expected).hexdigest()


async def test_unreachable_port_is_dmp_unreachable(pki: MiniPki) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    key = CountingKey(pki.client.key)
    with pytest.raises(TlsError) as err:
        async with HttpsClient(endpoint(pki, port, key)) as client:
            await client.get("/")
    assert err.value.code is ErrorCode.DMP_UNREACHABLE
    assert "cannot connect" in (err.value.detail or "")


async def test_a_silent_server_times_out(pki: MiniPki) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        stop.wait(10)  # accept and say nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    key = CountingKey(pki.client.key)
    try:
        client = HttpsClient(endpoint(pki, listener.getsockname()[1], key, io_timeout=0.5))
        with pytest.raises(TlsError) as err:
            await asyncio.wait_for(client.get("/"), 10)
        await client.aclose()
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in accepted:
            conn.close()
    assert err.value.code is ErrorCode.TIMEOUT
    assert err.value.extra["stage"] == "tls-handshake"


def test_blocking_connection_reports_what_was_negotiated(pki: MiniPki, server: SslHttpServer) -> None:
    key = CountingKey(pki.client.key)
    conn = TlsConnection.open(endpoint(pki, server.port, key))
    try:
        conn.send_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
        data = b""
        while b"}" not in data:
            data += conn.recv()
    finally:
        conn.close()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert conn.closed
