"""A virtual CPS3 card (IAS-ECC volet) on the sandbox card OS, with real RSA-2048 keys from the test PKI.

Behaviour follows cards.md §1.3-1.6: the CPS3 contact ATR (T=0: data comes back through 61xx and
GET RESPONSE), SELECT by path with P2=04 (FCP) or 0C only (P2=00 -> 6A86), EF.SN.ICC with the ANS
issuer, the data objects in the layout assumed by `bridge.cards.cps_data`, the PIN as the CHV SDO
class 1 reference 1 (GET DATA -> 9A max / 9B remaining, from the MF), VERIFY decrementing the counter
(63Cx) and blocking (6983), situations and key operations refused with 6982 before VERIFY, MSE SET
AT/HT/DST, INTERNAL AUTHENTICATE (PKCS#1 v1.5 padding of the DigestInfo received) with key 0x82, and
PSO HASH (the card finishes SHA-256/SHA-1 from the intermediate state) + PSO CDS with key 0x81.
The PIN counter survives resets and power cycles (it is the card's non-volatile memory); the PIN's
verified status does not. CPS, CPE, CPF and CPA cards differ by their data only.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import NoDigestInfo, Prehashed

from bridge.crypto.pki import PersonCerts, TestPki
from bridge.crypto.sha256_state import MdState, Sha1State, Sha256State
from bridge.pcsc.apdu import Command
from bridge.sim import pkcs15_files as p15
from bridge.sim.cardos import (
    DF,
    MF_FID,
    CardConfig,
    CardOS,
    ISOError,
    Reply,
    TransparentEF,
    Transport,
    handles,
    requires,
)
from bridge.sim.cps2ter_volet import Cps2terVolet
from bridge.sim.cps3_profile import (
    CpsProfile,
    encode_id_card,
    encode_info_ps,
    encode_lang_ps,
    encode_name_ps,
    encode_sit_fact,
    encode_situation,
    encode_sn_icc,
    issue_certificates,
    load_profile,
)
from bridge.tlv import TlvError, encode_tlv, parse_tlv

__all__ = ["CPS3_ATR", "DEFAULT_PROFILE", "Cps3Emulator", "create_card", "make_card"]

CPS3_ATR = bytes.fromhex("3BAC00402A001225006480000310009000")
DEFAULT_PROFILE = "gp"
IAS_AID = bytes.fromhex("E828BD080F8025000001FF0010")
_PIN_FLAG = "pin"
_PIN_REF = 0x01
_KEY_SIGN, _KEY_AUTH = 0x81, 0x82
_HASHES: dict[int, type[MdState]] = {0x10: Sha1State, 0x40: Sha256State}
_SIGN_ALGOS = {0x12: 0x10, 0x42: 0x40}  # RSA PKCS#1 + hash -> the hash algorithm reference
_CHV_ACL = bytes.fromhex("F3000013FF00")  # as listed by iasecc-tool on a CPx card
_MAX_AUTH_INPUT = 102  # "at most 40 % of the modulus" (cards.md §1.6 A), for 2048 bits
# PKCS#15 layout. The Cryptolib needs EF.DIR with an absolute path (51) to the application DF; the
# directory files' FIDs other than AODF 7001 and CDF 7005 (cards.md §1.3) and the data objects' FIDs
# are this project's choice (D107 for CPS_DATA: the Cryptolib never caches 0001/D107).
_APP_PATH = bytes.fromhex("3F000001")
_AUTH_ID = b"\x01"
_KEY_ID_AUTH, _KEY_ID_SIGN = b"\x01", b"\x02"
_CPS_DATA_SIZE = 64
# EF_ACTUA: 'EC { 81 start, 82 end }' BCD YYYYMMDDhhmmss; the Cryptolib clears its cache when they change.
_EF_ACTUA = bytes.fromhex("EC12810720240101000000820720240101000100")


@dataclass
class _Computed:
    hash_algo: int
    digest: bytes


class Cps3Emulator(CardOS):
    """A CPS3 described by a `CpsProfile`, holding the two key pairs issued by the test PKI."""

    def __init__(self, profile: CpsProfile, pki: TestPki | None = None) -> None:
        self.profile = profile
        pki = pki if pki is not None else TestPki.load_or_create()
        self.certs: PersonCerts = issue_certificates(profile, pki, f"cps-{profile.name}")
        self._pin = profile.pin.encode("ascii")
        self.tries_max = profile.pin_tries_max
        self.tries_left = profile.pin_tries_left
        self._mse: dict[int, dict[int, int]] = {}
        self._computed: _Computed | None = None
        config = CardConfig(atr=CPS3_ATR, transport=Transport.T0, select_p2=frozenset({0x04, 0x0C}))
        self.cps2ter = Cps2terVolet.for_card(
            encode_sit_fact(profile), {sit.slot: encode_situation(sit) for sit in profile.situations}
        )
        super().__init__(config, self._build_tree())

    def process(self, apdu: bytes) -> bytes:
        """CLA A0 goes to the CPS2ter volet; everything else to the IAS-ECC card OS."""
        if apdu[:1] == b"\xa0":
            return self.cps2ter.process(apdu, _PIN_FLAG in self.security)
        return super().process(apdu)

    def __repr__(self) -> str:
        return f"Cps3Emulator(profile={self.profile.name!r}, tries_left={self.tries_left})"

    def _build_tree(self) -> DF:
        p = self.profile
        auth_cert = self.certs.auth.certificate
        mf = DF(fid=MF_FID)
        mf.add(TransparentEF(fid=0xD003, data=encode_sn_icc(p.card_number)))
        mf.add(TransparentEF(fid=0x2F00, data=p15.dir_record(IAS_AID, "CPS", _APP_PATH)))
        mf.add(TransparentEF(fid=0xD010, data=_EF_ACTUA))
        ias = mf.add(DF(fid=0x0001, name=IAS_AID))
        validity = (auth_cert.not_valid_before_utc.date(), auth_cert.not_valid_after_utc.date())
        public = {
            "CPS_DATA": (0xD107, bytes(_CPS_DATA_SIZE)),
            "CPS_ID_CARD": (0xD001, encode_id_card(p.card_type, p.card_number, *validity)),
            "CPS_NAME_PS": (0xD002, encode_name_ps(p.holder)),
            "CPS_LANG_PS": (0xD005, encode_lang_ps()),
            "CPS_INFO_PS": (0xD004, encode_info_ps(p.holder, p.profession_code, p.specialty_code)),
        }
        objects = [
            p15.Data(label, _APP_PATH + fid.to_bytes(2, "big"), modifiable=label == "CPS_DATA", application="CPS")
            for label, (fid, _data) in public.items()
        ]
        for fid, data in public.values():
            ias.add(TransparentEF(fid=fid, data=data))
        for sit in p.situations:
            fid = 0xD120 + sit.slot
            ias.add(TransparentEF(fid=fid, data=encode_situation(sit), read=requires(_PIN_FLAG)))
            objects.append(
                p15.Data(
                    f"CPS_ACTIVITY_{sit.slot + 1:02d}_PS",
                    _APP_PATH + fid.to_bytes(2, "big"),
                    private=True,
                    auth_id=_AUTH_ID,
                    application="CPS",
                )
            )
        for fid, issued in ((0xC000, self.certs.auth), (0xC001, self.certs.sign)):
            ias.add(TransparentEF(fid=fid, data=issued.certificate.public_bytes(serialization.Encoding.DER)))
        # Labels of the keys and certificates: ours (no public source gives a real CPS3's).
        keys = [
            p15.Key(
                "CPS_PRIV_AUT",
                _KEY_ID_AUTH,
                (p15.KEY_USAGE_DECRYPT, p15.KEY_USAGE_SIGN),
                _KEY_AUTH,
                2048,
                _AUTH_ID,
                _APP_PATH,
            ),
            p15.Key(
                "CPS_PRIV_SIG", _KEY_ID_SIGN, (p15.KEY_USAGE_NON_REPUDIATION,), _KEY_SIGN, 2048, _AUTH_ID, _APP_PATH
            ),
        ]
        certs = [
            p15.Cert("CPS_CERT_AUT", _KEY_ID_AUTH, _APP_PATH + b"\xc0\x00"),
            p15.Cert("CPS_CERT_SIG", _KEY_ID_SIGN, _APP_PATH + b"\xc0\x01"),
        ]
        pin = p15.Pin("Code porteur de la carte CPX", _AUTH_ID, _PIN_REF, 4, 8, 8)
        directory = {
            0x5031: p15.odf([(0xA0, b"\x70\x02"), (0xA4, b"\x70\x05"), (0xA7, b"\x70\x06"), (0xA8, b"\x70\x01")]),
            0x5032: p15.token_info(bytes.fromhex(p.card_number), "ANS", f"CPS3 {p.holder.last_name}"[:32], (1,)),
            0x7001: p15.aodf([pin]),
            0x7002: p15.prkdf(keys),
            0x7005: p15.cdf(certs),
            0x7006: p15.dodf(objects),
        }
        for fid, data in directory.items():
            ias.add(TransparentEF(fid=fid, data=data))
        return mf

    def reset_volatile(self) -> None:
        """A reset forgets the PIN status, the security environment and any computed hash."""
        super().reset_volatile()
        if hasattr(self, "cps2ter"):
            self.cps2ter.reset()
        self._mse = {}
        self._computed = None

    # ---- PIN
    @handles(0x20)
    def verify(self, cmd: Command) -> Reply:
        """VERIFY: P1=00 check (empty data: ask the counter), P1=FF reset the verified status."""
        if cmd.p2 != _PIN_REF:
            raise ISOError(0x6A88)
        if cmd.p1 == 0xFF:
            self.security.discard(_PIN_FLAG)
            return Reply.ok()
        if cmd.p1 != 0x00:
            raise ISOError(0x6A86)
        if self.tries_left == 0:
            raise ISOError(0x6983)
        if not cmd.data:
            if _PIN_FLAG in self.security:
                return Reply.ok()
            raise ISOError(0x63C0 | self.tries_left)
        if hmac.compare_digest(cmd.data, self._pin):
            self.tries_left = self.tries_max
            self.security.add(_PIN_FLAG)
            return Reply.ok()
        self.tries_left -= 1
        self.security.discard(_PIN_FLAG)
        raise ISOError(0x63C0 | self.tries_left)

    @handles(0xCB)
    def get_data(self, cmd: Command) -> Reply:
        """GET DATA of the CHV SDO (4D { 70 { BF81 01 ... } }), from the MF as the ANS driver does it."""
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise ISOError(0x6A86)
        try:
            header = parse_tlv(cmd.data, nested=False)
            inner = parse_tlv(header[0].value, nested=False) if header and header[0].tag == 0x4D else []
            sdo = parse_tlv(inner[0].value, nested=False) if inner and inner[0].tag == 0x70 else []
        except TlvError:
            raise ISOError(0x6A80) from None
        if not sdo or sdo[0].tag != 0xBF8100 | _PIN_REF or self.current_df is not self.mf:
            raise ISOError(0x6A88)
        # Nesting as in the real trace (cards.md §1.5): 70 { BF8101 { A0 { 9A, 9B, A1 { 8C acl } } } }
        counters = encode_tlv(0x9A, bytes((self.tries_max,))) + encode_tlv(0x9B, bytes((self.tries_left,)))
        body = encode_tlv(0xA0, counters + encode_tlv(0xA1, encode_tlv(0x8C, _CHV_ACL)))
        return Reply.ok(encode_tlv(0x70, encode_tlv(0xBF8100 | _PIN_REF, body)))

    # ---- security environment and key operations
    @handles(0x22)
    def manage_security_environment(self, cmd: Command) -> Reply:
        """MSE SET (P1=41) of an AT (A4), HT (AA) or DST (B6) template: 80 algorithm, 84 key reference."""
        if cmd.p1 != 0x41 or cmd.p2 not in (0xA4, 0xAA, 0xB6):
            raise ISOError(0x6A86)
        try:
            crt = {t.tag: int.from_bytes(t.value, "big") for t in parse_tlv(cmd.data, nested=False)}
        except TlvError:
            raise ISOError(0x6A80) from None
        valid = {
            0xA4: crt.get(0x80) == 0x02 and crt.get(0x84) == _KEY_AUTH,
            0xAA: crt.get(0x80) in _HASHES and 0x84 not in crt,
            0xB6: crt.get(0x80) in _SIGN_ALGOS and crt.get(0x84) == _KEY_SIGN,
        }[cmd.p2]
        if not valid:
            raise ISOError(0x6A80)
        self._mse[cmd.p2] = crt
        if cmd.p2 == 0xAA:
            self._computed = None
        return Reply.ok()

    @handles(0x88)
    def internal_authenticate(self, cmd: Command) -> Reply:
        """INTERNAL AUTHENTICATE: PKCS#1 v1.5 type-1 padding of the data received (a DigestInfo), key 0x82."""
        if _PIN_FLAG not in self.security:
            raise ISOError(0x6982)
        if self._mse.get(0xA4) is None:
            raise ISOError(0x6985)
        if not cmd.data or len(cmd.data) > _MAX_AUTH_INPUT:
            raise ISOError(0x6700)
        return Reply.ok(self.certs.auth.key.sign(cmd.data, padding.PKCS1v15(), NoDigestInfo()))

    @handles(0x2A)
    def perform_security_operation(self, cmd: Command) -> Reply:
        """PSO HASH (90 A0) and PSO COMPUTE DIGITAL SIGNATURE (9E 9A)."""
        if (cmd.p1, cmd.p2) == (0x90, 0xA0):
            return self._pso_hash(cmd)
        if (cmd.p1, cmd.p2) == (0x9E, 0x9A):
            return self._pso_cds(cmd)
        raise ISOError(0x6A86)

    def _pso_hash(self, cmd: Command) -> Reply:
        ht = self._mse.get(0xAA)
        if ht is None:
            raise ISOError(0x6985)
        md_class = _HASHES[ht[0x80]]
        try:
            fields = {t.tag: t.value for t in parse_tlv(cmd.data, nested=False)}
        except TlvError:
            raise ISOError(0x6A80) from None
        intermediate, rest = fields.get(0x90), fields.get(0x80)
        if intermediate is None or rest is None or len(rest) > 64:
            raise ISOError(0x6A80)
        if intermediate:
            if len(intermediate) != md_class.digest_size + 8 or not rest:
                raise ISOError(0x6A80)
            bits = int.from_bytes(intermediate[-8:], "big")
            try:
                md = md_class.from_state(intermediate[:-8], bits)
            except ValueError:
                raise ISOError(0x6A80) from None
        else:
            md = md_class()
        md.update(rest)
        self._computed = _Computed(ht[0x80], md.digest())
        return Reply.ok()

    def _pso_cds(self, cmd: Command) -> Reply:
        if _PIN_FLAG not in self.security:
            raise ISOError(0x6982)
        dst = self._mse.get(0xB6)
        if dst is None:
            raise ISOError(0x6985)
        if cmd.data:  # the host hashed everything (the Cryptolib's CKM_RSA_PKCS on this key)
            hash_algo = _SIGN_ALGOS[dst[0x80]]
            if len(cmd.data) != _HASHES[hash_algo].digest_size:
                raise ISOError(0x6700)
            computed = _Computed(hash_algo, cmd.data)
        else:
            if self._computed is None or _SIGN_ALGOS[dst[0x80]] != self._computed.hash_algo:
                raise ISOError(0x6985)
            computed = self._computed
        self._computed = None  # one signature per hash
        algorithm: hashes.HashAlgorithm = hashes.SHA256() if computed.hash_algo == 0x40 else hashes.SHA1()
        return Reply.ok(self.certs.sign.key.sign(computed.digest, padding.PKCS1v15(), Prehashed(algorithm)))


def create_card(profile: str = DEFAULT_PROFILE, pki: TestPki | None = None) -> Cps3Emulator:
    """A virtual CPx card from a shipped profile name (gp, gp2, secretary-cpe...) or a profile file path.

    The keys and certificates come from `pki` (default: the per-user test PKI, created on first use).
    """
    return Cps3Emulator(load_profile(profile), pki)


def make_card(profile: str | None = None) -> Cps3Emulator:
    """Registry factory: the named profile (default "gp"); KeyError for an unknown name."""
    return create_card(profile or DEFAULT_PROFILE)
