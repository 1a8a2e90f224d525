"""`dmp-bridge debug <tool>`: diagnostic tools for integrators and the helpdesk.

Tools are sub-commands of `debug`, each a `configure`/`run` pair registered in `_TOOLS`:
`tls-probe` makes a client-authenticated TLS 1.2 handshake with a DMP-like server and shows what
was negotiated; `vihf` prints the signed VIHF the bridge would send for a patient.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import BridgeError, ErrorCode

__all__ = ["HELP", "configure", "load_card_client_identity", "read_secret_line", "run"]

HELP = "outils de diagnostic / diagnostic tools (tls-probe, vihf)"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add one sub-parser per tool."""
    tools = parser.add_subparsers(dest="tool", metavar="TOOL", required=True)
    for name, (help_text, configure_tool, _run) in _TOOLS.items():
        configure_tool(tools.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    """Run the chosen tool."""
    return _TOOLS[args.tool][2](args)


# -- tls-probe --------------------------------------------------------------------------------


def _configure_tls_probe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="https://host[:port]/path")
    parser.add_argument("--cafile", type=Path, help="racines de confiance (PEM) / trust anchors (PEM bundle)")
    parser.add_argument("--server-name", help="nom attendu dans le certificat serveur / expected server name")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--cert-p12", type=Path, metavar="FILE", help="certificat client PKCS#12 (AUTH_CLI)")
    who.add_argument("--pin-stdin", action="store_true", help="carte CPS, code porteur lu sur stdin")
    parser.add_argument("--p12-password-stdin", action="store_true", help="mot de passe PKCS#12 lu sur stdin")
    parser.add_argument("--reader", help="lecteur de la carte CPS / reader of the CPS card (with --pin-stdin)")
    parser.add_argument("--timeout", type=float, default=15.0, help="délai réseau en secondes / network timeout")
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")


@contextlib.asynccontextmanager
async def load_card_client_identity(pin: bytearray, reader: str | None = None) -> AsyncIterator[Any]:
    """The CPS card's TLS identity (authentication certificate + card-backed key), PIN presented.

    Finds the one CPS card (or the one in `reader`), presents `pin` (refused when a single try is
    left), and yields a `bridge.crypto.tls_endpoint.ClientIdentity` whose key signs with INTERNAL AUTHENTICATE;
    the card is logged out and closed on exit.
    """
    from bridge.service.dmp_card import CardServiceDirectSource, standalone_cps

    async with standalone_cps(pin, reader) as (cards, name):
        identity = await CardServiceDirectSource(cards).direct_identity(name)
        yield identity.credentials.tls


def read_secret_line() -> bytearray:
    # Read raw bytes so the secret never becomes an immutable str.
    secret = bytearray(sys.stdin.buffer.readline())
    while secret and secret[-1] in (0x0A, 0x0D):
        secret.pop()
    return secret


def _default_cafile() -> Path:
    """The sandbox's trust anchors: the test IGC-Santé PKI (created on first use)."""
    from bridge.crypto.pki import TestPki
    from bridge.paths import data_dir

    return TestPki.load_or_create(data_dir() / "test-pki").ca_bundle_path()


def _run_tls_probe(args: argparse.Namespace) -> int:
    try:
        parts = urlsplit(args.url)
        if parts.scheme != "https" or not parts.hostname:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "URL must be https://host[:port]/path")
        secret = read_secret_line() if (args.pin_stdin or args.p12_password_stdin) else bytearray()
        try:
            report = asyncio.run(_probe(args, parts.hostname, parts.port or 443, parts.path or "/", secret))
        finally:
            secret[:] = bytes(len(secret))
    except BridgeError as exc:
        print(f"{exc.code.value}: {exc.detail or exc.message_en}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"TLS      {report['protocol']} {report['cipher_suite']}")
        print(f"client   {report['client_certificate'] or '(none)'}")
        for i, cert in enumerate(report["server_chain"]):
            print(f"server[{i}] {cert['subject']}")
            print(f"          issuer {cert['issuer']}")
            print(f"          valid  {cert['not_before']} .. {cert['not_after']}")
        print(f"HTTP     {report['http_status']} {report['http_reason']}")
    return 0


async def _probe(args: argparse.Namespace, host: str, port: int, path: str, secret: bytearray) -> dict[str, Any]:
    from bridge.crypto.tls_endpoint import ClientIdentity, ServerTrust, TlsEndpoint

    trust = ServerTrust.from_pem_file(args.cafile or _default_cafile())
    async with contextlib.AsyncExitStack() as stack:
        identity: ClientIdentity | None = None
        if args.cert_p12 is not None:
            try:
                data = args.cert_p12.read_bytes()
            except OSError as exc:
                raise BridgeError(ErrorCode.INVALID_PARAMS, f"cannot read {args.cert_p12}") from exc
            identity = ClientIdentity.from_pkcs12(data, secret or None)
        elif args.pin_stdin:
            identity = await stack.enter_async_context(load_card_client_identity(secret, args.reader))
        endpoint = TlsEndpoint(
            host, port, trust, identity, server_name=args.server_name, connect_timeout=args.timeout,
            io_timeout=args.timeout,
        )  # fmt: skip
        return await _exchange(endpoint, path)


async def _exchange(endpoint: Any, path: str) -> dict[str, Any]:
    from bridge.dmp.http import HttpsClient

    async with HttpsClient(endpoint) as client:
        info = await client.connect()
        response = await client.get(path)
    identity = endpoint.identity
    return {
        "protocol": "TLSv1.2",
        "cipher_suite": info.cipher_suite,
        "client_certificate": identity.chain[0].subject.rfc4514_string() if identity else None,
        "server_chain": [
            {
                "subject": cert.subject.rfc4514_string(),
                "issuer": cert.issuer.rfc4514_string(),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
            for cert in info.server_chain
        ],
        "http_status": response.status,
        "http_reason": response.reason,
    }


def _configure_vihf(parser: argparse.ArgumentParser) -> None:
    from bridge.commands._debug_vihf import configure_vihf

    configure_vihf(parser)


def _run_vihf(args: argparse.Namespace) -> int:
    from bridge.commands._debug_vihf import run_vihf

    return run_vihf(args)


_TOOLS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "tls-probe": (
        "poignée de main TLS 1.2 authentifiée / client-authenticated TLS 1.2 probe of a DMP URL",
        _configure_tls_probe,
        _run_tls_probe,
    ),
    "vihf": (
        "jeton VIHF signé pour un patient / print the signed VIHF for a patient",
        _configure_vihf,
        _run_vihf,
    ),
}
