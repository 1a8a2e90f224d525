"""A structural comparator for XML messages: element paths, attribute names and the identifiers that give a
node its meaning (slot names, classification and identification schemes, SAML attribute names), values aside."""

from __future__ import annotations

from typing import Any

from lxml import etree

# Attributes whose *value* identifies the kind of node (not data), so it is part of the shape.
_KEY_ATTRS = ("name", "Name", "classificationScheme", "classificationNode", "identificationScheme", "associationType")


def _step(el: Any) -> str:
    key = "".join(f"[@{a}={el.get(a)!r}]" for a in _KEY_ATTRS if el.get(a) is not None)
    return f"{el.tag}{key}"


def shape(el: Any, prefix: str = "", skip: frozenset[str] = frozenset()) -> list[tuple[str, tuple[str, ...]]]:
    """Depth-first list of (path, sorted attribute names) for every element, skipping tags in `skip`."""
    out: list[tuple[str, tuple[str, ...]]] = []
    if not isinstance(el.tag, str) or el.tag in skip:
        return out
    path = f"{prefix}/{_step(el)}"
    out.append((path, tuple(sorted(str(k) for k in el.attrib))))
    for child in el:
        out.extend(shape(child, path, skip))
    return out


def shape_set(el: Any, skip: frozenset[str] = frozenset()) -> set[tuple[str, tuple[str, ...]]]:
    """The shape as a set (order and repetition aside) for registry metadata whose order is free."""
    return set(shape(el, "", skip))


def parse_trusted(data: bytes) -> Any:
    """Parse a reference sample from the shared folder (trusted, local)."""
    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, recover=True))
