// Demo DPI screen: the steps a care software goes through with the local DMP bridge.
// Everything here uses only the public SDK (loaded from the bridge) and the documented JSON-RPC methods.

const PORT = Number(document.querySelector('meta[name="dmp-bridge-port"]').content);
const BRIDGE = `127.0.0.1:${PORT}`;
const MAX_BYTES = 20 * 1024 * 1024;
const MIME_BY_EXT = {
  pdf: "application/pdf", txt: "text/plain", rtf: "text/rtf",
  jpg: "image/jpeg", jpeg: "image/jpeg", tif: "image/tiff", tiff: "image/tiff",
};
const TYPE_LABELS = Object.fromEntries(
  [...document.querySelectorAll("#type option")].map((o) => [o.value, o.textContent]),
);

import { needsSex, patientFromIdentity, qualifyIns, renderIdentity } from "./ins-panel.js";

const $ = (sel) => document.querySelector(sel);
const state = { sdk: null, bridge: null, patient: null, beneficiary: null, identity: null, cps: null, openedUrl: null };
// Exposed for scripted checks (the end-to-end test reads it); holds no secret.
window.dmpDemo = state;

// ---- messages ---------------------------------------------------------------------------------

function showError(err, context) {
  const code = err && err.code ? err.code : "ERREUR";
  let text = err && err.messageFr ? err.messageFr : String((err && err.message) || err);
  // Details are codes, never personal data: useful to the integrator reading the demo.
  if (err && err.data && err.data.detail && code !== "DMP_FAULT") text += ` (${err.data.detail})`;
  if (err && err.data && err.data.dmpCode) text += ` — code DMP : ${err.data.dmpCode}`;
  setMessage("error", context, text, code);
}

function showInfo(title, text) {
  setMessage("info", title, text, "");
}

function setMessage(kind, title, text, code) {
  const box = $("#message");
  box.className = `message ${kind === "info" ? "info" : ""}`;
  $("#message-title").textContent = title ? `${title} :` : "";
  $("#message-text").textContent = text;
  $("#message-code").textContent = code;
  box.dataset.code = code;
  box.hidden = false;
}

function clearMessage() {
  $("#message").hidden = true;
}

$("#message-close").addEventListener("click", clearMessage);

