"""The DMP rights matrix as data: actor × access mode × operation → allowed, refused or allowed with notes.

Source: GIE SESAM-Vitale, fiche d'information PDT-INF-526 v1.8 (25.09.2024), « DMP-Compatibilité :
Matrice des droits fonctionnels » (`../shared/reference/dmp/info-sheets/PDT-INF-526.txt`). The sheet
says the DMP applies this matrix and LPS need not; the bridge uses it to refuse early with a clear error
instead of sending what the DMP would refuse, and the simulator uses the same table to refuse as the DMP
does. Each row of `MATRIX` is one line of the sheet, cells in the sheet's column order (`COLUMNS`).

What the sheet leaves open, kept explicit here rather than guessed:
- note (1) (CPE, TD0.3 « Se déclarer autorisé ») is used in the table but has no legend: kept as a note
  that the DMP decides (`Note.N1`);
- note (10) names TD1.3b, TD1.4, TD1.5 as possible only for DMPs not associated with Mon espace santé,
  but the sheet gives them no row: `check` refuses them on an MES DMP and otherwise leaves the decision
  (per actor) to the DMP, with the note;
- the médecin du travail column has no access mode (« sans objet »): any mode selects it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bridge.errors import BridgeError, ErrorCode

__all__ = [
    "COLUMNS",
    "MATRIX",
    "NON_MES_ONLY",
    "AccessMode",
    "Actor",
    "Decision",
    "NotPermitted",
    "Note",
    "Operation",
    "Verdict",
    "access_mode_of",
    "actor_of",
    "check",
    "require",
]


class Actor(enum.Enum):
    """The sheet's actors (row « acteur »), with the authentication and card that make them."""

    #: CPS / CPF, authentification directe, « PS non médecin ».
    PS_NON_MEDECIN = "PS non médecin"
    #: CPS / CPF, « Médecin (non MT) ».
    MEDECIN = "Médecin (non MT)"
    #: CPS / CPF, « Médecin du travail » (mode d'accès sans objet).
    MEDECIN_DU_TRAVAIL = "Médecin du travail"
    #: CPS / CPF, « Médecin Traitant (MT) » of this patient's DMP.
    MEDECIN_TRAITANT = "Médecin Traitant (MT)"
    #: CPE (e.g. a medical secretary), « non PS ».
    CPE = "CPE non PS"
    #: Authentification indirecte, « Certificat ES » (établissement), « tous ».
    CERTIFICAT_ES = "Certificat ES"


class AccessMode(enum.Enum):
    """The sheet's access modes (row « mode_accès »); values are the VIHF TRE_R248 codes."""

    NORMAL = "normal"
    #: « régulation » (centre 15).
    REGULATION = "centre_15"
    BRIS_DE_GLACE = "bris_de_glace"


class Note(enum.Enum):
    """The sheet's notes (legend under the table), by their mark."""

    N1 = "(1)"
    N2 = "(2)"
    N3 = "(3)"
    N4 = "(4)"
    N5 = "(5)"
    N6 = "(6)"
    N7 = "(7)"
    N8 = "(8)"
    N9 = "(9)"
    N10 = "(10)"
    N11 = "(11)"
    #: « * » on TD3.3c/TD3.3d.
    STAR = "*"

    @property
    def text(self) -> str:
        """The note as the sheet words it (N1 has no legend in the sheet)."""
        return _NOTE_TEXT[self]


