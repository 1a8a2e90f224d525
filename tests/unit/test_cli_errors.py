"""The CLI's error contract: one exit status per error family, French with code and next step on stderr."""

from __future__ import annotations

import json

import pytest

from bridge.commands._errors import FAMILIES, exit_code_for, report_error
from bridge.commands.card import _birth
from bridge.errors import BridgeError, ErrorCode


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_has_an_exit_family(code: ErrorCode) -> None:
    assert code in FAMILIES, f"{code.value}: add it to bridge/commands/_errors.py FAMILIES (and the README)"


def test_families_that_a_script_must_tell_apart_differ() -> None:
    def status(code: ErrorCode) -> int:
        return exit_code_for(BridgeError(code))

    assert status(ErrorCode.PIN_INCORRECT) != status(ErrorCode.PIN_LAST_TRY)
    assert status(ErrorCode.NO_CARD) != status(ErrorCode.CARD_ERROR)
    assert status(ErrorCode.DMP_UNREACHABLE) != status(ErrorCode.DMP_FAULT) != status(ErrorCode.DMP_OUTCOME_UNKNOWN)
    assert status(ErrorCode.INTERNAL) == 1 and status(ErrorCode.INVALID_PARAMS) == 2


def test_report_prints_json_on_stdout_and_french_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    status = report_error(
        BridgeError(ErrorCode.PIN_INCORRECT, "verify_pin not allowed", triesLeft=1), as_json=True, command="card"
    )
    out, err = capsys.readouterr()
    assert status == 6
    assert json.loads(out)["error"]["triesLeft"] == 1
    first, hint = err.splitlines()
    assert first == "dmp-bridge card : Code porteur incorrect. [PIN_INCORRECT]"  # no internal detail
    assert hint == "  → Vérifiez le code porteur avant de le ressaisir : 1 essai(s) restant(s)."


def test_birth_dates_for_people_including_lunar_ones() -> None:
    assert _birth({"birthDate": "1978-03-14", "birthDateRaw": "19780314"}) == "14/03/1978"
    assert _birth({"birthDate": None, "birthDateRaw": "19780035"}) == "35/00/1978 (date lunaire)"
    assert _birth({"birthDate": None, "birthDateRaw": None}) == "non indiquée"
