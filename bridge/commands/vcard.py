"""`dmp-bridge vcard`: plug one virtual card into a vpcd virtual reader until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bridge.sim.registry import CARD_KINDS, list_profiles, make_card
from bridge.sim.vpcd import VPCD_BASE_PORT, VirtualCard, serve_card

__all__ = ["HELP", "configure", "run"]

HELP = "insère une carte virtuelle (generic, vitale, cps…) dans un lecteur vpcd / serve one virtual card"


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of the sub-command."""
    parser.add_argument("kind", nargs="?", choices=sorted(CARD_KINDS), help="type de carte / card kind")
    parser.add_argument("--profile", help="profil de la carte (voir --list-profiles) / card profile")
    parser.add_argument("--slot", type=int, default=0, help="numéro de lecteur vpcd (port 35963+N) / vpcd slot")
    parser.add_argument("--host", default="127.0.0.1", help="hôte de vpcd / vpcd host (127.0.0.1)")
    parser.add_argument("--port", type=int, help="port de vpcd (prioritaire sur --slot) / vpcd port")
    parser.add_argument("--list-profiles", action="store_true", help="liste les profils / list profiles")
    parser.add_argument(
        "--occupied-after",
        type=float,
        default=3.0,
        metavar="S",
        help="signaler un lecteur occupé après S secondes sans réponse / report a busy slot after S seconds",
    )


async def _serve(card: VirtualCard, host: str, port: int, occupied_after: float) -> None:
    talked = asyncio.Event()
    serving = asyncio.create_task(serve_card(card, host, port, talked))
    heard = asyncio.create_task(talked.wait())
    done, _ = await asyncio.wait({serving, heard}, timeout=occupied_after, return_when=asyncio.FIRST_COMPLETED)
    if not done:
        # vpcd serves one card per slot: this one waits in its queue, unseen by pcscd.
        print(
            f"Le lecteur vpcd {host}:{port} ne répond pas : une autre carte virtuelle l'occupe sans doute. "
            "Retirez-la (Ctrl-C dans sa fenêtre) ou choisissez un autre lecteur (--slot 1). "
            "Cette carte sera insérée dès que le lecteur se libère.",
            file=sys.stderr,
            flush=True,
        )
        done, _ = await asyncio.wait({serving, heard}, return_when=asyncio.FIRST_COMPLETED)
    if heard in done:
        print("Carte insérée.", flush=True)
    else:
        heard.cancel()
    await serving


def run(args: argparse.Namespace) -> int:
    """Serve the card until Ctrl-C or until vpcd closes the connection."""
    kinds = [args.kind] if args.kind else sorted(CARD_KINDS)
    if args.list_profiles:
        for kind in kinds:
            print(f"{kind}: {', '.join(list_profiles(kind))}")
        return 0
    if args.kind is None:
        print("Indiquez un type de carte : " + ", ".join(kinds), file=sys.stderr)
        return 2
    try:
        card = make_card(args.kind, args.profile)
    except KeyError:
        print(
            f"Profil inconnu « {args.profile} » pour la carte {args.kind}. "
            f"Profils disponibles : {', '.join(list_profiles(args.kind))}",
            file=sys.stderr,
        )
        return 2
    if args.slot < 0:
        print("Le numéro de lecteur (--slot) doit être positif.", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else VPCD_BASE_PORT + args.slot
    profile = args.profile or "par défaut"
    print(f"Carte virtuelle {args.kind} (profil {profile}) : connexion au lecteur vpcd {args.host}:{port}…")
    print("Ctrl-C pour retirer la carte.", flush=True)
    try:
        asyncio.run(_serve(card, args.host, port, args.occupied_after))
    except KeyboardInterrupt:
        print("Carte retirée.")
        return 0
    except OSError as exc:
        print(
            f"Impossible de joindre le lecteur virtuel vpcd sur {args.host}:{port} ({exc.strerror or exc}).\n"
            "Vérifiez que le service pcscd tourne et que le paquet vsmartcard-vpcd est installé "
            "(lecteurs « Virtual PCD 00 00 » et « Virtual PCD 00 01 », ports 35963 et 35964).",
            file=sys.stderr,
        )
        return 1
    print("Le lecteur vpcd a fermé la connexion (pcscd arrêté ?) : carte retirée.", file=sys.stderr)
    return 1
