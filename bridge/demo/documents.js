// Demo DPI: the patient's documents (TD3.1 list with author and dates, TD3.2 retrieval, TD3.3 visibility,
// archiving and deletion, TD2.1 feeding with a Web Worker encoding the file and one progress bar).

import { $, guarded, setMessage, showInfo, state } from "./ui.js";

const MAX_BYTES = 20 * 1024 * 1024;
const MIME_BY_EXT = {
  pdf: "application/pdf", txt: "text/plain", rtf: "text/rtf",
  jpg: "image/jpeg", jpeg: "image/jpeg", tif: "image/tiff", tiff: "image/tiff",
};
const TYPE_LABELS = Object.fromEntries(
  [...document.querySelectorAll("#type option")].map((o) => [o.value, o.textContent]),
);

export function clearPatientDmpView() {
  state.access = null;
  state.documents = [];
  delete document.body.dataset.authorization;
  delete document.body.dataset.dmp;
  delete document.body.dataset.documents;
  $("#access-facts").hidden = true;
  $("#access-done").hidden = true;
  $("#declare-form").hidden = true;
  $("#docs tbody").replaceChildren();
  $("#docs").hidden = true;
  $("#docs-empty").hidden = true;
  if (state.openedUrl) URL.revokeObjectURL(state.openedUrl);
  state.openedUrl = null;
  $("#opened").hidden = true;
  delete $("#opened").dataset.uid;
  $("#open-link").removeAttribute("href");
  $("#download-link").removeAttribute("href");
}


export function patientRef() {
  return { ins: state.patient.ins, oid: state.patient.oid };
}

function dateOf(hl7) {
  // HL7 DTM in UTC (YYYYMMDD[hhmm[ss]]), shown in the workstation's time zone.
  if (!hl7 || hl7.length < 8) return "";
  const n = (from, to) => Number(hl7.slice(from, to) || 0);
  if (hl7.length < 12) return `${hl7.slice(6, 8)}/${hl7.slice(4, 6)}/${hl7.slice(0, 4)}`;
  const when = new Date(Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14)));
  return when.toLocaleString("fr-FR", { dateStyle: "short", timeStyle: "short" });
}

/** Who wrote the document: the logged-in professional by name, others by their national identifier. */
function authorOf(doc) {
  if (doc.authorName) return doc.authorName;
  if (!doc.authorId) return "Non renseigné";
  const mine = state.cpsSeen && state.cpsSeen.nationalId;
  // The DMP names an author by the national identifier (the CPS's, with or without its type prefix).
  if (mine && (doc.authorId === mine || doc.authorId.endsWith(mine) || mine.endsWith(doc.authorId))) {
    return `Vous (${state.cpsSeen.name})`;
  }
  return `Professionnel n° ${doc.authorId}`;
}

/** Creation date (the document's own) and submission date (its deposit in the DMP, when the bridge gives it). */
function datesOf(doc) {
  const lines = [];
  const add = (label, value) => {
    if (!value) return;
    const div = document.createElement("div");
    div.textContent = `${label} ${dateOf(value)}`;
    lines.push(div);
  };
  add("Créé le", doc.creationTime);
  add("Déposé le", doc.submissionTime);
  return lines;
}

function badge(text, cls) {
  const span = document.createElement("span");
  span.className = `badge ${cls}`;
  span.textContent = text;
  return span;
}

function actionButton(label, title, onClick, extra = "") {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.title = title;
  button.className = extra;
  button.addEventListener("click", () => onClick(button));
  return button;
}

// ---- search filters (TD3.1) ------------------------------------------------------------------

for (const [code, label] of Object.entries(TYPE_LABELS)) {
  const option = document.createElement("option");
  option.value = code;
  option.textContent = label;
  $("#filter-type").append(option);
}

function dtm(selector, nextDay = false) {
  // <input type=date> gives YYYY-MM-DD; the DMP wants HL7 DTM. "To" dates are inclusive on screen and
  // exclusive for the DMP (ITI-18), hence the next day.
  const value = $(selector).value;
  if (!value) return null;
  const day = new Date(`${value}T00:00:00Z`);
  if (nextDay) day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10).replaceAll("-", "");
}

function findFilters() {
  const status = $("#filter-status").value;
  const filters = { statuses: status === "all" ? ["approved", "archived"] : [status] };
  for (const [selector, key] of [
    ["#filter-type", "typeCodes"],
    ["#filter-format", "formatCodes"],
    ["#filter-practice", "practiceSettings"],
    ["#filter-visibility", "visibility"],
  ]) {
    if ($(selector).value) filters[key] = [$(selector).value];
  }
  for (const [selector, key, nextDay] of [
    ["#filter-created-from", "creationFrom", false],
    ["#filter-created-to", "creationTo", true],
    ["#filter-service-from", "serviceStartFrom", false],
    ["#filter-service-to", "serviceStopTo", true],
  ]) {
    const value = dtm(selector, nextDay);
    if (value) filters[key] = value;
  }
  return filters;
}

