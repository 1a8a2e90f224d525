// Diagnostics page for the helpdesk: one traffic light per section, each problem with what to do (the same
// words as `dmp-bridge doctor`), an offline notice when the bridge stops, and a report to copy.
// Served by the bridge with a secret (meta tag) it proves on connecting; read-only methods. It shows no
// secret and no personal data: diagnostics.report holds codes, states and ATRs only.
import { connect } from "/sdk/dmp-bridge.js";

const TEXT = {
  fr: {
    title: "Diagnostic du pont DMP", copy: "Copier le rapport", bridge: "Pont local", readers: "Lecteurs et cartes",
    reader: "Lecteur", card: "Carte", state: "État", todo: "Que faire", error: "Erreur",
    origins: "Sites autorisés", errors: "Erreurs récentes", when: "Heure", method: "Méthode",
    connecting: "Connexion…", open: "Connecté", closed: "Déconnecté", reconnecting: "Reconnexion…",
    version: "Version", port: "Port", platform: "Système", pcscTitle: "Service carte à puce (PC/SC)",
    pcscOk: "Le service carte à puce répond.",
    pcscKo: "Le service carte à puce (pcscd) ne répond pas : aucune carte ne peut être lue.",
    pcscAdvice: "Redémarrez-le : « sudo systemctl restart pcscd.socket pcscd » ; s'il ne démarre pas, réinstallez le paquet pcscd.",
    noReader: "Aucun lecteur détecté : branchez le lecteur (ou un autre port USB).", empty: "vide",
    none: "Aucun", noErrors: "Aucune erreur récente.",
    pending: (n) => `${n} demande(s) d'appairage en attente : dmp-bridge origins pending`,
    copied: "Rapport copié dans le presse-papiers.", copyFailed: "Copie impossible : sélectionnez le texte ci-dessous.",
    noService: "Pilotes de carte non chargés : redémarrez le pont.", other: "English", repair: "nouvel appairage nécessaire",
    dmpTitle: "Accès au DMP", dmpTest: "Tester l'accès au DMP", dmpRunning: "Test en cours…",
    dmpNotRun: "Pas encore testé.", dmpFailed: "Le test n'a pas pu être lancé.",
    offline: (at) => `Le pont ne répond plus (arrêté ?) : les informations ci-dessous datent de ${at} et ne sont plus à jour. Relancez-le (« dmp-bridge run » ou le menu des applications) ; la page se reconnectera seule.`,
    backend: { pkcs11: "Cryptolib CPS (PKCS#11)", pcsc: "pilote PC/SC du pont" }, readBy: "lue par",
    outbox: "File d'envoi au DMP", job: "Tâche", why: "Explication", feedOff: "Alimentation automatique désactivée ([feed] enabled = false).",
    states: { queued: "en file", sending: "en cours", sent: "envoyés", waiting: "en attente", unqualified: "INS non qualifiée", failed: "en échec", cancelled: "annulés" },
    oldest: (j) => `Plus ancienne tâche en attente : n° ${j.id} (${j.attempts} essai(s))${j.message_fr ? " — " + j.message_fr : ""}`,
    noFailure: "Aucun échec définitif.",
  },
  en: {
    title: "DMP bridge diagnostics", copy: "Copy report", bridge: "Local bridge", readers: "Readers and cards",
    reader: "Reader", card: "Card", state: "State", todo: "What to do", error: "Error",
    origins: "Approved sites", errors: "Recent errors", when: "Time", method: "Method",
    connecting: "Connecting…", open: "Connected", closed: "Disconnected", reconnecting: "Reconnecting…",
    version: "Version", port: "Port", platform: "System", pcscTitle: "Smart card service (PC/SC)",
    pcscOk: "The smart card service answers.",
    pcscKo: "The smart card service (pcscd) does not answer: no card can be read.",
    pcscAdvice: "Restart it: `sudo systemctl restart pcscd.socket pcscd`; if it does not start, reinstall the pcscd package.",
    noReader: "No reader found: plug the reader in (or try another USB port).", empty: "empty",
    none: "None", noErrors: "No recent error.",
    pending: (n) => `${n} pending pairing request(s): dmp-bridge origins pending`,
    copied: "Report copied to the clipboard.", copyFailed: "Copy failed: select the text below.",
    noService: "Card drivers not loaded: restart the bridge.", other: "Français", repair: "pairing needed again",
    dmpTitle: "DMP access", dmpTest: "Test DMP access", dmpRunning: "Testing…",
    dmpNotRun: "Not tested yet.", dmpFailed: "The test could not be run.",
    offline: (at) => `The bridge no longer answers (stopped?): the information below dates from ${at} and is out of date. Start it again (\`dmp-bridge run\` or the applications menu); the page reconnects by itself.`,
    backend: { pkcs11: "Cryptolib CPS (PKCS#11)", pcsc: "bridge's PC/SC driver" }, readBy: "read by",
    outbox: "DMP feeding queue", job: "Job", why: "Explanation (French)", feedOff: "Unattended feeding is off ([feed] enabled = false).",
    states: { queued: "queued", sending: "sending", sent: "sent", waiting: "waiting", unqualified: "INS not qualified", failed: "failed", cancelled: "cancelled" },
    oldest: (j) => `Oldest waiting job: #${j.id} (${j.attempts} attempt(s))${j.reason ? " — " + j.reason : ""}`,
    noFailure: "No permanent failure.",
  },
};