_NOTE_TEXT: Mapping[Note, str] = MappingProxyType(
    {
        Note.N1: "Note (1) sans légende dans la fiche : décision laissée au DMP",
        Note.N2: "TD0.4 - Liste des DMP autorisés : recherche limitée aux PS appartenant à la même structure",
        Note.N3: "TD0.4 - Liste des DMP autorisés : recherche limitée, par date, aux nouvelles autorisations",
        Note.N4: "TD2.1/TD2.2 : Ajout de documents. Imputabilité à la structure.",
        Note.N5: "TD3.1 - Recherche référence d'un document en authentification indirecte ou par CPE "
        "(en vue de sa suppression par ex.)",
        Note.N6: "TD3.2 - Ses propres documents uniquement (ceux dont il est l'auteur)",
        Note.N7: "TD3.2 - Consultation d'un document masqué en mode bris de glace ou centre 15 possible "
        "uniquement si autorisation par le patient",
        Note.N8: "TD3.3 - Ses propres documents uniquement (ceux dont il est l'auteur)",
        Note.N9: "TD3.3 - Les documents de la structure uniquement (ceux dont la structure (ou une CPE de la "
        "structure) est l'auteur)",
        Note.N10: "TD1.3b / TD1.4 / TD1.5 - Transactions possibles seulement pour les DMP non associés à MES",
        Note.N11: "TD0.0 - Transaction disponible jusqu'au 30/09/2023",
        Note.STAR: "Pour un document du patient, cette action n'est possible que par le MT (ou le patient lui-même)",
    }
)


class Operation(enum.Enum):
    """One line of the sheet: (transaction, the sheet's wording of the line)."""

    TD0_0 = ("TD0.0", "Acquisition de l'identité du patient")
    TD0_1 = ("TD0.1", "Authentification sur le DMP")
    TD0_2 = ("TD0.2", "Test d'existence d'un DMP et vérification de l'autorisation")
    TD0_3_DECLARE = ("TD0.3", "Se déclarer autorisé")
    TD0_3_REMOVE = ("TD0.3", "Supprimer son autorisation")
    TD0_3_REMOVE_MT = ("TD0.3", "Se supprimer MT")
    TD0_4 = ("TD0.4", "Liste des DMP autorisés")
    TD0_5 = ("TD0.5", "Recherche d'un patient dans le DMP sans INS")
    TD0_9 = ("TD0.9", "Accès Web PS contextuel")
    TD1_3A = ("TD1.3a", "Consultation des données administratives d'un DMP")
    TD1_3B = ("TD1.3b", "Mise à jour des données administratives d'un DMP")
    TD1_4 = ("TD1.4", "Fermeture d'un DMP")
    TD1_5 = ("TD1.5", "Réactivation d'un DMP")
    TD1_6 = ("TD1.6", "Liste des PS autorisés/bloqués sur un DMP")
    TD2_1 = ("TD2.1", "Alimentation d'un DMP")
    TD2_2 = ("TD2.2", "Alimentation d'un DMP par CPE pour les secrétaires médicales du secteur libéral")
    TD3_1_METADATA = ("TD3.1", "Rechercher les métadonnées")
    TD3_1_REFERENCE = ("TD3.1", "Rechercher la référence d'un document")
    TD3_2_UNMASKED = ("TD3.2", "Documents non masqués aux PS")
    TD3_2_MASKED = ("TD3.2", "Documents masqués aux PS")
    TD3_2_INVISIBLE_PATIENT = ("TD3.2", "Documents non visibles du patient et du représentant légal")
    TD3_2_ARCHIVED = ("TD3.2", "Documents archivés")
    TD3_2_OBSOLETE = ("TD3.2", "Documents obsolètes (anciennes versions)")
    TD3_2_DELETED = ("TD3.2", "Documents supprimés")
    TD3_3A_MASK = ("TD3.3a", "Masquer un document aux PS")
    TD3_3A_UNMASK = ("TD3.3a", "Démasquer un document aux PS")
    TD3_3B_MAKE_VISIBLE = ("TD3.3b", "Rendre un document visible au patient")
    TD3_3D_ARCHIVE = ("TD3.3d", "Archiver un document")
    TD3_3D_UNARCHIVE = ("TD3.3d", "Désarchiver un document")
    TD3_3C_DELETE = ("TD3.3c", "Supprimer un document")

    @property
    def transaction(self) -> str:
        """The transaction id (TD3.3c …)."""
        return self.value[0]

    @property
    def label(self) -> str:
        """The sheet's wording of the line."""
        return self.value[1]


