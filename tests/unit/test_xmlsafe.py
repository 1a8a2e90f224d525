"""Hostile XML is refused with INVALID_INPUT and nothing is expanded."""

from __future__ import annotations

import pytest

from bridge.errors import ErrorCode
from bridge.xmlsafe import XmlInputError, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>"""


@pytest.mark.parametrize("payload", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_dtd_and_entities_refused(payload: bytes) -> None:
    with pytest.raises(XmlInputError) as info:
        parse_xml(payload)
    assert info.value.code is ErrorCode.INVALID_INPUT


def test_malformed_and_oversized_refused() -> None:
    with pytest.raises(XmlInputError, match="malformed"):
        parse_xml(b"<a><b></a>")
    with pytest.raises(XmlInputError, match="exceeds"):
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)


def test_plain_xml_parses() -> None:
    root = parse_xml(b'<a xmlns="urn:x"><b>1</b></a>')
    assert root.findtext("{urn:x}b") == "1"
