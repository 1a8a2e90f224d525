"""The `[insi]` table of config.toml: where the INSi téléservice is and how the bridge authenticates to it.

Example::

    [insi]
    url = "https://qualiflps.services-ps.ameli.fr/lps"   # CPS mode (qualification); absent: INSI_UNAVAILABLE
    establishment_url = "https://qualiflps-services-ps-tlsm.ameli.fr/lps"  # certificate mode (default: url)
    ca_bundle = "/path/to/igc-sante-roots.pem"           # trust anchors of the INSi server certificate
    server_name = "qualiflps.services-ps.ameli.fr"        # name in the server certificate (default: URL host)
    idam = "NUMERO-AUTORISATION"                          # the software's CNAM authorisation number (IDAM)
    emitter = ""                                          # ContexteBAM/LPS Emetteur (default: card holder / FINESS)
    instance = "5f0e4c1a-…"                               # stable id of this installation (default: derived)
    lps_name = "DMP-BRIDGE"
    lps_version = "0.1"
    default_auth = "cps"                                  # "cps" or "establishment" when a call names none
    certificate_p12 = "/path/INSI-AUTO.p12"               # establishment certificate, subject CN INSI-AUTO/MANU
    certificate_p12_password_file = "/path/p12-password"
    io_timeout = 30
    call_timeout = 60

Endpoints from `padoa/tlsi-ins` (`INSi_CPX_TEST_URL`, `INSi_mTLS_TEST_URL`); production URLs are given
to authorised vendors by the CNAM and are not public.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.service.config_table import require_https, table_values

__all__ = ["InsiConfig", "InsiConfigError", "parse_insi_table"]

_PATHS = frozenset({"ca_bundle", "certificate_p12", "certificate_p12_password_file"})
_AUTH = ("cps", "establishment")


class InsiConfigError(ValueError):
    """A bad `[insi]` value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class InsiConfig:
    """Effective INSi settings (see the module docstring for each key)."""

    url: str | None = None
    establishment_url: str | None = None
    ca_bundle: Path | None = None
    server_name: str | None = None
    idam: str = "DMP-BRIDGE-NON-AUTORISE"
    emitter: str = ""
    instance: str = "00000000-0000-4000-8000-000000000000"
    lps_name: str = "DMP-BRIDGE"
    lps_version: str = "0.1"
    default_auth: str = "cps"
    certificate_p12: Path | None = None
    certificate_p12_password_file: Path | None = None
    io_timeout: float = 30.0
    call_timeout: float = 60.0


def parse_insi_table(raw: Any) -> InsiConfig:
    """Build an InsiConfig from the `[insi]` TOML table (unknown keys and bad values raise InsiConfigError)."""
    values = table_values(raw, table="insi", cls=InsiConfig, paths=_PATHS, error=InsiConfigError)
    config = InsiConfig(**values)
    require_https(config, ("url", "establishment_url"), table="insi", error=InsiConfigError)
    if config.default_auth not in _AUTH:
        raise InsiConfigError("config.toml: insi.default_auth must be cps or establishment")
    return config
