"""The ANS Cryptolib CPS (or any PKCS#11 module): found, loaded once per process, its slots named by reader.

Binding: `python-pkcs11` (0.10), not `PyKCS11` (1.5). Both load the Cryptolib and cover what we use
(token flags, CKO_DATA by label, C_Sign with CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS and PSS parameters,
one exception class per CKR_ code), and both are maintained with wheels on PyPI. The deciding points:
python-pkcs11 releases the GIL around every PKCS#11 call (Cython `with nogil`), while PyKCS11's SWIG
layer holds it, so a 1-second card signature on a worker thread would freeze the daemon's event loop;
it ships `py.typed` and stubs, so mypy --strict needs no blanket ignore; and its `Token.open` takes
the PIN through `.encode()`, which lets us hand it our own bytearray (zeroed afterwards) instead of
an immutable str or bytes copy (`bridge.cards.pkcs11_cps`).

Threads: the binding calls C_Initialize with no locking arguments, which per PKCS#11 tells the
module that the application will not call it from two threads at once. So every call into a loaded
module goes through its one `Pkcs11Module.lock` (an RLock): callers on several worker threads are
safe, and two readers' cards take turns.

Where the module is: `bridge.cards.cryptolib_paths` (found without importing the binding).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import exceptions as p11e

from bridge.cards.cryptolib_paths import ENV_MODULE, CryptolibNotFound, ModuleInfo, candidate_paths, find_module
from bridge.errors import BridgeError, ErrorCode

if TYPE_CHECKING:
    # `pkcs11.lib` is a loader function; the class it returns is typed in the binding's stub.
    from pkcs11._pkcs11 import lib as _Lib

__all__ = [
    "ENV_MODULE",
    "CryptolibNotFound",
    "ModuleInfo",
    "Pkcs11Module",
    "candidate_paths",
    "find_module",
    "load_module",
    "map_pkcs11_error",
]

log = logging.getLogger(__name__)

class Pkcs11Module:
    """One loaded PKCS#11 module: its slots, and the lock every call into it takes.

    Built by `load_module` only: the C library's state is per process, so one object per module file.
    """

    def __init__(self, lib: _Lib, path: Path) -> None:
        self._lib = lib
        self.path = path
        #: Held around every call into the module (see the module docstring).
        self.lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Pkcs11Module({str(self.path)!r})"

    @contextmanager
    def call(self) -> Iterator[None]:
        """Hold the module lock for a sequence of calls (re-entrant)."""
        with self.lock:
            yield

    def info(self) -> ModuleInfo:
        """Library description, manufacturer and version (C_GetInfo)."""
        major, minor = self._lib.library_version
        return ModuleInfo(str(self.path), self._lib.library_description, self._lib.manufacturer_id, f"{major}.{minor}")

    def reinitialize(self) -> None:
        """C_Finalize then C_Initialize: the module forgets its sessions and lets go of every card handle.

        Sessions and slot objects obtained before are invalid afterwards.
        """
        with self.lock:
            try:
                self._lib.reinitialize()
            except p11e.PKCS11Error as exc:
                raise map_pkcs11_error(exc, "C_Finalize/C_Initialize") from None

    def slots(self) -> list[pkcs11.Slot]:
        """Every slot, with or without a token (C_GetSlotList(FALSE)); the Cryptolib has one per reader."""
        with self.lock:
            try:
                return self._lib.get_slots(token_present=False)
            except p11e.PKCS11Error as exc:
                raise map_pkcs11_error(exc, "C_GetSlotList") from None

    def notice_removal(self, reader: str) -> None:
        """Tell the module the card left `reader`, so that it lets go of its connection to it now.

        The Cryptolib learns of a removal only at its next call for that slot. Until then it keeps its
        handle to the old card, and a card inserted meanwhile may stay invisible to it: a CPS4 put in
        after a CPS3 showed no token until the module was re-initialised (Cryptolib 5.2.2 over pcscd,
        tests/integration/test_pkcs11_cps.py). Asking for the slot's state is that call.
        """
        with self.lock, contextlib.suppress(BridgeError):
            self.slot_for_reader(reader)

    def slot_for_reader(self, reader: str) -> pkcs11.Slot:
        """The slot whose description is the PC/SC reader name (the Cryptolib names slots after readers).

        A CK_SLOT_INFO description is 64 bytes, blank padded, so a longer reader name is matched on its
        first 64 characters.

        Raises:
            BridgeError: NO_READER when no slot carries that name.
        """
        wanted = reader.strip()
        for slot in self.slots():
            description = slot.slot_description.strip()
            if description == wanted or (len(description) >= 63 and wanted.startswith(description)):
                return slot
        raise BridgeError(ErrorCode.NO_READER, "no PKCS#11 slot for this reader")


_loaded: dict[str, Pkcs11Module] = {}
_loaded_lock = threading.Lock()


def load_module(path: str | Path) -> Pkcs11Module:
    """The module at `path`, loaded and initialised on first use and shared afterwards.

    A PKCS#11 library is initialised once per process (a second C_Initialize answers "already
    initialized"), so this is the one cache of the bridge keyed by a file, not an application object.

    Raises:
        CryptolibNotFound: `path` is not a file.
        BridgeError: CARD_ERROR when the module does not load or initialise.
    """
    real = Path(path).resolve()
    if not real.is_file():
        raise CryptolibNotFound([str(path)])
    key = str(real)
    with _loaded_lock:
        module = _loaded.get(key)
        if module is None:
            try:
                lib = pkcs11.lib(key)
            except p11e.PKCS11Error as exc:
                log.error("PKCS#11 module %s does not load: %s", key, type(exc).__name__)
                raise BridgeError(ErrorCode.CARD_ERROR, "the PKCS#11 module does not load") from None
            module = _loaded[key] = Pkcs11Module(lib, real)
            log.info("PKCS#11 module loaded: %s (%s)", key, lib.library_description)
        return module


# CKR_ class -> our code. Anything else is a card error named by its class (never a secret).
_ERRORS: tuple[tuple[type[p11e.PKCS11Error], ErrorCode], ...] = (
    (p11e.PinIncorrect, ErrorCode.PIN_INCORRECT),
    (p11e.PinLocked, ErrorCode.PIN_BLOCKED),
    (p11e.PinExpired, ErrorCode.PIN_BLOCKED),
    (p11e.PinLenRange, ErrorCode.INVALID_PARAMS),
    (p11e.PinInvalid, ErrorCode.INVALID_PARAMS),
    (p11e.UserNotLoggedIn, ErrorCode.PIN_REQUIRED),
    (p11e.DeviceRemoved, ErrorCode.CARD_REMOVED),
    # Removing the card closes every session of its slot (PKCS#11 §5.6): a live handle gone stale.
    (p11e.SessionHandleInvalid, ErrorCode.CARD_REMOVED),
    (p11e.SessionClosed, ErrorCode.CARD_REMOVED),
    (p11e.TokenNotPresent, ErrorCode.NO_CARD),
    (p11e.TokenNotRecognised, ErrorCode.UNSUPPORTED_CARD),
    (p11e.SlotIDInvalid, ErrorCode.NO_READER),
    (p11e.FunctionCancelled, ErrorCode.TIMEOUT),
)


def map_pkcs11_error(exc: p11e.PKCS11Error, what: str, **extra: object) -> BridgeError:
    """The BridgeError for a binding exception raised by `what` (a PKCS#11 function name)."""
    for kind, code in _ERRORS:
        if isinstance(exc, kind):
            return BridgeError(code, f"{what}: {type(exc).__name__}", **extra)
    return BridgeError(ErrorCode.CARD_ERROR, f"{what}: {type(exc).__name__}", **extra)