#: The sheet's columns, left to right: (actor, access mode); None is the médecin du travail's « sans objet ».
COLUMNS: tuple[tuple[Actor, AccessMode | None], ...] = (
    (Actor.PS_NON_MEDECIN, AccessMode.NORMAL),
    (Actor.PS_NON_MEDECIN, AccessMode.REGULATION),
    (Actor.PS_NON_MEDECIN, AccessMode.BRIS_DE_GLACE),
    (Actor.MEDECIN, AccessMode.NORMAL),
    (Actor.MEDECIN, AccessMode.REGULATION),
    (Actor.MEDECIN, AccessMode.BRIS_DE_GLACE),
    (Actor.MEDECIN_DU_TRAVAIL, None),
    (Actor.MEDECIN_TRAITANT, AccessMode.NORMAL),
    (Actor.MEDECIN_TRAITANT, AccessMode.BRIS_DE_GLACE),
    (Actor.CPE, AccessMode.NORMAL),
    (Actor.CERTIFICAT_ES, AccessMode.NORMAL),
    (Actor.CERTIFICAT_ES, AccessMode.REGULATION),
)

#: Operations the sheet only names in note (10): no row, possible only for DMPs not associated with MES.
NON_MES_ONLY = frozenset({Operation.TD1_3B, Operation.TD1_4, Operation.TD1_5})

# The sheet's cells as printed ("oui", "non", "oui (8)"), one string per row in COLUMNS order, so that a
# reader can hold this next to the sheet. Parsed once into MATRIX.
_SHEET: tuple[tuple[Operation, str], ...] = (
    (Operation.TD0_0, "oui oui oui oui oui oui oui oui oui oui oui oui"),
    (Operation.TD0_1, "oui oui oui oui oui oui oui oui oui oui oui oui"),
    (Operation.TD0_2, "oui oui oui oui oui oui oui oui oui oui oui oui"),
    (Operation.TD0_3_DECLARE, "oui non non oui non non non oui non oui(1) non non"),
    (Operation.TD0_3_REMOVE, "oui non non oui non non non oui non non non non"),
    (Operation.TD0_3_REMOVE_MT, "non non non non non non non oui non non non non"),
    (Operation.TD0_4, "oui oui oui oui oui oui oui oui oui oui(2) oui(3) non"),
    (Operation.TD0_5, "non oui non non oui non non non non non non oui"),
    (Operation.TD0_9, "oui oui oui oui oui oui oui oui oui oui non non"),
    (Operation.TD1_3A, "oui oui oui oui oui oui oui oui oui oui oui oui"),
    (Operation.TD1_6, "oui non non oui non non oui oui non non non non"),
    (Operation.TD2_1, "oui oui oui oui oui oui oui oui oui non oui(4) oui(4)"),
    (Operation.TD2_2, "non non non non non non non non non oui(4) non non"),
    (Operation.TD3_1_METADATA, "oui oui oui oui oui oui oui oui oui non non non"),
    (Operation.TD3_1_REFERENCE, "oui oui oui oui oui oui oui oui oui oui(5) oui(5) oui(5)"),
    (Operation.TD3_2_UNMASKED, "oui oui oui oui oui oui non oui oui non non non"),
    (Operation.TD3_2_MASKED, "oui(6) oui(7) oui(7) oui(6) oui(7) oui(7) non oui oui(7) non non non"),
    (Operation.TD3_2_INVISIBLE_PATIENT, "oui oui oui oui oui oui non oui oui non non non"),
    (Operation.TD3_2_ARCHIVED, "oui oui oui oui oui oui non oui oui non non non"),
    (Operation.TD3_2_OBSOLETE, "oui oui oui oui oui oui non oui oui non non non"),
    (Operation.TD3_2_DELETED, "oui oui oui oui oui oui non oui oui non non non"),
    (Operation.TD3_3A_MASK, "oui non non oui non non oui oui non non non non"),
    (Operation.TD3_3A_UNMASK, "oui(8) non non oui(8) non non oui(8) oui non non non non"),
    (Operation.TD3_3B_MAKE_VISIBLE, "oui non non oui non non oui oui non non non non"),
    (Operation.TD3_3D_ARCHIVE, "oui(8) non non oui(8) oui oui oui(8) oui oui non non non"),
    (Operation.TD3_3D_UNARCHIVE, "oui(8) non non oui(8) oui oui oui(8) oui oui non non non"),
    (
        Operation.TD3_3C_DELETE,
        "oui(8) oui(8) oui(8) oui(8) oui(8) oui(8) oui(8) oui(8) oui(8) oui(9) oui(9) oui(9)",
    ),
)

