"""MLLP framing and the ORU/MDM checks and mapping, bytes in, values or ACKs out (no socket)."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest

from bridge.feed.hl7_mapping import parse_feed_message
from bridge.feed.hl7_message import Hl7Header, Hl7Problem, build_ack, build_feeding_ack, parse_ack
from bridge.feed.mllp import MllpDecoder, MllpError, frame
from bridge.feed.outbox_model import JobKind
from tests.feed.dpi import INS, mdm, oru
from tests.feed.support import cda, unique_id

NOW = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def test_mllp_frames_split_anywhere_and_stray_bytes_are_dropped() -> None:
    stream = b"\r" + frame(b"A|1") + b"\n" + frame(b"B|2") + frame(b"C|3")
    decoder = MllpDecoder()
    out = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
    assert out == [b"A|1", b"B|2", b"C|3"]


def test_mllp_frame_over_the_limit_is_refused() -> None:
    decoder = MllpDecoder(max_size=10)
    with pytest.raises(MllpError):
        decoder.feed(b"\x0b" + b"x" * 11)


def test_oru_maps_to_xds_metadata() -> None:
    uid = unique_id(1, 10)
    request = parse_feed_message(
        oru("M1", cda(uid), flags={"DESTDMP": "Y", "MASQUE_PS": "Y", "INVISIBLE_PATIENT": "N"})
    )
    assert (request.kind, request.unique_id, request.ins, request.ins_qualified) == (JobKind.SUBMIT, uid, INS, True)
    assert request.ins_oid == "1.2.250.1.213.1.4.10"
    assert request.spec.type_code is not None and request.spec.type_code.code == "11488-4"
    assert request.spec.hidden_from_professionals and not request.spec.hidden_from_patient
    assert request.spec.content_type is not None and request.spec.content_type.code == "07"  # PV1-2 O
    assert request.header.control_id == "M1" and request.header.sending_app == "SIL"


def test_mdm_takes_its_unique_id_from_txa12_and_replacement_from_txa13() -> None:
    uid, old = unique_id(2, 10), unique_id(3, 10)
    request = parse_feed_message(mdm("M2", cda(uid), uid, event="T10", replaces=old))
    assert (request.kind, request.unique_id, request.spec.replaces) == (JobKind.REPLACE, uid, old)
    assert request.spec.content_type is not None and request.spec.content_type.code == "03"  # PV1-2 I


def test_unqualified_identity_is_read_from_pid32() -> None:
    assert not parse_feed_message(oru("M3", cda(unique_id(4, 10)), qualified=False)).ins_qualified


@pytest.mark.parametrize(
    ("message", "code", "where"),
    [
        (oru("B1", cda(unique_id(5, 10)), version="2.6"), "203", "MSH^1^12"),
        (oru("B2", cda(unique_id(5, 10)), ins="0000"), "102", "PID^1^3"),
        (oru("B3", b"<not-a-cda/>"), "102", "OBX^1^5"),
        (b"not HL7 at all", "100", "MSH"),
        (mdm("B5", cda(unique_id(5, 10)), ""), "101", "TXA^1^12"),
        (mdm("B6", cda(unique_id(5, 10)), unique_id(6, 10)), "207", "TXA^1^12"),
        (oru("B7", cda(unique_id(5, 10))).replace(b"ORC|NW", b"ORC|CA"), "207", "ORC^1^1"),
        (oru("B8", cda(unique_id(5, 10))).replace(b"ORU^R01", b"ADT^A01"), "200", "MSH^1^9"),
        (oru("B9", cda(unique_id(5, 10))).replace(b"1.2.250.1.213.1.4.10", b"1.2.3"), "101", "PID^1^3"),
        (oru("B10", cda(unique_id(5, 10))).replace(b"||||||F\r", b"||||||X\r", 1), "103", "OBX^1^11"),
    ],
)
def test_malformed_messages_are_refused_with_the_field_to_fix(message: bytes, code: str, where: str) -> None:
    with pytest.raises(Hl7Problem) as caught:
        parse_feed_message(message)
    assert (caught.value.ack_code, caught.value.error_code, caught.value.location) == ("AE", code, where)
    assert caught.value.reason_fr


def test_ack_swaps_sender_and_receiver_and_names_the_error() -> None:
    header = Hl7Header("M9", "ORU", "R01", "2.5", "P", "SIL", "CHU_X", "PFI", "CHU_X")
    problem = Hl7Problem("AE", "203", "Unsupported version id", "MSH^1^12", "Version HL7 attendue : 2.5 pour ORU.")
    ack = hl7.parse(build_ack(header, "AE", "A1", NOW, problem).decode())
    assert str(ack.extract_field("MSH", 1, 3)) == "PFI" and str(ack.extract_field("MSH", 1, 5)) == "SIL"
    assert str(ack.segment("MSH")[9]) == "ACK^R01^ACK"
    assert parse_ack(build_ack(header, "AE", "A1", NOW, problem)) == ("AE", "M9")
    assert str(ack.extract_field("ERR", 1, 3, 1, 1)) == "203" and str(ack.segment("ERR")[2]) == "MSH^1^12"
    assert "Version HL7" in str(ack.extract_field("ERR", 1, 8))


def test_feeding_acknowledgement_is_a_zam_z01() -> None:
    header = Hl7Header("M9", "MDM", "T02", "2.6", "P", "SIL", "CHU_X", "PFI", "CHU_X")
    ok = hl7.parse(build_feeding_ack(header, ok=True, control_id="Z1", now=NOW).decode())
    assert str(ok.segment("MSH")[9]) == "ZAM^Z01^ZAM_Z01" and str(ok.extract_field("MSH", 1, 12)) == "2.6"
    assert str(ok.extract_field("OBX", 1, 3, 1, 1)) == "ACK_RECEPTION_DMP"
    assert (str(ok.extract_field("OBX", 1, 4)), str(ok.extract_field("OBX", 1, 5, 1, 1))) == ("M9", "Y")
    ko = hl7.parse(
        build_feeding_ack(header, ok=False, control_id="Z2", now=NOW, dmp_code="DMPClosed", reason_fr="Fermé").decode()
    )
    assert str(ko.extract_field("OBX", 1, 5, 1, 1)) == "N"
    assert (
        str(ko.extract_field("ERR", 1, 5, 1, 1)) == "DMPClosed"
        and str(ko.extract_field("ERR", 1, 5, 1, 3)) == "DMP_ERROR_CODE"
    )
