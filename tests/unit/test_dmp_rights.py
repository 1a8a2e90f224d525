"""The rights matrix (bridge.dmp.rights) against the sheet PDT-INF-526 v1.8, cell by cell, and its notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.dmp.rights import (
    COLUMNS,
    MATRIX,
    NON_MES_ONLY,
    AccessMode,
    Actor,
    Note,
    Operation,
    Verdict,
    check,
)

SHEET = Path(__file__).resolve().parents[3] / "shared/reference/dmp/info-sheets/PDT-INF-526.txt"
if not SHEET.exists():
    SHEET = Path("/work/shared/reference/dmp/info-sheets/PDT-INF-526.txt")

# Each operation's line in the sheet: a label fragment, and where its 12 cells are (0: same line, 1: the next
# line, -1: the line before, as the PDF-to-text layout puts them).
_LINES: dict[Operation, tuple[str, int]] = {
    Operation.TD0_0: ("Acquisition de l’identité du patient (11)", 0),
    Operation.TD0_1: ("Authentification sur le DMP", 0),
    Operation.TD0_2: ("Test d'existence d'un DMP", 0),
    Operation.TD0_3_DECLARE: ("Se déclarer autorisé", 0),
    Operation.TD0_3_REMOVE: ("Supprimer son autorisation", 0),
    Operation.TD0_3_REMOVE_MT: ("Se supprimer MT", 0),
    Operation.TD0_4: ("TD0.4          Liste des DMP autorisés", 0),
    Operation.TD0_5: ("Recherche d'un patient dans le DMP sans INS", 0),
    Operation.TD0_9: ("Accès Web PS contextuel", 0),
    Operation.TD1_3A: ("Consultation des données administratives", 0),
    Operation.TD1_6: ("Liste des PS autorisés/bloqués", 0),
    Operation.TD2_1: ("TD2.1          Alimentation d'un DMP", 0),
    Operation.TD2_2: ("par CPE pour les secrétaires médicales", 1),
    Operation.TD3_1_METADATA: ("Rechercher les métadonnées", 0),
    Operation.TD3_1_REFERENCE: ("Rechercher la référence d'un document", 0),
    Operation.TD3_2_UNMASKED: ("Documents non masqués aux PS", 0),
    Operation.TD3_2_MASKED: ("Documents masqués aux PS", 0),
    Operation.TD3_2_INVISIBLE_PATIENT: ("Documents non visibles du patient", 1),
    Operation.TD3_2_ARCHIVED: ("Documents archivés", 0),
    Operation.TD3_2_OBSOLETE: ("Documents obsolètes", 0),
    Operation.TD3_2_DELETED: ("Documents supprimés", 0),
    Operation.TD3_3A_MASK: ("Masquer un document aux PS", 0),
    Operation.TD3_3A_UNMASK: ("Démasquer un document aux PS", 0),
    Operation.TD3_3B_MAKE_VISIBLE: ("Rendre un document visible au patient", 0),
    Operation.TD3_3D_ARCHIVE: ("Archiver un document *", 0),
    Operation.TD3_3D_UNARCHIVE: ("Désarchiver un document *", 0),
    Operation.TD3_3C_DELETE: ("Supprimer un document *", 0),
}

_CELL = re.compile(r"(?<!\w)(oui(?: \((\d+)\))?|non)(?!\w)")


def _sheet_cells(lines: list[str], op: Operation) -> list[tuple[bool, str | None]]:
    label, offset = _LINES[op]
    index = next(i for i, line in enumerate(lines) if label in line)
    line = lines[index + offset]
    if offset == 0:
        line = line[line.index(label) + len(label) :]
    cells = [(m.group(1).startswith("oui"), m.group(2)) for m in _CELL.finditer(line)]
    return cells[: len(COLUMNS)]


def test_every_row_of_the_sheet_is_encoded() -> None:
    """Every operation with a row in the sheet is in MATRIX, with all 12 columns; the others are note (10)."""
    assert set(MATRIX) | NON_MES_ONLY == set(Operation)
    assert set(MATRIX) == set(_LINES)
    assert all(len(row) == 12 for row in MATRIX.values())


@pytest.mark.skipif(not SHEET.exists(), reason="PDT-INF-526.txt absent (../shared/reference/dmp)")
@pytest.mark.parametrize("op", list(_LINES), ids=lambda op: f"{op.transaction}-{op.name}")
def test_each_cell_is_the_sheets(op: Operation) -> None:
    """Each cell of the row (allowed, numbered note) is what the sheet prints."""
    lines = SHEET.read_text(encoding="utf-8").splitlines()
    sheet = _sheet_cells(lines, op)
    assert len(sheet) == 12, sheet
    for column, (allowed, mark) in zip(COLUMNS, sheet, strict=True):
        cell = MATRIX[op][column]
        assert cell.allowed is allowed, (op, column)
        row_note = Note.STAR if "*" in _LINES[op][0] else Note.N11 if op is Operation.TD0_0 else None
        numbered = [n for n in cell.notes if n is not row_note]
        assert numbered == ([Note(f"({mark})")] if mark else []), (op, column)
        assert (row_note in cell.notes) is (allowed and row_note is not None), (op, column)


# For each transaction the bridge or a later session implements: one refused (actor, mode), from the sheet.
_REFUSALS = [
    (Operation.TD0_2, Actor.CPE, AccessMode.BRIS_DE_GLACE, "no-column"),
    (Operation.TD0_3_DECLARE, Actor.MEDECIN, AccessMode.BRIS_DE_GLACE, "matrix"),
    (Operation.TD0_3_REMOVE, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD0_3_REMOVE_MT, Actor.MEDECIN, AccessMode.NORMAL, "matrix"),
    (Operation.TD0_4, Actor.CERTIFICAT_ES, AccessMode.REGULATION, "matrix"),
    (Operation.TD0_5, Actor.MEDECIN, AccessMode.NORMAL, "matrix"),
    (Operation.TD0_9, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD1_3A, Actor.CERTIFICAT_ES, AccessMode.BRIS_DE_GLACE, "no-column"),
    (Operation.TD1_6, Actor.PS_NON_MEDECIN, AccessMode.REGULATION, "matrix"),
    (Operation.TD2_1, Actor.CPE, AccessMode.NORMAL, "matrix"),
    (Operation.TD2_2, Actor.MEDECIN, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_1_METADATA, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_1_REFERENCE, Actor.MEDECIN_TRAITANT, AccessMode.REGULATION, "no-column"),
    (Operation.TD3_2_UNMASKED, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_2_MASKED, Actor.MEDECIN_DU_TRAVAIL, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_2_ARCHIVED, Actor.CPE, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_3A_MASK, Actor.MEDECIN, AccessMode.BRIS_DE_GLACE, "matrix"),
    (Operation.TD3_3A_UNMASK, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_3B_MAKE_VISIBLE, Actor.PS_NON_MEDECIN, AccessMode.REGULATION, "matrix"),
    (Operation.TD3_3D_ARCHIVE, Actor.CERTIFICAT_ES, AccessMode.NORMAL, "matrix"),
    (Operation.TD3_3D_UNARCHIVE, Actor.PS_NON_MEDECIN, AccessMode.BRIS_DE_GLACE, "matrix"),
    (Operation.TD3_3C_DELETE, Actor.CPE, AccessMode.REGULATION, "no-column"),
]


@pytest.mark.parametrize(("op", "actor", "mode", "reason"), _REFUSALS, ids=lambda v: getattr(v, "name", v))
def test_refusals(op: Operation, actor: Actor, mode: AccessMode, reason: str) -> None:
    """At least one refused actor and mode per transaction, with the reason."""
    decision = check(actor, mode, op)
    assert decision.verdict is Verdict.REFUSED
    assert not decision.allowed
    assert decision.reason == reason


def test_indirect_mode_only_searches_references_and_deletes_its_structures_documents() -> None:
    """Issue 11: the establishment certificate may feed, find references and delete the structure's documents."""
    es = Actor.CERTIFICAT_ES
    assert check(es, AccessMode.NORMAL, Operation.TD2_1).verdict is Verdict.ALLOWED
    assert check(es, AccessMode.NORMAL, Operation.TD2_1).notes == (Note.N4,)
    assert check(es, AccessMode.NORMAL, Operation.TD3_1_REFERENCE).verdict is Verdict.ALLOWED
    assert check(es, AccessMode.NORMAL, Operation.TD3_3C_DELETE).verdict is Verdict.CONDITIONAL
    assert check(es, AccessMode.NORMAL, Operation.TD3_3C_DELETE, structure_document=True).allowed
    refused = check(es, AccessMode.NORMAL, Operation.TD3_3C_DELETE, structure_document=False)
    assert (refused.verdict, refused.reason) == (Verdict.REFUSED, "(9)")


