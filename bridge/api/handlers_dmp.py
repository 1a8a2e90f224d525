"""DMP methods: `dmp.context.set` and the document operations (TD2.1, TD3.1, TD3.2, TD3.3a-d).

Each handler checks its params (schema, base64, INS) before any card or DMP access, then calls the
`DmpService` with the calling connection as the context key. Results are JSON-ready; document bytes
travel base64. A long submission reports `dmp.progress` notifications ({progressId, sent, total}) on
the calling connection when the caller gives a `progressId`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any, ClassVar

from bridge.api import jsonrpc
from bridge.api.methods import CallContext, Handler, Scope, object_schema
from bridge.dmp import valuesets
from bridge.dmp.cda import CdaPatient
from bridge.dmp.codes import AuthMode, AvailabilityStatus, Confidentiality, PurposeOfUse
from bridge.dmp.context import CLASS_COMPTE_RENDU, NewDocument
from bridge.dmp.failures import DmpInputError
from bridge.dmp.refusals import REFUSALS
from bridge.dmp.vihf import PatientIns
from bridge.dmp.xds_model import Code, DocumentEntry
from bridge.errors import BridgeError, ErrorCode
from bridge.service.dmp import DmpContext, DmpService, IndirectPractitioner
from bridge.service.ins_gate import QUALIFICATIONS, SUBMIT_FLAGS, QualifiedIns, qualification
from bridge.xmlsafe import parse_xml

__all__ = [
    "DmpContextSet",
    "DmpDocumentsDelete",
    "DmpDocumentsGet",
    "DmpDocumentsSetStatus",
    "DmpDocumentsSetVisibility",
    "DmpDocumentsSubmit",
    "dmp_handlers",
]

_APP = frozenset({Scope.APP})
_LOINC = "2.16.840.1.113883.6.1"
_DMP_ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode.INS_NOT_QUALIFIED,
    ErrorCode.DMP_UNREACHABLE,
    ErrorCode.DMP_FAULT,
    ErrorCode.DMP_OUTCOME_UNKNOWN,
    ErrorCode.TIMEOUT,
    ErrorCode.PIN_REQUIRED,
    ErrorCode.CARD_REMOVED,
    ErrorCode.CERTIFICATE_EXPIRED,
    ErrorCode.CERTIFICATE_NOT_YET_VALID,
    ErrorCode.NOT_FOUND,
    # The rights matrix, then the DMP's refusals by kind (bridge/dmp/refusals.py).
    *dict.fromkeys((ErrorCode.NOT_PERMITTED_FOR_ACTOR, *REFUSALS.values())),
)
_UID = {"type": "string", "pattern": "^[0-2](\\.(0|[1-9][0-9]*))+$", "maxLength": 64}
_PATIENT = object_schema(
    {
        "ins": {"type": "string", "pattern": "^[0-9A-Za-z]{13,22}$", "description": "INS (NIR) of the patient"},
        "oid": {"type": "string", "pattern": "^[0-2](\\.[0-9]+)+$", "description": "INS authority (default: config)"},
        "lastName": {"type": "string", "maxLength": 100},
        "firstName": {"type": "string", "maxLength": 100},
        "gender": {"enum": ["M", "F", "U"]},
        "birthDate": {"type": "string", "pattern": "^[0-9]{8}$"},
    },
    ["ins"],
)
# A 20 MB document in base64 is ~27 MB; the WebSocket frame limit (config) bounds it first anyway.
_MAX_B64 = 28 * 1024 * 1024
_MAX_DOCUMENTS = 10_000  # documented bound of a find result (a patient's DMP holds far fewer)
_STATUSES = {"approved": AvailabilityStatus.APPROVED, "archived": AvailabilityStatus.ARCHIVED}
_STATUS_NAMES = {
    AvailabilityStatus.APPROVED: "approved",
    AvailabilityStatus.ARCHIVED: "archived",
    AvailabilityStatus.DEPRECATED: "deprecated",
    AvailabilityStatus.DELETED: "deleted",
}
_DOCUMENT = object_schema(
    {
        "uniqueId": {"type": "string"},
        "entryUUID": {"type": "string"},
        "title": {"type": "string"},
        "typeCode": {"type": "string"},
        "classCode": {"type": "string"},
        "formatCode": {"type": "string"},
        "mimeType": {"type": "string"},
        "status": {"enum": list(_STATUS_NAMES.values())},
        "creationTime": {"type": ["string", "null"]},
        "authorId": {"type": ["string", "null"]},
        "size": {"type": ["integer", "null"]},
        "version": {"type": ["string", "null"]},
        "hiddenFromProfessionals": {"type": "boolean"},
        "hiddenFromPatient": {"type": "boolean"},
    }
)


def _patient(service: DmpService, params: dict[str, Any]) -> PatientIns:
    p = params["patient"]
    try:
        return service.patient(p["ins"], p.get("oid"))
    except DmpInputError:
        raise BridgeError(ErrorCode.INVALID_PARAMS, "patient/oid: unknown INS authority") from None


def _caller(ctx: CallContext) -> Any:
    return ctx.connection


def document_json(entry: DocumentEntry) -> dict[str, Any]:
    """The JSON view of a DocumentEntry."""
    visibility = entry.visibility
    return {
        "uniqueId": entry.unique_id,
        "entryUUID": entry.entry_id,
        "title": entry.title,
        "typeCode": entry.type_code.code,
        "classCode": entry.class_code.code,
        "formatCode": entry.format_code.code,
        "mimeType": entry.mime_type,
        "status": _STATUS_NAMES.get(entry.status or AvailabilityStatus.APPROVED, "approved"),
        "creationTime": entry.creation_time,
        "authorId": entry.authors[0].person.id if entry.authors else None,
        "size": entry.size,
        "version": entry.version,
        "hiddenFromProfessionals": Confidentiality.MASQUE_PS in visibility,
        "hiddenFromPatient": Confidentiality.INVISIBLE_PATIENT in visibility,
    }


class _DmpHandler(Handler):
    scopes: ClassVar[frozenset[Scope]] = _APP
    errors: ClassVar[tuple[ErrorCode, ...]] = _DMP_ERRORS

    def __init__(self, service: DmpService) -> None:
        self.service = service


class DmpContextSet(_DmpHandler):
    """dmp.context.set: authentication mode, situation and access mode of this connection's DMP calls."""

    name = "dmp.context.set"
    summary = (
        "Choose how this connection acts on the DMP: DIRECTE (the logged-in CPS, situation index), "
        "INDIRECTE or INDIRECTE_RENFORCEE (the establishment's certificates, for `practitioner`), "
        "and the access mode (normal, bris_de_glace, centre_15)."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "authMode": {"enum": [m.value for m in AuthMode]},
            "situation": {"type": "integer", "minimum": 0, "maximum": 15},
            "accessMode": {"enum": [p.value for p in PurposeOfUse], "default": "normal"},
            "reader": {"type": "string", "minLength": 1, "maxLength": 256},
            "practitioner": object_schema(
                {
                    "nationalId": {"type": "string", "pattern": "^[0-9A-Za-z/]{4,30}$"},
                    "lastName": {"type": "string", "maxLength": 100},
                    "firstName": {"type": "string", "maxLength": 100},
                    "profession": {"type": "string", "pattern": "^[0-9]{2}$"},
                    "specialty": {"type": "string", "maxLength": 10},
                },
                ["nationalId"],
            ),
        },
        ["authMode"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"authMode": {"type": "string"}, "accessMode": {"type": "string"}, "situation": {"type": ["integer", "null"]}}
    )
    errors: ClassVar[tuple[ErrorCode, ...]] = (ErrorCode.INVALID_PARAMS,)

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        mode = AuthMode(params["authMode"])
        who = params.get("practitioner")
        if mode is AuthMode.DIRECTE and who is not None:
            raise BridgeError(ErrorCode.INVALID_PARAMS, "practitioner: comes from the card in DIRECTE mode")
        practitioner = (
            IndirectPractitioner(
                national_id=who["nationalId"],
                family=who.get("lastName", ""),
                given=who.get("firstName", ""),
                profession_code=who.get("profession", "10"),
                specialty_code=who.get("specialty", ""),
            )
            if who
            else None
        )
        context = DmpContext(
            mode=mode,
            purpose=PurposeOfUse(params.get("accessMode", "normal")),
            situation=params.get("situation"),
            reader=params.get("reader"),
            practitioner=practitioner,
        )
        self.service.set_context(_caller(ctx), context)
        return {"authMode": mode.value, "accessMode": context.purpose.value, "situation": context.situation}


