// Demo DPI: the patient's DMP before any document — status (TD0.2) and the caller's authorisation (TD0.3).

import { refreshDocuments, patientRef } from "./documents.js";
import { $, guarded, setStep, showInfo, state } from "./ui.js";

const DMP_LABELS = { exists: "ouvert", closed: "fermé", unknown: "aucun DMP pour cet INS" };
const AUTHORIZATION_LABELS = {
  valid: "valide", expired: "expirée", blocked: "bloquée par le patient", none: "aucune",
};

/** TD0.2 for the chosen patient; documents are listed only once the caller is authorised. */
export async function checkAccess() {
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

