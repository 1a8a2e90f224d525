"""The building blocks every DMP transaction of `DmpClient` uses (see `bridge.dmp.client`).

Connections (two keep-alive `HttpsClient`s sharing one TLS session cache), the per-call deadline and
its stage, the VIHF cache, the SOAP exchange, and the rights matrix check (`bridge.dmp.rights`) made
before anything is signed or sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Self

from bridge.crypto.tls_sessions import TlsSessionCache
from bridge.dmp import rights
from bridge.dmp.context import DmpCredentials, DmpSettings, Practitioner, Progress, Timings, signed_vihf
from bridge.dmp.endpoints import Transaction, encode_request
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.http import Body, HttpsClient, OutcomeUnknown
from bridge.dmp.mtom import MtomPart
from bridge.dmp.soap import SoapResponse, parse_registry_response, parse_soap_response
from bridge.dmp.submission import ProgressReader
from bridge.dmp.vihf import PatientIns
from bridge.dmp.vihf_cache import VihfCache, VihfKey
from bridge.dmp.xds_model import new_unique_id
from bridge.errors import BridgeError, ErrorCode

__all__ = ["ClientBase"]

#: Seconds past a call's deadline before the outer guard cancels it: the HTTPS layer's own deadline
#: (socket timeouts, watchdog) ends first and says precisely what happened.
_GUARD_GRACE = 3.0


class _Call:
    """One DMP call's deadline and current stage, for the TIMEOUT it may end with."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        #: "signature" (card/key), "exchange" (HTTPS), ... — what a timeout interrupted.
        self.stage = "preparation"
        #: The uniqueIds a write would change (carried by DMP_OUTCOME_UNKNOWN).
        self.unique_ids: tuple[str, ...] = ()
        self.write = False


