"""A virtual CPS4 (NXP ChipDoc applet, PKCS#15) that the official ANS Cryptolib 5.2 accepts.

Judge: the Cryptolib itself (tests/integration/test_cryptolib_cps4.py lists, logs into, reads every
labelled object of, and signs with both keys of this card). Facts and where they come from
(Cryptolib 5.2 sources, ``ansforge/dops-cryptolib`` ``_sources/_old/.../opensc/src``, file:function;
digest in the project notes ``cryptolib-cps4.md``):

* ATR ``3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44``, matched byte for byte
  (``card-cps.c:_is_cps_card``, ``CPS_ATR_LIST``); T=1, so answers carry their data directly.
* The ChipDoc applet ``80 25 00 00 01 FF 01 00`` is selected on logical channel 1 with CLA ``01``
  and no MANAGE CHANNEL (``card-cps4.c:cps4_match_card``, ``_cps4_select_app``); every later APDU
  has CLA ``01``, ``11`` for the non-final links of a chain (``apdu.c:sc_transmit_apdu``). The
  recovery re-select after ``6E xx``/``6A 86`` uses P2=04 (``apdu.c:do_single_transmit``).
* EF.SN.ICC ``3F00/D003``: FCI ``6F`` with size 12, bytes 2..6 ``80 25 00 00 01``
  (``card-cps.c:_cps_read_efsnicc``); the token serial is the PAN without issuer and without its
  last byte (Luhn digit + F) (``pkcs15.c:sc_pkcs15_parse_efsnicc``).
* Files are selected by path from the MF, P1=08, P2=00, Le=00 when the FCI is wanted, case 3
  otherwise (``iso7816.c:iso7816_select_file``); the FCI must be ``6F`` (``iso7816_process_fci``).
* PKCS#15: EF.DIR, app AID ``E828BD080F8025000001FF0010`` (``card-cps4.c:cps4_get_aid_pkcs15``),
  ODF/TokenInfo/AODF/PrKDF/CDF/DODF (``pkcs15.c:sc_pkcs15_bind_internal``); see
  `bridge.sim.cps4_files`.
* PIN: ``VERIFY 01 20 00 ref`` with the PIN encoded as the AODF says (``pkcs15-pin.c:
  sc_pkcs15_verify_pin``, ``sec.c:sc_build_pin``); tries read with an empty VERIFY: ``63 Cx`` /
  ``69 83`` (``card-cps4.c:_cps4_get_pin_counter``, ``cps4_pin_cmd``).
* Signature: ``MSE 01 22 81 B6 { 91 02 alg key|80 }`` then ``PSO CDS 01 2A 9E 9A`` over the bare hash;
  algorithm ids ``0A`` SHA-1/``28`` SHA-256 PKCS#1 v1.5, ``15``/``2C`` PSS (``card-cps4.c:
  cps4_set_security_env``, ``cps4_sign``; ``cards.h CPSV4_ALG_*``; ``pkcs15-sec.c:
  sc_pkcs15_compute_signature``).
* Authentication key ``0x20`` (``internal.h CPS4_AUTH_PRIV_KEY_ID``): ``MSE 01 22 41 B8 { 83 01 20 }``
  then PSO DECIPHER ``2A 80 86`` chained, no padding-indicator byte; the card returns the raw RSA
  result of the block the host padded (``card-cps4.c:decipher``, ``pkcs15-sec.c:
  sc_is_cps4_auth_operation``). PSS with that key goes through MSE ``81 B6`` with key ``A0``.
* GET CHALLENGE ``01 84 00 00 08`` (``card-cps4.c`` RNG capability, C_GenerateRandom).

Assumptions (no public source settles them; a real card's trace would correct them here):

* ChipDoc answers SELECT P2=00 with an FCI ``6F`` (the module requires it) and gives no data to a
  case-3 SELECT. Re-selecting the ChipDoc applet drops the PIN status and the security environment
  (JavaCard applets usually reset on select): the bridge's PC/SC logout relies on it and checks it.
* The basic channel carries the CPS2ter volet, not emulated: a SELECT by AID there answers ``6A 82``,
  any other command ``6D 00``. Channel 1 is closed until a SELECT by AID opens it (other commands
  ``68 81``); a reset closes it. Channels 2 and 3: ``68 81``; any other CLA: ``6E 00``.
* PIN reference ``01``, ascii-numeric, 4 to 8 digits padded with ``FF`` to 8 bytes (AODF flag
  needs-padding): a block of another length is ``67 00``, a malformed one ``6A 80``, neither spends a
  try. The counter lives in non-volatile memory (it survives resets); ``63 C0`` on the last failure.
* Signature key reference ``01`` (MSE ``81``); PSS is MGF1 with the same hash and a salt as long as
  the hash (what TLS 1.3 and the Cryptolib's own verification use); the authentication key signs
  PSS only through CDS (PKCS#1 v1.5 goes through DECIPHER). Unknown algorithm ``6A 80``, unknown key
  ``6A 88``; PSO without a matching MSE ``69 85``; PSO or a protected read before VERIFY ``69 82``.
* CPS_DATA is free to read and needs the PIN to be written; CPS_LANG_PS, CPS_SIT_FACT and the
  CPS2TER_* objects have layouts of our own (see `bridge.sim.cps4_files`).
"""

