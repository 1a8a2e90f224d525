"""What is in each reader, read once through the daemon's card service (the CLI's `card` and `doctor`)."""

from __future__ import annotations

from typing import Any

from bridge.cards.cps_types import cps_label
from bridge.cards.identify import CardKind
from bridge.errors import BridgeError, to_bridge_error
from bridge.service.cps_backend import CpsBackend
from bridge.service.pcsc_cards.service import PcscCardService

__all__ = ["PRACTICE_MODE_LABELS_FR", "describe_cards"]

#: TRE_G17_ModeExerciceCPx 1.1.0 (ansforge/IG-terminologie-de-sante, ig/DM-37/CodeSystem-TRE-G17-ModeExerciceCPx.json
#: at 5511555a). Whether a card's situation holds these codes or the RPPS letters is unconfirmed
#: (shared/reference/notes/cps-data-and-pki.md §406): other values are shown as codes.
PRACTICE_MODE_LABELS_FR = {
    "00": "libéral, indépendant, artisan, commerçant",
    "01": "salarié",
    "04": "remplaçant",
    "07": "non rétribué",
}


async def _cps(sessions: PcscCardService, reader: str, pin: bytearray | None, force: bool) -> dict[str, Any]:
    info = await sessions.cps_info(reader)
    result: dict[str, Any] = {"cps": info.to_json(), "situations": None}
    if pin is not None:
        try:
            _, situations = await sessions.login(reader, pin, allow_last_try=force)
        except BridgeError as err:  # keep what was read; say why the situations are missing
            result["error"] = err.to_data()
            return result
        result["situations"] = [s.to_json() for s in situations]
        await sessions.cps_logout(reader)
    return result


async def _describe(
    sessions: PcscCardService, reader: str, atr: bytes, pin: bytearray | None, force: bool
) -> dict[str, Any]:
    entry: dict[str, Any] = {"reader": reader, "atr": atr.hex().upper()}
    identity = await sessions.identify(reader)
    entry.update(kind=identity.kind.value, label=identity.label_fr, supported=identity.supported)
    if sessions.is_cps(identity):
        entry["supported"] = True  # a CPS4 is, through the Cryptolib
        entry.update(await _cps(sessions, reader, pin, force))
        entry["label"] = cps_label(entry["cps"]["cardType"], entry["cps"]["generation"])
    elif identity.kind is CardKind.VITALE2:
        entry["vitale"] = await sessions.vitale_read(reader)
    return entry


async def describe_cards(
    readers: list[tuple[str, bytes]], pin: bytearray | None, force: bool, backend: CpsBackend
) -> list[dict[str, Any]]:
    """One entry per (reader, ATR): kind, label, the CPS or Vitale reading, or the error that stopped it.

    With `pin`, a CPS is logged in to list its situations, then logged out; `force` spends a last try.
    """
    # The daemon's card service, without a monitor: the same code paths as the API's card methods.
    sessions = PcscCardService(cps_backend=backend)
    cards = []
    try:
        for name, atr in readers:
            try:
                cards.append(await _describe(sessions, name, atr, pin, force))
            except Exception as exc:  # one card failing must not hide the others
                cards.append({"reader": name, "atr": atr.hex().upper(), "error": to_bridge_error(exc).to_data()})
    finally:
        await sessions.close()
    return cards
