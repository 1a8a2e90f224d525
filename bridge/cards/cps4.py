"""CPS4 card driver (NXP ChipDoc applet, PKCS#15): identity, objects by label, PIN, situations, both keys.

Synchronous code on a `CardChannel` (the PC/SC layer runs it on the card's worker thread inside a
transaction); APDUs are built and parsed in `bridge.cards.cps4_apdu`. It talks to the card as the
official Cryptolib 5.2 does (tests/integration/test_cryptolib_cps4.py reads the same virtual card
through both and compares): the ChipDoc applet on logical channel 1, EF.SN.ICC for the serial, then
the card's PKCS#15 directory files (`bridge.cards.pkcs15_layout.discover`) for every object, by label.

Choices where the Cryptolib does something else, and why:

* Logout re-selects the ChipDoc applet, then asks the counter with an empty VERIFY to confirm that the
  PIN status is gone. The Cryptolib sends nothing on logout (its card driver has no logout) and only
  forgets its cached PIN, which would leave the card open for the next caller. A card reset would
  work on any card but also drops every other program's state on the card; re-selecting the applet
  ends only this applet's session. If the card still says "verified", logout fails (CARD_ERROR) so
  that the caller resets the card instead.
* No PIN is cached: on 6982 during a signature the Cryptolib re-sends VERIFY with its cached PIN; the
  bridge reports PIN_REQUIRED.
* The last try is never spent unless asked (`force`): PIN_LAST_TRY with nothing sent.
"""

from __future__ import annotations

import logging
import re
from typing import NoReturn, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes

from bridge.cards.cps4_apdu import (
    AUTH_KEY_REF,
    MAX_READ,
    SN_ICC_PATH,
    TRIES_MAX,
    Scheme,
    algorithm_id,
    mse_decipher,
    mse_sign,
    needs_reselect,
    parse_fci_size,
    parse_pin_counter,
    parse_serial,
    pin_counter,
    pkcs1_type1,
    pso_cds,
    pso_decipher,
    read_binary,
    select_chipdoc,
    select_path,
    verify,
)
from bridge.cards.cps_data import (
    CardDataError,
    Situation,
    parse_id_card,
    parse_info_ps,
    parse_name_ps,
    parse_situation,
)
from bridge.cards.cps_info import CpsCardInfo, PinStatus
from bridge.cards.cps_session import CardState, CpsSession, Operation, Runner, card_keys_of
from bridge.cards.pkcs15 import DirectoryError, PrivateKeyObject, pin_block
from bridge.cards.pkcs15_layout import CardLayout, discover
from bridge.crypto.card_key import CardRsaMessageKey, CardRsaPrivateKey
from bridge.crypto.digest_info import digest_info
from bridge.errors import BridgeError, ErrorCode
from bridge.pcsc.apdu import Command, Response, StatusWord
from bridge.pcsc.channel import CardChannel, StatusWordError, check

__all__ = ["ALLOWED", "Cps4Card", "card_keys"]

log = logging.getLogger(__name__)

_SW_SECURITY, _SW_BLOCKED, _SW_NOT_FOUND, _SW_CHANNEL = 0x6982, 0x6983, 0x6A82, 0x6881
_SITUATION_LABEL = re.compile(r"CPS_ACTIVITY_(\d{2})_PS")


_ALL = frozenset(Operation)
#: Allowed operations per state (PIN-protected ones are still sent in READY: the card answers 6982).
ALLOWED: dict[CardState, frozenset[Operation]] = {
    CardState.NEW: frozenset({Operation.IDENTIFY}),
    CardState.READY: _ALL,
    CardState.AUTHENTICATED: _ALL,
    CardState.BLOCKED: frozenset({Operation.IDENTIFY, Operation.READ_PUBLIC, Operation.PIN_STATUS, Operation.LOGOUT}),
}


class _FileMissing(StatusWordError):
    """6A82 on a SELECT (EF.DIR may be absent: discovery then falls back to 3F00/5015)."""


T = TypeVar("T")


