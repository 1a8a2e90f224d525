"""Host/Origin/token decisions, as a table."""

from __future__ import annotations

import pytest

from bridge.api.security import (
    Caller,
    CallerKind,
    Refusal,
    check_host,
    classify_caller,
    cors_headers,
    normalise_origin,
    own_origins,
)

PORT = 28442
TOKEN = "s3cret-token"


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:28442", True),
        ("localhost:28442", True),
        ("LOCALHOST:28442", True),
        ("localhost.:28442", True),
        ("[::1]:28442", True),
        ("127.0.0.1:28443", False),
        ("127.0.0.1", False),  # would mean port 80
        ("evil.example:28442", False),
        ("127.0.0.1.evil.example:28442", False),
        ("localhost:28442@evil", False),
        ("[::1", False),
        ("", False),
        (None, False),
        ("127.0.0.1:+28442", False),
        ("intranet.local:28442", False),
    ],
)
def test_host(host: str | None, ok: bool) -> None:
    assert check_host(host, PORT) is ok


def test_extra_host_from_config() -> None:
    assert check_host("intranet.local:28442", PORT, ("intranet.local",))
    assert not check_host("intranet.local:1", PORT, ("intranet.local",))


@pytest.mark.parametrize(
    ("origin", "normal"),
    [
        ("https://app.example.fr", "https://app.example.fr"),
        ("https://APP.example.fr:443", "https://app.example.fr"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("null", None),
        ("file://", None),
        ("chrome-extension://abc", None),
        ("https://app.example.fr/path", None),
        ("https://user@app.example.fr", None),
        ("https://app.example.fr:99999", None),
        (" https://app.example.fr", None),
        ("https://" + "a" * 300 + ".fr", None),
    ],
)
def test_normalise_origin(origin: str, normal: str | None) -> None:
    assert normalise_origin(origin) == normal


def _classify(**headers: str) -> Caller | Refusal:
    base = {"Host": f"127.0.0.1:{PORT}"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return classify_caller(base, port=PORT, token=TOKEN)


def test_classification_table() -> None:
    assert _classify(Host="evil:28442", Origin="https://a.fr") is Refusal.BAD_HOST
    assert _classify(Origin="null") is Refusal.BAD_ORIGIN
    assert _classify(Origin="https://a.fr") == Caller(kind=CallerKind.WEB, origin="https://a.fr")
    assert _classify(Origin=f"http://localhost:{PORT}") == Caller(
        kind=CallerKind.OWN_PAGE, origin=f"http://localhost:{PORT}"
    )
    # The bridge's page on another port is a foreign origin.
    assert _classify(Origin="http://localhost:1") == Caller(kind=CallerKind.WEB, origin="http://localhost:1")
    assert _classify() is Refusal.BAD_TOKEN
    assert _classify(Authorization="Bearer wrong") is Refusal.BAD_TOKEN
    assert _classify(Authorization=f"Basic {TOKEN}") is Refusal.BAD_TOKEN
    assert _classify(Authorization=f"Bearer {TOKEN}") == Caller(kind=CallerKind.LOCAL, origin=None)
    assert _classify(Authorization=f"bearer  {TOKEN} ") == Caller(kind=CallerKind.LOCAL, origin=None)


def test_token_does_not_lift_origin_rule() -> None:
    caller = _classify(Authorization=f"Bearer {TOKEN}", Origin="https://a.fr")
    assert caller == Caller(kind=CallerKind.WEB, origin="https://a.fr")


def test_own_origins() -> None:
    assert own_origins(1) == {"http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1"}


def test_cors_preflight_answers_pna_and_lna() -> None:
    headers = cors_headers(
        {
            "Access-Control-Request-Private-Network": "true",
            "Access-Control-Request-Local-Network": "true",
            "Access-Control-Request-Headers": "x-a",
        },
        preflight=True,
    )
    assert headers["Access-Control-Allow-Private-Network"] == "true"
    assert headers["Access-Control-Allow-Local-Network"] == "true"
    assert headers["Access-Control-Allow-Headers"] == "x-a"
    plain = cors_headers({}, preflight=False)
    assert plain == {"Access-Control-Allow-Origin": "*", "Vary": "Origin"}
    assert "Access-Control-Allow-Private-Network" not in cors_headers({}, preflight=True)
