"""A DPI as a hospital's would be, for the tests: it builds ORU^R01 / MDM^T02 messages as the ANS guide
profiles them, sends them over MLLP and reads the ACK with the `hl7` library, and it listens for the
bridge's feeding acknowledgements (ZAM^Z01), answering each with an ACK AA."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable

import hl7

from bridge.feed.mllp import MllpDecoder, frame

__all__ = ["DpiAckServer", "mdm", "oru", "send"]

INS = "178037511501201"
INS_OID = "1.2.250.1.213.1.4.10"


def _pid(ins: str, qualified: bool) -> str:
    fields = ["PID"] + [""] * 32
    fields[3] = f"IPP123^^^CHU&1.2.250.1.999.1&ISO^PI~{ins}^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS"
    fields[5], fields[7], fields[8] = "MARTIN^JEAN^^^^^L", "19780314", "M"
    fields[32] = "VALI" if qualified else "PROV"  # identity reliability (PAM France): VALI = qualified
    return "|".join(fields)


def _obx_meta(flags: dict[str, str]) -> Iterable[str]:
    for n, (code, value) in enumerate(flags.items(), start=2):
        yield f"OBX|{n}|CE|{code}^{code}^MetaDMPMSS||{value}^^expandedYes-NoIndicator||||||F"


def oru(
    control_id: str,
    document: bytes,
    *,
    status: str = "F",
    ins: str = INS,
    qualified: bool = True,
    flags: dict[str, str] | None = None,
    version: str = "2.5",
    subtype: str = "XML",
) -> bytes:
    """An ORU^R01^ORU_R01 carrying `document` (a CDA) in its first OBX."""
    orc = {"F": "NW", "C": "RO", "D": "CA"}[status]
    segments = [
        f"MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|20261207103000||ORU^R01^ORU_R01|{control_id}|P|{version}|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",  # noqa: E501 (a wire sample)
        _pid(ins, qualified),
        "PV1|1|O",
        f"ORC|{orc}",
        "OBR|1|||11488-4^Compte rendu de consultation^LN",
        f"OBX|1|ED|11488-4^Compte rendu de consultation^LN||^TEXT^{subtype}^Base64^{base64.b64encode(document).decode()}||||||{status}",  # noqa: E501 (a wire sample)
        "PRT||UC||SB^Send by^participation|810012345678^MARTIN^PAUL^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^RPPS",
        *_obx_meta(flags or {"DESTDMP": "Y", "MASQUE_PS": "N"}),
    ]  # fmt: skip
    text = "\r".join(segments) + "\r"
    hl7.parse(text)  # what a DPI would check before sending
    return text.encode("utf-8")


def mdm(control_id: str, document: bytes, unique_id: str, *, event: str = "T02", replaces: str = "") -> bytes:
    """An MDM^T02^MDM_T02 (v2.6) with TXA-12 the document's uniqueId."""
    status = {"T02": "F", "T10": "C", "T04": "D"}[event]
    txa = ["TXA", "1", "11488-4", "TX"] + [""] * 8 + [unique_id, replaces, "", "", "", "AU"]
    segments = [
        f"MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|20261207103000||MDM^{event}^MDM_T02|{control_id}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",  # noqa: E501 (a wire sample)
        "EVN||20261207103000",
        _pid(INS, True),
        "PV1|1|I",
        "|".join(txa),
        f"OBX|1|ED|11488-4^Compte rendu de consultation^LN||^text^XML^Base64^{base64.b64encode(document).decode()}||||||{status}",  # noqa: E501 (a wire sample)
    ]  # fmt: skip
    text = "\r".join(segments) + "\r"
    hl7.parse(text)
    return text.encode("utf-8")


async def send(port: int, *messages: bytes) -> list[hl7.Message]:
    """Send messages on one MLLP connection; the parsed ACK of each."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    decoder = MllpDecoder()
    acks: list[hl7.Message] = []
    try:
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            got: list[bytes] = []
            while not got:
                data = await asyncio.wait_for(reader.read(65536), 30)
                assert data, "the bridge closed the connection"
                got = decoder.feed(data)
            acks.append(hl7.parse(got[0].decode("utf-8")))
    finally:
        writer.close()
    return acks


class DpiAckServer:
    """The DPI's MLLP endpoint for feeding acknowledgements: keeps each ZAM, answers ACK AA (or refuses)."""

    def __init__(self) -> None:
        self.received: list[hl7.Message] = []
        self.refuse = False
        self.changed = asyncio.Event()
        #: Set each time a delivery was refused (connection cut before the ACK).
        self.refused = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> DpiAckServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MllpDecoder()
        try:
            while data := await reader.read(65536):
                for raw in decoder.feed(data):
                    message = hl7.parse(raw.decode("utf-8"))
                    control = str(message.extract_field("MSH", 1, 10))
                    if self.refuse:
                        self.refused.set()
                        writer.transport.abort()
                        return
                    self.received.append(message)
                    self.changed.set()
                    ack = f"MSH|^~\\&|SIL|CHU_X|PFI|CHU_X|20261207103001||ACK^Z01^ACK|A{control}|P|2.6\rMSA|AA|{control}\r"  # noqa: E501 (a wire sample)
                    writer.write(frame(ack.encode()))
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.transport.abort()

    def outcomes(self) -> dict[str, str]:
        """Original MSH-10 → Y/N of each acknowledgement received (the last one wins)."""
        return {str(m.extract_field("OBX", 1, 4)): str(m.extract_field("OBX", 1, 5, 1, 1)) for m in self.received}