$("#filters").addEventListener("change", () => refreshDocuments());
$("#filters").addEventListener("submit", (event) => event.preventDefault());

export async function refreshDocuments() {
  if (!state.patient || !state.cps) return;
  $("#docs-loading").hidden = false;
  const seq = state.patientSeq;
  try {
    await guarded($("#refresh"), "Recherche des documents", async () => {
      const { documents } = await state.bridge.call("dmp.documents.find", {
        patient: patientRef(),
        ...findFilters(),
      });
      if (seq === state.patientSeq && state.cps) renderDocuments(documents);
    }, { keepMessage: true });
  } finally {
    $("#docs-loading").hidden = true;
  }
}

function renderDocuments(documents) {
  state.documents = documents;
  const body = $("#docs tbody");
  body.replaceChildren();
  documents.sort((a, b) => (b.creationTime || "").localeCompare(a.creationTime || ""));
  for (const doc of documents) {
    const tr = document.createElement("tr");
    tr.dataset.uid = doc.uniqueId;
    tr.dataset.status = doc.status;
    tr.dataset.masked = String(doc.hiddenFromProfessionals);
    tr.dataset.hidden = String(doc.hiddenFromPatient);
    const title = document.createElement("td");
    title.textContent = doc.title;
    const type = document.createElement("td");
    type.textContent = TYPE_LABELS[doc.typeCode] || doc.typeCode;
    const author = document.createElement("td");
    author.className = "author";
    author.textContent = authorOf(doc);
    const date = document.createElement("td");
    date.className = "dates";
    date.append(...datesOf(doc));
    const flags = document.createElement("td");
    flags.append(doc.status === "archived" ? badge("Archivé", "archived") : badge("Actif", "ok"));
    if (doc.hiddenFromProfessionals) flags.append(badge("Masqué aux professionnels", "masked"));
    if (doc.hiddenFromPatient) flags.append(badge("Invisible pour le patient", "hidden"));
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.append(
      actionButton("Ouvrir", "Récupérer le document (TD3.2)", (b) => openDocument(b, doc), "open"),
      actionButton(
        doc.hiddenFromProfessionals ? "Démasquer" : "Masquer",
        "Masquer aux autres professionnels de santé (TD3.3a)",
        (b) => update(b, "Masquage", "dmp.documents.setVisibility", { hiddenFromProfessionals: !doc.hiddenFromProfessionals }, doc),
        "mask",
      ),
      // Hiding from the patient exists only when sending; TD3.3b makes a hidden document visible.
      ...(doc.hiddenFromPatient
        ? [actionButton(
          "Rendre visible au patient",
          "Rendre le document visible au patient (TD3.3b)",
          (b) => update(b, "Visibilité patient", "dmp.documents.setVisibility", { hiddenFromPatient: false }, doc),
          "patient",
        )]
        : []),
      actionButton(
        doc.status === "archived" ? "Désarchiver" : "Archiver",
        "Archiver ou désarchiver (TD3.3d)",
        (b) => update(b, "Archivage", "dmp.documents.setStatus", { status: doc.status === "archived" ? "approved" : "archived" }, doc),
        "archive",
      ),
      actionButton("Supprimer", "Supprimer du DMP (TD3.3c)", (b) => remove(b, doc), "danger delete"),
    );
    tr.append(title, type, author, date, flags, actions);
    body.append(tr);
  }
  $("#docs").hidden = documents.length === 0;
  $("#docs-empty").hidden = documents.length !== 0;
  document.body.dataset.documents = String(documents.length);
}

async function update(button, context, method, change, doc) {
  const done = await guarded(button, context, async () => {
    await state.bridge.call(method, { patient: patientRef(), uniqueId: doc.uniqueId, ...change });
    return true;
  });
  if (done) await refreshDocuments();
}

async function remove(button, doc) {
  // Two clicks: a deletion cannot be undone.
  if (!button.classList.contains("confirm")) {
    button.classList.add("confirm");
    button.textContent = "Confirmer la suppression";
    setTimeout(() => {
      button.classList.remove("confirm");
      button.textContent = "Supprimer";
    }, 6000);
    return;
  }
  const done = await guarded(button, "Suppression", async () => {
    await state.bridge.call("dmp.documents.delete", { patient: patientRef(), uniqueId: doc.uniqueId });
    return true;
  });
  if (done) {
    showInfo("Document supprimé", doc.title);
    await refreshDocuments();
  }
}

