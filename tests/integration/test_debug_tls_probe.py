"""`dmp-bridge debug tls-probe` as a process, against a real OpenSSL (Python ssl) server on loopback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.tls_peers import MiniPki, ServerFiles, SslHttpServer

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> MiniPki:
    return MiniPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: MiniPki) -> Iterator[SslHttpServer]:
    with SslHttpServer(pki) as srv:
        yield srv


def probe(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "debug", "tls-probe", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_probe_with_a_pkcs12_client_certificate(pki: MiniPki, server: SslHttpServer, tmp_path: Path) -> None:
    p12 = tmp_path / "auth_cli.p12"
    p12.write_bytes(pki.client_p12(b"s3cret"))
    url = f"https://localhost:{server.port}/si-dmp-server/v2/services"
    done = probe(url, "--cafile", str(pki.ca_path), "--cert-p12", str(p12), "--p12-password-stdin", "--json",
                 stdin=b"s3cret\n")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["http_status"] == 200
    assert report["cipher_suite"].startswith("TLS_ECDHE_RSA_WITH_")
    assert report["client_certificate"] == "CN=DR TEST CPS,OU=899700000000,O=TEST,C=FR"
    # OpenSSL sends the leaf and completes the chain from its store: leaf, then the root.
    assert [c["subject"] for c in report["server_chain"]] == [
        "CN=localhost,O=TEST,C=FR",
        "CN=TEST IGC-SANTE ROOT,O=TEST,C=FR",
    ]
    assert report["server_chain"][0]["issuer"] == "CN=TEST IGC-SANTE ROOT,O=TEST,C=FR"
    assert server.stats.client_subjects[0].endswith("commonName=DR TEST CPS")
    assert b"s3cret" not in done.stdout + done.stderr


def test_probe_text_output_and_wrong_password(pki: MiniPki, server: SslHttpServer, tmp_path: Path) -> None:
    p12 = tmp_path / "auth_cli.p12"
    p12.write_bytes(pki.client_p12(b"s3cret"))
    url = f"https://localhost:{server.port}/"
    ok = probe(url, "--cafile", str(pki.ca_path), "--cert-p12", str(p12), "--p12-password-stdin", stdin=b"s3cret\n")
    assert ok.returncode == 0, ok.stderr.decode()
    text = ok.stdout.decode()
    assert "HTTP     200 OK" in text and "server[0] CN=localhost,O=TEST,C=FR" in text
    bad = probe(url, "--cafile", str(pki.ca_path), "--cert-p12", str(p12), "--p12-password-stdin", stdin=b"nope\n")
    assert bad.returncode == 1
    assert bad.stderr.decode().strip() == "INVALID_PARAMS: PKCS#12 unreadable or wrong password"


def test_probe_untrusted_server(pki: MiniPki, server: SslHttpServer, tmp_path: Path) -> None:
    other = MiniPki(tmp_path / "other", root_cn="OTHER ROOT")
    done = probe(f"https://localhost:{server.port}/", "--cafile", str(other.ca_path))
    assert done.returncode == 1
    assert done.stderr.decode().startswith("DMP_UNREACHABLE: server certificate not trusted")


@pytest.mark.pcsc
@pytest.mark.parametrize(("pin", "expected"), [(b"1234", 0), (b"9999", 1)])
def test_probe_with_a_virtual_cps_card(slots: list[VirtualSlot], tmp_path: Path, pin: bytes, expected: int) -> None:
    igc = TestPki.load_or_create(tmp_path / "igc")
    issued = igc.server("localhost")
    (tmp_path / "fullchain.pem").write_bytes(issued.fullchain_pem())
    (tmp_path / "key.pem").write_bytes(issued.key_pem())
    files = ServerFiles(tmp_path / "fullchain.pem", tmp_path / "key.pem", igc.ca_bundle_path())
    reader = "Virtual PCD 00 00"
    wait_card_state(reader, False)
    slots[0].insert(create_card("gp", igc))
    wait_card_state(reader, True)
    with SslHttpServer(files) as srv:
        url = f"https://localhost:{srv.port}/si-dmp-server/v2/services"
        done = probe(url, "--cafile", str(igc.ca_bundle_path()), "--pin-stdin", "--json", stdin=pin + b"\n")
    # The PIN never shows (as a word: digits inside serials or timestamps are not the PIN).
    assert not re.search(rb"(?<![0-9A-Fa-f:])" + pin + rb"(?![0-9A-Fa-f])", done.stderr)
    assert done.returncode == expected, done.stderr.decode()
    if expected == 0:
        report = json.loads(done.stdout)
        assert report["http_status"] == 200
        assert "CN=810" in report["client_certificate"], report["client_certificate"]
        assert "commonName=810" in srv.stats.client_subjects[0]  # the card's authentication certificate
    else:
        assert done.stderr.decode().splitlines()[-1].startswith("PIN_INCORRECT")
        assert srv.stats.handshakes == 0  # a wrong PIN never reaches the network


@pytest.mark.pcsc
def test_expired_card_is_named_before_any_connection(slots: list[VirtualSlot], tmp_path: Path) -> None:
    """An expired CPS used to look like a network outage (the server just closes): now it is named, offline."""
    igc = TestPki.load_or_create(tmp_path / "igc")
    issued = igc.server("localhost")
    (tmp_path / "fullchain.pem").write_bytes(issued.fullchain_pem())
    (tmp_path / "key.pem").write_bytes(issued.key_pem())
    files = ServerFiles(tmp_path / "fullchain.pem", tmp_path / "key.pem", igc.ca_bundle_path())
    reader = "Virtual PCD 00 00"
    wait_card_state(reader, False)
    slots[0].insert(create_card("expired", igc))
    wait_card_state(reader, True)
    with SslHttpServer(files) as srv:
        url = f"https://localhost:{srv.port}/si-dmp-server/v2/services"
        done = probe(url, "--cafile", str(igc.ca_bundle_path()), "--pin-stdin", stdin=b"1234\n")
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1].startswith("CERTIFICATE_EXPIRED")
    assert srv.stats.handshakes == 0 and srv.stats.client_subjects == []
