"""DMP config table, JSON-RPC params of the dmp.* methods (checked before any DMP access), small client parts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bridge.api.handlers_dmp import dmp_handlers
from bridge.api.methods import Registry
from bridge.config import ConfigError, load_config
from bridge.dmp.codes import AuthMode
from bridge.dmp.context import Practitioner
from bridge.dmp.submission import ProgressReader as _ProgressReader
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpContext, DmpService
from bridge.service.dmp_config import DmpConfig

PATIENT = {"ins": "178037511501201"}


def test_dmp_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'port = 1234\n[dmp]\nurl = "https://dmp.example:8443/si-dmp-server/v2/services"\n'
        'ca_bundle = "~/ca.pem"\ndefault_mode = "INDIRECTE"\nio_timeout = 30\n',
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.port == 1234
    assert config.dmp.url == "https://dmp.example:8443/si-dmp-server/v2/services"
    assert config.dmp.ca_bundle == Path("~/ca.pem").expanduser()
    assert config.dmp.default_mode == "INDIRECTE"
    assert config.dmp.io_timeout == 30.0
    assert load_config(tmp_path / "missing.toml").dmp == DmpConfig()


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('url = "http://plain"', "dmp.url"),
        ('oid_root = "not-an-oid"', "dmp.oid_root"),
        ('default_mode = "AUTRE"', "dmp.default_mode"),
        ("lps_name = 3", "dmp.lps_name"),
        ('surprise = "x"', "surprise"),
        ("io_timeout = 0", "dmp.io_timeout"),
    ],
)
def test_bad_dmp_values_name_the_key(tmp_path: Path, table: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[dmp]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=key):
        load_config(path)


@pytest.fixture
def registry() -> Registry:
    return Registry(dmp_handlers(DmpService(DmpConfig())))


@pytest.mark.parametrize(
    ("method", "params", "detail"),
    [
        ("dmp.context.set", {"authMode": "OTHER"}, "authMode: enum"),
        ("dmp.context.set", {"authMode": "DIRECTE", "situation": 16}, "situation: maximum"),
        ("dmp.documents.find", {"patient": {"ins": "12"}}, "patient/ins: pattern"),
        ("dmp.documents.find", {"patient": PATIENT, "statuses": ["deleted"]}, "statuses/0: enum"),
        ("dmp.documents.get", {"patient": PATIENT, "uniqueId": "urn:uuid:x"}, "uniqueId: pattern"),
        ("dmp.documents.setVisibility", {"patient": PATIENT, "uniqueId": "1.2.3"}, "(params): anyOf"),
        ("dmp.documents.setStatus", {"patient": PATIENT, "uniqueId": "1.2.3", "status": "deleted"}, "status: enum"),
        ("dmp.documents.submit", {"patient": PATIENT, "content": "AAAA", "mimeType": "application/zip",
                                  "title": "t", "typeCode": "11488-4"}, "mimeType: enum"),
        ("dmp.documents.delete", {"patient": PATIENT, "uniqueId": "1.2.3", "x": 1}, "(params): unknown-member"),
    ],
)  # fmt: skip
def test_params_refused_by_schema(registry: Registry, method: str, params: dict[str, Any], detail: str) -> None:
    with pytest.raises(BridgeError) as refused:
        registry.validate(method, params)
    assert refused.value.code is ErrorCode.INVALID_PARAMS
    assert refused.value.detail == detail


async def test_submit_checks_content_and_identity_before_the_dmp(registry: Registry) -> None:
    handler = registry.get("dmp.documents.submit")
    assert handler is not None
    base = {"patient": PATIENT, "mimeType": "application/pdf", "title": "t", "typeCode": "11488-4"}

    class Ctx:
        connection = object()

    for params, detail in (
        ({**base, "content": "@@@@"}, "content: base64"),
        ({**base, "content": "AAAA"}, "patient: lastName, firstName, gender, birthDate needed"),
    ):
        with pytest.raises(BridgeError) as refused:
            await handler.call(Ctx(), params)  # type: ignore[arg-type]
        assert (refused.value.code, refused.value.detail) == (ErrorCode.INVALID_PARAMS, detail)


async def test_unknown_codes_are_refused_before_the_dmp(registry: Registry) -> None:
    """typeCode outside JDV_J07, classCode contradicting ASS_X04, unknown search type: INVALID_PARAMS naming the code.

    The service has no DMP configured: reaching it would be DMP_UNREACHABLE, so these are refused before sending.
    """
    submit, find = registry.get("dmp.documents.submit"), registry.get("dmp.documents.find")
    assert submit is not None and find is not None
    identity = {**PATIENT, "lastName": "MARTIN", "firstName": "JEAN", "gender": "M", "birthDate": "19780314"}
    base = {"patient": identity, "mimeType": "application/pdf", "title": "t", "content": "AAAA"}

    class Conn:
        """A connection stand-in (DMP contexts are weakly keyed by it)."""

    class Ctx:
        connection = Conn()

    for handler, params, detail in (
        (
            submit,
            {**base, "typeCode": "12345-6"},
            "typeCode: unknown code '12345-6' (ASS_X04_CorrespondanceType_Classe_CISIS)",
        ),
        (
            submit,
            {**base, "typeCode": "11488-4", "classCode": "77"},
            "classCode: unknown code '77' (TRE_A03_ClasseDocument)",
        ),
        (
            submit,
            {**base, "typeCode": "11488-4", "classCode": "11"},
            "classCode: '11' contradicts typeCode (ASS_X04: 10)",
        ),
        (
            find,
            {"patient": PATIENT, "typeCodes": ["11488-4", "0000-0"]},
            "typeCodes: unknown code '0000-0' (ASS_X04_CorrespondanceType_Classe_CISIS)",
        ),
    ):
        with pytest.raises(BridgeError) as refused:
            await handler.call(Ctx(), params)  # type: ignore[arg-type]
        assert (refused.value.code, refused.value.detail) == (ErrorCode.INVALID_PARAMS, detail)
    # A known type with its class, or no class at all, goes on to the DMP (here: not configured).
    for params in ({**base, "typeCode": "11488-4", "classCode": "10"}, {**base, "typeCode": "34133-9"}):
        with pytest.raises(BridgeError) as unreachable:
            await submit.call(Ctx(), params)  # type: ignore[arg-type]
        assert unreachable.value.code is ErrorCode.DMP_UNREACHABLE


async def test_unconfigured_dmp_is_unreachable() -> None:
    service = DmpService(DmpConfig())

    class Caller:
        """A connection stand-in (contexts are weakly keyed by it)."""

    caller = Caller()
    with pytest.raises(BridgeError) as refused:
        await service.resolve(caller)
    assert (refused.value.code, refused.value.detail) == (ErrorCode.DMP_UNREACHABLE, "dmp-not-configured")
    with pytest.raises(BridgeError) as indirect:
        service.set_context(caller, DmpContext(mode=AuthMode.INDIRECTE))
    assert indirect.value.detail == "indirect-mode-not-configured"


def test_progress_reader_reports_and_rewinds() -> None:
    seen: list[tuple[int, int]] = []
    reader = _ProgressReader(b"x" * 40000, lambda sent, total: seen.append((sent, total)))
    buf = bytearray(16384)
    while reader.readinto(buf):
        pass
    assert seen == [(16384, 40000), (32768, 40000), (40000, 40000)]
    assert reader.seek(0) == 0 and reader.tell() == 0
    assert reader.seek(0, io.SEEK_END) == 40000


def test_practitioner_author_and_roles() -> None:
    p = Practitioner(
        national_id="810012345678", family="MARTIN", given="PAUL", profession_code="10", specialty_code="SM54",
        structure_id="10B0123456", structure_name="CENTRE", sector="SA05", mode=AuthMode.DIRECTE,
    )  # fmt: skip
    assert [r.code for r in p.roles()] == ["10", "SM54"]
    assert p.author().specialty is not None and p.author().specialty.code == "G15_10/SM54"
    assert "MARTIN" not in repr(p) and "810012345678" not in repr(p)