/** Run an action with its button disabled; errors go to the message banner in French. */
async function guarded(button, context, action, { keepMessage = false } = {}) {
  if (button) button.disabled = true;
  if (!keepMessage) clearMessage();
  try {
    return await action();
  } catch (err) {
    showError(err, context);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

function setStep(id, value) {
  $(id).dataset.state = value;
}

function pill(id, text, on) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("off", !on);
  el.hidden = false;
}

// ---- 1. connection and pairing -------------------------------------------------------------------

$("#bridge-url").textContent = `ws://${BRIDGE}/ws`;

$("#connect").addEventListener("click", (ev) =>
  guarded(ev.currentTarget, "Connexion au pont", async () => {
    if (!state.sdk) {
      try {
        state.sdk = await import(`http://${BRIDGE}/sdk/dmp-bridge.js`);
      } catch (_) {
        // The SDK itself comes from the bridge: no SDK means no bridge on this port.
        throw {
          code: "BRIDGE_UNREACHABLE",
          messageFr: `Le pont DMP ne répond pas sur le port ${PORT} : vérifiez qu'il est lancé (dmp-bridge sandbox).`,
        };
      }
    }
    if (!state.bridge) {
      state.bridge = await state.sdk.connect({ url: `ws://${BRIDGE}/ws` });
      state.bridge.on("connection", ({ state: s }) => {
        const labels = { open: "Pont : connecté", reconnecting: "Pont : reconnexion…", closed: "Pont : déconnecté" };
        pill("#conn-state", labels[s] || s, s === "open");
      });
      state.bridge.on("card.removed", ({ reader }) => showInfo("Carte retirée", `lecteur ${reader}`));
      state.bridge.on("dmp.progress", showProgress);
      pill("#conn-state", "Pont : connecté", true);
    }
    const answer = await state.bridge.pair({
      onPending: ({ code }) => {
        $("#pair-code").textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
        $("#pair-command").textContent = `dmp-bridge origins approve ${code}`;
        $("#pairing").hidden = false;
      },
    });
    $("#pairing").hidden = true;
    const info = await state.bridge.info();
    $("#bridge-done").textContent = `Page autorisée — pont ${info.name} ${info.version} (${answer.origin || location.origin}).`;
    $("#bridge-done").hidden = false;
    $("#connect").hidden = true;
    setStep("#step-bridge", "done");
    setStep("#step-patient", "todo");
  }).finally(() => ($("#pairing").hidden = true)),
);

// ---- 2. Vitale card --------------------------------------------------------------------------------

function genderOf(nir) {
  return { 1: "M", 2: "F" }[nir[0]] || "U";
}

function birthOf(b) {
  if (/^[0-9]{8}$/.test(b.birthDateRaw || "")) return b.birthDateRaw;
  return (b.birthDate || "").replaceAll("-", "");
}

function displayBirth(yyyymmdd) {
  const [y, m, d] = [yyyymmdd.slice(0, 4), yyyymmdd.slice(4, 6), yyyymmdd.slice(6, 8)];
  return m === "00" || d === "00" ? `${y} (date lunaire)` : `${d}/${m}/${y}`;
}

$("#read-vitale").addEventListener("click", (ev) =>
  guarded(ev.currentTarget, "Lecture de la carte Vitale", async () => {
    state.vitaleReader = await cardReader(["VITALE2"], "carte Vitale");
    const card = await state.bridge.vitaleRead({ reader: state.vitaleReader });
    const list = $("#beneficiaries");
    list.replaceChildren();
    for (const [index, b] of card.beneficiaries.entries()) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "beneficiary";
      const name = document.createElement("span");
      name.textContent = `${b.lastName} ${b.firstName}`;
      const meta = document.createElement("span");
      meta.className = "muted";
      const birth = birthOf(b);
      const role = b.isInsured === null ? "Qualité non indiquée" : b.isInsured ? "Assuré" : "Ayant droit";
      meta.textContent = `${role} · né(e) le ${displayBirth(birth)}`;
      button.append(name, meta);
      // A child on a parent's card carries the parent's NIR: the INSi is asked by her traits instead.
      if (needsSex(b)) {
        const note = document.createElement("span");
        note.className = "note";
        note.textContent = "pas de NIR propre sur la carte : INS recherché par les traits d'identité";
        button.append(note);
      }
      button.addEventListener("click", () => selectPatient(button, b, birth, index));
      li.append(button);
      list.append(li);
    }
  }),
);

function selectPatient(button, b, birth, index) {
  for (const other of document.querySelectorAll(".beneficiary")) other.classList.remove("selected");
  button.classList.add("selected");
  // No DMP call before the INSi has qualified this person's INS.
  state.beneficiary = { index, hasOwnIns: b.hasOwnIns, sex: b.hasOwnIns ? genderOf(b.nir) : null };
  state.patient = null;
  state.identity = null;
  $("#ins-identity").hidden = true;
  $("#ins-sex").hidden = $("#ins-sex-label").hidden = !needsSex(b);
  $("#ins-sex").value = "";
  const label = `${b.lastName} ${b.firstName}`;
  $("#patient-done").textContent = `Patient : ${label} (né(e) le ${displayBirth(birth)})`;
  $("#patient-done").hidden = false;
  $("#docs-patient").textContent = `— ${label}`;
  pill("#patient-state", `Patient : ${label}`, true);
  setStep("#step-patient", "done");
  setStep("#step-docs", "locked");
  if (state.cps) {
    setStep("#step-ins", "todo");
  } else {
    setStep("#step-cps", "todo");
  }
}

// ---- 4. INS qualification (INSi) -------------------------------------------------------------------

