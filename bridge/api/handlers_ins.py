"""INSi methods: `ins.search` (by traits, or a beneficiary of the Vitale card in a reader) and `ins.verify`.

Params are checked (schema, names in the referential's alphabet, dates) before any card or network
access. The identity returned is the qualified one the DMP calls must use (`identity.ins`, `identity.oid`);
the bridge remembers it, so `dmp.documents.submit` accepts that INS without further statement.
A Vitale beneficiary without their own NIR on the card (a child on a parent's card) is searched by the
card's traits and the `sex` given: the NIR on the card is never returned as their INS.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bridge.api.handlers_cards import VitaleRead
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.errors import ErrorCode
from bridge.ins.model import InsIdentity, Traits
from bridge.service.cards import CardLocks
from bridge.service.ins import InsService

__all__ = ["InsSearch", "InsVerify", "ins_handlers"]

_APP = frozenset({Scope.APP})
_ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode.INVALID_PARAMS,
    ErrorCode.INS_NOT_FOUND,
    ErrorCode.INS_MULTIPLE_MATCHES,
    ErrorCode.INSI_UNAVAILABLE,
    ErrorCode.INSI_REFUSED,
    ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED,
    ErrorCode.TIMEOUT,
    ErrorCode.PIN_REQUIRED,
    ErrorCode.NO_CARD,
    ErrorCode.CARD_BUSY,
)
_NAME = {"type": "string", "minLength": 1, "maxLength": 100}
_TRAITS = object_schema(
    {
        "birthName": {**_NAME, "description": "nom de naissance (accents, case: normalised by the bridge)"},
        "firstNames": {**_NAME, "maxLength": 200, "description": "all first names, civil order, space-separated"},
        "sex": {"enum": ["M", "F"]},
        "birthDate": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "maxLength": 10},
        "birthPlace": {
            "type": "string",
            "pattern": "^(?:[0-9]{2}|2A|2B)[0-9]{3}$",
            "maxLength": 5,
            "description": "COG code (INSEE) of the birth place",
        },
    },
    ["birthName", "firstNames", "sex", "birthDate"],
)
_AUTH = {
    "enum": ["cps", "establishment"],
    "description": "cps: the logged-in CPS; establishment: the INSI-AUTO/INSI-MANU certificate (default: config)",
}
_READER = {"type": "string", "minLength": 1, "maxLength": 256, "description": "the CPS reader (cps auth)"}
_IDENTITY = object_schema(
    {
        "ins": {"type": "string", "maxLength": 15},
        "oid": {"type": "string", "maxLength": 64},
        "kind": {"enum": ["INS-NIR", "INS-NIA"]},
        "birthName": {"type": "string", "maxLength": 200},
        "firstName": {"type": "string", "maxLength": 200},
        "firstNames": {"type": "string", "maxLength": 400},
        "sex": {"type": "string", "maxLength": 1},
        "birthDate": {"type": "string", "maxLength": 10},
        "birthPlace": {"type": ["string", "null"], "maxLength": 5},
        "history": {
            "type": "array",
            "maxItems": 32,
            "items": object_schema(
                {"ins": {"type": "string", "maxLength": 15}, "oid": {"type": "string", "maxLength": 64}}
            ),
        },
    }
)


def _traits(raw: dict[str, Any]) -> Traits:
    return Traits.from_input(
        birth_name=raw["birthName"],
        first_names=raw["firstNames"],
        sex=raw["sex"],
        birth_date=raw["birthDate"],
        birth_place=raw.get("birthPlace"),
    )


def _result(identity: InsIdentity, **extra: Any) -> dict[str, Any]:
    return {"code": "00", "qualified": True, "identity": identity.to_json(), **extra}


class InsSearch(Handler):
    """ins.search: the INS of a person, by identity traits or from the Vitale card."""

    name = "ins.search"
    summary = (
        "Search the patient's INS with the INSi téléservice: by identity traits (`traits`), or for a "
        "beneficiary of the Vitale card in a reader (`vitale`). Returns the qualified identity (INS-NIR or "
        "INS-NIA with its OID, birth name, first names, sex, birth date and place) to use in DMP calls. "
        "No match is INS_NOT_FOUND (CR 01), several INS_MULTIPLE_MATCHES (CR 02)."
    )
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _ERRORS
    params_schema: ClassVar[dict[str, Any]] = {
        **object_schema(
            {
                "traits": _TRAITS,
                "vitale": object_schema(
                    {
                        "reader": {**_READER, "description": "the Vitale reader; omitted: the only Vitale card"},
                        "beneficiary": {"type": "integer", "minimum": 0, "maximum": 15},
                        "sex": {"enum": ["M", "F"], "description": "needed when the card has no own NIR for them"},
                    },
                    ["beneficiary"],
                ),
                "auth": _AUTH,
                "reader": _READER,
            }
        ),
        "oneOf": [{"required": ["traits"]}, {"required": ["vitale"]}],
    }
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "code": {"const": "00"},
            "qualified": {"const": True},
            "source": {"enum": ["traits", "vitale"], "description": "vitale: searched with the card's NIR"},
            "identity": _IDENTITY,
        }
    )

    def __init__(self, service: InsService, locks: CardLocks) -> None:
        self.service = service
        self._vitale = VitaleRead(locks)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Check, then search."""
        auth, reader = params.get("auth"), params.get("reader")
        if "traits" in params:
            identity = await self.service.search(_traits(params["traits"]), auth=auth, reader=reader)
            return _result(identity, source="traits")
        wanted = params["vitale"]
        card = await self._vitale.call(ctx, {"reader": wanted["reader"]} if "reader" in wanted else {})
        identity, source = await self.service.search_vitale(
            card, wanted["beneficiary"], sex=wanted.get("sex"), auth=auth, reader=reader
        )
        return _result(identity, source=source)


class InsVerify(Handler):
    """ins.verify: check an INS against the person's traits."""

    name = "ins.verify"
    summary = (
        "Verify an INS against identity traits with the INSi: the traits must designate one identity whose "
        "INS (or an earlier one) is `ins`; INS_MISMATCH otherwise. Returns the qualified identity."
    )
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = (*_ERRORS, ErrorCode.INS_MISMATCH)
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "ins": {"type": "string", "pattern": "^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$", "maxLength": 15},
            "traits": _TRAITS,
            "auth": _AUTH,
            "reader": _READER,
        },
        ["ins", "traits"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "code": {"const": "00"},
            "qualified": {"const": True},
            "verified": {"const": True},
            "insIsCurrent": {"type": "boolean", "description": "false: `ins` is an earlier INS of this person"},
            "identity": _IDENTITY,
        }
    )

    def __init__(self, service: InsService) -> None:
        self.service = service

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Check, then verify."""
        traits = _traits(params["traits"])
        identity = await self.service.verify(
            params["ins"], traits, auth=params.get("auth"), reader=params.get("reader")
        )
        return _result(identity, verified=True, insIsCurrent=identity.ins == params["ins"])


def ins_handlers(service: InsService, locks: CardLocks) -> list[Handler]:
    """The INSi handlers."""
    return [InsSearch(service, locks), InsVerify(service)]
