"""The DMP simulator's HTTPS server: mutual TLS 1.2, SOAP endpoints, dispatch, raw exchange dumps.

Paths mirror the real service: `https://<host>:<port>/si-dmp-server/v2/services/{patients,registry,repository}`.
Parsing and checks run in a worker thread (RSA verification, SQLite); the event loop only does I/O.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from bridge.sim.dmp.access import Caller, Reply
from bridge.sim.dmp.authorizations import seed_access
from bridge.sim.dmp.constants import ENDPOINT_ACTIONS, Action, Endpoint, Transaction
from bridge.sim.dmp.errors import XdsError
from bridge.sim.dmp.faults import SimFaults
from bridge.sim.dmp.habilitations import list_authorizations, set_authorization
from bridge.sim.dmp.mime import MimeError, build_mtom, parse_body
from bridge.sim.dmp.patient_admin import registration, seed_admin
from bridge.sim.dmp.patient_lists import SEED_HOMONYMS, patient_list, pdq_search
from bridge.sim.dmp.patients import SEED_PATIENTS, patient_query
from bridge.sim.dmp.registry import stored_query, update_document_set
from bridge.sim.dmp.repository import provide_and_register, retrieve
from bridge.sim.dmp.soap import FaultCode, SoapFault, build_envelope, build_fault, parse_envelope
from bridge.sim.dmp.store import DmpStore
from bridge.sim.dmp.trust import TrustStore
from bridge.sim.dmp.vihf import VihfPolicy, check_tls_binding, check_vihf
from bridge.xmlsafe import DEFAULT_MAX_BYTES, XmlInputError, parse_xml

__all__ = ["BASE_PATH", "PATIENT_VIEW_HEADER", "DmpSimulator", "SimConfig", "server_ssl_context"]

log = logging.getLogger(__name__)

BASE_PATH = "/si-dmp-server/v2/services"
# PDT-INF-579v4, "Accès LPS": TLS 1.2 only, these four suites (OpenSSL names).
_LPS_CIPHERS_RSA = (
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
)
# Same suites with ECDSA authentication, only if the server key is EC (the IGC-Santé test PKI is RSA).
_LPS_CIPHERS_EC = _LPS_CIPHERS_RSA.replace("ECDHE-RSA-", "ECDHE-ECDSA-")
_TRANSACTIONS = {
    Action.PATIENT_QUERY: Transaction.TD0_2,
    Action.PROVIDE_AND_REGISTER: Transaction.TD2_1,
    Action.STORED_QUERY: Transaction.TD3_1,
    Action.RETRIEVE: Transaction.TD3_2,
    Action.UPDATE_DOCUMENT_SET: Transaction.TD3_3,
    Action.REGISTRATION: Transaction.TD1_3B_4,
    Action.PATIENT_LIST: Transaction.TD0_4,
    Action.PDQ_QUERY: Transaction.TD0_5,
    Action.SET_AUTHORIZATION: Transaction.TD0_3,
    Action.LIST_AUTHORIZATIONS: Transaction.TD1_6,
}
PATIENT_VIEW_HEADER = "X-DMP-Sim-Viewer"


def _update_kind(body: etree._Element) -> Transaction:
    """Which ITI-57 use: visibility (new version), deletion or archiving (for dump names and logs)."""
    rim = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
    if body.find(f".//{{{rim}}}ExtrinsicObject") is not None:
        return Transaction.TD3_3AB
    new_status = [
        v.text or "" for v in body.iterfind(f".//{{{rim}}}Slot[@name='NewStatus']/{{{rim}}}ValueList/{{{rim}}}Value")
    ]
    if any(v.strip().endswith(":Deleted") for v in new_status):
        return Transaction.TD3_3C
    return Transaction.TD3_3D if new_status else Transaction.TD3_3


def server_ssl_context(cert_file: Path, key_file: Path, ca_file: Path) -> ssl.SSLContext:
    """TLS 1.2 server context with the DMP's LPS cipher suites, requiring a client certificate from `ca_file`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    ctx.set_ciphers(_LPS_CIPHERS_RSA if isinstance(key, rsa.RSAPrivateKey) else _LPS_CIPHERS_EC)
    ctx.load_cert_chain(str(cert_file), str(key_file))
    ctx.load_verify_locations(cafile=str(ca_file))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.options |= ssl.OP_NO_RENEGOTIATION
    return ctx