$("#ins-search").addEventListener("click", (ev) =>
  guarded(ev.currentTarget, "Qualification de l'INS", async () => {
    const wanted = state.beneficiary;
    if (!wanted) throw { code: "INVALID_PARAMS", messageFr: "Choisissez d'abord le patient sur la carte Vitale." };
    const sex = wanted.hasOwnIns ? undefined : $("#ins-sex").value;
    if (!wanted.hasOwnIns && !sex) {
      throw { code: "INVALID_PARAMS", messageFr: "Indiquez le sexe du patient : la carte ne porte pas son propre NIR." };
    }
    const found = await qualifyIns(state.bridge, {
      vitaleReader: state.vitaleReader, index: wanted.index, sex, cpsReader: state.cpsReader,
    });
    state.identity = found.identity;
    state.patient = patientFromIdentity(found.identity);
    renderIdentity($("#ins-identity"), found.identity, found.source);
    pill("#patient-state", `Patient : ${found.identity.birthName} ${found.identity.firstName} (INS qualifié)`, true);
    setStep("#step-ins", "done");
    await checkAccess();
  }),
);

// ---- 3. CPS login --------------------------------------------------------------------------------

function holderName(info) {
  const h = info.holder || {};
  return [h.civility, h.firstName, h.lastName].filter(Boolean).join(" ");
}

/** Both CPS generations: the CPS4 (issued since 2025) and the CPS3. */
const CPS_KINDS = ["CPS4", "CPS3"];

/** The reader holding a card of one of `kinds` (CPS3/CPS4, VITALE2): calls then name it, so a second card never confuses them. */
async function cardReader(kinds, label) {
  const { readers } = await state.bridge.readersList();
  const found = readers.filter((r) => r.cardPresent && kinds.includes(r.kind));
  if (found.length === 0) {
    throw { code: "NO_CARD", messageFr: `Aucune ${label} n'est insérée dans un lecteur.` };
  }
  return found[0].name;
}

$("#read-cps").addEventListener("click", (ev) =>
  guarded(ev.currentTarget, "Lecture de la CPS", async () => {
    const reader = await cardReader(CPS_KINDS, "carte CPS");
    const info = await state.bridge.cpsRead({ reader });
    $("#cps-holder").textContent = `${holderName(info)} — essais restants : ${info.pin.triesLeft}/${info.pin.triesMax}`;
  }),
);

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#pin");
  guarded($("#login"), "Identification CPS", async () => {
    const pin = input.value;
    input.value = ""; // the PIN stays in this page as briefly as possible
    const reader = await cardReader(CPS_KINDS, "carte CPS");
    await state.bridge.cpsLogin({ pin, reader });
    const info = await state.bridge.cpsRead({ reader });
    // DIRECTE: the DMP calls are authenticated and signed by this card (in this reader).
    await state.bridge.call("dmp.context.set", { authMode: "DIRECTE", reader });
    state.cps = holderName(info);
    state.cpsReader = reader;
    $("#cps-done").textContent = `Identifié : ${state.cps} (accès DIRECTE par la carte CPS, lecteur ${reader})`;
    $("#cps-done").hidden = false;
    $("#login-form").hidden = true;
    pill("#cps-state", `CPS : ${state.cps}`, true);
    setStep("#step-cps", "done");
    if (state.beneficiary) setStep("#step-ins", "todo");
  });
});

// ---- 5. the patient's DMP: status and authorisation (TD0.2, TD0.3) --------------------------------

const DMP_LABELS = { exists: "ouvert", closed: "fermé", unknown: "aucun DMP pour cet INS" };
const AUTHORIZATION_LABELS = {
  valid: "valide", expired: "expirée", blocked: "bloquée par le patient", none: "aucune",
};

/** TD0.2 for the chosen patient; documents are listed only once the caller is authorised. */
async function checkAccess() {
  if (!state.patient || !state.cps) return;
  setStep("#step-access", "todo");
  setStep("#step-docs", "locked");
  const status = await guarded($("#check-access"), "Test d'existence du DMP", () =>
    state.bridge.dmpPatientStatus(patientRef()), { keepMessage: true });
  if (status) renderAccess(status);
}

function fact(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  el.className = cls || "";
}

