"""CPS3 card driver (IAS-ECC volet) over PC/SC: identity, certificates, PIN, situations d'exercice, signatures.

Synchronous code on a `CardChannel`: the PC/SC layer runs it on the card's worker thread inside a
transaction (T=0 61xx is handled below the channel). APDU builders and response parsers are pure
functions; `Cps3Card` holds the session state (an Enum, with one table of allowed operations per
state). Data-object decoding is isolated in `bridge.cards.cps_data`.

Where things are comes from the card itself, as the ANS Cryptolib finds them (its `pkcs15.c` bind;
`bridge.cards.pkcs15_layout`): data objects by label in the DODF, keys in the PrKDF (the signature
key is the one with nonRepudiation), certificates in the CDF by key id, the PIN in the AODF (its
reference, encoding and padding drive VERIFY). Only EF.SN.ICC (``3F00/D003``) and EF.DIR
(``3F00/2F00``) are read at fixed paths, as the Cryptolib does. The APDU sequences follow the
Cryptolib's CPS3 driver (`card-cps3.c`): SELECT by path P1=09 (P2=04 with FCP, 0C without), PIN
counter by GET DATA on the CHV SDO from the MF, MSE after re-selecting the application DF and the key
path (key references are local to that DF), INTERNAL AUTHENTICATE for the authentication key, MSE
HT/DST + PSO HASH (the card finishes the hash) + PSO CDS for the signature key.

The bridge never spends the last remaining try unless asked (`force=True`): it reads the counter
first and raises PIN_LAST_TRY before sending VERIFY. Logout resets the card: the Cryptolib sends
nothing (the card stays verified) and VERIFY P1=FF is not a CPS3 command.
"""

from __future__ import annotations

import logging
from typing import NoReturn, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from bridge.cards.cps3_apdu import (
    ALGO_HASH,
    ALGO_RSA_HASH,
    ALGO_RSA_PKCS1,
    CRT_AT,
    CRT_DST,
    CRT_HT,
    MAX_READ,
    SW_BLOCKED,
    SW_NOT_FOUND,
    SW_SECURITY,
    fcp_file_size,
    get_data_chv,
    internal_authenticate,
    mse_set,
    parse_pin_status,
    pso_cds,
    pso_hash,
    read_binary,
    select_path,
    situation_index,
    verify_command,
)
from bridge.cards.cps_data import (
    SN_ICC_PATH,
    CardDataError,
    Situation,
    parse_id_card,
    parse_info_ps,
    parse_name_ps,
    parse_situation,
    parse_sn_icc,
)
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_session import CardState, CpsSession, Operation, Runner, card_keys_of
from bridge.cards.pkcs15 import DirectoryError, PrivateKeyObject, pin_block
from bridge.cards.pkcs15_layout import CardLayout, discover
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.crypto.digest_info import digest_info
from bridge.crypto.sha256_state import split_for_card, split_for_card_sha1
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response, StatusWord
from bridge.pcsc.channel import CardChannel, StatusWordError, check

__all__ = ["ALLOWED", "CPS3_ATR", "Cps3Card", "card_keys"]

log = logging.getLogger(__name__)

CPS3_ATR = bytes.fromhex("3BAC00402A001225006480000310009000")
# ---- session state --------------------------------------------------------------------------------


_ALL = frozenset(Operation)
#: Allowed operations per state. In READY, PIN-protected operations are still sent: the PIN may have
#: been verified through another session on the same connection, and the card answers 6982 if not.
ALLOWED: dict[CardState, frozenset[Operation]] = {
    CardState.NEW: frozenset({Operation.IDENTIFY, Operation.PIN_STATUS}),
    CardState.READY: _ALL,
    CardState.AUTHENTICATED: _ALL,
    CardState.BLOCKED: frozenset({Operation.IDENTIFY, Operation.READ_PUBLIC, Operation.PIN_STATUS}),
}


T = TypeVar("T")


