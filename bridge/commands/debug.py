"""`dmp-bridge debug <tool>`: diagnostic tools for integrators and the helpdesk.

Tools are sub-commands of `debug`, each a `configure`/`run` pair registered in `_TOOLS`:
`tls-probe` makes a client-authenticated TLS 1.2 handshake with a DMP-like server and shows what
was negotiated. (Room is left for other tools, e.g. `vihf`.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.errors import BridgeError, ErrorCode

__all__ = ["HELP", "configure", "load_card_client_identity", "run"]

HELP = "outils de diagnostic / diagnostic tools (tls-probe)"


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
    parser.add_argument("--timeout", type=float, default=15.0, help="délai réseau en secondes / network timeout")
    parser.add_argument("--json", action="store_true", help="sortie JSON / JSON output")


def load_card_client_identity(pin: bytearray) -> Any:
    """The CPS card's authentication certificate and card-backed key, after presenting `pin`.

    WIRING POINT for the lead: build a `bridge.crypto.tls.ClientIdentity` from the CPS3 driver
    (authentication certificate + `bridge.crypto.card_key.CardRsaPrivateKey`). Until then this
    raises a clear "not available yet" error.
    """
    try:
        importlib.import_module("bridge.cards.cps3")  # by name: the module may not exist yet
    except ImportError as exc:
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "CPS card support is not available yet") from exc
    raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "CPS card TLS authentication is not wired yet")


def _read_secret_line() -> bytearray:
    # Read raw bytes so the secret never becomes an immutable str.
    secret = bytearray(sys.stdin.buffer.readline())
    while secret and secret[-1] in (0x0A, 0x0D):
        secret.pop()
    return secret


def _default_cafile() -> Path:
    from bridge.paths import data_dir

    try:
        # The sandbox's test PKI (IGC-Santé-like test root), by name: it may not exist yet.
        pki = importlib.import_module("bridge.crypto.pki")
    except ImportError as exc:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "--cafile is required") from exc
    bundle: Path = pki.TestPki.load_or_create(data_dir() / "pki").ca_bundle_path()
    return bundle


def _run_tls_probe(args: argparse.Namespace) -> int:
    from bridge.crypto.tls import ClientIdentity, ServerTrust, TlsEndpoint

    try:
        parts = urlsplit(args.url)
        if parts.scheme != "https" or not parts.hostname:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "URL must be https://host[:port]/path")
        identity: ClientIdentity | None = None
        if args.cert_p12 is not None:
            password = _read_secret_line() if args.p12_password_stdin else bytearray()
            try:
                identity = ClientIdentity.from_pkcs12(args.cert_p12.read_bytes(), password or None)
            except OSError as exc:
                raise BridgeError(ErrorCode.INVALID_PARAMS, f"cannot read {args.cert_p12}") from exc
            finally:
                password[:] = bytes(len(password))
        elif args.pin_stdin:
            pin = _read_secret_line()
            try:
                identity = load_card_client_identity(pin)
            finally:
                pin[:] = bytes(len(pin))
        endpoint = TlsEndpoint(
            parts.hostname,
            parts.port or 443,
            ServerTrust.from_pem_file(args.cafile or _default_cafile()),
            identity,
            server_name=args.server_name,
            connect_timeout=args.timeout,
            io_timeout=args.timeout,
        )
        report = asyncio.run(_probe(endpoint, parts.path or "/"))
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


async def _probe(endpoint: Any, path: str) -> dict[str, Any]:
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


_TOOLS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "tls-probe": (
        "poignée de main TLS 1.2 authentifiée / client-authenticated TLS 1.2 probe of a DMP URL",
        _configure_tls_probe,
        _run_tls_probe,
    ),
}
