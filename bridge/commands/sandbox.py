"""`dmp-bridge sandbox`: the product on its embedded default, with no card and no national DMP.

Starts, all wired together: a pcscd with the vpcd virtual readers (the running one, else one started
here; `--pcscd private` hides it in a private mount namespace), virtual cards (a GP's CPS in the
first reader, a family Vitale card in the second; the CPS is read through the ANS Cryptolib when it is
installed, else through the bridge's PC/SC driver, and the summary says which), the DMP
simulator with the test PKI (bridge.sim.sandbox: the daemon's [dmp] settings point at it, in memory
only), the daemon, and the demo page on a second port (bridge.demo). Prints what runs and where;
Ctrl-C stops everything.

The vpcd driver offers two readers per pcscd, so the second practitioner's CPS is swapped in with
`dmp-bridge vcard cps --profile gp2 --port <port of reader 0>` after stopping the sandbox's card, or
through the sandbox's `--cps` option.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

__all__ = ["HELP", "configure", "run"]

#: A long-running process: its INFO log is its activity record.
LOG_LEVEL = logging.INFO

HELP = "démonstration complète : cartes virtuelles + simulateur DMP + pont / sandbox with virtual cards"

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `sandbox`."""
    parser.add_argument("--port", type=int, help="port du pont / bridge port (default from config)")
    parser.add_argument("--cps", default="gp", help="profil de la CPS virtuelle / virtual CPS profile (gp)")
    parser.add_argument("--vitale", default="famille", help="profil de la carte Vitale / Vitale profile (famille)")
    parser.add_argument("--dump", type=Path, help="le simulateur DMP écrit chaque requête/réponse ici / dump DIR")
    parser.add_argument(
        "--dmp-port", type=int, default=0, help="port du simulateur DMP / DMP simulator port (0 : libre)"
    )
    parser.add_argument(
        "--demo-port", type=int, help="port de la page de démonstration / demo page port (défaut : port du pont + 1)"
    )
    parser.add_argument(
        "--pcscd",
        choices=("auto", "system", "private"),
        default="auto",
        help="pcscd : celui qui tourne, sinon un lancé par le bac à sable (auto) ; ou privé / which pcscd",
    )
    parser.add_argument("--no-tray", action="store_true", help="sans icône / headless")
    parser.add_argument(
        "--mllp-port", type=int, default=0,
        help="port HL7v2 (MLLP) où un DPI envoie ses ORU/MDM / HL7v2 MLLP port (0 : libre)",
    )  # fmt: skip


def _system_pcscd_answers() -> bool:
    """True when a pcscd already serves /run/pcscd (started by the system or another program)."""
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    scard.SCardReleaseContext(context)
    return True


def _start_pcscd(args: argparse.Namespace, work_dir: Path) -> tuple[Any, list[int]]:
    """Choose the pcscd: the running one, one we start, or a private one; returns (ours or None, slot ports).

    auto: reuse a running pcscd (its vpcd readers are on Debian's ports); else start one (root only)
    that other shells also see, so `dmp-bridge readers` and `card` work beside the sandbox.
    private: a pcscd in a private mount namespace, invisible to other programs (tests, CI).
    """
    from bridge.sim.pcscd import PCSCD_RUN_DIR, PcscdError, PrivatePcscd, enter_private_namespace, free_port_pair
    from bridge.sim.vpcd import VPCD_BASE_PORT

    default_ports = [VPCD_BASE_PORT, VPCD_BASE_PORT + 1]
    if args.pcscd == "private":
        enter_private_namespace()
        daemon = PrivatePcscd(work_dir, free_port_pair())
    elif args.pcscd == "system" or _system_pcscd_answers():
        return None, default_ports
    elif os.geteuid() != 0:
        raise PcscdError("pcscd ne répond pas : démarrez-le (sudo systemctl start pcscd) ou lancez en root")
    else:
        PCSCD_RUN_DIR.mkdir(parents=True, exist_ok=True)
        daemon = PrivatePcscd(work_dir, VPCD_BASE_PORT)
    daemon.start()
    return daemon, daemon.slot_ports