def _pin_error(sw: StatusWord, what: str) -> BridgeError:
    """Map a PIN-related refusal to the caller's error code."""
    if sw.value == SW_SECURITY:
        return BridgeError(ErrorCode.PIN_REQUIRED, what)
    if sw.value == SW_BLOCKED:
        return BridgeError(ErrorCode.PIN_BLOCKED, what, triesLeft=0)
    return StatusWordError(sw, what)


class Cps3Card(CpsSession):
    """One CPS3 session: the state machine and the card operations, each run on a given channel."""

    allowed = ALLOWED

    # -- reading
    def read_file(self, ch: CardChannel, path: bytes, what: str) -> bytes:
        """SELECT by path, then READ BINARY in chunks of MAX_READ up to the FCP size."""
        data = self._read(ch, path, what, missing_ok=False)
        assert data is not None
        return data

    def _read(self, ch: CardChannel, path: bytes, what: str, *, missing_ok: bool) -> bytes | None:
        response = ch.transmit(select_path(path))
        if missing_ok and response.sw.value == SW_NOT_FOUND:
            return None
        if response.sw.value in (SW_SECURITY, SW_BLOCKED):
            self._lost_pin(response.sw, what)
        size = fcp_file_size(check(response, f"SELECT {what}"))
        data = bytearray()
        while size is None or len(data) < size:
            want = MAX_READ if size is None else min(MAX_READ, size - len(data))
            part = ch.transmit(read_binary(len(data), want))
            if size is None and part.sw.value == 0x6B00:
                break  # no size in the FCP: read until the end of the EF
            if part.sw.value in (SW_SECURITY, SW_BLOCKED):
                self._lost_pin(part.sw, what)
            chunk = check(part, f"READ BINARY {what}")
            data += chunk
            if not chunk or (size is None and len(chunk) < want):
                break
        return bytes(data)

    def identify(self, ch: CardChannel) -> str:
        """Read EF.SN.ICC: checks the ANS issuer and returns the card serial (NEW -> READY)."""
        self._require(Operation.IDENTIFY)
        try:
            raw = self.read_file(ch, SN_ICC_PATH, "EF.SN.ICC")
        except StatusWordError as exc:
            if exc.sw.value in (SW_NOT_FOUND, 0x6A86, 0x6D00, 0x6E00):
                raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "no CPS3 EF.SN.ICC") from None
            raise
        serial = parse_sn_icc(raw)
        self.serial = serial
        if self.state is CardState.NEW:
            self.state = CardState.READY
        return serial

    def pin_status(self, ch: CardChannel) -> PinStatus:
        """The PIN counter (select the MF, then GET DATA on the CHV SDO)."""
        self._require(Operation.PIN_STATUS)
        reference = self.layout(ch).user_pin.reference
        check(ch.transmit(Command(0x00, 0xA4, 0x09, 0x0C, b"\x3f\x00")), "SELECT MF")
        status = parse_pin_status(check(ch.transmit(get_data_chv(reference)), "GET DATA CHV"))
        if status.blocked:
            self.state = CardState.BLOCKED
        elif self.state is CardState.BLOCKED:
            self.state = CardState.READY  # unblocked elsewhere (PUK)
        return status

    def layout(self, ch: CardChannel) -> CardLayout:
        """The card's PKCS#15 directory (EF.DIR, ODF, TokenInfo, AODF, PrKDF, CDF, DODF), read once per session."""
        if self._layout is None:
            try:
                self._layout = discover(
                    lambda path: self.read_file(ch, path, f"PKCS#15 {path.hex()}"), missing=StatusWordError
                )
            except DirectoryError as exc:
                raise CardDataError(str(exc)) from None
        return self._layout

    def _object(self, ch: CardChannel, label: str) -> bytes:
        layout = self.layout(ch)
        obj = layout.data(label)
        if obj is None:
            raise CardDataError(f"{label}: not in the card's DODF")
        return self.read_file(ch, layout.path_of(obj.path), label)

    def key(self, ch: CardChannel, *, signature: bool) -> PrivateKeyObject:
        """The signature key (nonRepudiation) or the authentication key (sign, no nonRepudiation).

        The role comes from the PrKDF usage bits, as the Cryptolib decides it (`pkcs15-sec.c`).
        """
        keys = [k for k in self.layout(ch).keys if k.non_repudiation == signature and k.usage & ((1 << 2) | (1 << 9))]
        if not keys:
            raise CardDataError(f"PrKDF: no {'signature' if signature else 'authentication'} key")
        return keys[0]

    def read_certificates(self, ch: CardChannel) -> tuple[x509.Certificate, x509.Certificate]:
        """The (authentication, signature) certificates, found through the CDF by their keys' ids."""
        self._require(Operation.READ_PUBLIC)
        layout = self.layout(ch)
        certs = []
        for signature in (False, True):
            cert = layout.certificate_of(self.key(ch, signature=signature))
            what = "signature certificate" if signature else "auth certificate"
            try:
                certs.append(x509.load_der_x509_certificate(self.read_file(ch, layout.path_of(cert.path), what)))
            except ValueError:
                raise CardDataError(what) from None
        return certs[0], certs[1]

    def read_public(self, ch: CardChannel) -> CpsCardInfo:
        """Everything readable without the PIN: serial, card, holder, profession, certificates, PIN counter."""
        serial = self.identify(ch)
        self._require(Operation.READ_PUBLIC)
        identity = parse_id_card(self._object(ch, "CPS_ID_CARD"))
        holder = parse_name_ps(self._object(ch, "CPS_NAME_PS"))
        professional = parse_info_ps(self._object(ch, "CPS_INFO_PS"))
        auth, sign = self.read_certificates(ch)
        pin = self.pin_status(ch)
        return CpsCardInfo(serial, identity, holder, professional, auth, sign, pin)

    # -- PIN
    def verify_pin(self, ch: CardChannel, pin: bytearray, *, force: bool = False) -> PinStatus:
        """VERIFY the PIN (ASCII digits); zeroes `pin` in every case.

        Raises:
            BridgeError: INVALID_PARAMS (not 4-8 digits), PIN_BLOCKED, PIN_LAST_TRY (one try left and not
                `force`; nothing sent), PIN_INCORRECT with `triesLeft`.
        """
        try:
            self._require(Operation.VERIFY_PIN)
            if not 4 <= len(pin) <= 8 or not all(0x30 <= b <= 0x39 for b in pin):
                raise BridgeError(ErrorCode.INVALID_PARAMS, "the PIN must be 4 to 8 digits")
            status = self.pin_status(ch)
            if status.blocked:
                raise BridgeError(ErrorCode.PIN_BLOCKED, triesLeft=0)
            if status.tries_left == 1 and not force:
                raise BridgeError(ErrorCode.PIN_LAST_TRY, triesLeft=1)
            pin_object = self.layout(ch).user_pin
            if pin_object.path is not None:
                check(ch.transmit(select_path(self.layout(ch).path_of(pin_object.path), fcp=False)), "SELECT PIN DF")
            block = pin_block(pin, pin_object)
            try:
                response = ch.transmit(verify_command(block, pin_object.reference))
            finally:
                for i in range(len(block)):
                    block[i] = 0
        finally:
            for i in range(len(pin)):
                pin[i] = 0
        sw = response.sw
        if sw.ok:
            self.state = CardState.AUTHENTICATED
            log.info("CPS PIN verified")
            return PinStatus(status.tries_max, status.tries_max)
        if sw.sw1 == 0x63 and sw.sw2 & 0xF0 == 0xC0:
            left = sw.sw2 & 0x0F
            self.state = CardState.BLOCKED if left == 0 else CardState.READY
            log.info("CPS PIN refused, %d tries left", left)
            code = ErrorCode.PIN_BLOCKED if left == 0 else ErrorCode.PIN_INCORRECT
            raise BridgeError(code, triesLeft=left)
        if sw.value == SW_BLOCKED:
            self.state = CardState.BLOCKED
            raise BridgeError(ErrorCode.PIN_BLOCKED, triesLeft=0)
        raise StatusWordError(sw, "VERIFY")

    def logout(self, ch: CardChannel) -> None:
        """Drop the PIN's verified status: reset the card (neither ANS nor OpenSC sends VERIFY P1=FF).

        An IAS-ECC PIN is global to the card, so re-selecting an application does not clear it; a warm
        reset does, for every application on the card (AUTHENTICATED -> READY).
        """
        self._require(Operation.LOGOUT)
        ch.reset()
        self.state = CardState.READY

    # -- after the PIN
    def read_situations(self, ch: CardChannel) -> tuple[Situation, ...]:
        """The situations d'exercice (16 slots, gaps allowed); needs the PIN."""
        self._require(Operation.READ_SITUATIONS)
        layout = self.layout(ch)
        found = []
        for obj in layout.data_objects:
            index = situation_index(obj.label)
            if index is None:
                continue
            data = self._read(ch, layout.path_of(obj.path), obj.label, missing_ok=True)
            if data is not None:
                found.append(parse_situation(data, index))
        found.sort(key=lambda sit: sit.index)
        return tuple(found)

    def _lost_pin(self, sw: StatusWord, what: str) -> NoReturn:
        """The card refused for lack of PIN (or a blocked one): update the state and raise."""
        if sw.value == SW_BLOCKED:
            self.state = CardState.BLOCKED
        elif self.state is CardState.AUTHENTICATED:
            self.state = CardState.READY  # the card forgot the PIN (reset by someone else)
        raise _pin_error(sw, what)

    def _run_signing(self, ch: CardChannel, command: Command, what: str) -> bytes:
        response: Response = ch.transmit(command)
        if response.sw.value in (SW_SECURITY, SW_BLOCKED):
            self._lost_pin(response.sw, what)
        return check(response, what)

    def _select_key(self, ch: CardChannel, key: PrivateKeyObject) -> int:
        """Re-select the application DF, then the key's path: key references are local to that DF."""
        layout = self.layout(ch)
        self._run_signing(ch, select_path(layout.app_path, fcp=False), "SELECT application")
        if key.path is not None and key.path.path:
            key_path = layout.path_of(key.path)
            if key_path != layout.app_path:
                self._run_signing(ch, select_path(key_path, fcp=False), "SELECT key")
        if key.reference is None:
            raise CardDataError(f"PrKDF {key.label}: no key reference")
        return key.reference

    def sign_digest(self, ch: CardChannel, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Authentication key: MSE SET AT, then INTERNAL AUTHENTICATE with DigestInfo || digest."""
        self._require(Operation.SIGN)
        payload = digest_info(digest, algorithm)
        reference = self._select_key(ch, self.key(ch, signature=False))
        self._run_signing(ch, mse_set(CRT_AT, ALGO_RSA_PKCS1, reference), "MSE SET AT")
        return self._run_signing(ch, internal_authenticate(payload), "INTERNAL AUTHENTICATE")

    def sign_message(self, ch: CardChannel, message: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
        """Signature key: MSE SET HT, PSO HASH (intermediate state + last bytes), MSE SET DST, PSO CDS."""
        self._require(Operation.SIGN)
        if algorithm.name not in ALGO_HASH:
            raise ValueError(f"the CPS3 signature key hashes with SHA-256 or SHA-1, not {algorithm.name}")
        split = split_for_card if algorithm.name == "sha256" else split_for_card_sha1
        state, bits, remainder = split(message)
        key = self.key(ch, signature=True)
        self._run_signing(ch, select_path(self.layout(ch).app_path, fcp=False), "SELECT application")
        self._run_signing(ch, mse_set(CRT_HT, ALGO_HASH[algorithm.name]), "MSE SET HT")
        self._run_signing(ch, pso_hash(state, bits, remainder), "PSO HASH")
        reference = self._select_key(ch, key)
        self._run_signing(ch, mse_set(CRT_DST, ALGO_RSA_HASH[algorithm.name], reference), "MSE SET DST")
        return self._run_signing(ch, pso_cds(), "PSO CDS")


def card_keys(runner: Runner, card: Cps3Card | None = None) -> tuple[CardRsaPrivateKey, CardRsaMessageKey]:
    """The card's (authentication, signature) keys (`card`: the session they follow; a fresh one if omitted)."""
    return card_keys_of(runner, card if card is not None else Cps3Card(), generation="CPS3")
