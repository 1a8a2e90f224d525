"""The `[insi]` table and the INSi service's checks made before any network access."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ConfigError, load_config
from bridge.crypto.pki import TestPki
from bridge.errors import BridgeError, ErrorCode
from bridge.ins.model import Traits
from bridge.service.dmp import DmpService
from bridge.service.dmp_config import DmpConfig
from bridge.service.ins import InsService, vitale_birth_date
from bridge.service.insi_config import InsiConfig, InsiConfigError, parse_insi_table
from tests.dmp_fixtures import ESTABLISHMENT_ID, dmp_pki, establishment  # noqa: F401

LAURENCE = Traits.from_input(birth_name="PATB-QUATRE", first_names="LAURENCE", sex="F", birth_date="1907-05-25")


def test_the_insi_table_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[insi]\nurl = "https://qualiflps.services-ps.ameli.fr/lps"\nidam = "ABC"\ndefault_auth = "establishment"\n'
        'certificate_p12 = "~/insi.p12"\ncall_timeout = 30\n',
        encoding="utf-8",
    )
    config = load_config(path).insi
    assert (config.url, config.idam, config.default_auth, config.call_timeout) == (
        "https://qualiflps.services-ps.ameli.fr/lps", "ABC", "establishment", 30.0,
    )  # fmt: skip
    assert config.certificate_p12 is not None and "~" not in str(config.certificate_p12)
    for bad, message in (
        ({"url": "http://x/lps"}, "https://"),
        ({"default_auth": "card"}, "default_auth"),
        ({"call_timeout": 0}, "call_timeout"),
        ({"idma": "x"}, "unknown key"),
        ({"idam": 4}, "string"),
    ):
        with pytest.raises(InsiConfigError, match=message):
            parse_insi_table(bad)
    path.write_text('[insi]\nurl = "ftp://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(path)


async def test_nothing_is_sent_without_a_configured_insi_or_with_a_certificate_that_is_not_insi(
    dmp_pki: TestPki,  # noqa: F811
    tmp_path: Path,
) -> None:
    unconfigured = InsService(InsiConfig(default_auth="establishment"), DmpService(DmpConfig()))
    with pytest.raises(BridgeError) as no_cert:
        await unconfigured.search(LAURENCE)
    assert (no_cert.value.code, no_cert.value.detail) == (ErrorCode.INVALID_PARAMS, "insi-certificate-not-configured")

    certs = establishment(dmp_pki)  # an AUTH_CLI certificate: CN "DMP-BRIDGE AUTH_CLI"
    password = certs.auth_cli_p12.parent / "p12-password"
    wrong = InsService(
        InsiConfig(url="https://127.0.0.1:9/lps", ca_bundle=dmp_pki.ca_bundle_path(), default_auth="establishment",
                   certificate_p12=certs.auth_cli_p12, certificate_p12_password_file=password),
        DmpService(DmpConfig()),
    )  # fmt: skip
    with pytest.raises(BridgeError) as refused:
        await wrong.search(LAURENCE)
    assert refused.value.code is ErrorCode.INVALID_PARAMS
    assert refused.value.detail == "insi-certificate: subject CN must be INSI-AUTO or INSI-MANU"

    _, p12, _ = dmp_pki.insi_certificate(ESTABLISHMENT_ID, "CLINIQUE DU TEST")
    no_url = InsService(
        InsiConfig(default_auth="establishment", certificate_p12=p12, certificate_p12_password_file=password),
        DmpService(DmpConfig()),
    )
    with pytest.raises(BridgeError) as unavailable:
        await no_url.search(LAURENCE)
    assert (unavailable.value.code, unavailable.value.detail) == (ErrorCode.INSI_UNAVAILABLE, "insi-not-configured")


def test_vitale_dates_keep_their_lunar_zeros() -> None:
    assert vitale_birth_date({"birthDateRaw": "19810000"}) == "1981-00-00"
    assert vitale_birth_date({"birthDateRaw": "20120903"}) == "2012-09-03"
    with pytest.raises(BridgeError):
        vitale_birth_date({"birthDateRaw": "2012-09"})
