"""`dmp-bridge doctor` run as a real process: each field problem is detected and explained in French.

Real components throughout: the private pcscd (stopped for real), virtual cards over vpcd, the DMP
simulator over TLS on loopback, real files with real modes.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from bridge.crypto.pki import TestPki
from bridge.sim.cps3 import create_card
from bridge.sim.dmp import DmpSimulator
from bridge.sim.pcscd import PrivatePcscd
from bridge.sim.registry import make_card
from bridge.sim.vpcd import VirtualSlot
from tests.conftest import wait_card_state
from tests.cps_fixtures import private_home
from tests.pcsc_fixtures import restartable_pcscd

pytest_plugins = ["tests.integration.dmp_sim_fixtures"]
__all__ = ["private_home", "restartable_pcscd"]  # fixtures used by name

pytestmark = pytest.mark.pcsc
ROOT = Path(__file__).resolve().parents[2]
READERS = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(home: Path, text: str = "") -> None:
    """config.toml in the private home, on a port no daemon of this machine listens on."""
    folder = home / "config"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / "config.toml").write_text(f"port = {_free_port()}\n{text}", encoding="utf-8")


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", "doctor", "--json", *args]


def doctor(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run the doctor; its exit status and JSON report."""
    result = subprocess.run(
        _argv(*args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DMP_BRIDGE_HOME": str(home), **(env or {})},
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


async def doctor_async(home: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """The doctor from an async test, whose event loop serves the simulator meanwhile."""
    process = await asyncio.create_subprocess_exec(
        *_argv(*args),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "DMP_BRIDGE_HOME": str(home)},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert out, err.decode()
    assert process.returncode is not None
    return process.returncode, json.loads(out)


def finding(report: dict[str, Any], check: str) -> dict[str, Any]:
    matches = [f for f in report["findings"] if f["check"] == check]
    assert len(matches) == 1, [f["check"] for f in report["findings"]]
    return matches[0]


def insert(slots: list[VirtualSlot], first: Any, second: Any = None) -> None:
    for slot, reader in zip(slots, READERS, strict=True):
        slot.remove()
        wait_card_state(reader, False)
    slots[0].insert(first)
    wait_card_state(READERS[0], True)
    if second is not None:
        slots[1].insert(second)
        wait_card_state(READERS[1], True)


def test_stopped_pcscd_is_a_problem_with_the_restart_command(
    restartable_pcscd: PrivatePcscd, private_home: Path
) -> None:
    write_config(private_home)
    restartable_pcscd.stop()
    code, report = doctor(private_home, "--offline")
    assert code == 2 and report["status"] == "problem"
    pcsc = finding(report, "pcsc.service")
    assert pcsc["status"] == "problem"
    assert "pcscd" in pcsc["summary"] and "systemctl restart pcscd" in pcsc["advice"]


def test_expired_cps_is_named_with_its_date_and_the_renewal_advice(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path
) -> None:
    write_config(private_home)
    insert(slots, create_card("expired", pki))
    code, report = doctor(private_home, "--offline")
    validity = finding(report, "card.validity")
    assert validity["status"] == "problem" and code == 2
    assert "expirée le" in validity["summary"] and "renouvellement" in validity["advice"]
    assert finding(report, "readers.present")["status"] == "ok"


def test_valid_cps_and_unknown_card_are_told_apart(slots: list[VirtualSlot], pki: TestPki, private_home: Path) -> None:
    from tests.scripted_card import ScriptedCard

    write_config(private_home)
    insert(slots, create_card("gp", pki), ScriptedCard())
    _, report = doctor(private_home, "--offline")
    assert finding(report, "card.validity")["status"] == "ok"
    unknown = finding(report, "card.kind")
    # An unrecognised card is not green: the helpdesk must look at it.
    assert unknown["status"] == "warning" and "non reconnue" in unknown["summary"]


def test_missing_cryptolib_warns_in_auto_and_is_a_problem_when_required(private_home: Path) -> None:
    nowhere = {"DMP_BRIDGE_PKCS11_MODULE": str(private_home / "absent.so")}
    write_config(private_home)
    _, report = doctor(private_home, "--offline", env=nowhere)
    auto = finding(report, "cryptolib.present")
    assert auto["status"] == "warning" and "Cryptolib CPS" in auto["advice"]
    write_config(private_home, '[cards]\ncps_backend = "pkcs11"\n')
    code, report = doctor(private_home, "--offline", env=nowhere)
    required = finding(report, "cryptolib.present")
    assert required["status"] == "problem" and code == 2
    assert "pkcs11_module" in required["advice"]


def test_bad_token_file_mode_is_a_problem_with_the_rotate_command(private_home: Path) -> None:
    write_config(private_home)
    data = private_home / "data"
    data.mkdir(mode=0o700)
    token = data / "local-token"
    token.write_text("secret\n")
    token.chmod(0o644)
    code, report = doctor(private_home, "--offline")
    found = finding(report, "files.token")
    assert found["status"] == "problem" and code == 2
    assert "dmp-bridge token --rotate" in found["advice"] and "0644" in found["summary"]
    assert "secret" not in json.dumps(report)
    token.chmod(0o600)
    _, report = doctor(private_home, "--offline")
    assert finding(report, "files.token")["status"] == "ok"


def test_stopped_daemon_is_a_warning_telling_how_to_start_it(private_home: Path) -> None:
    write_config(private_home)
    _, report = doctor(private_home, "--offline")
    daemon = finding(report, "daemon.running")
    assert daemon["status"] == "warning" and "dmp-bridge run" in daemon["advice"]


async def test_unreachable_dmp_is_a_network_problem(pki: TestPki, private_home: Path) -> None:
    write_config(
        private_home,
        f'[dmp]\nurl = "https://127.0.0.1:{_free_port()}/si-dmp-server/v2/services"\n'
        f'ca_bundle = "{pki.ca_bundle_path()}"\n',
    )
    code, report = await doctor_async(private_home)
    tcp = finding(report, "dmp.tcp")
    assert tcp["status"] == "problem" and code == 2
    assert "ne répond pas" in tcp["summary"] and "pare-feu" in tcp["advice"]


async def test_reachable_dmp_with_its_chain_verified_and_a_wrong_trust_store(
    sim: DmpSimulator, pki: TestPki, private_home: Path, tmp_path: Path
) -> None:
    dmp = f'[dmp]\nurl = "{sim.url}"\nserver_name = "localhost"\n'
    write_config(private_home, dmp + f'ca_bundle = "{pki.ca_bundle_path()}"\n')
    _, report = await doctor_async(private_home)
    assert [finding(report, c)["status"] for c in ("dmp.config", "dmp.dns", "dmp.tcp", "dmp.tls")] == ["ok"] * 4
    other = TestPki.load_or_create(tmp_path / "other-pki")
    write_config(private_home, dmp + f'ca_bundle = "{other.ca_bundle_path()}"\n')
    code, report = await doctor_async(private_home)
    tls = finding(report, "dmp.tls")
    assert tls["status"] == "problem" and code == 2
    assert "certificat du serveur DMP n'est pas reconnu" in tls["summary"] and "proxy" in tls["advice"]


def test_bundle_holds_the_report_and_no_personal_data(
    slots: list[VirtualSlot], pki: TestPki, private_home: Path, tmp_path: Path
) -> None:
    write_config(private_home, '[dmp]\npractitioner_id = "810012345678"\npractitioner_family = "MARTIN"\n')
    vitale = make_card("vitale", "famille")
    insert(slots, create_card("gp", pki), vitale)
    bundle = tmp_path / "support.zip"
    code, report = doctor(private_home, "--offline", "--bundle", str(bundle))
    assert code in (0, 1, 2) and finding(report, "card.vitale")["status"] == "ok"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        text = "\n".join(archive.read(n).decode("utf-8") for n in names)
    assert {"rapport.txt", "rapport.json", "versions.json", "config.toml"} <= names
    assert "Lecteurs et cartes" in text and "Carte Vitale lue" in text
    # Neither the practitioner nor any beneficiary of the family card may leave in a support bundle.
    for personal in ("810012345678", "MARTIN", "PAUL"):
        assert personal not in text, personal
    card = json.loads(subprocess.run(
        [sys.executable, "-m", "bridge.cli", "card", "--json", "--reader", READERS[1]],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "DMP_BRIDGE_HOME": str(private_home)},
    ).stdout)  # fmt: skip
    for beneficiary in card["cards"][0]["vitale"]["beneficiaries"]:
        assert beneficiary["lastName"] not in text and (not beneficiary["nir"] or beneficiary["nir"] not in text)
