// Demo DPI screen: the steps a care software goes through with the local DMP bridge.
// Everything here uses only the public SDK (loaded from the bridge) and the documented JSON-RPC methods.
// The screen follows the bridge's events: cards pulled and put back, the smart-card service and the bridge
// itself going away and coming back; the panels are modules (ui, cps-panel, ins-panel, access-panel, documents).

import { checkAccess } from "./access-panel.js";
import { CPS_KINDS, PCSC_DOWN, cardReader, cpsLoggedOut, onCardInserted, onCardRemoved, readCps } from "./cps-panel.js";
import { clearPatientDmpView, showProgress } from "./documents.js";
import { needsSex, patientFromIdentity, qualifyIns, renderIdentity } from "./ins-panel.js";
import { $, guarded, pill, setStep, showError, showInfo, state } from "./ui.js";

const PORT = Number(document.querySelector('meta[name="dmp-bridge-port"]').content);
const BRIDGE = `127.0.0.1:${PORT}`;

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
          messageFr: `Le pont DMP ne répond pas sur le port ${PORT}.`,
          hint: "Vérifiez qu'il est lancé (icône du pont ; ou « .venv/bin/dmp-bridge sandbox » dans le bac à sable), "
            + "puis cliquez de nouveau sur « Se connecter au pont ».",
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
    const answer = await state.bridge.pair({ onPending: showPairing });
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

/** The pairing code the bridge shows, and the command that approves it at the workstation. */
function showPairing({ code }) {
  $("#pair-code").textContent = `${code.slice(0, 3)} ${code.slice(3)}`;
  $("#pair-command").textContent = `dmp-bridge origins approve ${code}`;
  $("#pairing").hidden = false;
}

/** The smart-card service's state, as a banner that stays while it is down. */
function showPcsc(up) {
  // The bridge drops its card sessions with the service: once it is back, the PIN is needed again.
  if (!up && state.cps) cpsLoggedOut("pcsc");
  if (!up) {
    // Nothing read from a card before the outage is current any more.
    state.cpsSeen = null;
    $("#cps-holder").textContent = "";
    $("#cps-tries").hidden = true;
  }
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
    await state.bridge.pair({ onPending: showPairing }).finally(() => ($("#pairing").hidden = true));
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


document.body.dataset.ready = "true";