#: Notes the sheet puts on a row's label rather than its cells: every allowed cell of the row carries them.
_ROW_NOTES: Mapping[Operation, Note] = MappingProxyType(
    {
        Operation.TD0_0: Note.N11,
        Operation.TD3_3D_ARCHIVE: Note.STAR,
        Operation.TD3_3D_UNARCHIVE: Note.STAR,
        Operation.TD3_3C_DELETE: Note.STAR,
    }
)


@dataclass(frozen=True)
class Cell:
    """One cell of the sheet: allowed or not, and the notes that condition it."""

    allowed: bool
    notes: tuple[Note, ...] = ()


def _parse(row: str, row_note: Note | None) -> tuple[Cell, ...]:
    cells = []
    for token in row.split():
        word, _, mark = token.partition("(")
        if word not in {"oui", "non"}:
            raise ValueError(f"bad cell {token!r}")
        notes: tuple[Note, ...] = (Note(f"({mark}"),) if mark else ()
        if row_note is not None and word == "oui":
            notes += (row_note,)
        cells.append(Cell(word == "oui", notes))
    if len(cells) != len(COLUMNS):
        raise ValueError(f"{len(cells)} cells, expected {len(COLUMNS)}")
    return tuple(cells)


#: The frozen matrix: operation → (actor, mode) → cell.
MATRIX: Mapping[Operation, Mapping[tuple[Actor, AccessMode | None], Cell]] = MappingProxyType(
    {op: MappingProxyType(dict(zip(COLUMNS, _parse(row, _ROW_NOTES.get(op)), strict=True))) for op, row in _SHEET}
)


class Verdict(enum.Enum):
    """What the matrix says for one request."""

    ALLOWED = "allowed"
    REFUSED = "refused"
    #: Allowed under the notes, which depend on facts the caller did not give (the DMP decides).
    CONDITIONAL = "conditional"


@dataclass(frozen=True)
class Decision:
    """The matrix's answer for (actor, mode, operation), with the notes that apply and why refused."""

    verdict: Verdict
    operation: Operation
    actor: Actor
    mode: AccessMode
    notes: tuple[Note, ...] = ()
    #: Why refused: "matrix" (the cell says non), "no-column" (the sheet has no such actor × mode), or the
    #: note whose condition failed ("(8)", "*", "(10)" …).
    reason: str = ""

    @property
    def allowed(self) -> bool:
        """True unless refused (a conditional decision is left to the DMP)."""
        return self.verdict is not Verdict.REFUSED


def _column(actor: Actor, mode: AccessMode) -> tuple[Actor, AccessMode | None] | None:
    if actor is Actor.MEDECIN_DU_TRAVAIL:
        return (actor, None)
    key = (actor, mode)
    return key if key in COLUMNS else None


def check(
    actor: Actor,
    mode: AccessMode,
    operation: Operation,
    *,
    own_document: bool | None = None,
    structure_document: bool | None = None,
    patient_document: bool | None = None,
    patient_authorised: bool | None = None,
    dmp_mes: bool | None = None,
) -> Decision:
    """The matrix's decision; the keyword facts (None: unknown) settle the notes they concern."""

    def refuse(reason: str, notes: tuple[Note, ...] = ()) -> Decision:
        return Decision(Verdict.REFUSED, operation, actor, mode, notes, reason)

    if operation in NON_MES_ONLY:
        if dmp_mes:
            return refuse(Note.N10.value, (Note.N10,))
        return Decision(Verdict.CONDITIONAL, operation, actor, mode, (Note.N10,))
    column = _column(actor, mode)
    if column is None:
        return refuse("no-column")
    cell = MATRIX[operation][column]
    if not cell.allowed:
        return refuse("matrix", cell.notes)
    settled = {
        # Own documents only.
        Note.N6: own_document,
        Note.N8: own_document,
        # The structure's documents only.
        Note.N9: structure_document,
        # A masked document in bris de glace / centre 15 only with the patient's authorisation.
        Note.N7: patient_authorised,
        # A patient's own document: only the médecin traitant.
        Note.STAR: None if patient_document is None else (not patient_document or actor is Actor.MEDECIN_TRAITANT),
    }
    for note in cell.notes:
        if settled.get(note) is False:
            return refuse(note.value, cell.notes)
    open_notes = [n for n in cell.notes if (n in settled and settled[n] is None) or n is Note.N1]
    verdict = Verdict.CONDITIONAL if open_notes else Verdict.ALLOWED
    return Decision(verdict, operation, actor, mode, cell.notes)