class ClientBase:
    """The building blocks of `DmpClient`: connections, deadlines, VIHF cache, exchange, rights check."""

    def __init__(
        self,
        settings: DmpSettings,
        credentials: DmpCredentials,
        *,
        vihf_cache: VihfCache | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        max_connections: int = 4,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self._cache = vihf_cache if vihf_cache is not None else VihfCache()
        self._clock = clock
        self._new_id = new_id
        self._counter = itertools.count()
        self._sessions = TlsSessionCache()
        endpoint = settings.endpoint(credentials.tls)
        self._http = {
            name: HttpsClient(
                endpoint, sessions=self._sessions, max_connections=max_connections, timeout=settings.call_timeout
            )
            # patients / habilitations…: the patient-level transactions (TD0.x, TD1.x) of bridge.dmp.patient_*.
            for name in ("registry", "repository", "patients", "habilitations", "patientsSpecific", "patientsPDQ")
        }
        self._vihf_lock = asyncio.Lock()
        #: Time split of the last call (benchmarks, diagnostics).
        self.timings = Timings()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings.base_url!r}, {self.credentials!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection."""
        for client in self._http.values():
            await client.aclose()

    @property
    def handshakes(self) -> int:
        """TLS handshakes made so far (full or resumed), both endpoints together."""
        return sum(len(c.handshakes) for c in self._http.values())

    @property
    def resumed_handshakes(self) -> int:
        """How many of those resumed a TLS session (no new client-certificate signature)."""
        return sum(h.resumed for c in self._http.values() for h in c.handshakes)

    def forget(self, practitioner_id: str | None = None) -> None:
        """Drop cached VIHFs (logout, card removed)."""
        self._cache.invalidate(practitioner_id)

    # -- building blocks ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _call(self, what: str) -> AsyncIterator[_Call]:
        """A call with its total deadline; a timeout becomes TIMEOUT (or DMP_OUTCOME_UNKNOWN for a sent write)."""
        call = _Call(what, self.settings.call_timeout)
        try:
            async with asyncio.timeout(call.timeout + _GUARD_GRACE):
                yield call
        except TimeoutError:
            if call.write and call.stage == "exchange":
                raise self._unknown(call, f"{what}: no answer within {call.timeout:g} s") from None
            raise BridgeError(
                ErrorCode.TIMEOUT, f"{what}: {call.stage} not done within {call.timeout:g} s", stage=call.stage
            ) from None
        except OutcomeUnknown as exc:
            raise self._unknown(call, f"{what}: {exc.detail}") from exc
        except BridgeError as exc:
            if exc.code is ErrorCode.TIMEOUT and not (exc.detail or "").startswith(what):
                raise BridgeError(ErrorCode.TIMEOUT, f"{what}: {exc.detail}", **exc.extra) from exc
            raise

    @staticmethod
    def _unknown(call: _Call, detail: str) -> OutcomeUnknown:
        extra: dict[str, object] = {"transaction": call.what}
        if call.unique_ids:
            extra["uniqueId"] = call.unique_ids[0]
            extra["uniqueIds"] = list(call.unique_ids)
        return OutcomeUnknown(detail, **extra)

    def _uid(self, kind: int, now: dt.datetime) -> str:
        return new_unique_id(self.settings.oid_root, kind, now=now, counter=next(self._counter) % 1000 + 1)

    async def _vihf(self, practitioner: Practitioner, patient: PatientIns, call: _Call) -> Any:
        if patient.legacy:
            raise DmpParamsError("a legacy INS-C addresses no DMP: give the patient's INS")
        key = VihfKey(practitioner.cache_id, patient.cx(), practitioner.mode)

        def sign() -> Any:
            return signed_vihf(
                practitioner, patient, self.credentials, self.settings, now=self._clock(), assertion_id=self._new_id()
            )

        # One signature per context even when calls race; the card key blocks, so off the loop.
        call.stage = "signature"
        async with self._vihf_lock:
            return await asyncio.to_thread(self._cache.get_or_sign, key, sign)

    async def _exchange(
        self,
        transaction: Transaction,
        body: Any,
        vihf: Any,
        call: _Call,
        *,
        parts: Sequence[MtomPart] = (),
        progress: Progress | None = None,
    ) -> SoapResponse:
        endpoint = transaction.endpoint
        message_id = "urn:uuid:" + self._new_id()
        content_type, data = encode_request(
            body,
            transaction=transaction,
            message_id=message_id,
            vihf=vihf,
            to=self.settings.url(endpoint.path),
            parts=parts,
            boundary="MIMEBoundary_" + self._new_id().replace("-", ""),
        )
        self.timings.request_bytes = len(data)
        client = self._http[endpoint.path]
        path = self.settings.path(endpoint.path)
        started = time.perf_counter()
        payload: Body = ProgressReader(data, progress) if progress is not None else data  # type: ignore[assignment]
        call.stage, call.write = "exchange", not endpoint.idempotent
        # The HTTPS client resends only what cannot be applied twice (see bridge.dmp.http).
        response = await client.post(
            path, payload, content_type, idempotent=endpoint.idempotent, deadline=call.deadline
        )
        call.stage = "answer"
        self.timings.exchange = time.perf_counter() - started
        try:
            answer = parse_soap_response(response.body, response.header("content-type"))
        except (DmpInputError, ValueError) as exc:
            if response.status >= 400:
                raise BridgeError(
                    ErrorCode.DMP_FAULT, f"HTTP {response.status}", dmpCode=f"HTTP_{response.status}"
                ) from exc
            raise
        if answer.fault is not None:
            raise answer.fault.to_error()
        if answer.body is None:
            raise DmpInputError("empty SOAP body")
        return answer

    async def transact(
        self, transaction: Transaction, practitioner: Practitioner, patient: PatientIns, body: Any
    ) -> SoapResponse:
        """Send one request built by a sans-IO module (bridge.dmp.patient_*) with this client's VIHF, TLS,
        deadline and at-most-once rules; the answer, its SOAP fault raised as the mapped BridgeError."""
        async with self._call(transaction.value) as call:
            vihf = await self._vihf(practitioner, patient, call)
            return await self._exchange(transaction, body, vihf, call)

    def message_ids(self) -> tuple[dt.datetime, str]:
        """The injected clock's now and a new id, for the HL7v3 messages the patient modules build."""
        return self._clock(), self._new_id()

    @staticmethod
    def _permit(practitioner: Practitioner, operation: rights.Operation, **facts: bool | None) -> rights.Decision:
        """The rights matrix for this practitioner (NotPermitted when refused, before anything is signed or sent).

        A physician may be the patient's médecin traitant, which only the DMP knows: what the MT may do is
        left to the DMP.
        """
        actor = rights.actor_of(practitioner.mode.value, practitioner.profession_code)
        mode = rights.access_mode_of(practitioner.purpose.value)
        return rights.require(actor, mode, operation, may_be_mt=True, **facts)

    @staticmethod
    def _raise_on_failure(element: Any) -> None:
        fault = parse_registry_response(element).fault()
        if fault is not None:
            raise fault.to_error()
