"""Every error code carries a next step for the person, in French first, filled from the error's values."""

from __future__ import annotations

import re

import pytest

from bridge.error_hints import HINTS, hint
from bridge.errors import BridgeError, ErrorCode

# Internal identifiers must not leak into the person's text: snake_case, dotted method names, English states.
_INTERNAL = re.compile(r"\b[a-z]+_[a-z_]+\b|\b[a-z]+\.[a-z]+\(|\bnot allowed\b")


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_code_has_a_french_and_english_next_step(code: ErrorCode) -> None:
    assert code in HINTS, f"{code.value} has no hint in bridge/error_hints.py"
    french, english = hint(code)
    assert french and english and "{" not in french and "{" not in english
    assert not _INTERNAL.search(french.replace("--pin-stdin", "").replace("--force-last-try", "")), french


def test_hint_uses_the_error_values_when_it_has_them() -> None:
    data = BridgeError(ErrorCode.PIN_INCORRECT, triesLeft=2).to_data()
    assert data["hint_fr"] == "Vérifiez le code porteur avant de le ressaisir : 2 essai(s) restant(s)."
    assert data["hint_en"].endswith("2 try(ies) left.")
    assert (
        BridgeError(ErrorCode.PIN_INCORRECT).to_data()["hint_fr"] == "Vérifiez le code porteur avant de le ressaisir."
    )
    unknown = BridgeError(ErrorCode.DMP_OUTCOME_UNKNOWN, uniqueId="1.2.3^42").to_data()
    assert "1.2.3^42" in unknown["hint_fr"]