class NotPermitted(BridgeError):
    """The matrix refuses this operation to this actor in this mode (NOT_PERMITTED_FOR_ACTOR)."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(
            ErrorCode.NOT_PERMITTED_FOR_ACTOR,
            f"{decision.operation.transaction} {decision.operation.label}",
            transaction=decision.operation.transaction,
            operation=decision.operation.label,
            actor=decision.actor.value,
            accessMode=decision.mode.value,
            reason=decision.reason,
            notes=[note.text for note in decision.notes],
        )
        self.decision = decision


def require(
    actor: Actor,
    mode: AccessMode,
    operation: Operation,
    *,
    own_document: bool | None = None,
    structure_document: bool | None = None,
    patient_document: bool | None = None,
    patient_authorised: bool | None = None,
    dmp_mes: bool | None = None,
    may_be_mt: bool = False,
) -> Decision:
    """`check`, raising NotPermitted when refused; the one place client and simulator enforce the sheet.

    `may_be_mt`: the caller is a physician who may be the patient's médecin traitant, which only the DMP
    knows (the client's case): what the MT column allows is then left to the DMP (CONDITIONAL).
    """
    decision = check(
        actor,
        mode,
        operation,
        own_document=own_document,
        structure_document=structure_document,
        patient_document=patient_document,
        patient_authorised=patient_authorised,
        dmp_mes=dmp_mes,
    )
    if not decision.allowed and may_be_mt and actor is Actor.MEDECIN:
        as_mt = check(
            Actor.MEDECIN_TRAITANT,
            mode,
            operation,
            own_document=own_document,
            structure_document=structure_document,
            patient_document=patient_document,
            patient_authorised=patient_authorised,
            dmp_mes=dmp_mes,
        )
        if as_mt.allowed:
            return Decision(Verdict.CONDITIONAL, operation, actor, mode, as_mt.notes, "MT")
    if not decision.allowed:
        raise NotPermitted(decision)
    return decision


#: TRE_G15 profession code of a physician (« Médecin »).
_MEDECIN = "10"


def actor_of(auth_mode: str, profession_code: str, *, treating_physician: bool = False) -> Actor:
    """The sheet's actor from what a VIHF carries: its Authentification_mode and the TRE_G15 profession.

    The one derivation for the client (refuse early) and the simulator (refuse as the DMP does).
    Indirect modes (INDIRECTE, INDIRECTE_RENFORCEE) are the establishment certificate (« Certificat ES »:
    PDT-INF-606, the AIR matrix, is not readable, so AIR gets the sheet's indirect column); in direct mode
    no profession code is a CPE (non PS), « 10 » a physician — the médecin traitant when the caller knows
    this doctor is (`treating_physician`: a fact the DMP holds) — anything else a non-physician PS. The
    médecin du travail needs a fact no card carries: never derived here.
    """
    if auth_mode != "DIRECTE":
        return Actor.CERTIFICAT_ES
    if not profession_code:
        return Actor.CPE
    if profession_code == _MEDECIN:
        return Actor.MEDECIN_TRAITANT if treating_physician else Actor.MEDECIN
    return Actor.PS_NON_MEDECIN


def access_mode_of(purpose: str) -> AccessMode:
    """The sheet's access mode from a VIHF purpose of use (TRE_R248 code)."""
    return AccessMode(purpose)