const RANK = { ok: 0, info: 1, skipped: 2, warning: 3, problem: 4 };
const worst = (statuses, empty = "ok") =>
  statuses.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), statuses.length ? "ok" : empty);

let lang = localStorage.getItem("dmp-bridge-lang") || "fr";
let report = null;
let reportAt = null;
let dmpCheck = null;
let dmpState = "idle";
let connState = "connecting";
let everOpen = false;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function light(status) {
  const span = el("span", null, "light");
  span.dataset.light = status;
  span.setAttribute("aria-label", status);
  return span;
}

const when = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(lang === "fr" ? "fr-FR" : "en-GB");
};

function renderReaders() {
  const rows = $("readers");
  rows.replaceChildren();
  const statuses = [];
  if (!report.readers.length) {
    const tr = el("tr");
    const td = el("td", t("noReader"), "warn");
    td.colSpan = 5;
    tr.append(td);
    rows.append(tr);
    statuses.push("problem");
  }
  for (const r of report.readers) {
    const card = r.card || {};
    const checks = r.checks || [];
    const tr = el("tr");
    // A CPS names its type, its generation and the software that read it (the Cryptolib or the bridge's driver).
    const via = card.backend ? ` — ${t("readBy")} ${t("backend")[card.backend] || card.backend}` : "";
    const kind = r.cardPresent ? `${card.type || ""}${via}` : t("empty");
    const state = el("td");
    const todo = el("td", null, "todo");
    if (r.cardPresent && !report.cardService) {
      state.append(light("warning"), document.createTextNode(t("noService")));
      statuses.push("warning");
    }
    for (const c of checks) {
      const line = el("div");
      line.append(light(c.status), document.createTextNode(c.summary));
      state.append(line);
      if (c.advice) todo.append(el("div", c.advice, "advice"));
      statuses.push(c.status);
    }
    if (!r.cardPresent) state.append(light("ok"), document.createTextNode(t("empty")));
    tr.append(el("td", r.name), el("td", kind, r.cardPresent ? "" : "absent"), state, todo, el("td", r.atr || "—", "atr"));
    rows.append(tr);
  }
  $("sec-readers").dataset.light = worst(statuses);
}

