"""`dmp-bridge card` run as a real process against pcscd, with a virtual CPS and a virtual Vitale inserted."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import Cps3Emulator, create_card
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import pki, private_home

__all__ = ["pki", "private_home"]

pytestmark = pytest.mark.pcsc
ROOT = Path(__file__).resolve().parents[2]
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


def cli(*args: str, stdin: str | None = None, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DMP_BRIDGE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "card", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def insert(slots: list[VirtualSlot], cps: Cps3Emulator, with_vitale: bool = True) -> None:
    for slot, reader in zip(slots, READERS, strict=True):
        slot.remove()
        wait_card_state(reader, False)
    slots[0].insert(cps)
    wait_card_state(READERS[0], True)
    if with_vitale:
        slots[1].insert(make_card("vitale", "famille"))
        wait_card_state(READERS[1], True)


def by_reader(output: str) -> dict[str, dict[str, Any]]:
    return {card["reader"]: card for card in json.loads(output)["cards"]}


def test_card_json_without_pin(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    insert(slots, create_card("gp", pki))
    result = cli("--json", home=private_home)
    assert result.returncode == 0, result.stderr
    cards = by_reader(result.stdout)
    cps = cards[READERS[0]]
    assert cps["kind"] == "CPS3" and cps["situations"] is None
    assert cps["cps"]["cardType"] == "CPS" and cps["cps"]["holder"]["nationalId"] == "810012345678"
    assert cps["cps"]["pin"] == {"triesLeft": 3, "triesMax": 3, "blocked": False}
    auth, sign = cps["cps"]["certificates"]["authentication"], cps["cps"]["certificates"]["signature"]
    assert (auth["usage"], sign["usage"]) == ("authentication", "signature")
    assert "CN=810012345678" in auth["subject"] and "TEST AC IGC-SANTE STANDARD PERSONNES" in auth["issuer"]
    assert auth["daysLeft"] > 300 and not auth["expired"]
    vitale = cards[READERS[1]]
    assert vitale["kind"] == "VITALE2" and len(vitale["vitale"]["beneficiaries"]) == 3


def test_card_with_pin_shows_situations_in_french(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    insert(slots, create_card("gp", pki), with_vitale=False)
    result = cli("--pin-stdin", "--reader", READERS[0], stdin="1234\n", home=private_home)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Titulaire : DR PAUL MARTIN (810012345678)" in out
    assert "Code porteur : 3 essai(s) restant(s) sur 3" in out
    assert "Situations d'exercice : 2" in out
    # Codes come with their official labels, dates as people write them.
    assert "CABINET DR PAUL MARTIN (481001234567801), secteur : Cabinet individuel (SA07)" in out
    assert "Profession : Médecin (10) ; spécialité : Médecine générale (SM) (SM54)" in out
    assert "valide du " in out and "T00:00" not in out
    assert out.splitlines()[0].startswith(f"{READERS[0]} : Carte CPS (carte de professionnel de santé, CPS3)")
    assert "1234" not in result.stderr


def test_wrong_pin_and_last_try(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    card = create_card("gp", pki)
    insert(slots, card, with_vitale=False)
    result = cli("--json", "--pin-stdin", stdin="9999\n", home=private_home)
    assert result.returncode == 6  # wrong PIN
    entry = by_reader(result.stdout)[READERS[0]]
    assert entry["error"]["code"] == "PIN_INCORRECT" and entry["error"]["triesLeft"] == 2
    assert entry["cps"]["pin"]["triesLeft"] == 3 and entry["situations"] is None
    assert card.tries_left == 2

    last = create_card("last-try", pki)
    insert(slots, last, with_vitale=False)
    result = cli("--json", "--pin-stdin", stdin="1234\n", home=private_home)
    assert result.returncode == 7  # the last try needs --force-last-try: not the same as a wrong PIN
    assert by_reader(result.stdout)[READERS[0]]["error"]["code"] == "PIN_LAST_TRY" and last.tries_left == 1
    result = cli("--json", "--pin-stdin", "--force-last-try", stdin="1234\n", home=private_home)
    assert result.returncode == 0, result.stdout
    assert len(by_reader(result.stdout)[READERS[0]]["situations"]) == 2 and last.tries_left == 3


def test_expired_and_blocked_cards_are_described(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    insert(slots, create_card("expired", pki), with_vitale=False)
    result = cli(home=private_home)
    assert result.returncode == 0, result.stderr
    assert "EXPIRÉ" in result.stdout
    insert(slots, create_card("blocked", pki), with_vitale=False)
    result = cli("--pin-stdin", stdin="1234\n", home=private_home)
    assert result.returncode == 6
    assert "BLOQUÉ" in result.stdout and "Carte bloquée" in result.stdout
    # French for people: the code and the next step, no internal identifiers.
    assert "[PIN_BLOCKED]" in result.stdout and "code de déblocage" in result.stdout
    assert "not allowed" not in result.stdout and "verify_pin" not in result.stdout


def test_unknown_reader(slots: list[VirtualSlot], private_home: Path) -> None:
    result = cli("--json", "--reader", "No Such Reader", home=private_home)
    assert result.returncode == 4
    assert json.loads(result.stdout)["error"]["code"] == "NO_READER"
    # Not « no reader detected » while two are there: name them.
    assert "Ce lecteur n'existe pas" in result.stderr and all(r in result.stderr for r in READERS)


def test_pin_without_a_cps_is_an_error_not_a_silent_success(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path
) -> None:
    insert(slots, create_card("gp", pki))  # CPS in reader 0, Vitale in reader 1
    result = cli("--pin-stdin", "--reader", READERS[1], stdin="1234\n", home=private_home)
    assert result.returncode == 4
    assert "Aucune carte CPS" in result.stderr and "[NO_CARD]" in result.stderr
    assert "supported" not in result.stderr


def test_dates_of_a_vitale_card_are_written_for_people(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path
) -> None:
    insert(slots, create_card("gp", pki))
    result = cli("--reader", READERS[1], home=private_home)
    assert result.returncode == 0, result.stderr
    assert "né(e) le " in result.stdout
    assert "né(e) 19" not in result.stdout and "né(e) 20" not in result.stdout
    assert result.stderr == ""  # no INFO log lines without -v


def test_pin_typed_on_a_terminal_is_not_echoed(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    insert(slots, create_card("gp", pki), with_vitale=False)
    master, slave = pty.openpty()
    env = {**os.environ, "DMP_BRIDGE_HOME": str(private_home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "card", "--json", "--pin-stdin"],
        cwd=ROOT,
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    try:
        assert proc.stderr is not None
        prompt = b""
        while not prompt.endswith(b"Code porteur : "):
            byte = proc.stderr.read(1)
            assert byte, "no PIN prompt"
            prompt += byte
        os.write(master, b"1234\n")
        stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert len(json.loads(stdout)["cards"][0]["situations"]) == 2
        echoed = b""
        while select.select([master], [], [], 0)[0]:
            try:
                chunk = os.read(master, 1024)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
        assert b"1234" not in echoed
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
