"""A CPS3 or CPS4 through a PKCS#11 module (the ANS Cryptolib CPS): the `CpsToken` of the "pkcs11" backend.

What comes from where (external specification of the Cryptolib, table 3; internal specification):

* identity: CKO_DATA objects by label, their CKA_VALUE "as read from the card" (ASN.1), parsed by
  `bridge.cards.cps_data` (the one place for that layout): CPS_ID_CARD, CPS_NAME_PS, CPS_INFO_PS
  without the PIN; CPS_ACTIVITY_01_PS..16 (gaps allowed) and CPS_SIT_FACT only after login;
* serial: the token's serialNumber (the Cryptolib fills it from EF.SN.ICC, issuer prefix removed);
* generation: the token's model ("IAS ECC" for the CPS3 driver, "ChipDoc" for CPS4 — `card-cps.h`
  of the Cryptolib 5.2 sources; the internal specification says "NXP", accepted too), else the ATR;
* PIN counter: the token flags, refreshed by the Cryptolib on every C_GetTokenInfo (`pin_status_from_flags`);
* certificates: CKO_CERTIFICATE; the signature one is the certificate whose KeyUsage has
  nonRepudiation (IGC-Santé), the other authenticates; each private key is the CKO_PRIVATE_KEY with
  the certificate's CKA_ID (labels CPS_PRIV_AUT / CPS_PRIV_SIG as a fallback);
* signatures: the authentication key signs a host-built DigestInfo with CKM_RSA_PKCS (TLS, the
  Cryptolib turns it into INTERNAL AUTHENTICATE on CPS3 and a raw decipher on CPS4); the signature
  key signs the whole message with CKM_SHA256_RSA_PKCS / CKM_SHA1_RSA_PKCS (the card finishes the
  hash), and with CKM_SHA256_RSA_PKCS_PSS when the token lists it (CPS4).

Threads: every call goes through the module's lock (`Pkcs11Module.lock`), so one object may be used
from several worker threads; it must never be used from the event loop thread (calls block).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from pkcs11 import Attribute, Mechanism, ObjectClass, TokenFlag
from pkcs11 import exceptions as p11e

from bridge.cards.cps_data import Situation, parse_id_card, parse_info_ps, parse_name_ps, parse_situation
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_token import CpsToken
from bridge.cards.pkcs11_module import Pkcs11Module, map_pkcs11_error
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.crypto.digest_info import digest_info
from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "CPS3_ATR",
    "CPS4_ATRS",
    "PIN_TRIES_MAX",
    "Pkcs11CpsToken",
    "generation_of",
    "pin_status_from_flags",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A CPS PIN has 3 tries (ANS); the token flags only say "low", "final" and "locked".
PIN_TRIES_MAX = 3

# ATRs the Cryptolib matches (card-cps.c, CPS_ATR_LIST): CPS3 contact (compared under a mask), CPS4
# contact, CPS4 release candidate, CPS4 T=0 only.
CPS3_ATR = bytes.fromhex("3BAC00402A001225006480000310009000")
_CPS3_MASK = bytes.fromhex("FF00000000FFFFFFFFFFFF000000FFFFFF")
CPS4_ATRS = (
    bytes.fromhex("3B9B188001001225006480040100009044"),
    bytes.fromhex("3B9B188001001225006480000401009044"),
    bytes.fromhex("3BDC18FF00001225006480000401009000"),
)

_ACTIVITY = re.compile(r"CPS_ACTIVITY_(\d{2})_PS")
_PRIVATE_LABELS = {"auth": "CPS_PRIV_AUT", "sign": "CPS_PRIV_SIG"}
_MESSAGE_MECHANISMS = {"sha256": Mechanism.SHA256_RSA_PKCS, "sha1": Mechanism.SHA1_RSA_PKCS}
_PSS_MECHANISMS = {
    "sha256": (Mechanism.SHA256_RSA_PKCS_PSS, Mechanism.SHA256, pkcs11.MGF.SHA256),
    "sha1": (Mechanism.SHA1_RSA_PKCS_PSS, Mechanism.SHA_1, pkcs11.MGF.SHA1),
}


def pin_status_from_flags(flags: int) -> PinStatus:
    """The PIN counter the token flags imply, for a 3-try CPS PIN.

    LOCKED -> 0 and FINAL_TRY -> 1 are exact. COUNT_LOW means "a wrong PIN since the last good one",
    which for a 3-try PIN with neither of the other two flags leaves exactly 2. No flag -> 3.
    """
    if flags & TokenFlag.USER_PIN_LOCKED:
        left = 0
    elif flags & TokenFlag.USER_PIN_FINAL_TRY:
        left = 1
    elif flags & TokenFlag.USER_PIN_COUNT_LOW:
        left = PIN_TRIES_MAX - 1
    else:
        left = PIN_TRIES_MAX
    return PinStatus(tries_left=left, tries_max=PIN_TRIES_MAX)


def generation_of(model: str, atr: bytes | None = None) -> str:
    """ "CPS3" or "CPS4" from the card's ATR, else from the token model the Cryptolib reports.

    The ATR comes first: Cryptolib 5.2.2 reports the model "IAS ECC" for a CPS4 too (its match
    routine's return value; seen on the virtual CPS4, tests/integration/test_cryptolib_cps4.py).

    Raises:
        BridgeError: UNSUPPORTED_CARD when neither tells.
    """
    if atr is not None:
        if atr in CPS4_ATRS:
            return "CPS4"
        if len(atr) == len(CPS3_ATR) and all(a & m == c & m for a, m, c in zip(atr, _CPS3_MASK, CPS3_ATR, strict=True)):
            return "CPS3"
    name = model.strip().upper()
    if name in ("CHIPDOC", "NXP"):
        return "CPS4"
    if name in ("IAS ECC", "IAS-ECC"):
        return "CPS3"
    raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "neither a CPS3 nor a CPS4 token")


class _PinArg:
    """Hands the binding our bytearray: python-pkcs11 calls `.encode()` and passes the result to C_Login.

    So no immutable str or bytes copy of the PIN is made on the Python side; the bytearray is zeroed
    by the caller afterwards (checked by the tests on SoftHSM).
    """

    __slots__ = ("_buffer",)

    def __init__(self, buffer: bytearray) -> None:
        self._buffer = buffer

    def encode(self, encoding: str = "utf-8") -> bytearray:
        """The PIN buffer itself (ASCII digits), not a copy."""
        return self._buffer

    def __repr__(self) -> str:
        return "<PIN>"


def _zero(buffer: bytearray) -> None:
    for i in range(len(buffer)):
        buffer[i] = 0


def _bytes(value: object, what: str) -> bytes:
    """An attribute the binding returns as Any, checked to be bytes (the typed edge of the binding)."""
    if not isinstance(value, bytes):
        raise BridgeError(ErrorCode.CARD_ERROR, f"{what}: not a byte string")
    return value


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


class Pkcs11CpsToken:
    """One CPS in one slot of a PKCS#11 module (`bridge.cards.cps_token.CpsToken`, backend "pkcs11").

    Args:
        module: the loaded module (`bridge.cards.pkcs11_module.load_module`).
        slot: its slot for the card's reader (`Pkcs11Module.slot_for_reader`).
        atr: the card's ATR from the PC/SC monitor, used when the token model does not tell the generation.
    """

    backend = "pkcs11"

    def __init__(self, module: Pkcs11Module, slot: pkcs11.Slot, *, atr: bytes | None = None) -> None:
        self._module = module
        self._slot = slot
        self._atr = atr
        self._public: pkcs11.Session | None = None
        self._user: pkcs11.Session | None = None

    def __repr__(self) -> str:
        return f"Pkcs11CpsToken(logged_in={self._user is not None})"  # slot ids are arbitrary numbers: kept out

    # -- plumbing
    def _run(self, what: str, fn: Callable[[], T]) -> T:
        """Call the module under its lock; binding errors become BridgeErrors (sessions dropped if the card went)."""
        with self._module.lock:
            try:
                return fn()
            except p11e.PKCS11Error as exc:
                error = map_pkcs11_error(exc, what)
                if error.code in (ErrorCode.CARD_REMOVED, ErrorCode.NO_CARD):
                    self._forget_sessions()
                raise error from None

    def _forget_sessions(self) -> None:
        # The module closed them when the card left: nothing to call, only handles to drop.
        self._public = None
        self._user = None

    def _token(self) -> pkcs11.Token:
        """A fresh C_GetTokenInfo (the Cryptolib refreshes the PIN counter there)."""
        return self._slot.get_token()

    def _session(self) -> pkcs11.Session:
        """The logged-in session if any (login state is per token, so it sees private objects), else a public one."""
        if self._user is not None:
            return self._user
        if self._public is None:
            self._public = self._token().open()
        return self._public

    def _objects(self, attrs: dict[Attribute, object]) -> Iterator[pkcs11.Object]:
        return self._session().get_objects(attrs)

    def _data(self, label: str) -> bytes | None:
        found = next(self._objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}), None)
        return None if found is None else _bytes(found[Attribute.VALUE], label)

    def _required_data(self, label: str) -> bytes:
        value = self._data(label)
        if value is None:
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, f"no {label} object on the token")
        return value

    # -- CpsToken
    def read_public(self) -> CpsCardInfo:
        """Serial, card, holder, professional data, both certificates and the PIN counter (no PIN needed)."""

        def read() -> CpsCardInfo:
            token = self._token()
            generation = generation_of(token.model, self._atr)
            serial = token.serial.decode("ascii", "replace").strip(" \x00")
            identity = parse_id_card(self._required_data("CPS_ID_CARD"))
            holder = parse_name_ps(self._required_data("CPS_NAME_PS"))
            professional = parse_info_ps(self._required_data("CPS_INFO_PS"))
            auth, sign = self._certificates()
            pin = pin_status_from_flags(int(token.flags))
            return CpsCardInfo(
                serial, identity, holder, professional, auth[0], sign[0], pin, generation=generation, backend="pkcs11"
            )

        return self._run("read_public", read)

    def pin_status(self) -> PinStatus:
        """The PIN's try counter from the token flags (see `pin_status_from_flags`)."""
        return self._run("C_GetTokenInfo", lambda: pin_status_from_flags(int(self._token().flags)))

    def login(self, pin: bytearray, *, force: bool = False) -> PinStatus:
        """C_Login with the PIN (zeroed in every case).

        Raises:
            BridgeError: INVALID_PARAMS (not 4-8 digits), PIN_BLOCKED, PIN_LAST_TRY (one try left and not
                `force`; nothing sent), PIN_INCORRECT with `triesLeft`, CARD_REMOVED, NO_CARD.
        """
        try:
            if not 4 <= len(pin) <= 8 or not all(0x30 <= b <= 0x39 for b in pin):
                raise BridgeError(ErrorCode.INVALID_PARAMS, "the PIN must be 4 to 8 digits")
            with self._module.lock:
                status = self.pin_status()
                if status.blocked:
                    raise BridgeError(ErrorCode.PIN_BLOCKED, triesLeft=0)
                if status.tries_left == 1 and not force:
                    raise BridgeError(ErrorCode.PIN_LAST_TRY, triesLeft=1)
                self._close_user_session()  # a second C_Login would answer "already logged in"
                try:
                    self._user = self._run("C_Login", lambda: self._token().open(user_pin=_PinArg(pin)))
                except BridgeError as error:
                    if error.code is ErrorCode.PIN_INCORRECT:
                        left = self.pin_status().tries_left
                        log.info("CPS PIN refused, %d tries left", left)
                        code = ErrorCode.PIN_BLOCKED if left == 0 else ErrorCode.PIN_INCORRECT
                        raise BridgeError(code, error.detail, triesLeft=left) from None
                    if error.code is ErrorCode.PIN_BLOCKED:
                        raise BridgeError(ErrorCode.PIN_BLOCKED, error.detail, triesLeft=0) from None
                    raise
        finally:
            _zero(pin)
        log.info("CPS PIN verified (PKCS#11)")
        return PinStatus(PIN_TRIES_MAX, PIN_TRIES_MAX)

    def logout(self) -> None:
        """C_Logout and close the logged-in session; the public session stays."""
        with self._module.lock:
            self._close_user_session()

    def _close_user_session(self) -> None:
        session, self._user = self._user, None
        if session is None:
            return
        try:
            session.close()
        except (p11e.UserNotLoggedIn, p11e.SessionHandleInvalid, p11e.SessionClosed, p11e.DeviceRemoved):
            pass  # already logged out: the card was removed or reset, which is what logout wants
        except p11e.PKCS11Error as exc:
            raise map_pkcs11_error(exc, "C_Logout") from None

    def read_situations(self) -> tuple[Situation, ...]:
        """The situations d'exercice CPS_ACTIVITY_01_PS..16 (PIN needed; gaps in their numbering allowed)."""

        def read() -> tuple[Situation, ...]:
            if self._user is None:
                raise BridgeError(ErrorCode.PIN_REQUIRED, "situations need the PIN")
            found: dict[int, bytes] = {}
            for obj in self._objects({Attribute.CLASS: ObjectClass.DATA}):
                match = _ACTIVITY.fullmatch(_text(obj[Attribute.LABEL]))
                if match and 1 <= int(match.group(1)) <= 16:
                    found[int(match.group(1)) - 1] = _bytes(obj[Attribute.VALUE], match.group(0))
            return tuple(parse_situation(found[index], index) for index in sorted(found))

        return self._run("read_situations", read)

    def read_billing_situation(self) -> bytes | None:
        """The raw CPS_SIT_FACT object (PIN needed; its layout is not parsed yet), or None when absent."""
        if self._user is None:
            raise BridgeError(ErrorCode.PIN_REQUIRED, "CPS_SIT_FACT needs the PIN")
        return self._run("read CPS_SIT_FACT", lambda: self._data("CPS_SIT_FACT"))

    def keys(self) -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
        """The (authentication, signature) keys as `cryptography` objects; their `sign` blocks on the card."""

        def read() -> tuple[CardRsaPrivateKey, CardRsaMessageKey]:
            (auth_cert, auth_id), (sign_cert, sign_id) = self._certificates()
            auth_public, sign_public = auth_cert.public_key(), sign_cert.public_key()
            if not isinstance(auth_public, rsa.RSAPublicKey) or not isinstance(sign_public, rsa.RSAPublicKey):
                raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "CPS keys are RSA")
            pss = Mechanism.SHA256_RSA_PKCS_PSS in self._slot.get_mechanisms()

            def sign_digest(digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
                payload = digest_info(digest, algorithm)
                return self._sign("auth", auth_id, payload, Mechanism.RSA_PKCS, None)

            def sign_message(message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
                mechanism = _MESSAGE_MECHANISMS.get(algorithm.name)
                if mechanism is None:
                    raise ValueError(f"the CPS signature key hashes with SHA-256 or SHA-1, not {algorithm.name}")
                return self._sign("sign", sign_id, message, mechanism, None)

            def sign_message_pss(message: bytes, algorithm: hashes.HashAlgorithm, salt: int) -> bytes:
                mechanism, hash_mechanism, mgf = _PSS_MECHANISMS[algorithm.name]
                return self._sign("sign", sign_id, message, mechanism, (hash_mechanism, mgf, salt))

            return (
                CardRsaPrivateKey(auth_public, sign_digest, label="CPS authentication (PKCS#11)"),
                CardRsaMessageKey(
                    sign_public,
                    sign_message,
                    label="CPS signature (PKCS#11)",
                    sign_message_pss=sign_message_pss if pss else None,
                ),
            )

        return self._run("keys", read)

    # -- certificates and keys
    def _certificates(self) -> tuple[tuple[x509.Certificate, bytes], tuple[x509.Certificate, bytes]]:
        """((authentication certificate, CKA_ID), (signature certificate, CKA_ID))."""
        auth: tuple[x509.Certificate, bytes] | None = None
        sign: tuple[x509.Certificate, bytes] | None = None
        for obj in self._objects({Attribute.CLASS: ObjectClass.CERTIFICATE}):
            cert = x509.load_der_x509_certificate(_bytes(obj[Attribute.VALUE], "certificate"))
            if _is_ca(cert):
                continue  # a token may also carry its issuers; only the holder's two certificates count
            entry = (cert, _bytes(obj[Attribute.ID], "certificate CKA_ID"))
            if _is_signature_certificate(cert):
                sign = sign or entry
            else:
                auth = auth or entry
        if auth is None or sign is None:
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "the token lacks the authentication or signature certificate")
        return auth, sign

    def _private_key(self, usage: str, key_id: bytes) -> pkcs11.SignMixin:
        """The private key paired with a certificate by CKA_ID, else by its CPS label."""
        session = self._session()
        for attrs in (
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id},
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: _PRIVATE_LABELS[usage]},
        ):
            found = next(session.get_objects(attrs), None)
            # The binding adds SignMixin to keys whose CKA_SIGN is true: the typed view of a signing key.
            if isinstance(found, pkcs11.SignMixin):
                return found
        if self._user is None:
            raise BridgeError(ErrorCode.PIN_REQUIRED, "the card's keys need the PIN")
        raise BridgeError(ErrorCode.UNSUPPORTED_CARD, f"no private key for the {usage} certificate")

    def _sign(
        self,
        usage: str,
        key_id: bytes,
        data: bytes,
        mechanism: Mechanism,
        param: tuple[Mechanism, pkcs11.MGF, int] | None,
    ) -> bytes:
        def sign() -> bytes:
            key = self._private_key(usage, key_id)
            if param is None:
                return key.sign(data, mechanism=mechanism)
            return key.sign(data, mechanism=mechanism, mechanism_param=param)

        return self._run("C_Sign", sign)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _is_signature_certificate(cert: x509.Certificate) -> bool:
    """IGC-Santé signature certificates carry nonRepudiation; authentication ones do not."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return usage.content_commitment


if TYPE_CHECKING:

    def _meets_the_contract(token: Pkcs11CpsToken) -> CpsToken:
        return token  # mypy checks Pkcs11CpsToken against the CpsToken protocol here
