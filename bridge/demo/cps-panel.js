// Demo DPI: the professional's CPS card. Its state follows the bridge's card events (pulled: logged out;
// put back: reread and the PIN field offered), the PIN counter is live, the last try needs a confirmation,
// and a multi-situation card offers its situations d'exercice before any DMP call.

import { checkAccess } from "./access-panel.js";
import { clearPatientDmpView } from "./documents.js";
import { $, errorHandlers, guarded, pill, setStep, showError, showInfo, state } from "./ui.js";

/** "DR PAUL MARTIN": the holder as a person reads it. */
export function holderName(info) {
  const h = info.holder || {};
  return [h.civility, h.firstName, h.lastName].filter(Boolean).join(" ");
}

/** Both CPS generations: the CPS4 (issued since 2025) and the CPS3. */
export const CPS_KINDS = ["CPS4", "CPS3"];
export const PCSC_DOWN = {
  code: "PCSC_UNAVAILABLE",
  messageFr: "Le service carte à puce ne répond pas : les lecteurs et les cartes sont inaccessibles.",
  hint: "Redémarrez le service carte à puce (Linux : « sudo systemctl restart pcscd » ; Windows : service "
    + "« Carte à puce »), puis réessayez. Si cela se répète, appelez l'assistance.",
};

/** The reader holding a card of one of `kinds` (CPS3/CPS4, VITALE2): calls then name it, so a second card never confuses them. */
export async function cardReader(kinds, label) {
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
export function showTries(left, max = state.triesMax || 3) {
  state.triesLeft = left;
  state.triesMax = max;
  const el = $("#cps-tries");
  el.textContent = `Essais restants : ${left}/${max}`;
  el.className = left <= 1 ? "tries bad" : "tries";
  el.dataset.left = String(left);
  el.hidden = false;
}

/** Read the CPS in `reader` (no PIN): holder and tries counter; the PIN field is offered again. */
export async function readCps(reader) {
  const info = await state.bridge.cpsRead({ reader });
  state.cpsSeen = { reader, name: holderName(info), nationalId: (info.holder || {}).nationalId };
  $("#cps-holder").textContent = holderName(info);
  showTries(info.pin.triesLeft, info.pin.triesMax);
  return info;
}

/** Back to "not identified": the card is out, the login is lost, or the bridge restarted. The patient stays. */
export function cpsLoggedOut(why) {
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

/** `card.removed`: the CPS out logs the professional out; the Vitale card out leaves the patient, marked. */
export function onCardRemoved({ reader }) {
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

/** `card.inserted`: a CPS is reread and the PIN field offered; a Vitale card is read if no patient is chosen. */
export async function onCardInserted({ reader }) {
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
    state.vitaleReader = reader;
    const mark = " — carte Vitale retirée";
    $("#patient-state").textContent = $("#patient-state").textContent.replace(mark, "");
    if (!state.beneficiary) $("#read-vitale").click(); // a DPI reads the patient's card as soon as it is in
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

errorHandlers.push((code, err) => {
  if (["PIN_REQUIRED", "CARD_REMOVED", "PIN_BLOCKED"].includes(code)) cpsLoggedOut();
  // Every PIN refusal carries what is left on the card (PIN_INCORRECT: 2, PIN_BLOCKED: 0...).
  if (err && err.data && Number.isInteger(err.data.triesLeft)) showTries(err.data.triesLeft);
});
