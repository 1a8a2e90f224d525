"""DMP use cases: the per-caller DMP context (`dmp.context.set`) and the document operations.

A context says who acts and how: the authentication mode (DIRECTE with the logged-in CPS; INDIRECTE
or INDIRECTE_RENFORCEE with the establishment's certificates), the situation d'exercice chosen on the
card, and the access mode (normal, bris de glace, centre 15). Contexts are kept per caller key (one
WebSocket connection); a caller that never set one gets the configured default. From a context the
service builds the `Practitioner` and picks the `DmpClient` of the right credentials: one per CPS card
(TLS and VIHF signed by the card) and one for the establishment, each kept open for keep-alive and
TLS session reuse.

One client per credential set, built once: the lookup and creation happen with no await in between,
so concurrent first calls share one client; the establishment's credentials are decrypted by one
shared task. Every call holds a lease on its client; a client replaced by new credentials (a new
`cps.login`) is closed only when its last call has finished.

The card side is behind `DirectSource` (the logged-in CPS: its keys, holder and situations), so this
module never talks PC/SC itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.cards.cps_data import Situation
from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust
from bridge.dmp.client import DmpClient
from bridge.dmp.codes import AuthMode, AvailabilityStatus, InsOid, PurposeOfUse
from bridge.dmp.context import (
    PRACTICE_ETABLISSEMENT,
    DmpCredentials,
    DmpSettings,
    NewDocument,
    Practitioner,
    Progress,
    SubmitResult,
)
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xades import XadesProfile
from bridge.dmp.xds_model import Code, DocumentEntry
from bridge.dmp.xds_parse import RetrievedDocument
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp_config import DmpConfig

__all__ = ["DirectIdentity", "DirectSource", "DmpContext", "DmpService", "IndirectPractitioner"]


@dataclass(frozen=True)
class DirectIdentity:
    """A logged-in CPS: its credentials (card keys) and what the card says about its holder."""

    credentials: DmpCredentials
    national_id: str
    family: str
    given: str
    profession_code: str
    specialty_code: str
    situations: tuple[Situation, ...]
    #: The reader holding the card (its per-card lock is held during each DMP call), if known.
    reader: str | None = None

    def __repr__(self) -> str:
        return f"DirectIdentity({self.credentials.label!r}, {len(self.situations)} situations)"


class ReaderLocks(Protocol):
    """The per-card locks of the card methods (`SharedCardLocks`): DMP calls hold a card shared."""

    def hold_shared(self, reader: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold `reader` alongside other DMP calls, never alongside a card method (CARD_BUSY)."""


class DirectSource(Protocol):
    """Where DIRECTE mode gets the logged-in card (PIN verified, situations read)."""

    async def direct_identity(self, reader: str | None) -> DirectIdentity:
        """The identity of the CPS in `reader` (or the only one); PIN_REQUIRED when not logged in."""


@dataclass(frozen=True, kw_only=True)
class IndirectPractitioner:
    """Who acts in an indirect mode (the establishment vouches for this person)."""

    national_id: str
    family: str = ""
    given: str = ""
    profession_code: str = "10"
    specialty_code: str = ""

    def __repr__(self) -> str:
        return "IndirectPractitioner(<redacted>)"


@dataclass(frozen=True, kw_only=True)
class DmpContext:
    """A caller's choice of mode, situation, access mode (and, indirect, practitioner)."""

    mode: AuthMode
    purpose: PurposeOfUse = PurposeOfUse.NORMAL
    situation: int | None = None
    reader: str | None = None
    practitioner: IndirectPractitioner | None = None


@dataclass(eq=False)
class _Held:
    """A DMP client and how many calls use it right now."""

    client: DmpClient
    users: int = 0
    retired: bool = False