class DmpDocumentsSubmit(_DmpHandler):
    """dmp.documents.submit: TD2.1."""

    name = "dmp.documents.submit"
    summary = (
        "Submit a document to the patient's DMP (TD2.1). PDF, text, RTF, JPEG and TIFF are wrapped into a "
        "CDA R2 (the patient's names, gender and birth date are then required); a CDA (text/xml) is sent "
        "as is. The lot is signed (XAdES). Returns the document's uniqueId. Sent at most once: when the "
        "answer is lost the error is DMP_OUTCOME_UNKNOWN with `uniqueId` (look it up with dmp.documents.find "
        "or get before sending again); give your own `uniqueId` to know it before the call."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "patient": _PATIENT,
            "content": {"type": "string", "contentEncoding": "base64", "minLength": 4, "maxLength": _MAX_B64},
            "mimeType": {"enum": ["application/pdf", "text/plain", "text/rtf", "image/jpeg", "image/tiff", "text/xml"]},
            "title": {"type": "string", "minLength": 1, "maxLength": 255},
            "typeCode": {
                "type": "string",
                "pattern": "^[0-9A-Za-z.-]{1,20}$",
                "description": "LOINC code of JDV_J07 (ASS_X04); unknown codes are refused",
            },
            "typeDisplay": {"type": "string", "maxLength": 255},
            "classCode": {
                "type": "string",
                "pattern": "^[0-9A-Za-z._-]{1,20}$",
                "description": "TRE_A03 class; derived from typeCode (ASS_X04) when absent, refused when it differs",
            },
            "hiddenFromProfessionals": {"type": "boolean", "default": False},
            "hiddenFromPatient": {"type": "boolean", "default": False},
            "replaces": {**_UID, "description": "uniqueId of the document this one replaces"},
            "uniqueId": {
                **_UID,
                "description": "the document's uniqueId, chosen by the caller (idempotency key: after "
                "DMP_OUTCOME_UNKNOWN, look it up before sending again); a CDA must carry it as its id",
            },
            "progressId": {"type": "string", "maxLength": 64, "description": "echoed in dmp.progress"},
            **SUBMIT_FLAGS,
        },
        ["patient", "content", "mimeType", "title", "typeCode"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "uniqueId": {"type": "string"},
            "submissionSetUniqueId": {"type": "string"},
            "insQualification": {"enum": QUALIFICATIONS},
        }
    )

    def __init__(self, service: DmpService, ins: QualifiedIns | None = None) -> None:
        super().__init__(service)
        self.ins = ins

    def document(self, params: dict[str, Any]) -> tuple[PatientIns, NewDocument]:
        """The patient and the document of validated params (INVALID_PARAMS before anything is sent)."""
        try:
            content = base64.b64decode(params["content"], validate=True)
        except (binascii.Error, ValueError):
            raise BridgeError(ErrorCode.INVALID_PARAMS, "content: base64") from None
        patient = _patient(self.service, params)
        p = params["patient"]
        identity = None
        if params["mimeType"] != "text/xml":
            if not all(k in p for k in ("lastName", "firstName", "gender", "birthDate")):
                raise BridgeError(ErrorCode.INVALID_PARAMS, "patient: lastName, firstName, gender, birthDate needed")
            identity = CdaPatient(
                ins=patient, family=p["lastName"], given=p["firstName"], gender=p["gender"], birth_date=p["birthDate"]
            )
        # Codes from the official value sets, refused before anything is sent; classCode follows typeCode (ASS_X04).
        derived = valuesets.class_of_type(params["typeCode"])
        if params.get("classCode", derived) != derived:
            valuesets.validate(valuesets.CLASS, params["classCode"], field="classCode")
            raise BridgeError(
                ErrorCode.INVALID_PARAMS,
                f"classCode: {params['classCode']!r} contradicts typeCode (ASS_X04: {derived})",
            )
        class_code = Code(derived, CLASS_COMPTE_RENDU.scheme, valuesets.label(valuesets.CLASS, derived) or derived)
        document = NewDocument(
            content=content,
            mime_type=params["mimeType"],
            title=params["title"],
            # The value set's label (JDV_J07); the caller's typeDisplay, then the title, for codes it lacks.
            type_code=Code(
                params["typeCode"],
                _LOINC,
                valuesets.label(_LOINC, params["typeCode"]) or params.get("typeDisplay", params["title"]),
            ),
            class_code=class_code,
            patient_identity=identity,
            hidden_from_professionals=bool(params.get("hiddenFromProfessionals", False)),
            hidden_from_patient=bool(params.get("hiddenFromPatient", False)),
            unique_id=params.get("uniqueId"),
        )
        return patient, document

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """Check, then submit."""
        patient, document = self.document(params)
        how = qualification(self.ins, patient, params)
        progress = None
        # The calling connection's event queue (the server's Connection; takes an encoded frame).
        notify = getattr(ctx.connection, "offer_event", None)
        if "progressId" in params and notify is not None:
            loop = asyncio.get_running_loop()
            token = params["progressId"]
            last = [-1]

            def progress(sent: int, total: int) -> None:
                # Called on the HTTPS worker thread: at most ~100 notifications per upload.
                step = total // 100 or 1
                if sent == total or sent // step != last[0]:
                    last[0] = sent // step
                    params = {"progressId": token, "sent": sent, "total": total}
                    loop.call_soon_threadsafe(notify, jsonrpc.encode(jsonrpc.notification("dmp.progress", params)))

        result = await self.service.submit(
            _caller(ctx), patient, document, replaces=params.get("replaces"), progress=progress
        )
        return {
            "uniqueId": result.unique_ids[0],
            "submissionSetUniqueId": result.submission_set_unique_id,
            "insQualification": how,
        }


