"""The hot folder: legacy software drops a document into a folder and the bridge feeds it to the DMP.

What to drop (write it under another name, e.g. ``.part``, then rename it: a rename is atomic):
- a CDA R2 (``*.xml``): the patient is its recordTarget's INS; an INS in a CDA means a qualified identity
  (CI-SIS: the INS is written in a document only once qualified). An optional ``<name>.json`` sidecar
  may add ``hiddenFromProfessionals``, ``hiddenFromPatient``, ``replaces``;
- a PDF (``*.pdf``) with its sidecar ``<name>.json``, the same members as `dmp.documents.submit`
  (``patient`` with ``ins``, ``lastName``, ``firstName``, ``gender``, ``birthDate``, and ``insQualified``;
  ``title``, ``typeCode``, optional ``uniqueId``, ``replaces``, ``hidden…``). Drop the sidecar first.

Each document is taken once: renamed into ``processing/`` (the rename is the claim), queued (the
(file name, content digest) pair is the job's key, so a crash between the two queues it once), then moved
to ``done/`` or ``failed/`` with ``<name>.result.json`` beside it once the DMP has answered (or the
file was refused: the result says why, in French).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bridge.dmp import valuesets
from bridge.dmp.cda import CdaPatient
from bridge.dmp.cda_header import read_cda_metadata
from bridge.dmp.codes import InsOid
from bridge.dmp.context import CLASS_COMPTE_RENDU, NewDocument
from bridge.dmp.failures import DmpInputError, DmpParamsError
from bridge.dmp.ns import HL7, q
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code
from bridge.errors import BridgeError
from bridge.feed.intake import queue_document
from bridge.feed.outbox import Outbox
from bridge.feed.outbox_model import TERMINAL_STATES, JobState, Origin, OutboxJob
from bridge.xmlsafe import XmlInputError, parse_xml

__all__ = ["HotFolder"]

log = logging.getLogger(__name__)

_LOINC = "2.16.840.1.113883.6.1"
_MAX_FILE = 20 * 1024 * 1024
_INS_OIDS = frozenset(o.value for o in InsOid)


class _Refused(Exception):
    """A dropped file that cannot be queued; the French reason goes to its result file."""

    def __init__(self, reason_fr: str) -> None:
        super().__init__(reason_fr)
        self.reason_fr = reason_fr


def _cda_patient(content: bytes) -> PatientIns:
    root = parse_xml(content, large_text=True)
    for node in root.iterfind(f"{q(HL7, 'recordTarget')}/{q(HL7, 'patientRole')}/{q(HL7, 'id')}"):
        if node.get("root") in _INS_OIDS and node.get("extension"):
            return PatientIns(value=node.get("extension"), oid=InsOid(node.get("root")))
    raise _Refused("Le CDA ne porte pas d'INS du patient (recordTarget) : joignez une fiche JSON avec le patient.")


def _document(path: Path, content: bytes, sidecar: dict[str, Any]) -> tuple[PatientIns, NewDocument, bool, str | None]:
    """(patient, document, INS qualified, replaces) of a dropped file and its sidecar."""
    hide_ps = bool(sidecar.get("hiddenFromProfessionals", False))
    hide_patient = bool(sidecar.get("hiddenFromPatient", False))
    replaces = sidecar.get("replaces")
    if path.suffix.lower() == ".xml":
        info = read_cda_metadata(content)
        document = NewDocument(
            content=content, mime_type="text/xml", title=info.title, type_code=info.type_code,
            hidden_from_professionals=hide_ps, hidden_from_patient=hide_patient,
        )  # fmt: skip
        return _cda_patient(content), document, True, replaces
    p = sidecar.get("patient")
    if not isinstance(p, dict) or not all(
        isinstance(p.get(k), str) for k in ("ins", "lastName", "firstName", "gender", "birthDate")
    ):
        raise _Refused("Fiche JSON incomplète : patient (ins, lastName, firstName, gender, birthDate) attendu.")
    if not isinstance(sidecar.get("typeCode"), str) or not isinstance(sidecar.get("title"), str):
        raise _Refused("Fiche JSON incomplète : title et typeCode attendus.")
    patient = PatientIns(value=p["ins"], oid=InsOid(p.get("oid", InsOid.NIR.value)))
    identity = CdaPatient(
        ins=patient, family=p["lastName"], given=p["firstName"], gender=p["gender"], birth_date=p["birthDate"]
    )
    type_code = sidecar["typeCode"]
    derived = valuesets.class_of_type(type_code)
    document = NewDocument(
        content=content,
        mime_type="application/pdf",
        title=sidecar["title"][:255],
        type_code=Code(type_code, _LOINC, str(sidecar.get("typeDisplay", sidecar["title"]))[:255]),
        class_code=Code(derived, CLASS_COMPTE_RENDU.scheme, valuesets.label(valuesets.CLASS, derived) or derived),
        patient_identity=identity,
        unique_id=sidecar.get("uniqueId"),
        hidden_from_professionals=hide_ps,
        hidden_from_patient=hide_patient,
    )
    return patient, document, bool(p.get("insQualified", False)), replaces


class HotFolder:
    """Watches one folder (see the module docstring); scans run off the event loop."""

    def __init__(self, outbox: Outbox, root: Path, *, new_uid: Callable[[], str], interval: float = 1.0) -> None:
        self.outbox = outbox
        self.root = root
        self.interval = interval
        self._new_uid = new_uid
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[str, str], None]] = []
        for sub in ("processing", "done", "failed"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        outbox.add_listener(self._noticed)

    def add_listener(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(file name, "done" | "failed")` on the event loop when a file is filed."""
        self._listeners.append(listener)

    def _filed(self, name: str, where: str) -> None:
        for listener in list(self._listeners):
            listener(name, where)

    def _noticed(self, job: OutboxJob) -> None:
        if job.origin is Origin.HOT_FOLDER and job.state in TERMINAL_STATES:
            self._wake.set()

    def start(self) -> None:
        """Run as a task."""
        self._task = asyncio.create_task(self.run(), name="hot-folder")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        """Scan, queue, settle; forever."""
        while True:
            self._wake.clear()
            try:
                await self.scan()
            except Exception:  # a bad file or a full disk must not end the watcher
                log.exception("hot folder scan failed")
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation (stop() would hang).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()

    async def scan(self) -> None:
        """Claim new files, queue what is in processing/, move what the DMP answered."""
        await asyncio.to_thread(self._claim_new)
        processing = self.root / "processing"
        for path in sorted(await asyncio.to_thread(lambda: list(processing.iterdir()))):
            if path.suffix.lower() in (".xml", ".pdf"):
                await self._follow(path)

    def _claim_new(self) -> None:
        for path in sorted(self.root.iterdir()):
            suffix = path.suffix.lower()
            if not path.is_file() or path.name.startswith(".") or suffix not in (".xml", ".pdf"):
                continue
            sidecar = path.with_suffix(".json")
            if suffix == ".pdf" and not sidecar.exists():
                continue  # its sidecar is not there yet
            if (self.root / "processing" / path.name).exists():
                continue  # a file of that name is still being fed: this one waits its turn
            if sidecar.exists():
                os.replace(sidecar, self.root / "processing" / sidecar.name)
            os.replace(path, self.root / "processing" / path.name)

    async def _follow(self, path: Path) -> None:
        content = await asyncio.to_thread(path.read_bytes)
        key = f"{path.name}|{hashlib.sha256(content).hexdigest()[:32]}"
        job = await self.outbox.find(Origin.HOT_FOLDER, key)
        if job is None:
            try:
                sidecar_path = path.with_suffix(".json")
                sidecar = json.loads(sidecar_path.read_text("utf-8")) if sidecar_path.exists() else {}
                if not isinstance(sidecar, dict):
                    raise _Refused("La fiche JSON doit être un objet.")
                if len(content) > _MAX_FILE:
                    raise _Refused("Document trop volumineux (20 Mo au plus).")
                patient, document, qualified, replaces = await asyncio.to_thread(_document, path, content, sidecar)
                job, _ = await queue_document(
                    self.outbox, patient, document, origin=Origin.HOT_FOLDER, source_key=key,
                    ins_qualified=qualified, new_uid=self._new_uid, replaces=replaces,
                )  # fmt: skip
            except _Refused as exc:
                await asyncio.to_thread(self._settle, path, "failed", {"state": "refused", "message_fr": exc.reason_fr})
                self._filed(path.name, "failed")
                return
            except (
                ValueError,
                DmpInputError,
                DmpParamsError,
                XmlInputError,
                UnicodeDecodeError,
                KeyError,
                BridgeError,
            ):
                reason = "Document ou fiche JSON illisible ou incomplet : corrigez-le et déposez-le de nouveau."
                await asyncio.to_thread(self._settle, path, "failed", {"state": "refused", "message_fr": reason})
                self._filed(path.name, "failed")
                return
            log.info("hot folder: file queued as job %d", job.id)
        if job.state in TERMINAL_STATES:
            where = "done" if job.state is JobState.SENT else "failed"
            await asyncio.to_thread(self._settle, path, where, job.to_public())
            self._filed(path.name, where)

    def _settle(self, path: Path, where: str, result: dict[str, Any]) -> None:
        target = self.root / where
        # The result is written first: a file in done/ or failed/ always has its result beside it.
        (target / f"{path.name}.result.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), "utf-8")
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            os.replace(sidecar, target / sidecar.name)
        os.replace(path, target / path.name)