@dataclass(frozen=True)
class SimConfig:
    """Where the simulator listens, keeps its data, finds its TLS material, and dumps exchanges."""

    data_dir: Path
    cert_file: Path
    key_file: Path
    ca_file: Path
    host: str = "127.0.0.1"
    port: int = 0
    dump_dir: Path | None = None
    vihf_policy: VihfPolicy = field(default_factory=VihfPolicy)
    #: JSON file of fault knobs (latency, 5xx, timeouts, lost answers), read again when it changes.
    faults_file: Path | None = None


@dataclass(frozen=True)
class _Outcome:
    status: int
    content_type: str
    payload: bytes
    transaction: Transaction


class DmpSimulator:
    """A running (or startable) simulator; `url` is the services base URL once started."""

    def __init__(self, config: SimConfig) -> None:
        self._config = config
        self._trust = TrustStore.from_pem_file(config.ca_file)
        self._store = DmpStore(config.data_dir / "dmp-sim.sqlite3")
        self._store.seed_patients(SEED_PATIENTS)
        self._store.seed_patients(SEED_HOMONYMS)
        seed_access(self._store)
        seed_admin(self._store)
        self._counter = itertools.count(1)
        self._faults = SimFaults(config.faults_file)
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def store(self) -> DmpStore:
        """The simulator's database (to seed patients or inspect in tests)."""
        return self._store

    @property
    def port(self) -> int:
        """The bound TCP port (after start)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the services, e.g. https://127.0.0.1:8443/si-dmp-server/v2/services."""
        return f"https://{self._config.host}:{self._port}{BASE_PATH}"

    async def start(self) -> None:
        """Bind and serve (TLS handshake refuses clients without a certificate of the test CA)."""
        app = web.Application(client_max_size=DEFAULT_MAX_BYTES)
        app.router.add_post(BASE_PATH + "/{service}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self._config.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._config.host, self._config.port))
        self._port = int(sock.getsockname()[1])
        ctx = server_ssl_context(self._config.cert_file, self._config.key_file, self._config.ca_file)
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()

    async def stop(self) -> None:
        """Stop serving and close the database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._store.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            endpoint = Endpoint(request.match_info["service"])
        except ValueError:
            raise web.HTTPNotFound() from None
        body = await request.read()
        knobs = self._faults.current()
        if knobs.latency:
            await asyncio.sleep(knobs.latency)
        if self._faults.draw(knobs.error_rate):
            return self._unavailable(503, "Service DMP momentanément indisponible (simulateur)")
        if self._faults.draw(knobs.timeout_rate):
            await asyncio.sleep(knobs.timeout_seconds)
            return self._unavailable(504, "Délai dépassé (simulateur)")
        drop = self._faults.draw(knobs.drop_rate)
        peer: x509.Certificate | None = None
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            peer = x509.load_der_x509_certificate(der) if der else None
        patient_view = request.headers.get(PATIENT_VIEW_HEADER, "").strip().lower() == "patient"
        content_type = request.headers.get("Content-Type", "")
        outcome = await asyncio.to_thread(self._process, endpoint, content_type, body, peer, patient_view)
        if self._config.dump_dir is not None:
            await asyncio.to_thread(self._dump, request.path, content_type, body, outcome)
        if drop and request.transport is not None:
            # Processed, then the connection is lost before the answer: the client cannot know.
            request.transport.abort()
            raise ConnectionResetError("fault knob: answer dropped")
        return web.Response(status=outcome.status, body=outcome.payload, headers={"Content-Type": outcome.content_type})

    @staticmethod
    def _unavailable(status: int, reason: str) -> web.Response:
        """A SOAP fault (DMPInternalError) with an HTTP 5xx, the request not processed (fault knobs)."""
        envelope = build_fault(SoapFault(FaultCode.INTERNAL, reason), None)
        return web.Response(
            status=status, body=envelope, headers={"Content-Type": "application/soap+xml; charset=UTF-8"}
        )

    def _dispatch(
        self, action: Action, caller: Caller, body_child: etree._Element, attachments: dict[str, bytes]
    ) -> Reply:
        handlers: dict[Action, Callable[[], Reply]] = {
            Action.PATIENT_QUERY: lambda: patient_query(self._store, caller, body_child),
            Action.PROVIDE_AND_REGISTER: lambda: provide_and_register(
                self._store,
                self._trust,
                caller,
                body_child,
                attachments,
            ),
            Action.RETRIEVE: lambda: retrieve(self._store, caller, body_child),
            Action.STORED_QUERY: lambda: stored_query(self._store, caller, body_child),
            Action.UPDATE_DOCUMENT_SET: lambda: update_document_set(self._store, caller, body_child),
            Action.REGISTRATION: lambda: registration(self._store, caller, body_child),
            Action.PATIENT_LIST: lambda: patient_list(self._store, caller, body_child),
            Action.PDQ_QUERY: lambda: pdq_search(self._store, caller, body_child),
            Action.SET_AUTHORIZATION: lambda: set_authorization(self._store, caller, body_child),
            Action.LIST_AUTHORIZATIONS: lambda: list_authorizations(self._store, caller, body_child),
        }
        return handlers[action]()

    def _process(
        self, endpoint: Endpoint, content_type: str, body: bytes, peer: x509.Certificate | None, patient_view: bool
    ) -> _Outcome:
        relates_to: str | None = None
        action: Action | None = None
        transaction = Transaction.UNKNOWN
        status = 200
        attachments: tuple[tuple[str, str, bytes], ...] = ()
        try:
            message = parse_body(content_type, body)
            request = parse_envelope(parse_xml(message.envelope))
            relates_to = request.message_id
            try:
                action = Action(request.action)
            except ValueError:
                raise SoapFault(FaultCode.ACTION_NOT_SUPPORTED, "Action inconnue : " + request.action[:200]) from None
            if action not in ENDPOINT_ACTIONS[endpoint]:
                raise SoapFault(FaultCode.ACTION_NOT_SUPPORTED, f"Action non servie par le service {endpoint.value}")
            transaction = _TRANSACTIONS[action]
            if action is Action.UPDATE_DOCUMENT_SET:
                transaction = _update_kind(request.body_child)
            vihf = check_vihf(request.header, self._trust, policy=self._config.vihf_policy)
            check_tls_binding(vihf, peer)
            caller = Caller.of(self._store, vihf, patient_view)
            reply = self._dispatch(action, caller, request.body_child, message.attachments)
            envelope = build_envelope(action.response, relates_to, reply.body_child)
            attachments = reply.attachments
        except SoapFault as exc:
            envelope, status = build_fault(exc, relates_to), exc.http_status
        except (MimeError, XmlInputError) as exc:
            refused = SoapFault(FaultCode.INVALID_REQUEST, f"Requête illisible : {exc}")
            envelope, status = build_fault(refused, relates_to), refused.http_status
        except XdsError as exc:
            refused = SoapFault(FaultCode.INVALID_REQUEST, exc.context)
            envelope, status = build_fault(refused, relates_to), refused.http_status
        except Exception:
            # A simulator bug must still answer a SOAP fault, and be visible in the log.
            log.exception("DMP simulator internal error")
            refused = SoapFault(FaultCode.INTERNAL, "Erreur interne du simulateur")
            envelope, status = build_fault(refused, relates_to), refused.http_status
        log.info("DMP sim %s %s -> HTTP %d", endpoint.value, transaction.value, status)
        if endpoint in (Endpoint.PATIENTS, Endpoint.HABILITATIONS, Endpoint.PATIENTS_SPECIFIC, Endpoint.PATIENTS_PDQ):
            return _Outcome(status, "application/soap+xml; charset=UTF-8", envelope, transaction)
        # Registry and repository bindings are MTOM (kit App.config); the DMP answers MTOM even for faults.
        answer_action = (
            action.response if action and status == 200 else "http://www.w3.org/2005/08/addressing/soap/fault"
        )
        content_type_out, payload = build_mtom(envelope, answer_action, list(attachments))
        return _Outcome(status, content_type_out, payload, transaction)

    def _dump(self, path: str, content_type: str, body: bytes, outcome: _Outcome) -> None:
        assert self._config.dump_dir is not None
        directory = self._config.dump_dir
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{next(self._counter):04d}-{outcome.transaction.value}"
        request_head = f"POST {path} HTTP/1.1\r\nContent-Type: {content_type}\r\n\r\n".encode()
        response_head = f"HTTP/1.1 {outcome.status}\r\nContent-Type: {outcome.content_type}\r\n\r\n".encode()
        (directory / f"{stem}-request.http").write_bytes(request_head + body)
        (directory / f"{stem}-response.http").write_bytes(response_head + outcome.payload)
