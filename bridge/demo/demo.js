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

/** The next step the bridge suggests for an error (SDK `err.hint`, or `data.hint_fr`), if any. */
function hintOf(err) {
  return (err && (err.hint || (err.data && (err.data.hint_fr || err.data.hint)))) || "";
}

function showError(err, context) {
  const code = err && err.code ? err.code : "ERREUR";
  // Never a bare code or an internal identifier: the French message, then what to do next.
  let text = err && err.messageFr ? err.messageFr : "Erreur inattendue : voir le journal du pont.";
  if (err && err.data && err.data.dmpCode) text += ` — code DMP : ${err.data.dmpCode}`;
  setMessage("error", context, text, code, hintOf(err));
  if (["PIN_REQUIRED", "CARD_REMOVED", "PIN_BLOCKED"].includes(code)) cpsLoggedOut();
  if (code === "PIN_INCORRECT" && err.data && Number.isInteger(err.data.triesLeft)) showTries(err.data.triesLeft);
}

function showInfo(title, text) {
  setMessage("info", title, text, "", "");
}

function setMessage(kind, title, text, code, hint) {
  const box = $("#message");
  box.className = `message ${kind === "info" ? "info" : ""}`;
  $("#message-title").textContent = title ? `${title} :` : "";
  $("#message-text").textContent = text;
  $("#message-hint").textContent = hint || "";
  $("#message-hint").hidden = !hint;
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
      state.bridge.on("connection", onConnection);
      state.bridge.on("card.removed", onCardRemoved);
      state.bridge.on("card.inserted", (e) => onCardInserted(e).catch((err) => showError(err, "Carte insérée")));
      state.bridge.on("readers.changed", ({ pcsc }) => showPcsc(pcsc !== "unavailable"));
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
    setStep("#step-cps", state.cps ? "done" : "todo");
    showPcsc((await state.bridge.readersList()).pcsc !== "unavailable");
  }).finally(() => ($("#pairing").hidden = true)),
);

/** The smart-card service's state, as a banner that stays while it is down. */
function showPcsc(up) {
  document.body.dataset.pcsc = up ? "up" : "down";
  $("#pcsc-banner").hidden = up;
  $("#pcsc-text").textContent = PCSC_DOWN.messageFr;
  $("#pcsc-hint").textContent = PCSC_DOWN.hint;
}

/** The bridge's connection: a banner while it is unreachable; on its return, a new session (login lost). */
function onConnection({ state: s }) {
  const labels = { open: "Pont : connecté", reconnecting: "Pont : injoignable, reconnexion…", closed: "Pont : déconnecté" };
  pill("#conn-state", labels[s] || s, s === "open");
  document.body.dataset.bridge = s;
  $("#bridge-banner").hidden = s === "open";
  if (s !== "open") {
    // The bridge holds the card sessions: when it is gone, so is the CPS login (the patient stays).
    cpsLoggedOut("bridge");
    return;
  }
  guarded(null, "Reconnexion au pont", async () => {
    // A new connection proves the page's approval again before any card method.
    await state.bridge.pair({ onPending: () => showInfo("Pont relancé", "autorisez de nouveau cette page.") });
    showPcsc((await state.bridge.readersList()).pcsc !== "unavailable");
    const reader = await cardReader(CPS_KINDS, "carte CPS").catch(() => null);
    if (reader) await readCps(reader);
    showInfo("Pont de nouveau joignable", "Saisissez de nouveau votre code porteur pour accéder au DMP.");
  }, { keepMessage: true });
}

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