function renderAccess(status) {
  state.access = status;
  document.body.dataset.authorization = status.authorization || "none";
  document.body.dataset.dmp = status.dmp;
  fact("#access-dmp", DMP_LABELS[status.dmp] || status.dmp, status.dmp === "exists" ? "ok" : "bad");
  const authorization = status.authorization || "none";
  fact("#access-authorization", AUTHORIZATION_LABELS[authorization] || authorization, authorization === "valid" ? "ok" : "bad");
  fact("#access-treating", status.treatingPhysician ? "oui" : "non");
  fact("#access-mes", status.mes === null ? "non précisé" : status.mes ? "associé" : "non associé");
  $("#access-facts").hidden = false;
  // Declaring oneself authorised is offered where the rights matrix allows it (blocked: only the patient can lift it).
  const declare = status.rights.find((r) => r.transaction === "TD0.3" && r.operation === "Se déclarer autorisé");
  const canDeclare = status.dmp === "exists" && ["none", "expired"].includes(authorization)
    && declare && declare.verdict !== "refused";
  $("#declare-form").hidden = !canDeclare;
  if (authorization === "valid" && status.dmp === "exists") {
    $("#access-done").textContent = `Autorisé sur le DMP — acteur : ${status.actor}.`;
    $("#access-done").hidden = false;
    setStep("#step-access", "done");
    setStep("#step-docs", "todo");
    refreshDocuments();
  } else {
    $("#access-done").hidden = true;
    if (authorization === "blocked") {
      showInfo("Accès bloqué", "Le patient vous a bloqué l'accès à son DMP : lui seul peut lever ce blocage.");
    }
  }
}

$("#declare-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  guarded($("#declare"), "Déclaration de l'autorisation", async () => {
    await state.bridge.dmpPatientAuthorize({
      patient: patientRef(), action: "declare", patientAgreement: $("#patient-agreed").checked,
    });
    $("#declare-form").reset();
    await checkAccess();
  });
});

$("#check-access").addEventListener("click", () => checkAccess());

// ---- 6. documents --------------------------------------------------------------------------------

function patientRef() {
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

async function refreshDocuments() {
  if (!state.patient || !state.cps) return;
  $("#docs-loading").hidden = false;
  try {
    await guarded($("#refresh"), "Recherche des documents", async () => {
      const { documents } = await state.bridge.call("dmp.documents.find", {
        patient: patientRef(),
        statuses: ["approved", "archived"],
      });
      renderDocuments(documents);
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
    const date = document.createElement("td");
    date.textContent = dateOf(doc.creationTime);
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
      actionButton(
        doc.hiddenFromPatient ? "Rendre visible au patient" : "Cacher au patient",
        "Visibilité pour le patient (TD3.3b)",
        (b) => update(b, "Visibilité patient", "dmp.documents.setVisibility", { hiddenFromPatient: !doc.hiddenFromPatient }, doc),
        "patient",
      ),
      actionButton(
        doc.status === "archived" ? "Désarchiver" : "Archiver",
        "Archiver ou désarchiver (TD3.3d)",
        (b) => update(b, "Archivage", "dmp.documents.setStatus", { status: doc.status === "archived" ? "approved" : "archived" }, doc),
        "archive",
      ),
      actionButton("Supprimer", "Supprimer du DMP (TD3.3c)", (b) => remove(b, doc), "danger delete"),
    );
    tr.append(title, type, date, flags, actions);
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
  await guarded(button, "Ouverture du document", async () => {
    const got = await state.bridge.call("dmp.documents.get", { patient: patientRef(), uniqueId: doc.uniqueId });
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

function readAsBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

/** `dmp.progress` notifications of our submission: bytes sent to the DMP so far. */
function showProgress({ progressId, sent, total }) {
  if (progressId !== state.progressId || !total) return;
  const percent = Math.floor((100 * sent) / total);
  $("#submit-progress").value = percent;
  $("#submit-step").textContent = percent < 100 ? `Envoi au DMP : ${percent} %` : "Transmis, vérification par le DMP…";
  document.body.dataset.progress = String(percent);
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
  $("#submit-progress").value = 0;
  $("#submit-step").textContent = "Signature par la carte CPS…";
  $("#submit-state").hidden = false;
  document.body.dataset.submitting = "true";
  guarded($("#submit"), "Envoi au DMP", async () => {
    const select = $("#type");
    const result = await state.bridge.call(
      "dmp.documents.submit",
      {
        patient: state.patient,
        content: await readAsBase64(file),
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

document.body.dataset.ready = "true";
