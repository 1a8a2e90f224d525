"""The INSi simulator's HTTPS server: mutual TLS 1.2 on loopback, one SOAP endpoint `/lps`.

The path is the real service's (`https://qualiflps.services-ps.ameli.fr/lps` with a CPS,
`https://qualiflps-services-ps-tlsm.ameli.fr/lps` with an establishment certificate: `padoa/tlsi-ins`);
one simulator serves both ways in. TLS as the DMP simulator's (`server_ssl_context`): a client
certificate of the test IGC-Santé is required. Parsing, signature checks and schema validation run in a
worker thread; the event loop only does I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import socket
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509

from bridge.sim.dmp.server import server_ssl_context
from bridge.sim.dmp.trust import TrustStore
from bridge.sim.insi.requests import RequestError, parse_request
from bridge.sim.insi.service import InsiFaultReply, InsiPolicy, answer, authenticate, build_fault, request_fault
from bridge.xmlsafe import XmlInputError

__all__ = ["INSI_PATH", "InsiSimConfig", "InsiSimulator"]

log = logging.getLogger(__name__)

INSI_PATH = "/lps"
_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"


@dataclass(frozen=True)
class InsiSimConfig:
    """Where the simulator listens and its TLS material."""

    cert_file: Path
    key_file: Path
    ca_file: Path
    host: str = "127.0.0.1"
    port: int = 0
    policy: InsiPolicy = field(default_factory=InsiPolicy)


class InsiSimulator:
    """A running (or startable) INSi simulator; `url` once started."""

    def __init__(self, config: InsiSimConfig) -> None:
        self._config = config
        self._trust = TrustStore.from_pem_file(config.ca_file)
        self.policy = config.policy
        self._runner: web.AppRunner | None = None
        self._port = 0
        #: Requests answered, by outcome ("00", "01", "02", or the fault's code): tests and diagnostics.
        self.seen: list[str] = []
        #: The raw bodies received, newest last (tests check them against the official sample).
        self.requests: list[bytes] = []

    @property
    def url(self) -> str:
        """The service URL, e.g. https://127.0.0.1:8444/lps."""
        return f"https://{self._config.host}:{self._port}{INSI_PATH}"

    def set_unavailable(self, value: bool) -> None:
        """Answer every request with a Receiver fault (True) or normally (False)."""
        self.policy = dataclasses.replace(self.policy, unavailable=value)

    async def start(self) -> None:
        """Bind and serve (the TLS handshake refuses clients without a certificate of the test CA)."""
        app = web.Application(client_max_size=256 * 1024)
        app.router.add_post(INSI_PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self._config.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._config.host, self._config.port))
        self._port = int(sock.getsockname()[1])
        ctx = server_ssl_context(self._config.cert_file, self._config.key_file, self._config.ca_file)
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        peer: x509.Certificate | None = None
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            peer = x509.load_der_x509_certificate(der) if der else None
        content_type = request.headers.get("Content-Type", "")
        status, payload = await asyncio.to_thread(self._process, content_type, body, peer)
        return web.Response(status=status, body=payload, headers={"Content-Type": _CONTENT_TYPE})

    def _process(self, content_type: str, body: bytes, peer: x509.Certificate | None) -> tuple[int, bytes]:
        self.requests.append(body)
        message_id: str | None = None
        try:
            if not content_type.startswith("application/soap+xml"):
                raise RequestError("Content-Type application/soap+xml attendu (SOAP 1.2)")
            parsed = parse_request(body)
            message_id = parsed.message_id
            authenticate(parsed, peer, self._trust, self.policy, dt.datetime.now(dt.UTC))
            payload = answer(parsed, self.policy)
            outcome = payload.split(b"<ns2:CodeCR>")[1][:2].decode()
            self.seen.append(outcome)
            log.info("INSi sim -> CR %s", outcome)
            return 200, payload
        except (RequestError, XmlInputError) as exc:
            fault = request_fault(RequestError(str(exc)))
        except InsiFaultReply as exc:
            fault = exc
        except Exception:
            log.exception("INSi simulator internal error")
            fault = InsiFaultReply("Receiver", "siram_500", "SIM_INTERNAL", "Erreur interne du simulateur")
        self.seen.append(fault.error_code)
        log.info("INSi sim -> fault %s", fault.error_code)
        return fault.status, build_fault(fault, message_id)
