// Diagnostics page: same origin as the bridge, so it may call the diagnostics methods without pairing.
// It shows no secret: the bridge's diagnostics.report contains codes, states and ATRs only.
import { connect } from "/sdk/dmp-bridge.js";

const TEXT = {
  fr: {
    title: "Diagnostic du pont DMP", copy: "Copier le rapport", bridge: "Pont", readers: "Lecteurs et cartes",
    reader: "Lecteur", card: "Carte", cert: "Validité du certificat", tries: "Essais du code",
    origins: "Sites autorisés", errors: "Erreurs récentes", when: "Heure", method: "Méthode",
    connecting: "Connexion…", open: "Connecté", closed: "Déconnecté", reconnecting: "Reconnexion…",
    version: "Version", port: "Port", platform: "Système", pcscOk: "Service carte à puce (PC/SC) : disponible",
    pcscKo: "Service carte à puce (PC/SC) : indisponible — vérifiez que pcscd est lancé.",
    noReader: "Aucun lecteur détecté.", present: "présente", absent: "absente", none: "Aucun",
    pending: (n) => `${n} demande(s) d'appairage en attente : dmp-bridge origins pending`,
    copied: "Rapport copié dans le presse-papiers.", copyFailed: "Copie impossible : sélectionnez le texte ci-dessous.",
    noService: "pilotes de carte non chargés", other: "English",
    backend: { pkcs11: "Cryptolib CPS (PKCS#11)", pcsc: "pilote PC/SC du pont" }, readBy: "lue par",
    outbox: "File d'envoi au DMP", job: "Tâche", why: "Explication", feedOff: "Alimentation automatique désactivée ([feed] enabled = false).",
    states: { queued: "en file", sending: "en cours", sent: "envoyés", waiting: "en attente", unqualified: "INS non qualifiée", failed: "en échec", cancelled: "annulés" },
    oldest: (j) => `Plus ancienne tâche en attente : n° ${j.id} (${j.attempts} essai(s))${j.message_fr ? " — " + j.message_fr : ""}`,
    noFailure: "Aucun échec définitif.",
  },
  en: {
    title: "DMP bridge diagnostics", copy: "Copy report", bridge: "Bridge", readers: "Readers and cards",
    reader: "Reader", card: "Card", cert: "Certificate validity", tries: "PIN tries",
    origins: "Approved sites", errors: "Recent errors", when: "Time", method: "Method",
    connecting: "Connecting…", open: "Connected", closed: "Disconnected", reconnecting: "Reconnecting…",
    version: "Version", port: "Port", platform: "System", pcscOk: "Smart card service (PC/SC): available",
    pcscKo: "Smart card service (PC/SC): unavailable — check that pcscd is running.",
    noReader: "No reader found.", present: "present", absent: "empty", none: "None",
    pending: (n) => `${n} pending pairing request(s): dmp-bridge origins pending`,
    copied: "Report copied to the clipboard.", copyFailed: "Copy failed: select the text below.",
    noService: "card drivers not loaded", other: "Français",
    backend: { pkcs11: "Cryptolib CPS (PKCS#11)", pcsc: "bridge's PC/SC driver" }, readBy: "read by",
    outbox: "DMP feeding queue", job: "Job", why: "Explanation (French)", feedOff: "Unattended feeding is off ([feed] enabled = false).",
    states: { queued: "queued", sending: "sending", sent: "sent", waiting: "waiting", unqualified: "INS not qualified", failed: "failed", cancelled: "cancelled" },
    oldest: (j) => `Oldest waiting job: #${j.id} (${j.attempts} attempt(s))${j.reason ? " — " + j.reason : ""}`,
    noFailure: "No permanent failure.",
  },
};

let lang = localStorage.getItem("dmp-bridge-lang") || "fr";
let report = null;
let connState = "connecting";
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key];

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

const when = (iso) => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(lang === "fr" ? "fr-FR" : "en-GB");
};

function render() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) {
    const value = t(node.dataset.i18n);
    if (typeof value === "string") node.textContent = value;
  }
  $("lang").textContent = t("other");
  $("conn").dataset.state = connState;
  $("conn").textContent = t(connState);
  if (!report) return;
  const b = $("bridge");
  b.replaceChildren();
  for (const [k, v] of [["version", report.bridge.version], ["port", report.bridge.port], ["platform", report.bridge.platform]]) {
    b.append(el("dt", t(k)), el("dd", v));
  }
  $("pcsc").textContent = report.pcsc === "available" ? t("pcscOk") : t("pcscKo");
  $("pcsc").className = report.pcsc === "available" ? "note" : "note warn";
  const rows = $("readers");
  rows.replaceChildren();
  if (!report.readers.length) {
    const tr = el("tr");
    const td = el("td", t("noReader"), "absent");
    td.colSpan = 5;
    tr.append(td);
    rows.append(tr);
  }
  for (const r of report.readers) {
    const card = r.card || {};
    const tr = el("tr");
    // A CPS names its generation and the software that read it (the Cryptolib or the bridge's driver).
    const via = card.backend ? ` (${card.generation}, ${t("readBy")} ${t("backend")[card.backend] || card.backend})` : "";
    const kind = r.cardPresent ? `${t("present")}${card.type ? " — " + card.type : ""}${via}` : t("absent");
    const until = card.certificateNotAfter || card.validityEnd;
    const cert = until ? `→ ${until}` : card.error ? card.error : "—";
    const tries = card.pinTriesLeft ?? "—";
    tr.append(el("td", r.name), el("td", kind, r.cardPresent ? "present" : "absent"), el("td", r.atr || "—", "atr"),
      el("td", r.cardPresent && !report.cardService ? t("noService") : cert),
      el("td", tries, typeof tries === "number" && tries < 2 ? "warn" : ""));
    rows.append(tr);
  }
  const origins = $("origins");
  origins.replaceChildren(...(report.origins.length ? report.origins.map((o) => el("li", `${o.origin} (${when(o.approvedAt)})`)) : [el("li", t("none"), "absent")]));
  $("pending").textContent = report.pendingPairings ? t("pending")(report.pendingPairings) : "";
  renderOutbox(report.outbox);
  const errors = $("errors");
  errors.replaceChildren(...report.recentErrors.slice(-20).reverse().map((e) => {
    const tr = el("tr");
    tr.append(el("td", when(e.at)), el("td", e.method), el("td", e.code));
    return tr;
  }));
}

function renderOutbox(outbox) {
  const failures = $("outbox-failures");
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
  } catch (err) {
    console.warn("diagnostics.report failed", err.code);
  }
  render();
}

function reportText() {
  const lines = [`dmp-bridge ${report?.bridge.version} — ${new Date().toISOString()}`, JSON.stringify(report, null, 2)];
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
const bridge = await connect({ url: `ws://${location.host}/ws`, retry: { attempts: 20 } }).catch((err) => {
  connState = "closed";
  render();
  throw err;
});
connState = "open";
bridge.on("connection", ({ state }) => {
  connState = state;
  render();
  if (state === "open") refresh(bridge);
});
for (const event of ["readers.changed", "card.inserted", "card.removed"]) bridge.on(event, () => refresh(bridge));
// A busy queue changes many times a second: one refresh per half second at most.
let outboxTimer = null;
bridge.on("dmp.outbox.changed", () => {
  outboxTimer ??= setTimeout(() => { outboxTimer = null; refresh(bridge); }, 500);
});
window.dmpBridgeDiagnostics = { refresh: () => refresh(bridge), get report() { return report; } };
await refresh(bridge);
document.body.dataset.ready = "true";
