"""Where a CPS keeps its objects, discovered through its PKCS#15 directory files (no fixed file identifier).

Discovery follows the order the ANS Cryptolib uses on CPS3 and CPS4 (its `pkcs15.c` bind, notes in
the module docstring of `bridge.cards.pkcs15`): EF.DIR ``3F00/2F00`` gives the application's
absolute path (the record whose AID is the CPS PKCS#15 application), then ODF ``<app>/5031`` and
TokenInfo ``<app>/5032``, then every directory file the ODF lists. Relative paths are made absolute
with the application path. I/O is a `read(path)` callable given by the driver (SELECT by path +
READ BINARY on the card's channel), so this module stays testable on bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bridge.cards.pkcs15 import (
    AuthObject,
    CertObject,
    DataObject,
    DirectoryError,
    Pkcs15Path,
    PrivateKeyObject,
    TokenInfo,
    parse_aodf,
    parse_cdf,
    parse_dir_records,
    parse_dodf,
    parse_odf,
    parse_prkdf,
    parse_token_info,
)

__all__ = ["CPS_PKCS15_AID", "EF_DIR", "CardLayout", "absolute", "discover"]

#: AID of the CPS PKCS#15 application, on CPS3 and CPS4 alike (Cryptolib `pkcs15.c`, EF.DIR lookup).
CPS_PKCS15_AID = bytes.fromhex("E828BD080F8025000001FF0010")
EF_DIR = bytes.fromhex("3F002F00")
_ODF, _TOKEN_INFO = bytes.fromhex("5031"), bytes.fromhex("5032")
#: Without EF.DIR, PKCS#15 puts the application at 3F00/5015.
_DEFAULT_APP = bytes.fromhex("3F005015")

ReadFile = Callable[[bytes], bytes]
"""Reads the transparent EF at an absolute path (``3F00…``); raises on a missing file."""


def absolute(app: bytes, path: Pkcs15Path) -> bytes:
    """The absolute path of a directory entry (relative ones hang below the application DF)."""
    return path.path if path.absolute else app + path.path


@dataclass(frozen=True)
class CardLayout:
    """Everything the directory files say: the application, the token, the PIN, keys, certificates, data."""

    app_path: bytes
    token: TokenInfo
    pins: tuple[AuthObject, ...]
    keys: tuple[PrivateKeyObject, ...]
    certificates: tuple[CertObject, ...]
    data_objects: tuple[DataObject, ...]

    @property
    def user_pin(self) -> AuthObject:
        """The card holder's PIN (the first PIN object: a CPS has one)."""
        if not self.pins:
            raise DirectoryError("AODF: no PIN object")
        return self.pins[0]

    def data(self, label: str) -> DataObject | None:
        """The data object labelled `label`, or None."""
        return next((obj for obj in self.data_objects if obj.label == label), None)

    def certificate_of(self, key: PrivateKeyObject) -> CertObject:
        """The certificate whose id is the key's."""
        cert = next((c for c in self.certificates if c.cert_id == key.key_id), None)
        if cert is None:
            raise DirectoryError(f"CDF: no certificate for key {key.label}")
        return cert

    def path_of(self, path: Pkcs15Path) -> bytes:
        """The absolute path of an entry of this card."""
        return absolute(self.app_path, path)


def discover(read: ReadFile, *, missing: type[Exception]) -> CardLayout:
    """Read EF.DIR, ODF, TokenInfo and the directory files; `missing` is the driver's file-not-found error."""
    try:
        apps = parse_dir_records(read(EF_DIR))
    except missing:
        apps = []
    app = next((path for aid, _label, path in apps if aid == CPS_PKCS15_AID and path), _DEFAULT_APP)
    if app[:2] != b"\x3f\x00":
        app = b"\x3f\x00" + app
    odf = parse_odf(read(app + _ODF))
    token = parse_token_info(read(app + _TOKEN_INFO))

    def entries(kind: str) -> bytes:
        return b"".join(read(absolute(app, path)) for path in odf.of(kind))

    return CardLayout(
        app_path=app,
        token=token,
        pins=tuple(parse_aodf(entries("aodf"))),
        keys=tuple(parse_prkdf(entries("prkdf"))),
        certificates=tuple(parse_cdf(entries("cdf"))),
        data_objects=tuple(parse_dodf(entries("dodf"))),
    )
