"""MTOM/XOP (multipart/related) reading and writing, sans-IO: bytes and headers in, parts out.

Requests to the repository (ITI-41) and answers of the registry/repository are multipart/related with
`type="application/xop+xml"`; the SOAP envelope is the root part and `xop:Include href="cid:..."`
points at the binary parts (notes §1.3).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

__all__ = ["MimeError", "MtomMessage", "Part", "build_mtom", "parse_body", "parse_content_type", "resolve_cid"]

_MAX_PARTS = 200


class MimeError(ValueError):
    """The body is not a well-formed multipart/related (MTOM) message."""


@dataclass(frozen=True)
class Part:
    """One MIME part: its headers (lower-case names) and raw content."""

    headers: dict[str, str]
    content: bytes

    @property
    def content_id(self) -> str:
        """The Content-ID without angle brackets."""
        return self.headers.get("content-id", "").strip().strip("<>")


@dataclass(frozen=True)
class MtomMessage:
    """The SOAP envelope bytes and attachments by Content-ID."""

    envelope: bytes
    attachments: dict[str, bytes] = field(default_factory=dict)
    mtom: bool = False


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split `type/subtype; a=b; c="d"` into the lower-case media type and parameters."""
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for match in re.finditer(r'\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)\s*;?', rest):
        raw = match.group(2).strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = raw[1:-1]
        params[match.group(1).lower()] = raw
    return media.strip().lower(), params


def _split_parts(body: bytes, boundary: str) -> list[Part]:
    delimiter = b"--" + boundary.encode("ascii")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise MimeError("multipart body without parts")
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        if len(parts) >= _MAX_PARTS:
            raise MimeError("too many MIME parts")
        # Each part starts right after the delimiter line and ends with the CRLF before the next one.
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        elif chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
        if not sep:
            raise MimeError("MIME part without header/body separator")
        headers: dict[str, str] = {}
        for line in head.decode("latin-1").splitlines():
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    else:
        raise MimeError("multipart body without closing delimiter")
    return parts


def parse_body(content_type: str, body: bytes) -> MtomMessage:
    """Read a SOAP request body: plain `application/soap+xml` or MTOM multipart/related."""
    media, params = parse_content_type(content_type)
    if media != "multipart/related":
        return MtomMessage(envelope=body)
    if params.get("type", "").lower() != "application/xop+xml":
        raise MimeError('multipart/related sans type="application/xop+xml"')
    boundary = params.get("boundary")
    if not boundary:
        raise MimeError("multipart/related without boundary")
    parts = _split_parts(body, boundary)
    start = params.get("start", "").strip("<>")
    root = next((p for p in parts if p.content_id == start), None) if start else parts[0]
    if root is None:
        raise MimeError("root part named by start= is missing")
    root_media, _ = parse_content_type(root.headers.get("content-type", ""))
    if root_media != "application/xop+xml":
        raise MimeError("root part is not application/xop+xml")
    attachments = {p.content_id: p.content for p in parts if p is not root and p.content_id}
    return MtomMessage(envelope=root.content, attachments=attachments, mtom=True)


def resolve_cid(href: str, attachments: dict[str, bytes]) -> bytes | None:
    """The attachment named by `cid:...` (URL-decoded as RFC 2392 requires), or None."""
    if not href.startswith("cid:"):
        return None
    cid = href[4:]
    return attachments.get(cid, attachments.get(unquote(cid)))


def build_mtom(envelope: bytes, action: str, attachments: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    """Build an MTOM message; attachments are (content-id, media type, bytes). Returns (content type, body)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.message@{uuid.uuid4().hex}"
    out = bytearray()
    out += (
        f"--{boundary}\r\n"
        f'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"; action="{action}"\r\n'
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{root_id}>\r\n\r\n"
    ).encode("ascii")
    out += envelope
    for cid, media, content in attachments:
        out += (
            f"\r\n--{boundary}\r\n"
            f"Content-Type: {media}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{cid}>\r\n\r\n"
        ).encode("ascii")
        out += content
    out += f"\r\n--{boundary}--\r\n".encode("ascii")
    content_type = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"; action="{action}"'
    )
    return content_type, bytes(out)