def _unwrapped(content: bytes) -> tuple[bytes, str] | None:
    """The nonXMLBody of a wrapped CDA (content and media type), None for other documents."""
    try:
        root = parse_xml(content, max_bytes=64 * 1024 * 1024, large_text=True)
    except BridgeError:
        return None
    text = root.find("{urn:hl7-org:v3}component/{urn:hl7-org:v3}nonXMLBody/{urn:hl7-org:v3}text")
    if text is None or text.get("representation") != "B64":
        return None
    try:
        return base64.b64decode("".join((text.text or "").split()), validate=True), text.get("mediaType", "")
    except (binascii.Error, ValueError):
        return None


class DmpDocumentsGet(_DmpHandler):
    """dmp.documents.get: TD3.2."""

    name = "dmp.documents.get"
    summary = (
        "Retrieve a document (TD3.2): `content` is the stored document (the CDA) byte for byte; for a "
        "wrapped document, `body` and `bodyMimeType` give the original file."
    )
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "uniqueId": _UID}, ["patient", "uniqueId"]
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "uniqueId": {"type": "string"},
            "mimeType": {"type": "string"},
            "content": {"type": "string", "contentEncoding": "base64"},
            "body": {"type": "string", "contentEncoding": "base64"},
            "bodyMimeType": {"type": "string"},
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        doc = await self.service.get(_caller(ctx), _patient(self.service, params), params["uniqueId"])
        result = {
            "uniqueId": doc.document_unique_id,
            "mimeType": doc.mime_type,
            "content": base64.b64encode(doc.content).decode("ascii"),
        }
        body = await asyncio.to_thread(_unwrapped, doc.content) if "xml" in doc.mime_type else None
        if body is not None:
            result["body"] = base64.b64encode(body[0]).decode("ascii")
            result["bodyMimeType"] = body[1]
        return result


