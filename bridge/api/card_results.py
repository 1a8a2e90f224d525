"""The result schemas of the card methods (cps.*, vitale.read), as `/openrpc.json` and docs/api.md show them.

They describe what `bridge.cards.cps_info.CpsCardInfo.to_json`, `cps_data.Situation.to_json` and
`vitale.VitaleCard.to_json` produce; tests/integration/test_api_cards_pcsc.py checks real answers
from virtual cards against them, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CPS_LOGIN_RESULT", "CPS_LOGOUT_RESULT", "CPS_READ_RESULT", "CPS_SIGN_RESULT", "VITALE_READ_RESULT"]

_B64 = {"type": "string", "maxLength": 16384, "contentEncoding": "base64"}
_TEXT = {"type": ["string", "null"], "maxLength": 256}
_DATE = {"type": ["string", "null"], "maxLength": 32, "description": "ISO 8601"}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "required": sorted(properties)}
    if description:
        schema["description"] = description
    return schema


_CERTIFICATE = _object(
    {
        "usage": {"enum": ["authentication", "signature"]},
        "subject": {"type": "string", "maxLength": 1024},
        "issuer": {"type": "string", "maxLength": 1024},
        "serialNumber": {"type": "string", "maxLength": 64, "description": "hexadecimal"},
        "notBefore": _DATE,
        "notAfter": _DATE,
        "daysLeft": {"type": "integer", "description": "negative once expired"},
        "expired": {"type": "boolean"},
        "der": {**_B64, "description": "the certificate, DER in base64"},
    }
)

_PIN = _object(
    {
        "triesLeft": {"type": "integer", "minimum": 0},
        "triesMax": {"type": "integer", "minimum": 0},
        "blocked": {"type": "boolean"},
    }
)

CPS_READ_RESULT: dict[str, Any] = _object(
    {
        "serial": {"type": "string", "maxLength": 32, "description": "card serial as the Cryptolib gives it"},
        "generation": {"enum": ["CPS3", "CPS4"]},
        "backend": {"enum": ["pkcs11", "pcsc"], "description": "the Cryptolib (PKCS#11) or the bridge's driver"},
        "cardType": {"type": "string", "maxLength": 8, "description": "CPS, CPF, CPE, CPA, CDE (TRE_R87)"},
        "cardNumber": _TEXT,
        "validity": _object({"notBefore": _DATE, "notAfter": _DATE}),
        "holder": _object(
            {
                "idType": _TEXT,
                "nationalId": {**_TEXT, "description": "RPPS/ADELI national identifier"},
                "civility": _TEXT,
                "lastName": _TEXT,
                "firstName": _TEXT,
                "professionCode": {**_TEXT, "description": "TRE_G15 profession"},
                "specialtyCode": {**_TEXT, "description": "TRE_R01 savoir-faire (SMxx)"},
            }
        ),
        "certificates": _object({"authentication": _CERTIFICATE, "signature": _CERTIFICATE}),
        "pin": _PIN,
    }
)

_SITUATION = _object(
    {
        "index": {"type": "integer", "description": "what dmp.context.set's `situation` names"},
        "number": {"type": "integer"},
        "practiceMode": _TEXT,
        "professionCode": _TEXT,
        "specialtyCode": _TEXT,
        "structureIdType": _TEXT,
        "structureId": _TEXT,
        "structureName": _TEXT,
        "activitySector": {**_TEXT, "description": "TRE_R02 secteur d'activité (SAxx)"},
        "billing": {
            "type": ["object", "null"],
            "properties": {
                "billingNumber": _TEXT,
                "conventionCode": _TEXT,
                "amSpecialty": _TEXT,
                "tariffZone": _TEXT,
            },
        },
    }
)

CPS_LOGIN_RESULT: dict[str, Any] = _object(
    {
        "authenticated": {"const": True},
        "triesLeft": {"type": "integer", "minimum": 0},
        "triesMax": {"type": "integer", "minimum": 0},
        "situations": {"type": "array", "maxItems": 16, "items": _SITUATION},
        "situation": {"type": ["integer", "null"], "description": "the selected situation's index (the first)"},
    }
)

CPS_LOGOUT_RESULT: dict[str, Any] = _object({"authenticated": {"const": False}})

CPS_SIGN_RESULT: dict[str, Any] = _object(
    {
        "signature": {**_B64, "description": "RSA signature, base64"},
        "key": {"enum": ["authentication", "signature"]},
        "digestAlgorithm": {"type": "string", "maxLength": 16},
        "certificate": {**_B64, "description": "the signing certificate, DER in base64"},
    }
)

_BENEFICIARY = _object(
    {
        "lastName": _TEXT,
        "firstName": _TEXT,
        "birthDateRaw": {**_TEXT, "description": "YYYYMMDD as on the card (may be a lunar date)"},
        "birthDate": {**_DATE, "description": "null for a lunar date (day or month outside the calendar)"},
        "lunar": {"type": "boolean"},
        "nir": {
            **_TEXT,
            "description": "the beneficiary's OWN NIR, or null: a child on a parent's card has none, and "
            "cardNir (the holder's) is never the child's INS",
        },
        "nirKey": _TEXT,
        "nirValid": {"type": ["boolean", "null"]},
        "cardNir": {**_TEXT, "description": "the card holder's NIR (the insured's), not this beneficiary's INS"},
        "cardNirKey": _TEXT,
        "isInsured": {"type": ["boolean", "null"], "description": "null when the card does not say"},
        "rank": {"type": ["integer", "string", "null"], "maxLength": 8},
        "quality": _TEXT,
    }
)

VITALE_READ_RESULT: dict[str, Any] = _object(
    {
        "serial": _TEXT,
        "validityStart": _DATE,
        "validityEnd": _DATE,
        "beneficiaries": {"type": "array", "maxItems": 16, "items": _BENEFICIARY},
        "unverified": {
            "type": "array",
            "maxItems": 32,
            "items": {"type": "string", "maxLength": 64},
            "description": "fields read from tags no public source confirms",
        },
    }
)