/** Forget what the DMP said about the current patient: status, list, retrieved document. */
function clearPatientDmpView() {
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

function selectPatient(button, b, birth, index) {
  for (const other of document.querySelectorAll(".beneficiary")) other.classList.remove("selected");
  button.classList.add("selected");
  // No DMP call before the INSi has qualified this person's INS; nothing of the previous patient stays.
  state.beneficiary = { index, hasOwnIns: b.hasOwnIns, sex: b.hasOwnIns ? genderOf(b.nir) : null };
  state.patient = null;
  state.identity = null;
  state.patientSeq = (state.patientSeq || 0) + 1;
  clearPatientDmpView();
  $("#ins-identity").replaceChildren();
  delete $("#ins-identity").dataset.ins;
  $("#ins-identity").hidden = true;
  setStep("#step-access", "locked");
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
const PCSC_DOWN = {
  code: "PCSC_UNAVAILABLE",
  messageFr: "Le service carte à puce ne répond pas : les lecteurs et les cartes sont inaccessibles.",
  hint: "Redémarrez le service carte à puce (Linux : « sudo systemctl restart pcscd » ; Windows : service "
    + "« Carte à puce »), puis réessayez. Si cela se répète, appelez l'assistance.",
};

/** The reader holding a card of one of `kinds` (CPS3/CPS4, VITALE2): calls then name it, so a second card never confuses them. */
async function cardReader(kinds, label) {
  const listing = await state.bridge.readersList();
  // No PC/SC service is not "no card": the person must restart a service, not look for a card.
  if (listing.pcsc === "unavailable") throw PCSC_DOWN;
  const found = listing.readers.filter((r) => r.cardPresent && kinds.includes(r.kind));
  if (found.length === 0) {
    throw {
      code: "NO_CARD",
      messageFr: `Aucune ${label} n'est insérée dans un lecteur.`,
      hint: `Insérez la ${label} (puce vers le haut) : la page la détecte d'elle-même.`,
    };
  }
  return found[0].name;
}

/** The live PIN counter: what the card (or the last refusal) says is left. */
function showTries(left, max = state.triesMax || 3) {
  state.triesLeft = left;
  state.triesMax = max;
  const el = $("#cps-tries");
  el.textContent = `Essais restants : ${left}/${max}`;
  el.className = left <= 1 ? "tries bad" : "tries";
  el.dataset.left = String(left);
  el.hidden = false;
}

/** Read the CPS in `reader` (no PIN): holder and tries counter; the PIN field is offered again. */
async function readCps(reader) {
  const info = await state.bridge.cpsRead({ reader });
  state.cpsSeen = { reader, name: holderName(info), nationalId: (info.holder || {}).nationalId };
  $("#cps-holder").textContent = holderName(info);
  showTries(info.pin.triesLeft, info.pin.triesMax);
  return info;
}

/** Back to "not identified": the card is out, the login is lost, or the bridge restarted. The patient stays. */
function cpsLoggedOut(why) {
  const wasIn = Boolean(state.cps);
  state.cps = null;
  state.cpsReader = null;
  state.situations = [];
  $("#cps-done").hidden = true;
  $("#situation-row").hidden = true;
  $("#login-form").hidden = false;
  document.body.dataset.cps = "out";
  if (wasIn || why) pill("#cps-state", "CPS : non identifié", false);
  if ($("#step-bridge").dataset.state === "done") setStep("#step-cps", "todo");
  // Every DMP step needs the card: locked until the PIN is entered again (what was shown is cleared).
  for (const step of ["#step-ins", "#step-access", "#step-docs"]) setStep(step, "locked");
  clearPatientDmpView();
}

function onCardRemoved({ reader }) {
  if (state.cpsSeen && state.cpsSeen.reader === reader) {
    state.cpsSeen = null;
    $("#cps-holder").textContent = "";
    $("#cps-tries").hidden = true;
    cpsLoggedOut("removed");
    showInfo("Carte CPS retirée", "Vous n'êtes plus identifié : réinsérez votre carte CPS et saisissez votre code porteur.");
  } else if (state.vitaleReader === reader) {
    // A DPI keeps the patient's file open when the Vitale card is pulled (the INS, once qualified, comes from
    // the INSi, not from the card): the chosen patient stays, marked, and the unchosen card entries go.
    state.vitaleReader = null;
    for (const li of document.querySelectorAll("#beneficiaries li")) {
      if (!li.querySelector(".selected")) li.remove();
    }
    document.body.dataset.vitale = "out";
    if (state.beneficiary) $("#patient-state").textContent += " — carte Vitale retirée";
    showInfo("Carte Vitale retirée", state.beneficiary ? "Le patient choisi reste sélectionné." : "lecteur " + reader);
  } else {
    showInfo("Carte retirée", `lecteur ${reader}`);
  }
}

async function onCardInserted({ reader }) {
  if ($("#step-bridge").dataset.state !== "done") return;
  const { readers } = await state.bridge.readersList();
  const row = readers.find((r) => r.name === reader);
  if (!row) return;
  if (CPS_KINDS.includes(row.kind) && !state.cps) {
    // Reread at once: the holder and the tries counter, and the PIN field is offered again.
    await guarded(null, "Lecture de la CPS", () => readCps(reader), { keepMessage: true });
    $("#login-form").hidden = false;
    setStep("#step-cps", "todo");
    $("#pin").focus();
  } else if (row.kind === "VITALE2") {
    document.body.dataset.vitale = "in";
    if (!state.beneficiary) $("#read-vitale").click();
  }
}

$("#read-cps").addEventListener("click", (ev) =>
  guarded(ev.currentTarget, "Lecture de la CPS", async () => readCps(await cardReader(CPS_KINDS, "carte CPS"))),
);

/** Ask, in a dialog, whether to spend the card's last PIN try; resolves true when the person confirms. */
function confirmLastTry() {
  const dialog = $("#last-try");
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function login(pin, reader, allowLastTry) {
  try {
    return await state.bridge.cpsLogin({ pin, reader, allowLastTry });
  } catch (err) {
    if (err.code !== "PIN_LAST_TRY" || allowLastTry) throw err;
    showTries(1);
    if (!(await confirmLastTry())) {
      throw { code: "PIN_LAST_TRY", messageFr: "Saisie annulée : le dernier essai de la carte n'a pas été utilisé." };
    }
    return login(pin, reader, true);
  }
}

/** The situations d'exercice of a multi-situation card, offered before any DMP call. */
function renderSituations(situations, chosen) {
  state.situations = situations;
  const select = $("#situation");
  select.replaceChildren();
  for (const sit of situations) {
    const option = document.createElement("option");
    option.value = String(sit.index);
    const mode = { L: "libéral", S: "salarié", B: "bénévole" }[sit.practiceMode] || "mode d'exercice non précisé";
    option.textContent = `${sit.structureName || "Structure sans nom"} (${mode})`;
    select.append(option);
  }
  select.value = String(chosen);
  $("#situation-row").hidden = situations.length < 2;
}

$("#situation").addEventListener("change", (ev) =>
  guarded(ev.currentTarget, "Choix de la situation d'exercice", async () => {
    const situation = Number(ev.currentTarget.value);
    await state.bridge.call("dmp.context.set", { authMode: "DIRECTE", reader: state.cpsReader, situation });
    state.situation = situation;
    document.body.dataset.situation = String(situation);
  }),
);

$("#login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("#pin");
  guarded($("#login"), "Identification CPS", async () => {
    let pin = input.value;
    input.value = ""; // the PIN stays in this page as briefly as possible
    const reader = await cardReader(CPS_KINDS, "carte CPS");
    let result;
    try {
      result = await login(pin, reader, false);
    } finally {
      pin = null;
    }
    const info = await readCps(reader);
    const situations = result.situations || [];
    const situation = result.situation ?? (situations[0] ? situations[0].index : null);
    // DIRECTE: the DMP calls are authenticated and signed by this card (in this reader), in this situation.
    await state.bridge.call("dmp.context.set", {
      authMode: "DIRECTE", reader, ...(situation === null ? {} : { situation }),
    });
    renderSituations(situations, situation);
    state.situation = situation;
    document.body.dataset.situation = String(situation);
    state.cps = holderName(info);
    state.cpsReader = reader;
    document.body.dataset.cps = "in";
    $("#cps-done").textContent = `Identifié : ${state.cps} (accès DIRECTE par la carte CPS, lecteur ${reader})`;
    $("#cps-done").hidden = false;
    $("#login-form").hidden = true;
    pill("#cps-state", `CPS : ${state.cps}`, true);
    setStep("#step-cps", "done");
    if (state.patient) {
      setStep("#step-ins", "done");
      await checkAccess();
    } else if (state.beneficiary) {
      setStep("#step-ins", "todo");
    }
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
  const seq = state.patientSeq;
  const status = await guarded($("#check-access"), "Test d'existence du DMP", () =>
    state.bridge.dmpPatientStatus(patientRef()), { keepMessage: true });
  // An answer about a patient no longer on screen is dropped.
  if (status && seq === state.patientSeq && state.cps) renderAccess(status);
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

async function refreshDocuments() {
  if (!state.patient || !state.cps) return;
  $("#docs-loading").hidden = false;
  const seq = state.patientSeq;
  try {
    await guarded($("#refresh"), "Recherche des documents", async () => {
      const { documents } = await state.bridge.call("dmp.documents.find", {
        patient: patientRef(),
        statuses: ["approved", "archived"],
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
function showProgress({ progressId, sent, total }) {
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

document.body.dataset.ready = "true";
