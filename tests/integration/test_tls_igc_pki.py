"""TLS client authentication with the IGC-Santé-shaped test PKI (root + intermediates), and with a virtual CPS3.

The server certificate comes from `TestPki.server()` (issued by an intermediate, so the client must
build the chain), the client is either the establishment's AUTH_CLI PKCS#12 (indirect mode) or a
`CardRsaPrivateKey` — with a software signer, then for real on a virtual CPS3 card through pcscd+vpcd.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.crypto.card_key import CardRsaPrivateKey
from bridge.crypto.pki import TestPki
from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint
from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp.http import HttpsClient
from bridge.errors import BridgeError, ErrorCode
from tests.tls_peers import CountingKey, ServerFiles, SslHttpServer

pytestmark = pytest.mark.timeout(90)
T = TypeVar("T")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.load_or_create(tmp_path_factory.mktemp("igc"))


@pytest.fixture(scope="module")
def server_files(pki: TestPki, tmp_path_factory: pytest.TempPathFactory) -> ServerFiles:
    issued = pki.server("localhost")
    folder = tmp_path_factory.mktemp("server")
    (folder / "fullchain.pem").write_bytes(issued.fullchain_pem())  # leaf + ORGANISATIONS intermediate
    (folder / "key.pem").write_bytes(issued.key_pem())
    return ServerFiles(folder / "fullchain.pem", folder / "key.pem", pki.ca_bundle_path())


@pytest.fixture
def server(server_files: ServerFiles) -> Iterator[SslHttpServer]:
    with SslHttpServer(server_files) as srv:
        yield srv


def person_auth(pki: TestPki):  # type: ignore[no-untyped-def]
    return pki.person(
        "tls-gp",
        last_name="MEDECIN",
        first_name="PAUL",
        national_id="810100000001",
        profession_code="10",
        specialty_code="SM26",
        card_type="CPS",
    ).auth


async def test_card_key_with_the_igc_like_chain(pki: TestPki, server: SslHttpServer) -> None:
    auth = person_auth(pki)
    card_calls: list[tuple[int, str]] = []

    def sign_digest(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        # What the CPS3 does with INTERNAL AUTHENTICATE: PKCS#1 v1.5 over DigestInfo(digest).
        card_calls.append((len(digest), algorithm.name))
        return auth.key.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))

    card_key = CardRsaPrivateKey(auth.key.public_key(), sign_digest, label="CPS authentication")
    identity = ClientIdentity((auth.certificate, *auth.chain[:-1]), card_key)  # leaf + PERSONNES intermediate
    # Trust only the root: the server's intermediate comes from the handshake.
    endpoint = TlsEndpoint("127.0.0.1", server.port, ServerTrust((pki.root,)), identity, server_name="localhost")
    async with HttpsClient(endpoint) as client:
        for _ in range(5):
            response = await client.post("/patients", b"<soap/>", "application/soap+xml")
    assert "commonName=810100000001" in json.loads(response.body)["client"]
    assert card_calls == [(32, "sha256")]
    chain = [c.subject.rfc4514_string() for c in client.handshakes[0].server_chain]
    assert chain[0] == "CN=localhost,O=DMP-BRIDGE SANDBOX,C=FR"
    assert "TEST AC IGC-SANTE STANDARD ORGANISATIONS" in chain[1]


async def test_establishment_auth_cli_pkcs12(pki: TestPki, server: SslHttpServer) -> None:
    establishment = pki.establishment("10B0127189", "CLINIQUE DE TEST")
    identity = ClientIdentity.from_pkcs12(establishment.auth_cli_p12.read_bytes(), establishment.p12_password)
    trust = ServerTrust.from_pem_file(pki.ca_bundle_path())
    endpoint = TlsEndpoint("127.0.0.1", server.port, trust, identity, server_name="localhost")
    async with HttpsClient(endpoint) as client:
        response = await client.get("/")
    seen = json.loads(response.body)["client"]
    assert "organizationalUnitName=10B0127189" in seen and "commonName=DMP-BRIDGE AUTH_CLI" in seen


@pytest.mark.pcsc
async def test_virtual_cps3_card_authenticates_the_tls_connection(
    pki: TestPki, server: SslHttpServer, slots: list[object]
) -> None:
    from bridge.cards.cps3 import Cps3Card, card_keys
    from bridge.pcsc.channel import CardChannel
    from bridge.pcsc.connection import CardConnection
    from bridge.sim.cps3 import create_card
    from bridge.sim.vpcd import VirtualSlot
    from tests.conftest import wait_card_state

    reader = "Virtual PCD 00 00"
    slot = slots[0]
    assert isinstance(slot, VirtualSlot)
    await asyncio.to_thread(wait_card_state, reader, False)
    slot.insert(await asyncio.to_thread(create_card, "gp", pki))
    await asyncio.to_thread(wait_card_state, reader, True)
    connection = await CardConnection.open(reader)
    try:
        session = Cps3Card()

        def runner(fn: Callable[[CardChannel], T]) -> T:
            return connection.submit(fn).result(30)

        def login() -> ClientIdentity:
            auth_key, _ = card_keys(runner, session)
            auth_cert, _ = runner(session.read_certificates)
            runner(lambda ch: session.verify_pin(ch, bytearray(b"1234")))
            return ClientIdentity((auth_cert, pki.persons_ca.certificate), CountingKey(auth_key))

        identity = await asyncio.to_thread(login)
        key = identity.key
        assert isinstance(key, CountingKey)
        sessions = TlsSessionCache()
        endpoint = TlsEndpoint("127.0.0.1", server.port, ServerTrust((pki.root,)), identity, server_name="localhost")
        async with HttpsClient(endpoint, sessions=sessions) as client:
            for _ in range(20):
                response = await client.post("/registry", b"<soap/>", "application/soap+xml")
        assert response.status == 200
        assert key.sign_calls == 1  # one INTERNAL AUTHENTICATE for 20 calls
        async with HttpsClient(endpoint, sessions=sessions) as client:
            await client.get("/")
        assert client.handshakes[0].resumed and key.sign_calls == 1

        # The card is pulled: a new full handshake asks it to sign and the card's error comes out as itself.
        slot.remove()
        await asyncio.to_thread(wait_card_state, reader, False)
        sessions.clear()
        client = HttpsClient(endpoint, sessions=sessions)
        with pytest.raises(BridgeError) as err:
            await asyncio.wait_for(client.get("/"), 30)
        await client.aclose()
        assert err.value.code is ErrorCode.CARD_REMOVED
        assert key.sign_calls == 2
    finally:
        await connection.close()
