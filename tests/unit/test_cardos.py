"""The ISO 7816-4 card OS, bytes in and bytes out, and through the real T=0 transport engine."""

from __future__ import annotations

import pytest

from bridge.pcsc.apdu import Command
from bridge.sim.cardos import (
    DF,
    NEVER,
    CardConfig,
    CardOS,
    ISOError,
    RecordEF,
    Reply,
    TransparentEF,
    Transport,
    handles,
    requires,
)
from bridge.sim.direct import DirectChannel
from bridge.tlv import parse_tlv

ATR = bytes.fromhex("3BAC00402A001225006480000310009000")
AID = bytes.fromhex("E828BD080F8025000001FF0010")
SN = bytes.fromhex("5A0A80250000019921384 50F".replace(" ", ""))
BIG = bytes(range(256)) * 2 + b"END"


def tree() -> DF:
    mf = DF(fid=0x3F00)
    mf.add(TransparentEF(fid=0xD003, sfi=3, data=SN))
    mf.add(TransparentEF(fid=0x2F00, data=b""))
    app = mf.add(DF(fid=0x0001, name=AID))
    app.add(TransparentEF(fid=0x7001, sfi=1, data=BIG))
    app.add(RecordEF(fid=0x7002, sfi=2, records=[b"one", b"second"]))
    app.add(TransparentEF(fid=0xD120, data=b"secret", read=requires("pin1")))
    app.add(TransparentEF(fid=0xD121, data=b"nobody", read=NEVER))
    return mf


class PinCard(CardOS):
    """A subclass as the CPS emulator writes one: a VERIFY handler and a chained command."""

    @handles(0x20)
    def verify(self, cmd: Command) -> Reply:
        if cmd.p1 != 0 or cmd.p2 != 0x01:
            raise ISOError(0x6A86)
        if cmd.data != b"1234":
            raise ISOError(0x63C2)
        self.security.add("pin1")
        return Reply.ok()

    @handles(0xCA)
    def get_data(self, cmd: Command) -> Reply:
        return Reply.ok(BIG)

    @handles(0x2A, chaining=True)
    def pso(self, cmd: Command) -> Reply:
        return Reply.ok(len(cmd.data).to_bytes(2, "big") + cmd.data[-2:])


def card(transport: Transport = Transport.T0, **kw: object) -> PinCard:
    c = PinCard(CardConfig(ATR, transport, **kw), tree())  # type: ignore[arg-type]
    c.power_on()
    return c


def x(c: CardOS, apdu: str) -> str:
    return c.process(bytes.fromhex(apdu.replace(" ", ""))).hex().upper()


def test_t0_select_by_path_as_the_real_cps3_trace() -> None:
    c = card()
    sw = x(c, "00 A4 09 04 04 3F00 D003")
    assert sw.startswith("61")
    n = int(sw[2:], 16)
    fcp = x(c, f"00 C0 00 00 {n:02X}")
    assert fcp.endswith("9000")
    (t,) = parse_tlv(bytes.fromhex(fcp[:-4]))
    assert t.tag == 0x62
    assert t.find(0x80).value == b"\x00\x0c"  # type: ignore[union-attr]
    assert t.find(0x83).value == b"\xd0\x03"  # type: ignore[union-attr]
    assert t.find(0x82).value == b"\x01"  # type: ignore[union-attr]
    assert x(c, "00 B0 00 00 0C") == SN.hex().upper() + "9000"


def test_t0_get_response_wrong_le_then_partial() -> None:
    c = card()
    assert x(c, "00 A4 04 04 0D" + AID.hex()).startswith("61")
    x(c, "00 A4 04 04 0D" + AID.hex())
    full = c.process(bytes.fromhex("00C0000000"))  # Le 256 > available
    assert full[0] == 0x6C
    n = full[1]
    part = x(c, "00 C0 00 00 05")
    assert part.endswith(f"61{n - 5:02X}")
    rest = x(c, f"00 C0 00 00 {n - 5:02X}")
    assert rest.endswith("9000")
    assert x(c, "00 C0 00 00 05") == "6985"  # nothing pending any more


def test_get_response_must_follow_immediately() -> None:
    c = card()
    assert x(c, "00 A4 00 04 02 D003").startswith("61")
    assert x(c, "00 B0 00 00 01") == "5A9000"
    assert x(c, "00 C0 00 00 10") == "6985"


def test_t0_read_binary_wrong_le_answers_6c() -> None:
    c = card()
    assert x(c, "00 A4 00 0C 02 D003") == "9000"
    assert x(c, "00 B0 00 00 00") == "6C0C"
    assert x(c, "00 B0 00 0A 05") == "6C02"
    assert x(c, "00 B0 00 0A 02") == SN[10:].hex().upper() + "9000"
    assert x(c, "00 B0 00 0C 01") == "6B00"
    assert x(c, "00 B0 00 10 01") == "6B00"


