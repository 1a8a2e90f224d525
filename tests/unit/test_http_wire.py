"""HTTP/1.1 wire format: request heads and the response parser, bytes in, responses out."""

from __future__ import annotations

import pytest

from bridge.dmp.http_wire import HttpProtocolError, HttpResponse, ResponseParser, build_request_head


def feed_all(parser: ResponseParser, data: bytes, step: int) -> list[HttpResponse]:
    out: list[HttpResponse] = []
    for i in range(0, len(data), step):
        parser.feed(data[i : i + step])
        while (response := parser.next_response()) is not None:
            out.append(response)
    return out


def test_request_head() -> None:
    head = build_request_head(
        "POST", "/si-dmp-server/v2/services/registry", "lps2.dmp.gouv.fr", [("Content-Type", "text/xml")], 12
    )
    assert head == (
        b"POST /si-dmp-server/v2/services/registry HTTP/1.1\r\nHost: lps2.dmp.gouv.fr\r\n"
        b"Content-Type: text/xml\r\nContent-Length: 12\r\n\r\n"
    )


@pytest.mark.parametrize("bad", [("X-A", "1\r\nX-Injected: 1"), ("X\nB", "1")])
def test_request_head_refuses_header_injection(bad: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="invalid character"):
        build_request_head("GET", "/", "h", [bad])


# (raw response, status, body, keep_alive)
CASES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, b"hello", True),
    (b"HTTP/1.1 500 Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 500, b"", False),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n",
        200,
        b"hello world",
        True,
    ),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204, b"", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 200, b"ok", True),
]


@pytest.mark.parametrize(("raw", "status", "body", "keep_alive"), CASES)
@pytest.mark.parametrize("step", [1, 7, 100000])
def test_responses_in_any_fragmentation(raw: bytes, status: int, body: bytes, keep_alive: bool, step: int) -> None:
    [response] = feed_all(ResponseParser(), raw, step)
    assert (response.status, response.body, response.keep_alive) == (status, body, keep_alive)


def test_two_pipelined_responses_and_headers() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nContent-Length: 1\r\n\r\nA"
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nB"
    )
    first, second = feed_all(ResponseParser(), raw, 3)
    assert first.header("content-TYPE") == "a/b" and first.body == b"A"
    assert (second.status, second.reason, second.body) == (404, "Not Found", b"B")


def test_body_until_close() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\n\r\npartial ")
    assert parser.next_response() is None
    parser.feed(b"body")
    assert parser.next_response() is None
    response = parser.feed_eof()
    assert response.body == b"partial body" and not response.keep_alive


def test_head_request_has_no_body() -> None:
    parser = ResponseParser(request_method="HEAD")
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    response = parser.next_response()
    assert response is not None and response.body == b""


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "bad status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "missing CRLF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", "larger than 10"),
        (b"HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n", "bad header line"),
    ],
)
def test_malformed_responses(raw: bytes, message: str) -> None:
    parser = ResponseParser(max_body=10)
    parser.feed(raw)
    with pytest.raises(HttpProtocolError, match=message):
        parser.next_response()


def test_truncated_response_is_an_error() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert parser.next_response() is None
    with pytest.raises(HttpProtocolError, match="closed before the response was complete"):
        parser.feed_eof()
