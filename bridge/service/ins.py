"""INS use cases: search an INS by traits or from a Vitale card, verify one, and remember what was qualified.

Who calls the INSi: the caller's CPS (DIRECTE identity of the DMP service: the logged-in card, its lock
held shared for the call) or the establishment's INSI-AUTO / INSI-MANU certificate from `[insi]`.
One `InsiClient` per credentials, kept for keep-alive (a new login replaces the card's client).

Qualified INS: every identity the INSi returned is remembered (INS and OID, in memory, bounded, never
logged) so that `dmp.documents.submit` can tell a qualified INS from one typed or read from a card; the
caller may also state it (the DPI qualified it earlier) or accept an unqualified one explicitly.

Vitale: a beneficiary is searched with the card's data (rechercherInsAvecCarteVitale) only when the
card holds a NIR that is surely theirs and whose key checks (`Beneficiary.nir`); otherwise (a child on a
parent's card: the NIR on the card is the holder's) the search is by the traits read from the card and
the sex given by the caller. The NIR on the card is never returned as an INS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from cryptography.x509.oid import NameOID

from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust
from bridge.dmp.codes import InsOid
from bridge.errors import BridgeError, ErrorCode
from bridge.ins.client import CpsSigner, InsiClient, InsiCredentials, InsiSettings
from bridge.ins.messages import LpsContext, VitaleQuery
from bridge.ins.model import InsIdentity, Traits, normalise_name
from bridge.service.dmp import DmpService
from bridge.service.insi_config import InsiConfig

__all__ = ["ESTABLISHMENT_CNS", "InsService", "vitale_birth_date"]

ESTABLISHMENT_CNS = frozenset({"INSI-AUTO", "INSI-MANU"})
_REMEMBERED = 10_000


def vitale_birth_date(beneficiary: dict[str, Any]) -> str:
    """YYYY-MM-DD from the card's raw date, lunar 00 kept (the INSi's DateLunaire)."""
    raw = str(beneficiary.get("birthDateRaw") or "")
    if len(raw) != 8 or not raw.isdigit():
        raise BridgeError(ErrorCode.INVALID_INPUT, "vitale: birth date unreadable")
    return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"


class InsService:
    """INSi calls for the API and the CLI (see the module docstring)."""

    def __init__(self, config: InsiConfig, dmp: DmpService) -> None:
        self.config = config
        self.dmp = dmp
        self._clients: dict[str, InsiClient] = {}
        self._establishment: InsiCredentials | None = None
        self._qualified: OrderedDict[tuple[str, str], None] = OrderedDict()

    # -- qualified INS ---------------------------------------------------------------------------

    def remember(self, identity: InsIdentity) -> None:
        """Note an INS the INSi returned (bounded, oldest forgotten first)."""
        key = (identity.ins, identity.oid.value)
        self._qualified[key] = None
        self._qualified.move_to_end(key)
        while len(self._qualified) > _REMEMBERED:
            self._qualified.popitem(last=False)

    def is_qualified(self, ins: str, oid: InsOid) -> bool:
        """True when this INS came back from the INSi in this daemon."""
        return (ins, oid.value) in self._qualified

    # -- credentials -----------------------------------------------------------------------------

    def _settings(self, url: str | None, emitter: str) -> InsiSettings:
        cfg = self.config
        if url is None or cfg.ca_bundle is None:
            raise BridgeError(ErrorCode.INSI_UNAVAILABLE, "insi-not-configured")
        lps = LpsContext(
            emitter=cfg.emitter or emitter,
            idam=cfg.idam,
            version=cfg.lps_version,
            instance=cfg.instance,
            name=cfg.lps_name,
        )
        return InsiSettings(
            url=url,
            trust=ServerTrust.from_pem_file(cfg.ca_bundle),
            lps=lps,
            server_name=cfg.server_name,
            io_timeout=cfg.io_timeout,
            call_timeout=cfg.call_timeout,
        )

    def _load_establishment(self) -> InsiCredentials:
        cfg = self.config
        if cfg.certificate_p12 is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "insi-certificate-not-configured")
        password = bytearray(
            cfg.certificate_p12_password_file.read_bytes().strip() if cfg.certificate_p12_password_file else b""
        )
        try:
            tls = ClientIdentity.from_pkcs12(cfg.certificate_p12.read_bytes(), password or None)
        except OSError as exc:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "insi-certificate-unreadable") from exc
        finally:
            password[:] = b"\x00" * len(password)
        names = tls.chain[0].subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(names[0].value) if names else ""
        if cn not in ESTABLISHMENT_CNS:
            # The INSi accepts a certificate without a card only for these two CNs.
            raise BridgeError(ErrorCode.INVALID_PARAMS, "insi-certificate: subject CN must be INSI-AUTO or INSI-MANU")
        return InsiCredentials(label=cn, tls=tls)

    @contextlib.asynccontextmanager
    async def _client(self, auth: str | None, reader: str | None) -> AsyncIterator[InsiClient]:
        mode = auth or self.config.default_auth
        async with contextlib.AsyncExitStack() as stack:
            if mode == "establishment":
                if self._establishment is None:
                    self._establishment = await asyncio.to_thread(self._load_establishment)
                creds = self._establishment
                settings = self._settings(
                    self.config.establishment_url or self.config.url, self.dmp.config.establishment_id or ""
                )
            else:
                direct = self.dmp.direct
                if direct is None:
                    raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "card-service-unavailable")
                identity = await direct.direct_identity(reader)
                if identity.reader is not None and self.dmp.locks is not None:
                    await stack.enter_async_context(self.dmp.locks.hold_shared(identity.reader))
                billing = next((s.billing.billing_number for s in identity.situations if s.billing), None)
                creds = InsiCredentials(
                    label=identity.credentials.label,
                    tls=identity.credentials.tls,
                    signer=CpsSigner(
                        key=identity.credentials.signing_key,
                        chain=identity.credentials.signing_chain,
                        holder_id=identity.national_id,
                        billing_id=billing,
                    ),
                )
                settings = self._settings(self.config.url, identity.national_id)
            client = self._clients.get(creds.label)
            if client is None or client.credentials != creds:
                if client is not None:
                    await client.aclose()
                client = InsiClient(settings, creds)
                self._clients[creds.label] = client
            yield client

    async def aclose(self) -> None:
        """Close every INSi connection."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    # -- use cases -------------------------------------------------------------------------------

    async def search(self, traits: Traits, *, auth: str | None = None, reader: str | None = None) -> InsIdentity:
        """rechercherInsAvecTraitsIdentite; the identity found is remembered as qualified."""
        async with self._client(auth, reader) as client:
            identity = await client.search(traits)
        self.remember(identity)
        return identity

    async def verify(
        self, ins: str, traits: Traits, *, auth: str | None = None, reader: str | None = None
    ) -> InsIdentity:
        """The identity the traits designate, INS_MISMATCH unless its INS (or an earlier one) is `ins`."""
        async with self._client(auth, reader) as client:
            identity = await client.verify(ins, traits)
        self.remember(identity)
        return identity

    async def search_vitale(
        self,
        card: dict[str, Any],
        index: int,
        *,
        sex: str | None,
        auth: str | None = None,
        reader: str | None = None,
    ) -> tuple[InsIdentity, str]:
        """Search the INS of beneficiary `index` of a `vitale.read` result; (identity, "vitale" or "traits")."""
        people = card.get("beneficiaries") or []
        if not 0 <= index < len(people):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "beneficiary: no such index on the card")
        person = people[index]
        birth_date = vitale_birth_date(person)
        if person.get("hasOwnIns"):
            insured = next((p for p in people if p.get("isInsured")), person)
            query = VitaleQuery(
                nir=str(person["nir"]),
                key=str(person["nirKey"]),
                holder_nir=str(insured.get("cardNir") or person["nir"]),
                holder_key=str(insured.get("cardNirKey") or person["nirKey"]),
                birth_name=normalise_name(str(person.get("lastName") or ""), "vitale.lastName"),
                birth_date=birth_date,
                rank=person.get("rank"),
            )
            async with self._client(auth, reader) as client:
                identity = await client.search_vitale(query)
            self.remember(identity)
            return identity, "vitale"
        if sex is None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "sex: needed for a beneficiary without an own NIR on the card")
        traits = Traits.from_input(
            birth_name=str(person.get("lastName") or ""),
            first_names=str(person.get("firstName") or ""),
            sex=sex,
            birth_date=birth_date,
        )
        return await self.search(traits, auth=auth, reader=reader), "traits"
