"""The simulator checks every code of a submission against the value sets (the one store shared with the
client, `bridge.dmp.valuesets`) and against the CDA's header: what the bridge used to send (contentTypeCode
01, a classCode not derived from the typeCode by ASS_X04, a typeCode other than the CDA's) and unknown
codes are refused; the official sample is accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from lxml import etree

from bridge.crypto.pki import TestPki
from bridge.sim.dmp import DmpSimulator
from tests.integration.dmp_sim_support import DmpClient, Practitioner, client_context, requires_reference
from tests.integration.dmp_sim_xds import RIM, submit

pytest_plugins = ["tests.integration.dmp_sim_fixtures"]

pytestmark = [requires_reference, pytest.mark.timeout(120)]

INS = "180017505601289"
CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
CLASS = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
TYPE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
FACILITY = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"


@pytest.fixture
async def client(
    sim: DmpSimulator, pki: TestPki, doctors: tuple[Practitioner, Practitioner], tmp_path: Path
) -> AsyncIterator[DmpClient]:
    """Dr A over mutual TLS."""
    c = DmpClient(sim.url, client_context(pki, doctors[0].certs.auth, tmp_path))
    yield c
    await c.close()


def _set_code(scheme: str, code: str, *, document_only: bool = True) -> Callable[[etree._Element], None]:
    def edit(env: etree._Element) -> None:
        for cls in env.iter(f"{{{RIM}}}Classification"):
            owner = cls.getparent()
            if cls.get("classificationScheme") == scheme and (
                not document_only or (owner is not None and owner.get("id") == "DocumentME2")
            ):
                cls.set("nodeRepresentation", code)

    return edit


def _set_slot(scheme: str, slot: str, value: str) -> Callable[[etree._Element], None]:
    def edit(env: etree._Element) -> None:
        for cls in env.iter(f"{{{RIM}}}Classification"):
            if cls.get("classificationScheme") == scheme:
                for v in cls.iterfind(f"{{{RIM}}}Slot[@name='{slot}']/{{{RIM}}}ValueList/{{{RIM}}}Value"):
                    v.text = value

    return edit


@pytest.mark.parametrize(
    ("case", "edit", "says"),
    [
        # The bridge's old submission-set default: 01 is outside JDV_J59.
        ("contentTypeCode 01", _set_code(CONTENT_TYPE, "01", document_only=False), "contentTypeCode '01'"),
        # classCode not derived from typeCode: 11488-4 is a « Compte rendu » (10) in ASS_X04.
        ("classCode vs typeCode", _set_code(CLASS, "11"), "ASS_X04"),
        ("unknown typeCode", _set_code(TYPE, "99999-9"), "typeCode '99999-9'"),
        ("unknown facility", _set_code(FACILITY, "SA99"), "healthcareFacilityTypeCode 'SA99'"),
        # Metadata contradicting the CDA it describes (the sample CDA is a 27899-4, same class 10).
        ("typeCode vs CDA code", _set_code(TYPE, "11488-4"), "en-tête du CDA : code du document"),
        ("unknown specialty", _set_slot(AUTHOR, "authorSpecialty", "G15_10/SM99^x^1.2.250.1.213.1.1.4.5"), "SM99"),
    ],
)
async def test_codes_outside_the_value_sets_are_refused(
    client: DmpClient, doctors: tuple[Practitioner, Practitioner], case: str,
    edit: Callable[[etree._Element], None], says: str,
) -> None:  # fmt: skip
    sent = await submit(client, doctors[0], INS, edit=edit)
    assert sent.answer.registry_status() == "Failure", case
    [(code, context)] = sent.answer.errors()
    assert code == "XDSRegistryMetadataError" and says in context, (case, context)


async def test_the_official_sample_codes_are_accepted(
    client: DmpClient, doctors: tuple[Practitioner, Practitioner]
) -> None:
    sent = await submit(client, doctors[0], INS)
    assert sent.answer.registry_status() == "Success", sent.answer.errors()
