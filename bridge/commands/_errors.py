"""How every command reports an error: one exit status per error family, and one way to print it.

Exit statuses (documented in the README; `doctor` has its own 0/1/2 for « nothing / warnings / problems »):

==  =====================================================================
0   success
1   unexpected internal error (see the log with -v)
2   bad usage, bad parameters or an invalid config.toml
3   the smart card service (pcscd) is not running
4   no reader, no card, or the card was removed
5   the card refused or could not do the operation (busy, unsupported, certificate expired or not yet valid)
6   wrong PIN, or PIN blocked
7   the PIN is needed, or its last try must be confirmed (--force-last-try)
8   the bridge is not running, or refused this program (local token)
9   the DMP (or the INSi) could not be reached, or did not answer in time
10  the DMP (or the INSi) refused the request (its code in the detail), or the rights matrix forbids it
11  the DMP may or may not have applied a write (check the uniqueId before resending)
12  not found, or unreadable data
13  the patient's identity (INS) is not found, ambiguous, mismatched or not qualified
==  =====================================================================
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from types import MappingProxyType

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "EXIT_BRIDGE",
    "EXIT_CARD",
    "EXIT_DATA",
    "EXIT_DMP_REFUSED",
    "EXIT_DMP_UNKNOWN",
    "EXIT_DMP_UNREACHABLE",
    "EXIT_IDENTITY",
    "EXIT_INTERNAL",
    "EXIT_NO_CARD",
    "EXIT_PCSC",
    "EXIT_PIN",
    "EXIT_PIN_NEEDED",
    "EXIT_USAGE",
    "FAMILIES",
    "exit_code_for",
    "report_error",
]

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PCSC = 3
EXIT_NO_CARD = 4
EXIT_CARD = 5
EXIT_PIN = 6
EXIT_PIN_NEEDED = 7
EXIT_BRIDGE = 8
EXIT_DMP_UNREACHABLE = 9
EXIT_DMP_REFUSED = 10
EXIT_DMP_UNKNOWN = 11
EXIT_DATA = 12
EXIT_IDENTITY = 13

#: Every error code's family; a code missing here is a test failure (tests/unit/test_cli_errors.py).
FAMILIES: Mapping[ErrorCode, int] = MappingProxyType(
    {
        ErrorCode.INTERNAL: EXIT_INTERNAL,
        ErrorCode.INVALID_PARAMS: EXIT_USAGE,
        ErrorCode.PCSC_UNAVAILABLE: EXIT_PCSC,
        ErrorCode.NO_READER: EXIT_NO_CARD,
        ErrorCode.NO_CARD: EXIT_NO_CARD,
        ErrorCode.CARD_REMOVED: EXIT_NO_CARD,
        ErrorCode.CARD_RESET: EXIT_CARD,
        ErrorCode.UNSUPPORTED_CARD: EXIT_CARD,
        ErrorCode.CARD_ERROR: EXIT_CARD,
        ErrorCode.CARD_BUSY: EXIT_CARD,
        ErrorCode.SHARING_VIOLATION: EXIT_CARD,
        ErrorCode.CERTIFICATE_EXPIRED: EXIT_CARD,
        ErrorCode.CERTIFICATE_NOT_YET_VALID: EXIT_CARD,
        ErrorCode.PIN_INCORRECT: EXIT_PIN,
        ErrorCode.PIN_BLOCKED: EXIT_PIN,
        ErrorCode.PIN_LAST_TRY: EXIT_PIN_NEEDED,
        ErrorCode.PIN_REQUIRED: EXIT_PIN_NEEDED,
        ErrorCode.ORIGIN_NOT_APPROVED: EXIT_BRIDGE,
        ErrorCode.UNAUTHORIZED: EXIT_BRIDGE,
        ErrorCode.DMP_UNREACHABLE: EXIT_DMP_UNREACHABLE,
        ErrorCode.TIMEOUT: EXIT_DMP_UNREACHABLE,
        ErrorCode.DMP_FAULT: EXIT_DMP_REFUSED,
        ErrorCode.NOT_PERMITTED_FOR_ACTOR: EXIT_DMP_REFUSED,
        ErrorCode.DMP_OUTCOME_UNKNOWN: EXIT_DMP_UNKNOWN,
        ErrorCode.INVALID_INPUT: EXIT_DATA,
        ErrorCode.NOT_FOUND: EXIT_DATA,
        ErrorCode.DMP_UNKNOWN: EXIT_DMP_REFUSED,
        ErrorCode.DMP_CLOSED: EXIT_DMP_REFUSED,
        ErrorCode.DMP_NOT_AUTHORIZED: EXIT_DMP_REFUSED,
        ErrorCode.DMP_AUTHORIZATION_EXPIRED: EXIT_DMP_REFUSED,
        ErrorCode.BLOCKED_BY_PATIENT: EXIT_DMP_REFUSED,
        ErrorCode.DMP_MANAGED_BY_MES: EXIT_DMP_REFUSED,
        ErrorCode.DOCUMENT_ALREADY_EXISTS: EXIT_DMP_REFUSED,
        ErrorCode.PATIENT_MISMATCH: EXIT_DMP_REFUSED,
        ErrorCode.DMP_AUTHENTICATION_REFUSED: EXIT_DMP_REFUSED,
        ErrorCode.DMP_REQUEST_REFUSED: EXIT_DMP_REFUSED,
        ErrorCode.DOCUMENT_UNKNOWN: EXIT_DATA,
        ErrorCode.INS_NOT_FOUND: EXIT_IDENTITY,
        ErrorCode.INS_MULTIPLE_MATCHES: EXIT_IDENTITY,
        ErrorCode.INS_MISMATCH: EXIT_IDENTITY,
        ErrorCode.INS_NOT_QUALIFIED: EXIT_IDENTITY,
        ErrorCode.INSI_UNAVAILABLE: EXIT_DMP_UNREACHABLE,
        ErrorCode.INSI_REFUSED: EXIT_DMP_REFUSED,
        ErrorCode.INSI_SOFTWARE_NOT_AUTHORISED: EXIT_DMP_REFUSED,
    }
)

#: Codes whose detail names what to fix (a parameter, the DMP's own code): shown to the person.
_USEFUL_DETAIL = frozenset(
    {ErrorCode.INVALID_PARAMS, ErrorCode.INVALID_INPUT, ErrorCode.DMP_FAULT, ErrorCode.NOT_FOUND}
)


def exit_code_for(error: BridgeError) -> int:
    """The exit status of `error`'s family."""
    return FAMILIES.get(error.code, EXIT_INTERNAL)


def report_error(error: BridgeError, *, as_json: bool, command: str = "") -> int:
    """Print `error` (JSON `{"error": data}` on stdout with --json; French, code and next step on stderr).

    Returns its exit status. The technical detail is printed only where it names what to fix; it is
    always in the JSON form.
    """
    data = error.to_data()
    if as_json:
        print(json.dumps({"error": data}, ensure_ascii=False))
    prefix = f"dmp-bridge {command} : " if command else ""
    detail = f" (détail : {error.detail})" if error.detail and error.code in _USEFUL_DETAIL else ""
    print(f"{prefix}{data['message_fr']}{detail} [{error.code.value}]", file=sys.stderr)
    print(f"  → {data['hint_fr']}", file=sys.stderr)
    if "uniqueId" in error.extra:  # DMP_OUTCOME_UNKNOWN: what to look up before sending again
        print(f"  uniqueId : {error.extra['uniqueId']}", file=sys.stderr)
    return exit_code_for(error)
