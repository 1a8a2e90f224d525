"""The one way to parse XML that comes from outside (DMP answers, requests to the simulator, files).

Entities are not resolved, the network is never used, DTDs are refused, and sizes are capped, so
billion-laughs, external-entity and oversized inputs fail with one clear error.
"""

from __future__ import annotations

from lxml import etree

from bridge.errors import BridgeError, ErrorCode

__all__ = ["DEFAULT_MAX_BYTES", "XmlInputError", "parse_xml"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # a 20 MB document in base64 inside a SOAP envelope fits


class XmlInputError(BridgeError):
    """Refused or malformed XML input."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.INVALID_INPUT, detail)


def _parser(large_text: bool) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=large_text,
        remove_comments=False,
        remove_pis=False,
    )


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, large_text: bool = False) -> etree._Element:
    """Parse untrusted XML bytes into an element, refusing DTDs, entities and oversized input.

    libxml2 refuses text nodes over 10 MB; `large_text=True` lifts that (and its depth limit) for
    documents whose body is one base64 node (a CDA wrapping a PDF). Entities and DTDs stay refused
    and `max_bytes` still bounds the input, so the lifted limits cannot be used to expand anything.
    """
    if len(data) > max_bytes:
        raise XmlInputError(f"XML of {len(data)} bytes exceeds the {max_bytes}-byte limit")
    try:
        root = etree.fromstring(data, _parser(large_text))
    except etree.XMLSyntaxError as exc:
        raise XmlInputError(f"malformed XML: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlInputError("DTDs are not accepted")
    for node in root.iter(etree.Entity):
        raise XmlInputError(f"entity reference &{node.name}; is not accepted")
    return root
