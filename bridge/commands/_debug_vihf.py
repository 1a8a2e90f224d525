"""`dmp-bridge debug vihf`: the signed VIHF the bridge would send for a patient, for integrators.

DIRECTE signs with the CPS signature key (PIN from stdin); the indirect modes sign with the
establishment's SIGN certificate from the `[dmp]` configuration. The token is built by the same
function the DMP client uses (`bridge.dmp.client.signed_vihf`), so what is printed is what is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import uuid

from lxml import etree

from bridge.dmp.codes import AuthMode, PurposeOfUse, SignatureAlgorithm
from bridge.dmp.context import signed_vihf
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_card import CardServiceDirectSource, standalone_cps

__all__ = ["configure_vihf", "run_vihf"]


def configure_vihf(parser: argparse.ArgumentParser) -> None:
    """Options of `debug vihf`."""
    parser.add_argument("--ins", required=True, help="INS du patient (NIR, 15 chiffres) / patient INS")
    parser.add_argument("--ins-oid", help="autorité de l'INS / INS authority OID (default from config)")
    parser.add_argument("--mode", choices=[m.value for m in AuthMode], default=AuthMode.DIRECTE.value)
    parser.add_argument("--purpose", choices=[p.value for p in PurposeOfUse], default=PurposeOfUse.NORMAL.value)
    parser.add_argument("--situation", type=int, help="situation d'exercice de la carte / card situation index")
    parser.add_argument("--reader", help="lecteur de la CPS / CPS reader (DIRECTE)")
    parser.add_argument("--pin-stdin", action="store_true", help="code porteur lu sur stdin (DIRECTE)")
    parser.add_argument("--sha1", action="store_true", help="RSA-SHA1 comme les exemples officiels / as the samples")


def run_vihf(args: argparse.Namespace) -> int:
    """Print the signed VIHF on stdout; errors on stderr with their code."""
    from bridge.commands.debug import read_secret_line

    mode = AuthMode(args.mode)
    if mode is AuthMode.DIRECTE and not args.pin_stdin:
        print("DIRECTE : le code porteur est nécessaire (--pin-stdin) / the PIN is needed", file=sys.stderr)
        return 2
    pin = read_secret_line() if args.pin_stdin else bytearray()
    try:
        token = asyncio.run(_signed(args, mode, pin))
    except BridgeError as exc:
        tries = exc.extra.get("triesLeft")
        more = f" ({tries} essai(s) restant(s))" if tries is not None else f" ({exc.detail})" if exc.detail else ""
        print(f"{exc.code.value}: {exc.message_fr}{more}", file=sys.stderr)
        return 1
    finally:
        pin[:] = bytes(len(pin))
    sys.stdout.buffer.write(etree.tostring(token, encoding="utf-8", xml_declaration=True))
    sys.stdout.buffer.write(b"\n")
    return 0


async def _signed(args: argparse.Namespace, mode: AuthMode, pin: bytearray) -> etree._Element:
    from bridge.config import ConfigError, load_config

    try:
        config = load_config().dmp
    except ConfigError as exc:
        raise BridgeError(ErrorCode.INVALID_PARAMS, str(exc)) from exc
    if mode is not AuthMode.DIRECTE:
        return await _sign(args, DmpService(config), DmpContext(mode=mode, purpose=PurposeOfUse(args.purpose)))
    async with standalone_cps(pin, args.reader) as (cards, reader):
        service = DmpService(config, direct=CardServiceDirectSource(cards))
        ctx = DmpContext(mode=mode, purpose=PurposeOfUse(args.purpose), situation=args.situation, reader=reader)
        return await _sign(args, service, ctx)


async def _sign(args: argparse.Namespace, service: DmpService, ctx: DmpContext) -> etree._Element:
    """The VIHF of `ctx`'s practitioner for the patient, signed (by the card: off the event loop)."""
    try:
        credentials, practitioner = await service.acting_as(ctx)
        algorithm = SignatureAlgorithm.RSA_SHA1 if args.sha1 else SignatureAlgorithm.RSA_SHA256
        return await asyncio.to_thread(
            signed_vihf,
            practitioner,
            service.patient(args.ins, args.ins_oid),
            credentials,
            service.config,
            now=dt.datetime.now(dt.UTC),
            assertion_id=uuid.uuid4().hex,
            algorithm=algorithm,
        )
    finally:
        await service.aclose()