class DmpDocumentsSetVisibility(_DmpHandler):
    """dmp.documents.setVisibility: TD3.3a/b."""

    name = "dmp.documents.setVisibility"
    summary = (
        "Mask a document to professionals / unmask it (TD3.3a), make it visible to the patient (TD3.3b); hiding "
        "from the patient exists only at submission (hiddenFromPatient: true is INVALID_PARAMS)."
    )
    params_schema: ClassVar[dict[str, Any]] = {
        **object_schema(
            {
                "patient": _PATIENT,
                "uniqueId": _UID,
                "hiddenFromProfessionals": {"type": "boolean"},
                "hiddenFromPatient": {"type": "boolean"},
            },
            ["patient", "uniqueId"],
        ),
        "anyOf": [{"required": ["hiddenFromProfessionals"]}, {"required": ["hiddenFromPatient"]}],
    }
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {
            "uniqueId": {"type": "string"},
            "hiddenFromProfessionals": {"type": "boolean"},
            "hiddenFromPatient": {"type": "boolean"},
        }
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        entry = await self.service.set_visibility(
            _caller(ctx),
            _patient(self.service, params),
            params["uniqueId"],
            hidden_from_professionals=params.get("hiddenFromProfessionals"),
            hidden_from_patient=params.get("hiddenFromPatient"),
        )
        return {
            "uniqueId": entry.unique_id,
            "hiddenFromProfessionals": Confidentiality.MASQUE_PS in entry.visibility,
            "hiddenFromPatient": Confidentiality.INVISIBLE_PATIENT in entry.visibility,
        }