function renderDmp() {
  const list = $("dmp");
  list.replaceChildren();
  $("dmp-test").disabled = dmpState === "running";
  if (dmpState === "running") list.append(el("li", t("dmpRunning")));
  else if (dmpState === "failed") list.append(el("li", t("dmpFailed"), "warn"));
  else if (!dmpCheck) list.append(el("li", t("dmpNotRun"), "absent"));
  else {
    for (const f of dmpCheck.findings) {
      const li = el("li");
      li.append(light(f.status), document.createTextNode(f.summary));
      if (f.advice) li.append(el("span", f.advice, "advice"));
      list.append(li);
    }
  }
  $("sec-dmp").dataset.light = dmpCheck ? dmpCheck.status : dmpState === "failed" ? "warning" : "unknown";
}

function render() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    const value = t(node.dataset.i18n);
    if (typeof value === "string") node.textContent = value;
  }
  $("lang").textContent = t("other");
  $("conn").dataset.state = connState;
  $("conn").textContent = t(connState);
  // Served by the bridge itself: when it stops, the page must say its content is stale, not look current.
  const stale = everOpen && connState !== "open";
  document.body.dataset.stale = String(stale);
  $("offline").hidden = !stale;
  $("offline").textContent = stale ? t("offline")(reportAt ? reportAt.toLocaleTimeString(lang === "fr" ? "fr-FR" : "en-GB") : "—") : "";
  $("sec-bridge").dataset.light = connState === "open" ? "ok" : everOpen ? "problem" : "unknown";
  renderDmp();
  if (!report) return;
  const b = $("bridge");
  b.replaceChildren();
  for (const [k, v] of [["version", report.bridge.version], ["port", report.bridge.port], ["platform", report.bridge.platform]]) {
    b.append(el("dt", t(k)), el("dd", v));
  }
  const pcscOk = report.pcsc === "available";
  $("pcsc").textContent = pcscOk ? t("pcscOk") : t("pcscKo");
  $("pcsc-advice").textContent = pcscOk ? "" : t("pcscAdvice");
  $("sec-pcsc").dataset.light = pcscOk ? "ok" : "problem";
  if (pcscOk) renderReaders();
  else {
    $("readers").replaceChildren();
    $("sec-readers").dataset.light = "unknown";
  }
  const origins = $("origins");
  origins.replaceChildren(...(report.origins.length ? report.origins.map((o) => el("li", `${o.origin} (${when(o.approvedAt)})${o.status === "pairing-needed" ? " — " + t("repair") : ""}`)) : [el("li", t("none"), "absent")]));
  $("pending").textContent = report.pendingPairings ? t("pending")(report.pendingPairings) : "";
  renderOutbox(report.outbox);
  const errors = $("errors");
  const recent = report.recentErrors.slice(-20).reverse();
  errors.replaceChildren(...(recent.length ? recent.map((e) => {
    const tr = el("tr");
    const what = el("td");
    what.append(el("div", e.message_fr || e.code), el("code", e.code));
    tr.append(el("td", when(e.at)), el("td", e.method), what, el("td", e.hint_fr || "", "advice"));
    return tr;
  }) : [(() => { const tr = el("tr"); const td = el("td", t("noErrors"), "absent"); td.colSpan = 4; tr.append(td); return tr; })()]));
  $("sec-errors").dataset.light = recent.length ? "warning" : "ok";
}

function renderOutbox(outbox) {
  const failures = $("outbox-failures");
  // Off is information; a job waiting or failed for good is something to look at.
  $("outbox-section").dataset.light = !outbox ? "info"
    : outbox.lastFailures.length || outbox.oldestWaiting ? "warning" : "ok";
  if (!outbox) {
    $("outbox-counts").textContent = t("feedOff");
    $("outbox-oldest").textContent = "";
    failures.replaceChildren();
    return;
  }
  const states = t("states");
  $("outbox-counts").textContent = Object.entries(outbox.counts).map(([s, n]) => `${states[s] || s} : ${n}`).join(" · ");
  $("outbox-oldest").textContent = outbox.oldestWaiting ? t("oldest")(outbox.oldestWaiting) : "";
  $("outbox-oldest").className = outbox.oldestWaiting ? "note warn" : "note";
  const rows = outbox.lastFailures.map((j) => {
    const tr = el("tr");
    tr.append(el("td", j.id), el("td", when(new Date(j.updatedAt * 1000).toISOString())), el("td", j.detail || j.reason),
      el("td", j.message_fr || ""));
    return tr;
  });
  if (!rows.length) {
    const tr = el("tr");
    const td = el("td", t("noFailure"), "absent");
    td.colSpan = 4;
    tr.append(td);
    rows.push(tr);
  }
  failures.replaceChildren(...rows);
}