async def _serve(args: argparse.Namespace, config: Any, pcscd: Any, ports: list[int]) -> int:
    from bridge.commands._daemon_run import start_application, stop_on_signals
    from bridge.crypto.pki import TestPki
    from bridge.demo import DemoServer, demo_port_for
    from bridge.paths import data_dir
    from bridge.pcsc.monitor import ReaderMonitor
    from bridge.sim.registry import make_card
    from bridge.sim.sandbox import SandboxDmp
    from bridge.sim.sandbox_insi import SandboxInsi
    from bridge.sim.vpcd import VirtualSlot
    from bridge.tray import LogUI

    stop = stop_on_signals()
    async with AsyncExitStack() as stack:
        # The simulator and the virtual cards share the per-user test PKI (first use generates its keys).
        pki = await asyncio.to_thread(TestPki.load_or_create)
        dmp = SandboxDmp(data_dir() / "sandbox" / "dmp-sim", pki, port=args.dmp_port, dump_dir=args.dump)
        try:
            await dmp.start()
        except OSError as exc:
            print(f"Simulateur DMP non démarré : {exc.strerror or exc}", file=sys.stderr)
            return 4
        stack.push_async_callback(dmp.stop)
        insi = SandboxInsi(data_dir() / "sandbox" / "insi-sim", pki)
        try:
            await insi.start()
        except OSError as exc:
            print(f"Simulateur INSi non démarré : {exc.strerror or exc}", file=sys.stderr)
            return 4
        stack.push_async_callback(insi.stop)
        # In memory only: the user's config.toml keeps its own [dmp] and [insi] tables.
        config = dataclasses.replace(
            config,
            dmp=await asyncio.to_thread(dmp.dmp_config, config.dmp),
            insi=await asyncio.to_thread(insi.insi_config, config.insi),
        )
        config = dataclasses.replace(config, feed=_sandbox_feed(config.feed, args.mllp_port))
        monitor = ReaderMonitor()
        app = await start_application(config, approver=LogUI(), monitor=monitor)
        if app is None:
            return 4
        stack.push_async_callback(app.stop)
        demo = DemoServer(app.port, args.demo_port if args.demo_port is not None else demo_port_for(app.port))
        try:
            await demo.start()
        except OSError as exc:
            print(f"Page de démonstration non servie (port {demo.port}) : {exc.strerror or exc}", file=sys.stderr)
            return 4
        stack.push_async_callback(demo.stop)
        events = monitor.subscribe()
        stack.callback(monitor.unsubscribe, events)
        slots = [VirtualSlot(port) for port in ports]
        for slot in slots:
            stack.callback(slot.close)
        cards = [("cps", args.cps), ("vitale", args.vitale)]
        for slot, (kind, profile) in zip(slots, cards, strict=True):
            try:
                slot.insert(make_card(kind, profile))
            except (KeyError, ConnectionError) as exc:
                print(f"Carte virtuelle {kind}/{profile} non insérée : {exc}", file=sys.stderr)
                return 2
        await _cards_seen(monitor, events, len(cards))
        backend = getattr(app.cards, "cps_backend", None)
        print(_summary(app.port, pcscd, ports, cards, backend), flush=True)
        print(f"  Simulateur INSi : {insi.url}", flush=True)
        print(_dmp_summary(dmp.url, args.dump, demo.url, _feed_summary(app)), flush=True)
        await stop.wait()
    return 0


async def _cards_seen(monitor: Any, events: asyncio.Queue[Any], count: int, timeout: float = 10.0) -> None:
    """Wait until pcscd reports `count` cards present (it notices vpcd cards within about 0.5 s)."""

    def present() -> int:
        return sum(1 for reader in monitor.snapshot() if reader.card_present)

    try:
        async with asyncio.timeout(timeout):
            while present() < count:
                await events.get()
    except TimeoutError:
        log.warning("pcscd has not reported every virtual card after %.0f s", timeout)


def _summary(port: int, pcscd: Any, ports: list[int], cards: list[tuple[str, str]], backend: Any = None) -> str:
    where = f"pcscd lancé par le bac à sable (journal {pcscd.log_path})" if pcscd else "pcscd du système"
    lines = [
        "dmp-bridge sandbox — bac à sable",
        f"  Pont : http://127.0.0.1:{port}/  (WebSocket ws://127.0.0.1:{port}/ws)",
        f"  Lecteurs : {where}",
    ]
    for index, ((kind, profile), slot_port) in enumerate(zip(cards, ports, strict=True)):
        lines.append(f"    Virtual PCD 00 {index:02d} (port vpcd {slot_port}) : carte {kind}, profil {profile}")
    lines.append("  Code porteur des CPS virtuelles : 1234")
    if backend is not None:
        # Which software reads the CPS: the Cryptolib when installed ([cards] cps_backend), else our driver.
        lines.append(f"  CPS lue par : {backend.describe_fr()}")
    return "\n".join(lines)


def _sandbox_feed(feed: Any, mllp_port: int) -> Any:
    """Feeding on in the sandbox (unless config.toml already set [feed]): MLLP listener and hot folder."""
    from bridge.paths import data_dir

    if feed.enabled:
        return feed
    return dataclasses.replace(
        feed, enabled=True, mllp_port=mllp_port or _free_port(), hot_folder=data_dir() / "sandbox" / "depot"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _feed_summary(app: Any) -> list[str]:
    feed = app.feed
    if feed is None:
        return []
    lines = ["  Alimentation du DMP (certificat d'établissement) : file d'envoi sur la page de diagnostic"]
    if feed.listener is not None:
        lines.append(f"    HL7v2 (MLLP) : {feed.config.mllp_host}:{feed.listener.port}  (ORU^R01, MDM^T02)")
    if feed.hot_folder is not None:
        lines.append(f"    Dossier de dépôt : {feed.hot_folder.root}  (CDA .xml, ou PDF + fiche .json)")
    return lines


def _dmp_summary(dmp_url: str, dump: Path | None, demo_url: str, feed: list[str] | None = None) -> str:
    from bridge.paths import cli_command

    lines = [f"  Simulateur DMP : {dmp_url}  (IGC-Santé de test)"]
    if dump is not None:
        lines.append(f"    échanges bruts écrits dans {dump}")
    lines += feed or []
    lines += [
        f"  Page de démonstration : {demo_url}",
        f"    Au premier accès, autorisez la page : {cli_command()} origins approve CODE (code affiché par la page)",
        "  Ctrl-C pour arrêter.",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Start everything, serve until SIGINT/SIGTERM, stop everything (pcscd by its PID)."""
    from bridge.commands._daemon_run import config_with_port
    from bridge.paths import data_dir, ensure_private_dir
    from bridge.sim.pcscd import PcscdError

    config = config_with_port(args.port)
    if config is None:
        return 2
    work_dir = ensure_private_dir(data_dir() / "sandbox")
    try:
        pcscd, ports = _start_pcscd(args, work_dir)
    except PcscdError as exc:
        print(f"pcscd n'a pas démarré : {exc}", file=sys.stderr)
        return 3
    try:
        return asyncio.run(_serve(args, config, pcscd, ports))
    finally:
        if pcscd is not None:
            pcscd.stop()