def test_read_binary_by_sfi_and_high_offset() -> None:
    c = card()
    assert x(c, "00 B0 83 00 02") == "5A0A9000"  # SFI 3 in the MF
    assert x(c, "00 B0 81 00 02") == "6A82"  # SFI 1 lives in the application DF
    assert x(c, "00 A4 04 0C 0D" + AID.hex()) == "9000"
    assert x(c, "00 B0 81 10 02") == "10119000"
    assert x(c, "00 B0 02 00 03") == "454E449000"  # offset 512 of the now current EF
    assert x(c, "00 B0 02 03 01") == "6B00"
    assert x(c, "00 B0 C1 00 01") == "6A86"  # bits 7-6 of an SFI P1 must be 0


def test_status_words() -> None:
    c = card()
    assert x(c, "00 B0 00 00 01") == "6986"  # no current EF
    assert x(c, "00 A4 00 0C 02 1234") == "6A82"
    assert x(c, "00 A4 00 0C 03 123456") == "6A87"
    assert x(c, "00 A4 05 0C") == "6A86"
    assert x(c, "00 A4 00 08 02 D003") == "6A86"
    assert x(c, "00 FE 00 00") == "6D00"
    assert x(c, "80 A4 00 0C 02 D003") == "6E00"
    assert x(c, "01 A4 00 0C 02 D003") == "6881"
    assert x(c, "00 A4 00") == "6700"
    assert x(c, "00 A4 00 0C 05 D003") == "6700"  # Lc longer than the data
    assert x(c, "00 B0 00 00") == "6700"  # READ BINARY needs Le
    assert x(c, "10 B0 00 00 01") == "6884"  # chaining refused for READ BINARY
    assert x(c, "00 A4 08 0C 04 0001 7002") == "9000"
    assert x(c, "00 B0 00 00 01") == "6981"  # record EF
    assert x(c, "00 B2 01 04 03") == "6F6E659000"
    assert x(c, "00 B2 01 0C 03") == "6981"  # SFI 1 is a transparent EF


def test_read_record() -> None:
    c = card()
    assert x(c, "00 A4 08 0C 02 0001") == "9000"
    assert x(c, "00 B2 01 14 03") == "6F6E659000"  # SFI 2, record 1
    assert x(c, "00 B2 02 14 00") == "6C06"
    assert x(c, "00 B2 02 04 06") == "7365636F6E649000"  # current EF now
    assert x(c, "00 B2 03 04 01") == "6A83"
    assert x(c, "00 B2 00 04 01") == "6A86"
    assert x(c, "00 B2 01 05 01") == "6A86"  # only mode 04
    assert x(c, "00 B2 01 0C 01") == "6981"  # SFI 1 is transparent


def test_access_condition_and_volatile_state() -> None:
    c = card()
    assert x(c, "00 A4 08 0C 04 0001 D120") == "9000"
    assert x(c, "00 B0 00 00 06") == "6982"
    assert x(c, "00 20 00 01 04 31323335") == "63C2"
    assert x(c, "00 20 00 01 04 31323334") == "9000"
    assert x(c, "00 B0 00 00 06") == b"secret".hex().upper() + "9000"
    assert x(c, "00 A4 02 0C 02 D121") == "9000"
    assert x(c, "00 B0 00 00 01") == "6982"
    c.reset()
    assert c.security == set() and c.current_ef is None and c.current_df is c.mf
    assert x(c, "00 A4 09 0C 04 0001 D120") == "9000"  # P1=09 from the MF (current DF after reset)
    assert x(c, "00 B0 00 00 06") == "6982"


def test_select_variants_and_p2_policy() -> None:
    c = card()
    assert x(c, "00 A4 08 0C 02 0001") == "9000"
    assert x(c, "00 A4 00 0C") == "9000" and c.current_df is c.mf  # P1=00 with no data: the MF
    assert x(c, "00 A4 00 0C 02 3F00") == "9000"
    assert x(c, "00 A4 01 0C 02 0001") == "9000"  # child DF
    assert x(c, "00 A4 02 0C 02 7002") == "9000"  # child EF
    assert x(c, "00 A4 02 0C 02 0001") == "6A82"  # P1=02 wants an EF
    assert x(c, "00 A4 03 0C") == "9000" and c.current_df is c.mf  # parent of the application DF
    assert x(c, "00 A4 04 0C 06" + AID[:6].hex()) == "9000"  # partial DF name
    assert x(c, "00 A4 04 0C 03 A00000") == "6A82"
    assert x(c, "00 A4 00 0C 02 D003") == "9000"  # sibling of the current DF (the MF's child)
    fci = x(c, "00 A4 04 00 0D" + AID.hex() + "00")
    n = int(fci[2:], 16)
    body = bytes.fromhex(x(c, f"00 C0 00 00 {n:02X}")[:-4])
    (t,) = parse_tlv(body)
    assert t.tag == 0x6F and t.find(0x84).value == AID and t.find(0x82).value == b"\x38"  # type: ignore[union-attr]
    cps = card(select_p2=frozenset({0x04, 0x0C}))
    assert x(cps, "00 A4 04 00 0D" + AID.hex()) == "6A86"  # the real CPS3 refuses P2=00


