"""The doctor's pure parts: report ranking and rendering, browser policies, bundle redaction, Cryptolib installs."""

from __future__ import annotations

import ctypes.util
import json
import shutil
from pathlib import Path

import pytest

from bridge.cards.pkcs11_module import load_module
from bridge.doctor.browser_checks import BrowserPolicies, browser_findings, load_policies, pattern_matches
from bridge.doctor.bundle import redact_config, redact_text
from bridge.doctor.cryptolib_checks import cryptolib_findings, installed_modules
from bridge.doctor.findings import Finding, Section, Status, exit_code, render_text, to_json
from bridge.service.cards_config import CardsConfig


def _f(status: Status, advice: str = "") -> Finding:
    return Finding(section=Section.DMP, check="x", status=status, summary=f"état {status.value}", advice=advice)


def test_exit_code_and_overall_status_follow_the_worst_finding() -> None:
    assert exit_code([_f(Status.OK), _f(Status.INFO), _f(Status.SKIPPED)]) == 0
    assert exit_code([_f(Status.OK), _f(Status.WARNING)]) == 1
    assert exit_code([_f(Status.WARNING), _f(Status.PROBLEM), _f(Status.OK)]) == 2
    assert to_json([_f(Status.WARNING), _f(Status.OK)])["status"] == "warning"


def test_text_report_gives_the_advice_under_its_problem() -> None:
    text = render_text([_f(Status.PROBLEM, "faites ceci")])
    lines = text.splitlines()
    assert lines[0] == "== Accès au DMP"
    assert lines[1].startswith("[PROBLÈME]") and lines[2].strip() == "→ faites ceci"
    assert "Des problèmes empêchent" in text


@pytest.mark.parametrize(
    ("pattern", "origin", "matches"),
    [
        ("*", "https://dpi.example.fr", True),
        ("https://dpi.example.fr", "https://dpi.example.fr", True),
        ("https://dpi.example.fr", "http://dpi.example.fr", False),
        ("https://dpi.example.fr:8443", "https://dpi.example.fr", False),
        ("[*.]example.fr", "https://dpi.example.fr", True),
        ("[*.]example.fr", "https://example.fr", True),
        ("[*.]example.fr", "https://badexample.fr", False),
        ("dpi.example.fr", "https://dpi.example.fr:9443", True),
    ],
)
def test_enterprise_url_patterns(pattern: str, origin: str, matches: bool) -> None:
    assert pattern_matches(pattern, origin) is matches


def test_policy_precedence_blocks_before_allowing(tmp_path: Path) -> None:
    chrome = tmp_path / "chrome"
    chrome.mkdir()
    (chrome / "lna.json").write_text(
        json.dumps(
            {
                "LocalNetworkAccessAllowedForUrls": ["[*.]hopital.fr"],
                "LoopbackNetworkBlockedForUrls": ["https://bloque.hopital.fr"],
            }
        )
    )
    (chrome / "broken.json").write_text("{not json")
    policies = load_policies({"Google Chrome": chrome, "Absent": tmp_path / "none"})
    assert [p.browser for p in policies] == ["Google Chrome"]
    found = browser_findings(
        ["https://bloque.hopital.fr", "https://dpi.hopital.fr", "https://autre.fr", "http://127.0.0.1:28442"], policies
    )
    assert [f.status for f in found] == [Status.PROBLEM, Status.OK, Status.INFO]
    assert "LoopbackNetworkBlockedForUrls" in found[0].summary
    assert BrowserPolicies("x", {}).decision("https://a.fr") is None


def test_bundle_redaction_masks_identity_and_numbers() -> None:
    config = 'port = 28442\n[dmp]\npractitioner_id = "810012345678"\npractitioner_given = "PAUL"\nlps_name = "X"\n'
    redacted = redact_config(config)
    assert "810012345678" not in redacted and "PAUL" not in redacted
    assert 'lps_name = "X"' in redacted and "port = 28442" in redacted
    assert redact_text("carte 2600000100 nir 180057512345678 ok") == "carte [NUMÉRO] nir [NIR] ok"


def _softhsm() -> Path:
    for candidate in ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"):
        if Path(candidate).is_file():
            return Path(candidate)
    found = ctypes.util.find_library("softhsm2")
    if found is None:
        pytest.skip("softhsm2 is installed by the README's test command")
    return Path(found)


def test_cryptolib_version_and_conflicting_installs(tmp_path: Path) -> None:
    """A real PKCS#11 module (SoftHSM) stands in for the Cryptolib: C_GetInfo gives the version."""
    module = tmp_path / "a" / "libcps3_pkcs11_lux.so"
    module.parent.mkdir()
    shutil.copy(_softhsm(), module)
    config = CardsConfig(pkcs11_module=module)
    found = installed_modules(config, env={})
    assert found == [module]
    [loaded] = cryptolib_findings(config, found, lambda p: load_module(p).info())
    assert loaded.status is Status.OK and loaded.details["path"] == str(module)
    other = tmp_path / "b.so"
    other.write_bytes(module.read_bytes() + b"\0")
    conflict = cryptolib_findings(config, [module, other], lambda p: load_module(p).info())[-1]
    assert conflict.status is Status.WARNING and conflict.check == "cryptolib.conflict"
    broken = tmp_path / "broken.so"
    broken.write_bytes(b"not a library")
    [failed] = cryptolib_findings(CardsConfig(pkcs11_module=broken), [broken], lambda p: load_module(p).info())
    assert failed.status is Status.PROBLEM and "ne se charge pas" in failed.summary