class DmpDocumentsSetStatus(_DmpHandler):
    """dmp.documents.setStatus: TD3.3d."""

    name = "dmp.documents.setStatus"
    summary = "Archive a document or bring it back (TD3.3d)."
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "uniqueId": _UID, "status": {"enum": list(_STATUSES)}},
        ["patient", "uniqueId", "status"],
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"uniqueId": {"type": "string"}, "status": {"type": "string"}, "previous": {"type": "string"}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        previous = await self.service.set_status(
            _caller(ctx), _patient(self.service, params), params["uniqueId"], _STATUSES[params["status"]]
        )
        return {"uniqueId": params["uniqueId"], "status": params["status"], "previous": _STATUS_NAMES[previous]}


class DmpDocumentsDelete(_DmpHandler):
    """dmp.documents.delete: TD3.3c."""

    name = "dmp.documents.delete"
    summary = "Delete a document from the DMP (TD3.3c); only its author may."
    params_schema: ClassVar[dict[str, Any]] = object_schema(
        {"patient": _PATIENT, "uniqueId": _UID}, ["patient", "uniqueId"]
    )
    result_schema: ClassVar[dict[str, Any]] = object_schema(
        {"uniqueId": {"type": "string"}, "deleted": {"const": True}}
    )

    async def call(self, ctx: CallContext, params: dict[str, Any]) -> Any:
        """See summary."""
        await self.service.set_status(
            _caller(ctx), _patient(self.service, params), params["uniqueId"], AvailabilityStatus.DELETED
        )
        return {"uniqueId": params["uniqueId"], "deleted": True}


def dmp_handlers(service: DmpService, ins: QualifiedIns | None = None) -> list[Handler]:
    """All DMP handlers around one service (`ins`: the INSi's record of qualified INS, for TD2.1)."""
    from bridge.api.handlers_dmp_find import DmpDocumentsFind  # it builds on this module's pieces

    return [
        DmpContextSet(service),
        DmpDocumentsSubmit(service, ins),
        DmpDocumentsFind(service),
        DmpDocumentsGet(service),
        DmpDocumentsSetVisibility(service),
        DmpDocumentsSetStatus(service),
        DmpDocumentsDelete(service),
    ]
