"""TD0.9, accès Web PS contextuel: the URL that opens a page of the Web PS portal on a patient's DMP.

Source: GIE SESAM-Vitale PDT-INF-527 v7 « Accès Web au système DMP » §2: `https://<nom de domaine>/
AccesDirect/<Page>[/<INS>]`, pages TableauDeBord (INS optional), DossierPatient, GestionDMPPatient,
Documents, ParcoursDeSoins, HistoriqueAcces, VolontesEtDroits, CarnetVaccination (INS required) and
Parametrages (no INS). The portal is reached in direct authentication only (CPx or e-CPS): the person
authenticates in the browser; the link carries no credential. The sheet does not say how the INS is
written in the path (NIR alone, or with its key or OID): the bridge puts the INS value, percent-encoded.
"""

from __future__ import annotations

import enum
from urllib.parse import quote

from bridge.dmp.failures import DmpParamsError
from bridge.dmp.vihf import PatientIns

__all__ = ["WebPsPage", "webps_url"]


class WebPsPage(enum.Enum):
    """Pages of the Web PS reachable by context passing (value: the path segment)."""

    DASHBOARD = "TableauDeBord"
    PATIENT = "DossierPatient"
    MANAGEMENT = "GestionDMPPatient"
    DOCUMENTS = "Documents"
    CARE_PATHWAY = "ParcoursDeSoins"
    ACCESS_HISTORY = "HistoriqueAcces"
    SETTINGS = "Parametrages"
    WISHES_AND_RIGHTS = "VolontesEtDroits"
    VACCINATION = "CarnetVaccination"

    @property
    def takes_ins(self) -> bool | None:
        """True: INS required; False: no INS; None: optional (the dashboard)."""
        if self is WebPsPage.SETTINGS:
            return False
        return None if self is WebPsPage.DASHBOARD else True


def webps_url(root: str, page: WebPsPage, patient: PatientIns | None) -> str:
    """`<root>/AccesDirect/<page>[/<INS>]`; a page that needs an INS without one (or the reverse) is refused."""
    if not root.startswith("https://"):
        raise DmpParamsError("webps root must be an https:// URL")
    if patient is None and page.takes_ins is True:
        raise DmpParamsError(f"page {page.value} needs the patient's INS")
    if patient is not None and page.takes_ins is False:
        raise DmpParamsError(f"page {page.value} takes no INS")
    url = f"{root.rstrip('/')}/AccesDirect/{page.value}"
    return f"{url}/{quote(patient.value, safe='')}" if patient is not None else url