class DmpService:
    """Contexts per caller, the DMP clients per credentials, and the document use cases."""

    def __init__(
        self,
        config: DmpConfig,
        *,
        direct: DirectSource | None = None,
        settings: DmpSettings | None = None,
        locks: ReaderLocks | None = None,
    ) -> None:
        self.config = config
        self.direct = direct
        #: DIRECTE calls hold their card's lock (shared) from the card's identity to the DMP's answer.
        self.locks = locks
        self._settings = settings
        self._contexts: weakref.WeakKeyDictionary[Any, DmpContext] = weakref.WeakKeyDictionary()
        self._clients: dict[str, _Held] = {}
        self._establishment: DmpCredentials | None = None
        self._establishment_task: asyncio.Future[DmpCredentials] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    # -- configuration ----------------------------------------------------------------------------

    def settings(self) -> DmpSettings:
        """Client settings from the config (DMP_UNREACHABLE when no DMP is configured)."""
        if self._settings is None:
            cfg = self.config
            if cfg.url is None or cfg.ca_bundle is None:
                raise BridgeError(ErrorCode.DMP_UNREACHABLE, "dmp-not-configured")
            self._settings = DmpSettings(
                base_url=cfg.url,
                trust=ServerTrust.from_pem_file(cfg.ca_bundle),
                oid_root=cfg.oid_root,
                lps_name=cfg.lps_name,
                lps_version=cfg.lps_version,
                lps_homologation=cfg.lps_homologation,
                server_name=cfg.server_name,
                io_timeout=cfg.io_timeout,
                call_timeout=cfg.call_timeout,
                xades=XadesProfile.from_names(cfg.xades_algorithm, cfg.xades_certificates),
            )
        return self._settings

    def patient(self, ins: str, oid: str | None = None) -> PatientIns:
        """A patient INS, the configured authority by default."""
        patient = PatientIns(value=ins, oid=InsOid(oid or self.config.ins_oid))
        if patient.legacy:  # the INS-C is read in old entries, never used to address a DMP
            raise BridgeError(ErrorCode.INVALID_PARAMS, "patient/oid: the legacy INS-C is not accepted, give the INS")
        return patient

    def _establishment_credentials(self) -> DmpCredentials:
        if self._establishment is None:
            cfg = self.config
            if not cfg.indirect_ready:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "indirect-mode-not-configured")
            assert cfg.establishment_auth_p12 is not None and cfg.establishment_sign_p12 is not None
            password = bytearray(
                cfg.establishment_p12_password_file.read_bytes().strip() if cfg.establishment_p12_password_file else b""
            )
            try:
                tls = ClientIdentity.from_pkcs12(cfg.establishment_auth_p12.read_bytes(), password or None)
                sign = ClientIdentity.from_pkcs12(cfg.establishment_sign_p12.read_bytes(), password or None)
            except OSError as exc:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "establishment-certificate-unreadable") from exc
            finally:
                password[:] = b"\x00" * len(password)
            self._establishment = DmpCredentials("establishment", tls, sign.key, sign.chain)
        return self._establishment

    async def _establishment_once(self) -> DmpCredentials:
        """The establishment's credentials, decrypted once even when first calls race."""
        if self._establishment is not None:
            return self._establishment
        if self._establishment_task is None:
            # PKCS#12 decryption is file I/O and key derivation: off the event loop, in one shared task.
            self._establishment_task = asyncio.ensure_future(asyncio.to_thread(self._establishment_credentials))
        task = self._establishment_task
        try:
            return await asyncio.shield(task)
        except BaseException:
            if task.done() and self._establishment_task is task:
                self._establishment_task = None  # a failure (bad file, password) is retried by the next call
            raise

    # -- contexts -------------------------------------------------------------------------------

    def set_context(self, caller: Any, context: DmpContext) -> None:
        """Remember a caller's context (forgotten when the caller object goes away)."""
        if context.mode is not AuthMode.DIRECTE and not self.config.indirect_ready:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "indirect-mode-not-configured")
        self._contexts[caller] = context

    def context(self, caller: Any) -> DmpContext:
        """The caller's context, or the configured default."""
        found = self._contexts.get(caller)
        if found is not None:
            return found
        return DmpContext(mode=AuthMode(self.config.default_mode))

    async def resolve(self, caller: Any) -> tuple[DmpClient, Practitioner]:
        """The client and practitioner for a caller's context (no lease: for tests and tools)."""
        async with self.using(caller) as found:
            return found

    @contextlib.asynccontextmanager
    async def using(self, caller: Any) -> AsyncIterator[tuple[DmpClient, Practitioner]]:
        """The client and practitioner for a caller's context, leased for the duration of one call."""
        ctx = self.context(caller)
        settings = self.settings()
        async with contextlib.AsyncExitStack() as stack:
            if ctx.mode is AuthMode.DIRECTE and self.locks is not None and self.direct is not None:
                # One card, one owner: no other caller's card method (logout, login, read) runs in the
                # middle of this call; other DMP calls on the same card may.
                reader = (await self.direct.direct_identity(ctx.reader)).reader
                if reader is not None:
                    await stack.enter_async_context(self.locks.hold_shared(reader))
            creds, practitioner = await self.acting_as(ctx)
            held = self._lease(creds, settings)
            held.users += 1
            try:
                yield held.client, practitioner
            finally:
                held.users -= 1
                if held.retired and not held.users:
                    self._close_later(held)

    async def acting_as(self, ctx: DmpContext) -> tuple[DmpCredentials, Practitioner]:
        """Who acts in `ctx` and with which keys (no DMP connection is made)."""
        if ctx.mode is AuthMode.DIRECTE:
            return await self._direct(ctx)
        creds = await self._establishment_once()
        cfg = self.config
        who = ctx.practitioner or (
            IndirectPractitioner(
                national_id=cfg.practitioner_id,
                family=cfg.practitioner_family,
                given=cfg.practitioner_given,
                profession_code=cfg.practitioner_profession,
                specialty_code=cfg.practitioner_specialty,
            )
            if cfg.practitioner_id
            else None
        )
        if who is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "practitioner-required")
        assert cfg.establishment_id is not None and cfg.establishment_name is not None
        practitioner = Practitioner(
            national_id=who.national_id,
            family=who.family,
            given=who.given,
            profession_code=who.profession_code,
            specialty_code=who.specialty_code,
            structure_id=cfg.establishment_id,
            structure_name=cfg.establishment_name,
            sector=cfg.establishment_sector,
            mode=ctx.mode,
            purpose=ctx.purpose,
            practice_setting=PRACTICE_ETABLISSEMENT,
        )
        return creds, practitioner

    async def _direct(self, ctx: DmpContext) -> tuple[DmpCredentials, Practitioner]:
        if self.direct is None:
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "card-service-unavailable")
        identity = await self.direct.direct_identity(ctx.reader)
        if not identity.situations:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "no-situation-on-card")
        if ctx.situation is None:
            situation = identity.situations[0]
        else:
            chosen = [s for s in identity.situations if s.index == ctx.situation]
            if not chosen:
                raise BridgeError(ErrorCode.INVALID_PARAMS, "situation: not on this card")
            situation = chosen[0]
        practitioner = Practitioner(
            national_id=identity.national_id,
            family=identity.family,
            given=identity.given,
            profession_code=situation.profession_code or identity.profession_code,
            specialty_code=situation.specialty_code or identity.specialty_code,
            structure_id=situation.structure_id,
            structure_name=situation.structure_name,
            sector=situation.activity_sector,
            mode=AuthMode.DIRECTE,
            purpose=ctx.purpose,
        )
        return identity.credentials, practitioner

    def _lease(self, creds: DmpCredentials, settings: DmpSettings) -> _Held:
        # No await in here: concurrent first calls find the client the first one created.
        held = self._clients.get(creds.label)
        if held is not None and held.client.credentials == creds:
            return held
        if held is not None:  # new keys for this label (a new login): the old client goes once unused
            held.retired = True
            if not held.users:
                self._close_later(held)
        held = _Held(DmpClient(settings, creds))
        self._clients[creds.label] = held
        return held

    def _close_later(self, held: _Held) -> None:
        task = asyncio.create_task(held.client.aclose(), name="dmp-client-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every DMP connection."""
        clients, self._clients = list(self._clients.values()), {}
        for held in clients:
            await held.client.aclose()
        await asyncio.gather(*self._closing, return_exceptions=True)

    # -- use cases ------------------------------------------------------------------------------

    async def submit(
        self,
        caller: Any,
        patient: PatientIns,
        document: NewDocument,
        *,
        replaces: str | None = None,
        progress: Progress | None = None,
    ) -> SubmitResult:
        """TD2.1 one document (optionally replacing the document with uniqueId `replaces`)."""
        async with self.using(caller) as (client, practitioner):
            return await client.submit(
                practitioner, patient, [document], replaces={0: replaces} if replaces else None, progress=progress
            )

    async def find(
        self,
        caller: Any,
        patient: PatientIns,
        statuses: Sequence[AvailabilityStatus],
        type_codes: Sequence[Code],
        filters: Mapping[str, Any] | None = None,
    ) -> tuple[DocumentEntry, ...]:
        """TD3.1; `filters` are `DmpClient.find`'s other keyword filters (codes, dates, authors)."""
        async with self.using(caller) as (client, practitioner):
            return await client.find(
                practitioner, patient, statuses=statuses, type_codes=type_codes, **dict(filters or {})
            )

    async def find_references(self, caller: Any, patient: PatientIns, unique_id: str) -> tuple[str, ...]:
        """TD3.1 by reference (ObjectRef): the entryUUIDs of a document's visible versions, in every mode."""
        async with self.using(caller) as (client, practitioner):
            return await client.find_references(practitioner, patient, unique_id)

    async def get(self, caller: Any, patient: PatientIns, unique_id: str) -> RetrievedDocument:
        """TD3.2."""
        async with self.using(caller) as (client, practitioner):
            return await client.retrieve(practitioner, patient, unique_id)

    async def set_visibility(
        self,
        caller: Any,
        patient: PatientIns,
        unique_id: str,
        *,
        hidden_from_professionals: bool | None,
        hidden_from_patient: bool | None,
    ) -> DocumentEntry:
        """TD3.3a/b."""
        async with self.using(caller) as (client, practitioner):
            return await client.set_visibility(
                practitioner,
                patient,
                unique_id,
                hidden_from_professionals=hidden_from_professionals,
                hidden_from_patient=hidden_from_patient,
            )

    async def set_status(
        self, caller: Any, patient: PatientIns, unique_id: str, status: AvailabilityStatus
    ) -> AvailabilityStatus:
        """TD3.3d (archive/unarchive) and TD3.3c (delete); the previous status."""
        async with self.using(caller) as (client, practitioner):
            return await client.set_status(practitioner, patient, unique_id, status)