def test_t1_answers_directly() -> None:
    c = card(Transport.T1)
    answer = x(c, "00 A4 00 04 02 D003 00")
    assert answer.startswith("62") and answer.endswith("9000")
    assert x(c, "00 A4 00 04 02 D003").startswith("62")  # no Le: answered anyway
    assert x(c, "00 B0 00 00 00") == SN.hex().upper() + "9000"  # Le is a maximum in T=1
    assert x(c, "00 B0 00 00 04") == SN[:4].hex().upper() + "9000"
    assert x(c, "00 A4 00 04 02 D003 05") == f"6C{len(answer) // 2 - 2:02X}"  # Le shorter than the FCP
    assert x(c, "00 A4 09 0C 04 0001 7002") == "9000"
    assert x(c, "00 B2 02 04 02") == "6C06"


def test_chaining_reassembles_for_a_chaining_handler() -> None:
    c = card(Transport.T1)
    data = bytes(range(256)) + b"\xaa"
    assert x(c, "10 2A 80 86 FF" + data[:255].hex()) == "9000"
    assert x(c, "00 2A 80 86 02" + data[255:].hex() + "00") == "0101FFAA9000"


@pytest.mark.parametrize("transport", list(Transport))
def test_long_response_over_256_bytes(transport: Transport) -> None:
    c = card(transport)
    assert x(c, "00 CA 01 00 00") == BIG[:256].hex().upper() + "6100"
    assert x(c, "00 C0 00 00 00") == BIG[256:512].hex().upper() + "6103"
    assert x(c, "00 C0 00 00 00") == "6C03"
    assert x(c, "00 C0 00 00 03") == "454E449000"
    r = DirectChannel(c).transmit(Command(0x00, 0xCA, 0x01, 0x00, le=256))
    assert r.sw.ok and r.data == BIG


def test_t1_extended_le() -> None:
    c = card(Transport.T1)
    assert x(c, "00 A4 08 0C 04 0001 7001") == "9000"
    raw = c.process(Command(0x00, 0xB0, 0, 0, le=600, extended=True).to_bytes())
    assert raw == BIG + b"\x90\x00"


def test_direct_channel_runs_the_transport_engine() -> None:
    c = card()
    ch = DirectChannel(c)
    assert ch.atr == ATR
    r = ch.transmit(Command(0x00, 0xA4, 0x09, 0x04, bytes.fromhex("3F00D003")))
    assert r.sw.ok and r.data[0] == 0x62
    assert [t[0][1] for t in ch.trace] == [0xA4, 0xC0]
    r = ch.transmit(Command(0x00, 0xB0, 0x00, 0x00, le=256))
    assert r.sw.ok and r.data == SN  # 6C0C then re-sent with Le=0C by the engine
    assert ch.trace[-2][1] == b"\x6c\x0c"
    r = ch.transmit(Command(0x00, 0x20, 0x00, 0x01, b"1234"))
    assert r.sw.ok and "pin1" in c.security


def test_dispatch_table_is_per_class() -> None:
    plain = CardOS(CardConfig(ATR), tree())
    assert x(plain, "00 20 00 01 04 31323334") == "6D00"
    assert x(plain, "00 A4 00 0C 02 D003") == "9000"

    class Override(PinCard):
        @handles(0xB0)
        def read_binary(self, cmd: Command) -> Reply:
            raise ISOError(0x6A81)

    o = Override(CardConfig(ATR), tree())
    assert x(o, "00 B0 83 00 01") == "6A81"
    assert x(o, "00 20 00 01 04 31323334") == "9000"


def test_tree_rules() -> None:
    mf = DF(fid=0x3F00)
    mf.add(TransparentEF(fid=0x0101))
    with pytest.raises(ValueError):
        mf.add(TransparentEF(fid=0x0101))
    with pytest.raises(ValueError):
        TransparentEF(sfi=31)
    with pytest.raises(ValueError):
        CardOS(CardConfig(ATR), DF(fid=0x0001))


def test_override_by_name_and_data_with_a_warning_sw() -> None:
    class Audited(CardOS):
        selected: list[int]

        def reset_volatile(self) -> None:
            super().reset_volatile()
            self.selected = []

        def select(self, cmd: Command) -> Reply:  # same name: keeps INS A4 without a new decorator
            reply = super().select(cmd)
            self.selected.append(int.from_bytes(cmd.data[-2:], "big"))
            return reply

        @handles(0xCA)
        def get_data(self, cmd: Command) -> Reply:
            return Reply(b"\x01\x02", 0x6282)

    c = Audited(CardConfig(ATR), tree())
    assert x(c, "00 A4 00 0C 02 D003") == "9000" and c.selected == [0xD003]
    c.power_off()
    assert c.selected == []
    assert x(c, "00 CA 00 00 02") == "01026282"
    assert x(c, "00 CA 00 00 05 AABBCCDDEE") == "6102"
    assert x(c, "00 C0 00 00 02") == "01026282"