def test_own_documents_notes() -> None:
    """Notes (6) and (8): own documents only; unknown ownership leaves the decision to the DMP."""
    md = Actor.MEDECIN
    assert check(md, AccessMode.NORMAL, Operation.TD3_3D_ARCHIVE).verdict is Verdict.CONDITIONAL
    mine = check(md, AccessMode.NORMAL, Operation.TD3_3D_ARCHIVE, own_document=True, patient_document=False)
    assert mine.verdict is Verdict.ALLOWED
    assert check(md, AccessMode.NORMAL, Operation.TD3_3D_ARCHIVE, own_document=False).reason == "(8)"
    assert check(md, AccessMode.NORMAL, Operation.TD3_2_MASKED, own_document=False).reason == "(6)"
    # The médecin traitant archives anyone's document (no note (8) in his column).
    assert check(Actor.MEDECIN_TRAITANT, AccessMode.NORMAL, Operation.TD3_3D_ARCHIVE, own_document=False).allowed


def test_masked_documents_in_bris_de_glace_need_the_patients_authorisation() -> None:
    """Note (7)."""
    op = Operation.TD3_2_MASKED
    assert check(Actor.MEDECIN, AccessMode.BRIS_DE_GLACE, op, patient_authorised=False).reason == "(7)"
    assert check(Actor.MEDECIN, AccessMode.BRIS_DE_GLACE, op, patient_authorised=True).verdict is Verdict.ALLOWED
    assert check(Actor.MEDECIN_TRAITANT, AccessMode.NORMAL, op, patient_authorised=False).allowed


