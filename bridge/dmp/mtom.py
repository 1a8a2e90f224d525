"""MTOM/XOP (multipart/related) building and parsing, pure on bytes.

ITI-41 requests carry each document as a MIME part referenced by `<xop:Include href="cid:…"/>`; ITI-43
answers (and, per the DMP, even their faults) come back the same way. Boundaries and content ids are
arguments, so the output is reproducible.
"""

from __future__ import annotations

import base64
import binascii
import copy
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, unquote

from lxml import etree

from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.ns import XOP, q

__all__ = [
    "MtomMessage",
    "MtomPart",
    "build_mtom",
    "inline_xop",
    "parse_mtom",
    "resolve_xop",
    "xop_include",
]

_MAX_PARTS = 256
_TOKEN_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=?")


@dataclass(frozen=True)
class MtomPart:
    """One MIME part: its Content-ID (without angle brackets), Content-Type and raw bytes."""

    content_id: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class MtomMessage:
    """A parsed multipart/related message: the root (SOAP) part and the other parts by content id."""

    root: MtomPart
    parts: dict[str, MtomPart]


def xop_include(parent: Any, content_id: str) -> Any:
    """Append `<xop:Include href="cid:…"/>` to `parent` (the content id is percent-encoded per RFC 2392)."""
    include = etree.SubElement(parent, q(XOP, "Include"), nsmap={"xop": XOP})
    include.set("href", "cid:" + quote(content_id, safe="@.-_~!$&'()*+,;=:"))
    return include


def _check_token(name: str, value: str) -> None:
    if not value or any(c not in _TOKEN_OK for c in value) or len(value) > 200:
        raise DmpParamsError(f"{name} has characters not allowed in a MIME header")


def build_mtom(
    root_xml: bytes,
    parts: Sequence[MtomPart],
    *,
    boundary: str,
    root_id: str,
    action: str | None = None,
) -> tuple[str, bytes]:
    """Build an MTOM message; returns (HTTP Content-Type header value, body bytes)."""
    _check_token("boundary", boundary)
    _check_token("root content id", root_id.replace("@", "."))
    delimiter = b"--" + boundary.encode("ascii")
    for part in parts:
        _check_token("content id", part.content_id.replace("@", "."))
        if delimiter in part.data:
            raise DmpParamsError("the MIME boundary occurs in a part; choose another boundary")
    if delimiter in root_xml:
        raise DmpParamsError("the MIME boundary occurs in the SOAP part; choose another boundary")
    root_type = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
    if action:
        root_type += f'; action="{action}"'
    chunks = [
        delimiter,
        b"\r\nContent-Type: " + root_type.encode("ascii"),
        b"\r\nContent-Transfer-Encoding: binary",
        b"\r\nContent-ID: <" + root_id.encode("ascii") + b">\r\n\r\n",
        root_xml,
    ]
    for part in parts:
        chunks += [
            b"\r\n" + delimiter,
            b"\r\nContent-Type: " + part.content_type.encode("ascii"),
            b"\r\nContent-Transfer-Encoding: binary",
            b"\r\nContent-ID: <" + part.content_id.encode("ascii") + b">\r\n\r\n",
            part.data,
        ]
    chunks.append(b"\r\n" + delimiter + b"--\r\n")
    header = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"'
    )
    if action:
        header += f'; action="{action}"'
    return header, b"".join(chunks)


def _params(content_type: str) -> Message:
    msg = Message()
    msg["content-type"] = content_type
    return msg


def _split_headers(raw: bytes) -> tuple[dict[str, str], bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = raw.find(sep)
        if idx >= 0:
            head, body = raw[:idx], raw[idx + len(sep) :]
            break
    else:
        raise DmpInputError("MIME part without header/body separator")
    headers: dict[str, str] = {}
    last = None
    for line in head.decode("latin-1").splitlines():
        if line[:1] in (" ", "\t") and last:
            headers[last] += " " + line.strip()
            continue
        name, _, value = line.partition(":")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers, body


def parse_mtom(data: bytes, content_type: str, *, max_parts: int = _MAX_PARTS) -> MtomMessage:
    """Parse a multipart/related body; the root is the `start` part, else the first one."""
    params = _params(content_type)
    boundary = params.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise DmpInputError("multipart answer without boundary")
    start = params.get_param("start")
    delimiter = b"--" + boundary.encode("latin-1")
    pos = data.find(delimiter)
    if pos < 0:
        raise DmpInputError("multipart boundary not found in the answer")
    raw_parts: list[bytes] = []
    pos += len(delimiter)
    while True:
        if data[pos : pos + 2] == b"--":
            break
        line_end = data.find(b"\n", pos)
        if line_end < 0:
            raise DmpInputError("truncated multipart answer")
        nxt = data.find(b"\n" + delimiter, line_end)
        if nxt < 0:
            raise DmpInputError("multipart answer without closing boundary")
        chunk = data[line_end + 1 : nxt]
        raw_parts.append(chunk[:-1] if chunk.endswith(b"\r") else chunk)
        if len(raw_parts) > max_parts:
            raise DmpInputError("too many MIME parts")
        pos = nxt + 1 + len(delimiter)
    parts: list[MtomPart] = []
    for raw in raw_parts:
        headers, body = _split_headers(raw)
        encoding = headers.get("content-transfer-encoding", "binary").lower()
        if encoding == "base64":
            try:
                body = base64.b64decode(body, validate=False)
            except binascii.Error:
                raise DmpInputError("bad base64 MIME part") from None
        elif encoding not in ("binary", "8bit", "7bit"):
            raise DmpInputError(f"unsupported transfer encoding {encoding[:20]!r}")
        cid = headers.get("content-id", "").strip().removeprefix("<").removesuffix(">")
        parts.append(MtomPart(cid, headers.get("content-type", ""), body))
    if not parts:
        raise DmpInputError("multipart answer without parts")
    root_cid = start.strip().removeprefix("<").removesuffix(">") if isinstance(start, str) else None
    root = next((p for p in parts if root_cid and p.content_id == root_cid), parts[0])
    return MtomMessage(root=root, parts={p.content_id: p for p in parts if p is not root})


def _include_cid(include: Any) -> str:
    href = include.get("href", "")
    if not href.startswith("cid:"):
        raise DmpInputError("xop:Include href is not a cid: URL")
    return unquote(href[4:])


def resolve_xop(el: Any, parts: dict[str, MtomPart]) -> bytes:
    """The binary content of an element: its xop:Include part, or its base64 text."""
    include = el.find(q(XOP, "Include"))
    if include is not None:
        cid = _include_cid(include)
        part = parts.get(cid)
        if part is None:
            raise DmpInputError("xop:Include refers to a missing MIME part")
        return part.data
    try:
        return base64.b64decode("".join((el.text or "").split()), validate=True)
    except binascii.Error:
        raise DmpInputError("document content is neither xop:Include nor base64") from None


def inline_xop(root: Any, parts: Sequence[MtomPart]) -> Any:
    """A copy of `root` where every xop:Include is replaced by the base64 of its part (for XSD checks)."""
    by_cid = {p.content_id: p for p in parts}
    out = copy.deepcopy(root)
    for include in list(out.iter(q(XOP, "Include"))):
        part = by_cid.get(_include_cid(include))
        if part is None:
            raise DmpInputError("xop:Include refers to a missing MIME part")
        parent = include.getparent()
        parent.remove(include)
        parent.text = base64.b64encode(part.data).decode("ascii")
    return out