from __future__ import annotations

import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from bridge.crypto.pki import PersonCerts, TestPki
from bridge.pcsc.apdu import Command
from bridge.sim.cardos import CardConfig, CardOS, ISOError, Reply, Transport, handles
from bridge.sim.cps3_profile import CpsProfile, issue_certificates, load_profile
from bridge.sim.cps4_files import AUTH_KEY_REF, PIN_FLAG, PIN_REF, PIN_STORED_LENGTH, SIGN_KEY_REF, build_tree
from bridge.tlv import encode_tlv

__all__ = ["ALGORITHMS", "CHIPDOC_AID", "CPS4_ATR", "DEFAULT_PROFILE", "Cps4Emulator", "create_card", "make_card"]

CPS4_ATR = bytes.fromhex("3B9B188001001225006480040100009044")
CHIPDOC_AID = bytes.fromhex("8025000001FF0100")
DEFAULT_PROFILE = "gp"
_CHAIN = 0x10
_KEY_BYTES = 256

#: MSE ``91`` algorithm id -> (hash, PSS?) (Cryptolib ``cards.h`` CPSV4_ALG_*).
ALGORITHMS: dict[int, tuple[type[hashes.HashAlgorithm], bool]] = {
    0x0A: (hashes.SHA1, False),
    0x28: (hashes.SHA256, False),
    0x15: (hashes.SHA1, True),
    0x2C: (hashes.SHA256, True),
}


