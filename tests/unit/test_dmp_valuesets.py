"""The value-set store (bridge.dmp.valuesets): labels, validation, typeCode → classCode, provenance of each table."""

from __future__ import annotations

import pytest

from bridge.dmp import valuesets
from bridge.dmp.codes import PROFESSION_LABELS, AuthMode
from bridge.dmp.context import CONTENT_TYPE_DEFAULT, Practitioner
from bridge.errors import BridgeError, ErrorCode

_TABLES = ("class", "type_class", "practice_setting", "facility", "content_type", "format", "confidentiality",
           "profession", "specialty")  # fmt: skip


@pytest.mark.parametrize("key", _TABLES)
def test_every_table_records_its_source(key: str) -> None:
    """Each shipped table names its OID, version and source file (repository, path, commit)."""
    table = valuesets.table(key)
    assert table.oid and table.version and table.source["path"] and table.systems
    if table.source["repository"] == "ansforge/IG-terminologie-de-sante":
        assert len(table.source["commit"]) == 40


def test_labels() -> None:
    """Official display names, by code system OID."""
    assert valuesets.label(valuesets.CLASS, "10") == "Compte rendu"
    assert valuesets.label(valuesets.PROFESSION, "60") == "Infirmier"
    assert valuesets.label(valuesets.SPECIALTY, "SM54") == "Médecine générale (SM)"
    assert valuesets.label(valuesets.FACILITY, "SA07") == "Cabinet individuel"
    assert valuesets.label(valuesets.PRACTICE_SETTING, "ETABLISSEMENT") == "Etablissement de santé"
    assert valuesets.label(valuesets.FORMAT_SYSTEM, "urn:ihe:iti:xds-sd:pdf:2008") == (
        "Document à corps non structuré en Pdf/A-1"
    )
    assert valuesets.label(valuesets.CONFIDENTIALITY_A07, "MASQUE_PS") == "Masqué aux professionnels de santé"
    assert valuesets.label(valuesets.CLASS, "77") is None
    assert valuesets.label("1.2.3.4", "10") is None


def test_validation_names_the_code() -> None:
    """An unknown code is INVALID_PARAMS naming the field, the code and the table."""
    assert valuesets.validate(valuesets.CLASS, "11") == "11"
    with pytest.raises(BridgeError) as err:
        valuesets.validate(valuesets.CLASS, "77", field="classCode")
    assert err.value.code is ErrorCode.INVALID_PARAMS
    assert err.value.detail is not None and "'77'" in err.value.detail and "classCode" in err.value.detail
    with pytest.raises(BridgeError):
        valuesets.validate("1.2.3.4", "X")


def test_type_to_class_ass_x04() -> None:
    """classCode derived from typeCode by ASS_X04; a type outside JDV_J07 refused."""
    assert valuesets.class_of_type("11488-4") == "10"  # compte rendu de consultation
    assert valuesets.class_of_type("34133-9") == "11"  # synthèse
    assert valuesets.class_of_type("57833-6") == "42"  # prescription
    assert valuesets.class_of_type("18748-4") == "31"  # imagerie
    with pytest.raises(BridgeError) as err:
        valuesets.class_of_type("99999-9")
    assert err.value.detail is not None and "99999-9" in err.value.detail


def test_content_type_default_is_in_jdv_j59() -> None:
    """Issue 11: the SubmissionSet contentTypeCode is a JDV_J59 code, with its official label."""
    code = CONTENT_TYPE_DEFAULT
    assert valuesets.validate(code.scheme, code.code, value_set="content_type") == code.code
    assert valuesets.label(code.scheme, code.code) == code.display
    with pytest.raises(BridgeError):
        valuesets.validate(valuesets.CONTENT_TYPE, "01", value_set="content_type")
    assert valuesets.validate(valuesets.FACILITY, "SA07", value_set="content_type") == "SA07"


def test_one_source_for_profession_labels() -> None:
    """codes.PROFESSION_LABELS is the shipped TRE_G15 table; the VIHF roles and facility use the labels."""
    assert {
        c: n for c, n in valuesets.table("profession").systems[valuesets.PROFESSION].items() if n
    } == PROFESSION_LABELS
    gp = Practitioner(
        national_id="899700000001", family="A", given="B", profession_code="10", specialty_code="SM54",
        structure_id="S", structure_name="N", sector="SA07", mode=AuthMode.DIRECTE,
    )  # fmt: skip
    roles = gp.roles()
    assert [r.display_name for r in roles] == [
        "Médecin",
        "Médecin générale (SM)".replace("Médecin générale", "Médecine générale"),
    ]
    assert gp.facility().display == "Cabinet individuel"


def test_type_codes_are_labelled_from_jdv_j07() -> None:
    """ASS_X04 validates and classes a typeCode but has no labels: JDV_J07 gives the display name."""
    from bridge.dmp import valuesets

    assert valuesets.label(valuesets.LOINC, "11488-4") == "CR ou fiche de consultation ou de visite"
    assert valuesets.table("type").version == "20260629120000"
    assert valuesets.label(valuesets.LOINC, "27899-4") is None  # in ASS_X04, no longer in JDV_J07: caller's label
