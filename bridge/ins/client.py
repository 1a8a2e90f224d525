"""The INSi client: the I/O edge that puts `bridge.ins.messages` on the wire over mutual TLS.

One `InsiClient` = one INSi URL and one set of credentials: a CPS (TLS with the card's authentication
key; each search carries a SAML assertion signed by the card's signature key, signed once per search and
off the event loop because the card blocks) or an establishment certificate INSI-AUTO / INSI-MANU (TLS
only). The HTTPS layer is the DMP's (`bridge.dmp.http.HttpsClient`): keep-alive, TLS session reuse,
deadlines. A search is a read: it is sent again once when a kept-alive connection closes before the answer.

A search by traits makes one call per first name, then one with all of them, and stops at the first
identity or fault (`Traits.attempts`, after `padoa/tlsi-ins`). Verification has no operation of its own
in the published WSDL (DESIR_ICIR_EXP 1.5.0): `verify` searches by the traits and compares the INS found
with the one given (INS_MISMATCH when they differ).

Errors: INS_NOT_FOUND / INS_MULTIPLE_MATCHES for CR 01 / 02; faults through `bridge.ins.faults`; the
network and TLS failures of the HTTPS layer become INSI_UNAVAILABLE (nothing was changed); TIMEOUT stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint
from bridge.dmp.failures import DmpInputError
from bridge.dmp.http import HttpsClient
from bridge.errors import BridgeError, ErrorCode
from bridge.ins.assertion import signed_ps_assertion
from bridge.ins.faults import fault_error, outcome_error
from bridge.ins.messages import (
    InsiFault,
    LpsContext,
    Operation,
    VitaleQuery,
    build_request,
    parse_answer,
    traits_body,
    vitale_body,
)
from bridge.ins.model import CrCode, InsIdentity, InsiOutcome, Traits

__all__ = ["CpsSigner", "InsiClient", "InsiCredentials", "InsiSettings"]

_CONTENT_TYPE = 'application/soap+xml; charset=UTF-8; action="{action}"'


@dataclass(frozen=True, kw_only=True)
class InsiSettings:
    """Where the INSi is and who the software is."""

    url: str
    trust: ServerTrust
    lps: LpsContext
    server_name: str | None = None
    io_timeout: float = 30.0
    call_timeout: float = 60.0

    def endpoint(self, identity: ClientIdentity) -> TlsEndpoint:
        """The TLS endpoint for one client identity."""
        url = urlsplit(self.url)
        if url.scheme != "https" or not url.hostname:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "the INSi URL must be https://host[:port]/path")
        return TlsEndpoint(
            host=url.hostname,
            port=url.port or 443,
            trust=self.trust,
            identity=identity,
            server_name=self.server_name,
            io_timeout=self.io_timeout,
        )


@dataclass(frozen=True, kw_only=True)
class CpsSigner:
    """What a CPS puts in the assertion: its signature key and chain, the holder's id, the billing number."""

    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]
    holder_id: str = field(repr=False)
    billing_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class InsiCredentials:
    """TLS identity, and the CPS signer (None for an establishment certificate INSI-AUTO / INSI-MANU)."""

    label: str
    tls: ClientIdentity
    signer: CpsSigner | None = None

    def __repr__(self) -> str:
        return f"InsiCredentials({self.label!r})"


class InsiClient:
    """INS searches and verification for one set of credentials (see the module docstring)."""

    def __init__(
        self,
        settings: InsiSettings,
        credentials: InsiCredentials,
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._clock = clock
        self._new_id = new_id
        self._http = HttpsClient(settings.endpoint(credentials.tls), max_connections=2, timeout=settings.call_timeout)
        #: The request bodies sent by the last search (tests compare them with the official sample).
        self.last_requests: list[bytes] = []

    def __repr__(self) -> str:
        return f"InsiClient({self.settings.url!r}, {self.credentials!r})"

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _assertion(self) -> Any:
        signer = self.credentials.signer
        if signer is None:
            return None
        now, assertion_id = self._clock(), "_" + self._new_id()
        return await asyncio.to_thread(
            signed_ps_assertion,
            key=signer.key,
            chain=signer.chain,
            assertion_id=assertion_id,
            now=now,
            holder_id=signer.holder_id,
            billing_id=signer.billing_id,
        )

    async def _call(self, operation: Operation, body: Any, assertion: Any) -> InsiOutcome:
        data = build_request(
            operation,
            body,
            lps=self.settings.lps,
            now=self._clock(),
            message_id="uuid:" + self._new_id(),
            bam_id=self._new_id(),
            lps_id=self._new_id(),
            assertion=assertion,
        )
        self.last_requests.append(data)
        path = urlsplit(self.settings.url).path or "/"
        try:
            response = await self._http.post(path, data, _CONTENT_TYPE.format(action=operation.action), idempotent=True)
        except BridgeError as exc:
            if exc.code is ErrorCode.DMP_UNREACHABLE:
                raise BridgeError(ErrorCode.INSI_UNAVAILABLE, exc.detail) from exc
            raise
        try:
            answer = parse_answer(response.body)
        except DmpInputError as exc:
            if response.status >= 500:
                raise BridgeError(ErrorCode.INSI_UNAVAILABLE, f"HTTP {response.status}") from exc
            raise
        if isinstance(answer, InsiFault):
            raise fault_error(answer)
        return answer

    async def search(self, traits: Traits) -> InsIdentity:
        """rechercherInsAvecTraitsIdentite, one first name at a time then all of them."""
        self.last_requests = []
        assertion = await self._assertion()
        codes: list[CrCode] = []
        for first_names in traits.attempts():
            outcome = await self._call(Operation.TRAITS, traits_body(traits, first_names), assertion)
            if outcome.identity is not None:
                return outcome.identity
            codes.append(outcome.code)
        error = outcome_error(CrCode.MULTIPLE if CrCode.MULTIPLE in codes else CrCode.NOT_FOUND)
        assert error is not None
        raise error

    async def search_vitale(self, query: VitaleQuery) -> InsIdentity:
        """rechercherInsAvecCarteVitale for a beneficiary whose own NIR the card holds."""
        self.last_requests = []
        outcome = await self._call(Operation.VITALE, vitale_body(query), await self._assertion())
        if outcome.identity is not None:
            return outcome.identity
        error = outcome_error(outcome.code)
        assert error is not None
        raise error

    async def verify(self, ins: str, traits: Traits) -> InsIdentity:
        """The identity the traits designate, when its INS (or an earlier one) is `ins`; INS_MISMATCH otherwise."""
        identity = await self.search(traits)
        if ins != identity.ins and ins not in (value for value, _ in identity.history):
            raise BridgeError(ErrorCode.INS_MISMATCH, "ins-differs")
        return identity