async function refresh(bridge) {
  try {
    report = await bridge.diagnosticsReport();
    reportAt = new Date();
  } catch (err) {
    console.warn("diagnostics.report failed", err.code);
  }
  render();
}

async function runDmpCheck(bridge) {
  dmpState = "running";
  render();
  try {
    dmpCheck = await bridge.call("diagnostics.dmpCheck", {}, { timeout: 60000 });
    dmpState = "done";
  } catch (err) {
    console.warn("diagnostics.dmpCheck failed", err.code);
    dmpState = "failed";
  }
  render();
}

/** The report for the helpdesk: every section's state in words, then the raw data (codes, states, ATRs: no personal data). */
function reportText() {
  const lines = [`dmp-bridge ${report?.bridge.version ?? "?"} — ${new Date().toISOString()}`];
  if (reportAt) lines.push(`Données du ${reportAt.toISOString()}${document.body.dataset.stale === "true" ? " (PONT ARRÊTÉ : non à jour)" : ""}`);
  for (const id of ["sec-pcsc", "sec-readers", "sec-dmp", "sec-bridge", "outbox-section", "sec-errors"]) {
    const section = $(id);
    lines.push(`[${section.dataset.light}] ${section.querySelector("h2").textContent}`);
  }
  for (const r of report?.readers || []) for (const c of r.checks || []) lines.push(`  ${c.status}: ${c.summary}${c.advice ? " → " + c.advice : ""}`);
  for (const f of dmpCheck?.findings || []) lines.push(`  ${f.status}: ${f.summary}${f.advice ? " → " + f.advice : ""}`);
  lines.push(JSON.stringify({ report, dmpCheck }, null, 2));
  return lines.join("\n");
}

$("lang").addEventListener("click", () => {
  lang = lang === "fr" ? "en" : "fr";
  localStorage.setItem("dmp-bridge-lang", lang);
  render();
});
$("copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(reportText());
    $("copied").textContent = t("copied");
  } catch (_) {
    $("copied").textContent = t("copyFailed") + "\n" + reportText();
  }
});

render();
// The bridge put this run's page secret in the HTML: the page proves it instead of being trusted by its Origin.
const pageSecret = document.querySelector('meta[name="dmp-bridge-page-secret"]').content;
const bridge = await connect({ url: `ws://${location.host}/ws`, retry: { attempts: 20 }, pageSecret }).catch((err) => {
  connState = "closed";
  render();
  throw err;
});
connState = "open";
everOpen = true;
bridge.on("connection", ({ state }) => {
  connState = state;
  render();
  // A restarted bridge has a new page secret: reload to be served it.
  if (state === "open" && !bridge.approved) location.reload();
  else if (state === "open") refresh(bridge);
});
for (const event of ["readers.changed", "card.inserted", "card.removed"]) bridge.on(event, () => refresh(bridge));
// A busy queue changes many times a second: one refresh per half second at most.
let outboxTimer = null;
bridge.on("dmp.outbox.changed", () => {
  outboxTimer ??= setTimeout(() => { outboxTimer = null; refresh(bridge); }, 500);
});
$("dmp-test").addEventListener("click", () => runDmpCheck(bridge));
window.dmpBridgeDiagnostics = {
  refresh: () => refresh(bridge),
  dmpCheck: () => runDmpCheck(bridge),
  reportText,
  get report() { return report; },
};
await refresh(bridge);
document.body.dataset.ready = "true";
runDmpCheck(bridge);