function base64ToBytes(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

const EXT_BY_MIME = Object.fromEntries(Object.entries(MIME_BY_EXT).map(([ext, mime]) => [mime, ext]));

async function openDocument(button, doc) {
  const seq = state.patientSeq;
  await guarded(button, "Ouverture du document", async () => {
    const got = await state.bridge.call("dmp.documents.get", { patient: patientRef(), uniqueId: doc.uniqueId });
    if (seq !== state.patientSeq) return; // the patient changed meanwhile: never show another's document
    // A wrapped document (PDF in a CDA) comes back with its original file in `body`.
    const b64 = got.body || got.content;
    const mime = got.body ? got.bodyMimeType : got.mimeType;
    if (state.openedUrl) URL.revokeObjectURL(state.openedUrl);
    state.openedUrl = URL.createObjectURL(new Blob([base64ToBytes(b64)], { type: mime }));
    const ext = EXT_BY_MIME[mime] || (mime.includes("xml") ? "xml" : "bin");
    $("#open-link").href = state.openedUrl;
    $("#download-link").href = state.openedUrl;
    $("#download-link").download = `${doc.title.replace(/[^\p{L}\p{N} _-]+/gu, "_")}.${ext}`;
    $("#opened-title").textContent = `${doc.title} (${mime})`;
    $("#opened").hidden = false;
    $("#opened").dataset.uid = doc.uniqueId;
  });
}

/** Base64 of `file`, encoded by a Web Worker (the page stays responsive); `onProgress(0..1)` as it goes. */
function encodeInWorker(file, onProgress) {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/upload-worker.js");
    const done = (fn, value) => {
      worker.terminate();
      fn(value);
    };
    worker.onmessage = ({ data }) => {
      if (data.progress !== undefined) onProgress(data.progress);
      else if (data.base64 !== undefined) done(resolve, data.base64);
      else done(reject, { code: "INVALID_INPUT", messageFr: "Le fichier n'a pas pu être lu.", hint: "Vérifiez qu'il est accessible, puis choisissez-le de nouveau." });
    };
    worker.onerror = () => done(reject, { code: "INTERNAL", messageFr: "La préparation du fichier a échoué.", hint: "Rechargez la page puis réessayez." });
    worker.postMessage({ file });
  });
}

/** One progress bar for the whole submission: local preparation, then the bytes sent to the DMP. */
function setProgress(phase, percent, text) {
  $("#submit-progress").value = percent;
  $("#submit-step").textContent = text;
  document.body.dataset.phase = phase;
  document.body.dataset.progress = String(percent);
}

/** `dmp.progress` notifications of our submission: bytes sent to the DMP so far. */
export function showProgress({ progressId, sent, total }) {
  if (progressId !== state.progressId || !total) return;
  const percent = Math.floor((100 * sent) / total);
  setProgress("send", percent, percent < 100 ? `Envoi au DMP : ${percent} %` : "Transmis, vérification par le DMP…");
}

$("#upload-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const file = $("#file").files[0];
  if (!file) return;
  const ext = (file.name.split(".").pop() || "").toLowerCase();
  const mimeType = MIME_BY_EXT[ext] || file.type;
  if (!Object.values(MIME_BY_EXT).includes(mimeType)) {
    setMessage("error", "Envoi", "Format non accepté : PDF, texte, RTF, JPEG ou TIFF.", "INVALID_INPUT");
    return;
  }
  if (file.size > MAX_BYTES) {
    setMessage("error", "Envoi", "Fichier trop volumineux : 20 Mo au plus.", "INVALID_INPUT");
    return;
  }
  state.progressId = `envoi-${Date.now()}`;
  setProgress("encode", 0, "Préparation du fichier : 0 %");
  $("#submit-state").hidden = false;
  document.body.dataset.submitting = "true";
  guarded($("#submit"), "Envoi au DMP", async () => {
    const select = $("#type");
    const content = await encodeInWorker(file, (fraction) => {
      const percent = Math.floor(100 * fraction);
      setProgress("encode", percent, `Préparation du fichier : ${percent} %`);
    });
    setProgress("sign", 0, "Signature par la carte CPS…");
    const result = await state.bridge.call(
      "dmp.documents.submit",
      {
        patient: state.patient,
        content,
        mimeType,
        title: $("#title").value.trim(),
        typeCode: select.value,
        typeDisplay: select.selectedOptions[0].textContent,
        hiddenFromProfessionals: $("#new-masked").checked,
        hiddenFromPatient: $("#new-hidden").checked,
        progressId: state.progressId,
      },
      { timeout: 180000 },
    );
    state.lastSubmitted = result.uniqueId;
    showInfo("Document envoyé au DMP", $("#title").value.trim());
    $("#upload-form").reset();
    await refreshDocuments();
  }).finally(() => {
    $("#submit-state").hidden = true;
    document.body.dataset.submitting = "false";
  });
});

$("#refresh").addEventListener("click", () => refreshDocuments());

