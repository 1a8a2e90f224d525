// Demo DPI: what every panel shares — the page state, the message banner (French message and next step),
// the step markers and the header pills.

export const $ = (sel) => document.querySelector(sel);
export const state = { sdk: null, bridge: null, patient: null, beneficiary: null, identity: null, cps: null, openedUrl: null };
// Exposed for scripted checks (the end-to-end test reads it); holds no secret.
window.dmpDemo = state;

/** Called with (code, error) for every error shown: panels react to the codes that concern them. */
export const errorHandlers = [];

// ---- messages ---------------------------------------------------------------------------------

/** The next step the bridge suggests for an error (SDK `err.hint`, or `data.hint_fr`), if any. */
export function hintOf(err) {
  return (err && (err.hint || (err.data && (err.data.hint_fr || err.data.hint)))) || "";
}

export function showError(err, context) {
  const code = err && err.code ? err.code : "ERREUR";
  // Never a bare code or an internal identifier: the French message, then what to do next.
  let text = err && err.messageFr ? err.messageFr : "Erreur inattendue : voir le journal du pont.";
  if (err && err.data && err.data.dmpCode) text += ` — code DMP : ${err.data.dmpCode}`;
  setMessage("error", context, text, code, hintOf(err));
  for (const handler of errorHandlers) handler(code, err);
}

export function showInfo(title, text) {
  setMessage("info", title, text, "", "");
}

export function setMessage(kind, title, text, code, hint) {
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

export function clearMessage() {
  $("#message").hidden = true;
}

$("#message-close").addEventListener("click", clearMessage);

/** Run an action with its button disabled; errors go to the message banner in French. */
export async function guarded(button, context, action, { keepMessage = false } = {}) {
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

export function setStep(id, value) {
  $(id).dataset.state = value;
}

export function pill(id, text, on) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("off", !on);
  el.hidden = false;
}
