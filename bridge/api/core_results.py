"""Result schemas of the bridge-level methods (origins.*, diagnostics.report), for /openrpc.json and docs/api.md."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DIAGNOSTICS_REPORT_RESULT",
    "FINDING",
    "ORIGINS_DECISION_RESULT",
    "ORIGINS_LIST_RESULT",
    "ORIGINS_PENDING_RESULT",
    "ORIGINS_REVOKE_RESULT",
]

_ORIGIN = {"type": "string", "maxLength": 256, "description": "scheme://host[:port]"}
_TEXT = {"type": "string", "maxLength": 2000}

#: One finding, as `dmp-bridge doctor --json` and the diagnostics page show it (bridge.doctor.findings).
FINDING: dict[str, Any] = {
    "type": "object",
    "properties": {
        "section": {"type": "string", "maxLength": 32},
        "check": {"type": "string", "maxLength": 64, "description": "e.g. card.validity, card.pin, dmp.tls"},
        "status": {"enum": ["ok", "info", "skipped", "warning", "problem"]},
        "summary": {**_TEXT, "description": "what is, in French"},
        "advice": {"type": ["string", "null"], "maxLength": 2000, "description": "what to do, in French"},
        "details": {"type": "object", "maxProperties": 16, "description": "non-personal values (reader, dates)"},
    },
}

_FINGERPRINT = {"type": "string", "maxLength": 128, "description": "SHA-256 of the page key's SubjectPublicKeyInfo"}
_APPROVED = {
    "type": "object",
    "properties": {
        "origin": _ORIGIN,
        "approvedAt": {"type": "string", "maxLength": 40, "description": "ISO 8601"},
        "status": {"enum": ["approved", "pairing-needed"], "description": "pairing-needed: approved before keys"},
        "keys": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {"fingerprint": _FINGERPRINT, "approvedAt": {"type": "string", "maxLength": 40}},
            },
        },
    },
}

ORIGINS_LIST_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {"origins": {"type": "array", "maxItems": 1024, "items": _APPROVED}},
}

ORIGINS_PENDING_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pending": {
            "type": "array",
            "maxItems": 64,
            "items": {
                "type": "object",
                "properties": {
                    "requestId": {"type": "string", "maxLength": 64},
                    "origin": _ORIGIN,
                    "keyFingerprint": _FINGERPRINT,
                    "code": {"type": "string", "maxLength": 16, "description": "the code the page shows"},
                    "createdAt": {"type": "number", "description": "daemon clock, seconds"},
                    "expiresIn": {"type": "integer", "description": "seconds left"},
                },
            },
        }
    },
}

ORIGINS_DECISION_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {"origin": _ORIGIN, "requestId": {"type": "string", "maxLength": 64}},
}

ORIGINS_REVOKE_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {"origin": _ORIGIN, "revoked": {"const": True}},
}

DIAGNOSTICS_REPORT_RESULT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bridge": {
            "type": "object",
            "properties": {
                "version": {"type": "string", "maxLength": 32},
                "port": {"type": "integer"},
                "platform": {"type": "string", "maxLength": 32},
            },
        },
        "pcsc": {"enum": ["available", "unavailable"]},
        "readers": {
            "type": "array",
            "maxItems": 64,
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 256},
                    "cardPresent": {"type": "boolean"},
                    "atr": {"type": ["string", "null"], "maxLength": 80},
                    "kind": {"type": ["string", "null"], "maxLength": 32},
                    "card": {
                        "type": ["object", "null"],
                        "maxProperties": 24,
                        "description": "type, kind, supported, atr; a CPS: backend, generation, cardType, "
                        "certificateNotBefore/After, pinTriesLeft/Max, pinBlocked, loggedIn; a Vitale: "
                        "validityEnd; or {error: CODE}",
                    },
                    "checks": {"type": "array", "maxItems": 8, "items": FINDING},
                },
            },
        },
        "cardService": {"type": "boolean"},
        "outbox": {
            "type": ["object", "null"],
            "maxProperties": 16,
            "description": "the feeding queue when [feed] is enabled: counts per state, the oldest waiting job "
            "and why, the last permanent failures (job ids, uniqueIds and codes only)",
        },
        "origins": {"type": "array", "maxItems": 1024, "items": _APPROVED},
        "pendingPairings": {"type": "integer"},
        "recentErrors": {
            "type": "array",
            "maxItems": 256,
            "items": {
                "type": "object",
                "properties": {
                    "at": {"type": "string", "maxLength": 40},
                    "method": {"type": "string", "maxLength": 128},
                    "code": {"type": "string", "maxLength": 64},
                    "message_fr": _TEXT,
                    "hint_fr": _TEXT,
                },
            },
        },
    },
}
