"""`dmp-bridge debug vihf`: a VIHF signed by the virtual CPS on the real pcscd, verified by xmlsec1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import create_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki, private_home

__all__ = ["pki", "private_home"]

ROOT = Path(__file__).resolve().parents[2]
INS = "178037511501201"
SAML = "{urn:oasis:names:tc:SAML:2.0:assertion}"
READER = "Virtual PCD 00 00"


def _debug_vihf(home: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DMP_BRIDGE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "debug", "vihf", "--ins", INS, *args],
        cwd=ROOT,
        env=env,
        input=stdin.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.pcsc
def test_direct_vihf_signed_by_the_card(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path, tmp_path: Path
) -> None:
    slots[0].insert(create_card("gp", pki))
    wait_card_state(READER, present=True)
    proc = _debug_vihf(private_home, "--pin-stdin", "--sha1", stdin="1234\n")
    assert proc.returncode == 0, proc.stderr.decode()
    assertion = etree.fromstring(proc.stdout)
    assert assertion.tag == f"{SAML}Assertion"
    attributes = {a.get("Name"): a.findtext(f"{SAML}AttributeValue") for a in assertion.iter(f"{SAML}Attribute")}
    assert attributes["Authentification_mode"] == "DIRECTE"
    assert INS in etree.tostring(assertion).decode()
    signature_method = assertion.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureMethod")
    assert signature_method is not None and signature_method.get("Algorithm").endswith("rsa-sha1")
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 (Debian package) not installed")
    token = tmp_path / "vihf.xml"
    token.write_bytes(proc.stdout)
    root, persons = tmp_path / "root.pem", tmp_path / "persons.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    persons.write_bytes(pki.persons_ca.cert_pem())
    verified = subprocess.run(
        ["xmlsec1", "--verify", "--trusted-pem", str(root), "--untrusted-pem", str(persons), "--id-attr:ID",
         "urn:oasis:names:tc:SAML:2.0:assertion:Assertion", str(token)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr


@pytest.mark.pcsc
def test_wrong_pin_and_missing_pin_give_clear_errors(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path
) -> None:
    slots[0].insert(create_card("gp", pki))
    wait_card_state(READER, present=True)
    wrong = _debug_vihf(private_home, "--pin-stdin", stdin="0000\n")
    assert wrong.returncode == 1 and wrong.stdout == b""
    last_line = wrong.stderr.decode().strip().splitlines()[-1]
    assert last_line == "PIN_INCORRECT: Code porteur incorrect. (2 essai(s) restant(s))"
    missing = _debug_vihf(private_home, stdin="")
    assert missing.returncode == 2 and b"--pin-stdin" in missing.stderr