def test_patients_own_document_only_by_the_medecin_traitant() -> None:
    """Note « * » on archive, unarchive and delete."""
    op = Operation.TD3_3C_DELETE
    refused = check(Actor.MEDECIN, AccessMode.NORMAL, op, own_document=True, patient_document=True)
    assert refused.reason == "*"
    assert check(Actor.MEDECIN_TRAITANT, AccessMode.NORMAL, op, own_document=True, patient_document=True).allowed


def test_non_mes_only_transactions() -> None:
    """Note (10): TD1.3b/TD1.4/TD1.5 refused on a DMP associated with Mon espace santé."""
    for op in NON_MES_ONLY:
        assert check(Actor.MEDECIN, AccessMode.NORMAL, op, dmp_mes=True).reason == "(10)"
        assert check(Actor.MEDECIN, AccessMode.NORMAL, op, dmp_mes=False).verdict is Verdict.CONDITIONAL


def test_medecin_du_travail_has_no_access_mode() -> None:
    """« sans objet »: any mode selects the column."""
    for mode in AccessMode:
        assert check(Actor.MEDECIN_DU_TRAVAIL, mode, Operation.TD3_2_UNMASKED).reason == "matrix"
        assert check(Actor.MEDECIN_DU_TRAVAIL, mode, Operation.TD2_1).verdict is Verdict.ALLOWED


def test_undefined_note_1_is_left_to_the_dmp() -> None:
    """The sheet uses note (1) without a legend: conditional, never silently allowed."""
    assert check(Actor.CPE, AccessMode.NORMAL, Operation.TD0_3_DECLARE).verdict is Verdict.CONDITIONAL


def test_require_raises_the_actor_error_naming_transaction_and_mode() -> None:
    """`require` turns a refusal into NOT_PERMITTED_FOR_ACTOR with the transaction, actor and mode."""
    from bridge.dmp.rights import NotPermitted, require

    with pytest.raises(NotPermitted) as refused:
        require(Actor.CERTIFICAT_ES, AccessMode.NORMAL, Operation.TD3_2_UNMASKED)
    data = refused.value.to_data()
    assert data["code"] == "NOT_PERMITTED_FOR_ACTOR"
    assert (data["transaction"], data["actor"], data["accessMode"]) == ("TD3.2", "Certificat ES", "normal")
    assert require(Actor.MEDECIN, AccessMode.NORMAL, Operation.TD2_1).allowed


def test_actor_and_access_mode_from_what_a_vihf_carries() -> None:
    """One derivation for client and simulator: mode and TRE_G15 profession -> the sheet's actor."""
    from bridge.dmp.rights import access_mode_of, actor_of

    assert actor_of("DIRECTE", "10") is Actor.MEDECIN
    assert actor_of("DIRECTE", "60") is Actor.PS_NON_MEDECIN  # an infirmier
    assert actor_of("DIRECTE", "") is Actor.CPE
    assert actor_of("INDIRECTE", "10") is Actor.CERTIFICAT_ES
    assert actor_of("INDIRECTE_RENFORCEE", "10") is Actor.CERTIFICAT_ES
    assert access_mode_of("centre_15") is AccessMode.REGULATION
    with pytest.raises(ValueError):
        access_mode_of("urgence")


def test_what_only_the_medecin_traitant_may_do_is_left_to_the_dmp() -> None:
    """A physician may be the MT, which only the DMP knows: the MT column's yes becomes CONDITIONAL."""
    from bridge.dmp.rights import NotPermitted, require

    # Unmasking another's document: « oui (8) » for a physician, « oui » for the MT.
    with pytest.raises(NotPermitted):
        require(Actor.MEDECIN, AccessMode.NORMAL, Operation.TD3_3A_UNMASK, own_document=False)
    decision = require(Actor.MEDECIN, AccessMode.NORMAL, Operation.TD3_3A_UNMASK, own_document=False, may_be_mt=True)
    assert decision.verdict is Verdict.CONDITIONAL and decision.reason == "MT"
    # Deleting another's document is « oui (8) » for the MT too: refused even when the caller may be MT.
    with pytest.raises(NotPermitted):
        require(Actor.MEDECIN, AccessMode.NORMAL, Operation.TD3_3C_DELETE, own_document=False, may_be_mt=True)
    # The establishment certificate never becomes MT.
    with pytest.raises(NotPermitted):
        require(Actor.CERTIFICAT_ES, AccessMode.NORMAL, Operation.TD3_1_METADATA, may_be_mt=True)