class Cps4Emulator(CardOS):
    """A CPS4 described by a `CpsProfile`, holding two RSA-2048 key pairs issued by the test PKI."""

    def __init__(self, profile: CpsProfile, pki: TestPki | None = None) -> None:
        self.profile = profile
        pki = pki if pki is not None else TestPki.load_or_create()
        # Own key pairs ("cps4-" id): a CPS4 is a new card, not a copy of the same holder's CPS3.
        self.certs: PersonCerts = issue_certificates(profile, pki, f"cps4-{profile.name}")
        self._pin = profile.pin.encode("ascii")
        self.tries_max = profile.pin_tries_max
        self.tries_left = profile.pin_tries_left
        self.channel_open = False
        self._mse: tuple[str, int, int] | None = None  # (operation, algorithm id, key reference)
        config = CardConfig(atr=CPS4_ATR, transport=Transport.T1, classes=frozenset({0x00, 0x01}))
        super().__init__(config, build_tree(profile, self.certs, CPS4_ATR))

    def __repr__(self) -> str:
        return f"Cps4Emulator(profile={self.profile.name!r}, tries_left={self.tries_left})"

    def reset_volatile(self) -> None:
        """A reset closes logical channel 1 and forgets the PIN status and the security environment."""
        super().reset_volatile()
        self.channel_open = False
        self._mse = None

    def _select_applet(self) -> None:
        """(Re-)selecting ChipDoc starts the applet afresh: MF current, no PIN status, no MSE."""
        self.reset_volatile()
        self.channel_open = True

    # ---- channels
    def process(self, apdu: bytes) -> bytes:
        """Route by logical channel before the card OS sees the command (see the module's assumptions)."""
        if len(apdu) >= 4:
            cla, ins, p1 = apdu[0] & ~_CHAIN, apdu[1], apdu[2]
            select_by_name = ins == 0xA4 and p1 == 0x04
            if cla == 0x00:
                return b"\x6a\x82" if select_by_name else b"\x6d\x00"
            if cla == 0x01 and not self.channel_open and not select_by_name:
                return b"\x68\x81"
        return super().process(apdu)

    # ---- files
    @handles(0xA4)
    def select(self, cmd: Command) -> Reply:
        """SELECT: ChipDoc by AID (opens channel 1), files by path (P1=08) or FID; no data without Le."""
        if cmd.p1 == 0x04 and cmd.data == CHIPDOC_AID:
            if cmd.p2 not in (0x00, 0x04, 0x0C):
                raise ISOError(0x6A86)
            self._select_applet()
            if cmd.le is None or cmd.p2 == 0x0C:
                return Reply.ok()
            return Reply.ok(encode_tlv(0x6F, encode_tlv(0x84, CHIPDOC_AID)))
        if cmd.p1 == 0x04 and not self.channel_open:
            raise ISOError(0x6A82)  # nothing else is selectable by name on a closed channel
        reply = super().select(cmd)
        return reply if cmd.le is not None else Reply.ok()

    # ---- PIN
    @handles(0x20)
    def verify(self, cmd: Command) -> Reply:
        """VERIFY: empty -> the counter (63Cx, 9000 when verified); else the padded ASCII PIN block."""
        if cmd.p1 != 0x00:
            raise ISOError(0x6A86)
        if cmd.p2 != PIN_REF:
            raise ISOError(0x6A88)
        if self.tries_left == 0:
            raise ISOError(0x6983)
        if not cmd.data:
            if PIN_FLAG in self.security:
                return Reply.ok()
            raise ISOError(0x63C0 | self.tries_left)
        if len(cmd.data) != PIN_STORED_LENGTH:
            raise ISOError(0x6700)
        digits = cmd.data.rstrip(b"\xff")
        if not 4 <= len(digits) <= PIN_STORED_LENGTH or not all(0x30 <= b <= 0x39 for b in digits):
            raise ISOError(0x6A80)
        if hmac.compare_digest(digits, self._pin):
            self.tries_left = self.tries_max
            self.security.add(PIN_FLAG)
            return Reply.ok()
        self.tries_left -= 1
        self.security.discard(PIN_FLAG)
        raise ISOError(0x63C0 | self.tries_left)

    @handles(0x84)
    def get_challenge(self, cmd: Command) -> Reply:
        """GET CHALLENGE: Le random bytes."""
        if cmd.p1 or cmd.p2:
            raise ISOError(0x6A86)
        if cmd.le is None or cmd.data:
            raise ISOError(0x6700)
        return Reply.ok(os.urandom(cmd.le))

    # ---- security environment and key operations
    @handles(0x22)
    def manage_security_environment(self, cmd: Command) -> Reply:
        """MSE 81 B6 {91 02 alg key|80} (signature) or 41 B8 {83 01 20} (decipher with the auth key)."""
        data = cmd.data
        if (cmd.p1, cmd.p2) == (0x81, 0xB6):
            if len(data) != 4 or data[:2] != b"\x91\x02" or data[2] not in ALGORITHMS:
                raise ISOError(0x6A80)
            algorithm, key = data[2], data[3]
            if key not in (SIGN_KEY_REF | 0x80, AUTH_KEY_REF | 0x80):
                raise ISOError(0x6A88)
            if key == AUTH_KEY_REF | 0x80 and not ALGORITHMS[algorithm][1]:
                raise ISOError(0x6A80)  # PKCS#1 v1.5 with the auth key goes through DECIPHER
            self._mse = ("sign", algorithm, key & 0x7F)
            return Reply.ok()
        if (cmd.p1, cmd.p2) == (0x41, 0xB8):
            if len(data) != 3 or data[:2] != b"\x83\x01":
                raise ISOError(0x6A80)
            if data[2] != AUTH_KEY_REF:
                raise ISOError(0x6A88)
            self._mse = ("decipher", 0, AUTH_KEY_REF)
            return Reply.ok()
        raise ISOError(0x6A86)

    def _key(self, reference: int) -> rsa.RSAPrivateKey:
        return self.certs.auth.key if reference == AUTH_KEY_REF else self.certs.sign.key

    @handles(0x2A, chaining=True)
    def perform_security_operation(self, cmd: Command) -> Reply:
        """PSO COMPUTE DIGITAL SIGNATURE (9E 9A, bare hash) and PSO DECIPHER (80 86, raw RSA, chained)."""
        if (cmd.p1, cmd.p2) not in ((0x9E, 0x9A), (0x80, 0x86)):
            raise ISOError(0x6A86)
        if PIN_FLAG not in self.security:
            raise ISOError(0x6982)
        if (cmd.p1, cmd.p2) == (0x9E, 0x9A):
            return self._compute_signature(cmd.data)
        return self._decipher(cmd.data)

    def _compute_signature(self, digest: bytes) -> Reply:
        if self._mse is None or self._mse[0] != "sign":
            raise ISOError(0x6985)
        _, algorithm_id, reference = self._mse
        hash_class, pss = ALGORITHMS[algorithm_id]
        algorithm = hash_class()
        if len(digest) != algorithm.digest_size:
            raise ISOError(0x6700)
        scheme: padding.AsymmetricPadding = (
            padding.PSS(padding.MGF1(algorithm), padding.PSS.DIGEST_LENGTH) if pss else padding.PKCS1v15()
        )
        return Reply.ok(self._key(reference).sign(digest, scheme, Prehashed(algorithm)))

    def _decipher(self, block: bytes) -> Reply:
        if self._mse is None or self._mse[0] != "decipher":
            raise ISOError(0x6985)
        if len(block) != _KEY_BYTES:
            raise ISOError(0x6700)
        numbers = self.certs.auth.key.private_numbers()
        value = int.from_bytes(block, "big")
        if value >= numbers.public_numbers.n:
            raise ISOError(0x6A80)
        return Reply.ok(pow(value, numbers.d, numbers.public_numbers.n).to_bytes(_KEY_BYTES, "big"))


def create_card(profile: str = DEFAULT_PROFILE, pki: TestPki | None = None) -> Cps4Emulator:
    """A virtual CPS4 from a shipped CPx profile name (gp, gp2, last-try...) or a profile file path."""
    return Cps4Emulator(load_profile(profile), pki)


def make_card(profile: str | None = None) -> Cps4Emulator:
    """Registry factory: the named CPx profile (default "gp"); KeyError for an unknown name."""
    return create_card(profile or DEFAULT_PROFILE)
