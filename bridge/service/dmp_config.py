"""The `[dmp]` table of config.toml: where the DMP is, who the LPS is, the indirect-mode establishment.

Example::

    [dmp]
    url = "https://127.0.0.1:8443/si-dmp-server/v2/services"   # absent: DMP methods answer DMP_UNREACHABLE
    ca_bundle = "/path/to/igc-sante-roots.pem"                  # trust anchors of the DMP server certificate
    server_name = "localhost"                                   # name in the server certificate (default: URL host)
    oid_root = "1.2.250.1.999.7.1"                              # OID root of the uniqueIds this installation makes
    ins_oid = "1.2.250.1.213.1.4.8"                             # INS authority when a caller gives none
    lps_name = "DMP-BRIDGE"
    lps_version = "0.1"
    lps_homologation = "HOMOLOGATION-ID"
    default_mode = "DIRECTE"                                    # when a connection did not call dmp.context.set
    io_timeout = 60                                             # longest wait for one network read or write (s)
    call_timeout = 120                                          # total deadline of one DMP call (s): TIMEOUT after
    webps_url = "https://<nom de domaine>"                      # Web PS root for TD0.9 links (PDT-INF-527)
    # Indirect modes: the establishment's certificates and the practitioner used by default.
    establishment_auth_p12 = "/path/auth-cli.p12"
    establishment_sign_p12 = "/path/sign.p12"
    establishment_p12_password_file = "/path/p12-password"
    establishment_id = "10B0127189"
    establishment_name = "CLINIQUE DU TEST"
    establishment_sector = "SA01"
    practitioner_id = "810012345678"
    practitioner_family = "MARTIN"
    practitioner_given = "PAUL"
    practitioner_profession = "10"
    practitioner_specialty = "SM54"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.service.config_table import require_https, table_values

__all__ = ["DmpConfig", "DmpConfigError", "parse_dmp_table"]

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_MODES = ("DIRECTE", "INDIRECTE", "INDIRECTE_RENFORCEE")
_PATHS = frozenset({"ca_bundle", "establishment_auth_p12", "establishment_sign_p12", "establishment_p12_password_file"})


class DmpConfigError(ValueError):
    """A bad `[dmp]` value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class DmpConfig:
    """Effective DMP settings (see the module docstring for each key)."""

    url: str | None = None
    ca_bundle: Path | None = None
    server_name: str | None = None
    oid_root: str = "1.2.250.1.999.7.1"
    ins_oid: str = "1.2.250.1.213.1.4.8"
    lps_name: str = "DMP-BRIDGE"
    lps_version: str = "0.1"
    lps_homologation: str = "DMP-BRIDGE-NON-HOMOLOGUE"
    default_mode: str = "DIRECTE"
    establishment_auth_p12: Path | None = None
    establishment_sign_p12: Path | None = None
    establishment_p12_password_file: Path | None = None
    establishment_id: str | None = None
    establishment_name: str | None = None
    establishment_sector: str = "SA01"
    practitioner_id: str | None = None
    practitioner_family: str = ""
    practitioner_given: str = ""
    practitioner_profession: str = "10"
    practitioner_specialty: str = ""
    io_timeout: float = 60.0
    call_timeout: float = 120.0
    #: XAdES profile of TD2.1 (bridge.dmp.xades): "rsa-sha1" (official sample) or "rsa-sha256" ...
    xades_algorithm: str = "rsa-sha1"
    #: ... and SigningCertificate "chain" (official sample) or "leaf" (signer only, as DRIMbox).
    xades_certificates: str = "chain"
    #: Root of the Web PS portal (PDT-INF-527 gives only « https://<nom de domaine>/AccesDirect/… »).
    webps_url: str | None = None

    @property
    def indirect_ready(self) -> bool:
        """True when the establishment certificates and identity are configured."""
        return None not in (
            self.establishment_auth_p12,
            self.establishment_sign_p12,
            self.establishment_id,
            self.establishment_name,
        )


def parse_dmp_table(raw: Any) -> DmpConfig:
    """Build a DmpConfig from the `[dmp]` TOML table (unknown keys and bad values raise DmpConfigError)."""
    values = table_values(raw, table="dmp", cls=DmpConfig, paths=_PATHS, error=DmpConfigError)
    config = DmpConfig(**values)
    require_https(config, ("url", "webps_url"), table="dmp", error=DmpConfigError)
    for key in ("oid_root", "ins_oid"):
        if not _OID.match(getattr(config, key)):
            raise DmpConfigError(f"config.toml: dmp.{key} must be an OID")
    if config.xades_algorithm not in ("rsa-sha1", "rsa-sha256"):
        raise DmpConfigError("config.toml: dmp.xades_algorithm must be rsa-sha1 or rsa-sha256")
    if config.xades_certificates not in ("chain", "leaf"):
        raise DmpConfigError("config.toml: dmp.xades_certificates must be chain or leaf")
    if config.default_mode not in _MODES:
        raise DmpConfigError(f"config.toml: dmp.default_mode must be one of {', '.join(_MODES)}")
    return config