class Cps4Card(CpsSession):
    """One CPS4 session: the state machine and the card operations, each run on a given channel."""

    generation = "CPS4"

    allowed = ALLOWED

    # -- transport
    def _transmit(self, ch: CardChannel, command: Command) -> Response:
        """Send `command`; after 6Exx/6A86 re-select ChipDoc (P2=04) and send it once more, as the Cryptolib."""
        response = ch.transmit(command)
        if needs_reselect(response.sw):
            ch.transmit(select_chipdoc(0x04))  # its answer does not matter: the retry's does
            response = ch.transmit(command)
        return response

    def _check(self, response: Response, what: str) -> bytes:
        if response.sw.value in (_SW_SECURITY, _SW_BLOCKED):
            self._lost_pin(response.sw, what)
        return check(response, what)

    def _lost_pin(self, sw: StatusWord, what: str) -> NoReturn:
        """The card refused for lack of PIN (or a blocked one): update the state and raise."""
        if sw.value == _SW_BLOCKED:
            self.state = CardState.BLOCKED
            raise BridgeError(ErrorCode.PIN_BLOCKED, what, triesLeft=0)
        if self.state is CardState.AUTHENTICATED:
            self.state = CardState.READY  # the card forgot the PIN (reset or re-selected by someone else)
        raise BridgeError(ErrorCode.PIN_REQUIRED, what)

    def _select(self, ch: CardChannel, path: bytes, what: str, *, fci: bool) -> bytes:
        response = self._transmit(ch, select_path(path, fci=fci))
        if response.sw.value == _SW_NOT_FOUND:
            raise _FileMissing(response.sw, f"SELECT {what}")
        return self._check(response, f"SELECT {what}")

    def read_file(self, ch: CardChannel, path: bytes, what: str) -> bytes:
        """SELECT by path with the FCI, then READ BINARY in 256-byte chunks up to the FCI size."""
        size = parse_fci_size(self._select(ch, path, what, fci=True))
        data = bytearray()
        while len(data) < size:
            chunk = self._check(
                self._transmit(ch, read_binary(len(data), min(MAX_READ, size - len(data)))), f"READ {what}"
            )
            if not chunk:
                raise CardDataError(f"{what}: short file")
            data += chunk
        return bytes(data)

    # -- identification and PKCS#15
    def identify(self, ch: CardChannel) -> str:
        """Select ChipDoc on channel 1 (first time only) and read EF.SN.ICC: the serial the Cryptolib reports.

        Selecting the applet again would drop a verified PIN (ChipDoc resets its security status), so
        an identified session keeps its selection, as the Cryptolib does; a 6E00/6A86 still re-selects.
        """
        self._require(Operation.IDENTIFY)
        if self.state is CardState.NEW and not ch.transmit(select_chipdoc()).sw.ok:
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "no ChipDoc applet on channel 1")
        try:
            serial = parse_serial(self.read_file(ch, SN_ICC_PATH, "EF.SN.ICC"))
        except (StatusWordError, CardDataError):
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "no CPS4 EF.SN.ICC") from None
        if self.serial is not None and serial != self.serial:
            self._layout = None  # another card in the reader
        self.serial = serial
        if self.state is CardState.NEW:
            self.state = CardState.READY
        return serial

    def layout(self, ch: CardChannel) -> CardLayout:
        """The card's PKCS#15 layout (EF.DIR, ODF, TokenInfo, directory files), read once per session."""
        if self._layout is None:
            try:
                self._layout = discover(lambda path: self.read_file(ch, path, path.hex()), missing=_FileMissing)
            except DirectoryError as exc:
                raise CardDataError(str(exc)) from None
        return self._layout

    def read_object(self, ch: CardChannel, label: str) -> bytes:
        """The raw value of the data object labelled `label` (PIN-protected ones need the PIN)."""
        layout = self.layout(ch)
        obj = layout.data(label)
        if obj is None:
            raise CardDataError(f"no data object {label}")
        return self.read_file(ch, layout.path_of(obj.path), label)

    def _key(self, ch: CardChannel, *, signature: bool) -> PrivateKeyObject:
        key = next((k for k in self.layout(ch).keys if k.non_repudiation == signature), None)
        if key is None:
            raise CardDataError("PrKDF: no signature key" if signature else "PrKDF: no authentication key")
        if not signature and key.reference != AUTH_KEY_REF:
            raise BridgeError(ErrorCode.UNSUPPORTED_CARD, "the CPS4 authentication key is not 0x20")
        return key

    def read_certificates(self, ch: CardChannel) -> tuple[x509.Certificate, x509.Certificate]:
        """The (authentication, signature) certificates, matched to the keys by id."""
        self._require(Operation.READ_PUBLIC)
        layout = self.layout(ch)
        certs = []
        for signature in (False, True):
            cert = layout.certificate_of(self._key(ch, signature=signature))
            try:
                certs.append(x509.load_der_x509_certificate(self.read_file(ch, layout.path_of(cert.path), cert.label)))
            except ValueError:
                raise CardDataError(cert.label) from None
        return certs[0], certs[1]

    def read_public(self, ch: CardChannel) -> CpsCardInfo:
        """Everything readable without the PIN: serial, card, holder, profession, certificates, PIN counter."""
        serial = self.identify(ch)
        self._require(Operation.READ_PUBLIC)
        identity = parse_id_card(self.read_object(ch, "CPS_ID_CARD"))
        holder = parse_name_ps(self.read_object(ch, "CPS_NAME_PS"))
        professional = parse_info_ps(self.read_object(ch, "CPS_INFO_PS"))
        auth, sign = self.read_certificates(ch)
        pin = self.pin_status(ch)
        return CpsCardInfo(serial, identity, holder, professional, auth, sign, pin, generation="CPS4", backend="pcsc")

    # -- PIN
    def pin_status(self, ch: CardChannel) -> PinStatus:
        """The PIN counter by an empty VERIFY (a verified PIN reads as all tries left)."""
        self._require(Operation.PIN_STATUS)
        command = pin_counter(self.layout(ch).user_pin.reference)
        response = self._transmit(ch, command)
        if response.sw.value == _SW_CHANNEL:  # channel 1 closed (card reset): open it again, as the Cryptolib
            ch.transmit(select_chipdoc())
            response = self._transmit(ch, command)
        try:
            status = parse_pin_counter(response.sw)
        except ValueError:
            raise StatusWordError(response.sw, "VERIFY (counter)") from None
        if status is None:
            return PinStatus(tries_left=TRIES_MAX, tries_max=TRIES_MAX)
        if status.blocked:
            self.state = CardState.BLOCKED
        elif self.state is CardState.BLOCKED:
            self.state = CardState.READY  # unblocked elsewhere (PUK)
        elif self.state is CardState.AUTHENTICATED:
            self.state = CardState.READY  # the card no longer holds our PIN
        return status

    def verify_pin(self, ch: CardChannel, pin: bytearray, *, force: bool = False) -> PinStatus:
        """VERIFY the PIN encoded as the AODF PIN object says; zeroes `pin` in every case.

        Raises:
            BridgeError: INVALID_PARAMS (not digits, or a length the AODF refuses), PIN_BLOCKED,
                PIN_LAST_TRY (one try left and not `force`; nothing sent), PIN_INCORRECT with `triesLeft`.
        """
        block = bytearray()
        try:
            self._require(Operation.VERIFY_PIN)
            if not pin or not all(0x30 <= b <= 0x39 for b in pin):
                raise BridgeError(ErrorCode.INVALID_PARAMS, "the PIN must be digits")
            obj = self.layout(ch).user_pin
            try:
                block = pin_block(pin, obj)
            except ValueError as exc:
                raise BridgeError(ErrorCode.INVALID_PARAMS, str(exc)) from None
            status = self.pin_status(ch)
            if status.blocked:
                raise BridgeError(ErrorCode.PIN_BLOCKED, triesLeft=0)
            if status.tries_left == 1 and not force:
                raise BridgeError(ErrorCode.PIN_LAST_TRY, triesLeft=1)
            if obj.path is not None:
                self._select(ch, self.layout(ch).path_of(obj.path), "PIN path", fci=False)
            response = self._transmit(ch, verify(block, obj.reference))
        finally:
            for buffer in (pin, block):
                for i in range(len(buffer)):
                    buffer[i] = 0
        sw = response.sw
        if sw.ok:
            self.state = CardState.AUTHENTICATED
            log.info("CPS4 PIN verified")
            return PinStatus(status.tries_max, status.tries_max)
        if sw.sw1 == 0x63:
            left = sw.sw2 & 0x0F
            self.state = CardState.BLOCKED if left == 0 else CardState.READY
            log.info("CPS4 PIN refused, %d tries left", left)
            raise BridgeError(ErrorCode.PIN_BLOCKED if left == 0 else ErrorCode.PIN_INCORRECT, triesLeft=left)
        if sw.value == _SW_BLOCKED:
            self.state = CardState.BLOCKED
            raise BridgeError(ErrorCode.PIN_BLOCKED, triesLeft=0)
        raise StatusWordError(sw, "VERIFY")

    def logout(self, ch: CardChannel) -> None:
        """Drop the PIN status: re-select the ChipDoc applet, then check with an empty VERIFY (see module doc)."""
        self._require(Operation.LOGOUT)
        check(ch.transmit(select_chipdoc()), "SELECT ChipDoc")
        response = ch.transmit(pin_counter(self.layout(ch).user_pin.reference))
        if response.sw.ok:
            raise BridgeError(ErrorCode.CARD_ERROR, "the card kept the PIN after re-selection: reset it")
        if self.state is CardState.AUTHENTICATED:
            self.state = CardState.READY

    # -- after the PIN
    def read_situations(self, ch: CardChannel) -> tuple[Situation, ...]:
        """The situations d'exercice, every DODF object CPS_ACTIVITY_xx_PS (gaps allowed); needs the PIN."""
        self._require(Operation.READ_SITUATIONS)
        found = []
        for obj in self.layout(ch).data_objects:
            match = _SITUATION_LABEL.fullmatch(obj.label)
            if match is not None:
                found.append((int(match.group(1)) - 1, obj.label))
        return tuple(parse_situation(self.read_object(ch, label), index) for index, label in sorted(found))

    def _prepare_key(self, ch: CardChannel, key: PrivateKeyObject) -> None:
        """Select the application DF, then the key's path if it has one: key references are local to it."""
        layout = self.layout(ch)
        self._select(ch, layout.app_path, "application", fci=False)
        if key.path is not None and key.path.path:
            self._select(ch, layout.path_of(key.path), key.label, fci=False)

    def _cds(
        self, ch: CardChannel, key: PrivateKeyObject, digest: bytes, algorithm: hashes.HashAlgorithm, scheme: Scheme
    ) -> bytes:
        reference = key.reference if key.reference is not None else 0
        self._prepare_key(ch, key)
        self._check(self._transmit(ch, mse_sign(algorithm_id(scheme, algorithm), reference)), "MSE SET DST")
        return self._check(self._transmit(ch, pso_cds(digest)), "PSO CDS")

    def sign_message(
        self, ch: CardChannel, message: bytes, algorithm: hashes.HashAlgorithm, scheme: Scheme = Scheme.PKCS1V15
    ) -> bytes:
        """Signature key: the host hashes, the card pads (PKCS#1 v1.5 or PSS) and signs (MSE 81 B6 + PSO CDS)."""
        self._require(Operation.SIGN)
        algorithm_id(scheme, algorithm)  # refuse an unsupported hash before any APDU
        h = hashes.Hash(algorithm)
        h.update(message)
        return self._cds(ch, self._key(ch, signature=True), h.finalize(), algorithm, scheme)

    def sign_digest(
        self, ch: CardChannel, digest: bytes, algorithm: hashes.HashAlgorithm, scheme: Scheme = Scheme.PKCS1V15
    ) -> bytes:
        """Authentication key: PKCS#1 v1.5 = host DigestInfo + type-1 padding + chained DECIPHER; PSS = CDS."""
        self._require(Operation.SIGN)
        key = self._key(ch, signature=False)
        if scheme is Scheme.PSS:
            algorithm_id(scheme, algorithm)
            if len(digest) != algorithm.digest_size:
                raise ValueError("digest length does not match the algorithm")
            return self._cds(ch, key, digest, algorithm, scheme)
        block = pkcs1_type1(digest_info(digest, algorithm), (key.modulus_bits or 2048) // 8)
        self._prepare_key(ch, key)
        self._check(self._transmit(ch, mse_decipher(AUTH_KEY_REF)), "MSE SET CT")
        response = Response(b"", StatusWord(0x9000))
        for link in pso_decipher(block):
            response = self._transmit(ch, link)
            if not response.sw.ok:
                break
        return self._check(response, "PSO DECIPHER")


def card_keys(runner: Runner, card: Cps4Card | None = None) -> tuple[CardRsaPrivateKey, CardRsaMessageKey]:
    """The card's (authentication, signature) keys (`card`: the session they follow; a fresh one if omitted).

    The signature key also signs RSA-PSS, with the one salt length the card computes (the hash's).
    """
    session = card if card is not None else Cps4Card()

    def sign_message_pss(message: bytes, algorithm: hashes.HashAlgorithm, salt_length: int) -> bytes:
        if salt_length != algorithm.digest_size:  # the card pads PSS with a salt as long as the hash
            raise UnsupportedAlgorithm(f"CPS4 signs PSS with a {algorithm.digest_size}-byte salt only")
        return runner(lambda ch: session.sign_message(ch, message, algorithm, Scheme.PSS))

    return card_keys_of(runner, session, generation="CPS4", sign_message_pss=sign_message_pss)
