// dmp-bridge SDK: an ES module with no build step and no dependency.
//
//   import { connect } from "http://127.0.0.1:28442/sdk/dmp-bridge.js";
//   const bridge = await connect();            // retries with backoff, then a clear BridgeError
//   await bridge.pair({ onPending: (r) => showCode(r) });  // once per origin: the person approves at the workstation
//   const { readers } = await bridge.readersList();
//   bridge.on("card.inserted", (e) => ...);    // listeners survive reconnections
//
// Errors are BridgeError instances with a stable `code`: the bridge's own codes (NO_CARD, CARD_BUSY,
// ORIGIN_NOT_APPROVED, ...) plus the SDK's BRIDGE_UNREACHABLE (not running, or the browser blocked the
// loopback connection), BRIDGE_BLOCKED (the browser's local-network permission is denied),
// DISCONNECTED and TIMEOUT. Call connect()/pair() from a user gesture: Chrome asks the
// "loopback-network" permission on first use.

export const DEFAULT_PORT = 28442;
export const DEFAULT_URL = `ws://127.0.0.1:${DEFAULT_PORT}/ws`;

const SDK_MESSAGES = {
  BRIDGE_UNREACHABLE: [
    "Le pont DMP ne répond pas : vérifiez qu'il est lancé, ou que le navigateur autorise l'accès au réseau local.",
    "The DMP bridge does not answer: check that it is running, or that the browser allows local network access.",
  ],
  BRIDGE_BLOCKED: [
    "Le navigateur bloque l'accès au pont local (autorisation « réseau local » refusée).",
    "The browser blocks access to the local bridge (local network permission denied).",
  ],
  DISCONNECTED: ["La connexion au pont a été interrompue.", "The connection to the bridge was lost."],
  TIMEOUT: ["Délai dépassé.", "Timed out."],
  PAIRING_DENIED: ["L'autorisation de ce site a été refusée.", "Approval of this site was denied."],
};

/** An error with a stable symbolic code and French/English messages. */
export class BridgeError extends Error {
  constructor(code, data = {}, rpcCode = null) {
    const [fr, en] = SDK_MESSAGES[code] || [data.message_fr || code, data.message_en || code];
    super(data.message_en || en);
    this.name = "BridgeError";
    this.code = code;
    this.messageFr = data.message_fr || fr;
    this.messageEn = data.message_en || en;
    this.data = data;
    this.rpcCode = rpcCode;
  }
}

function sdkError(code, extra = {}) {
  const [fr, en] = SDK_MESSAGES[code];
  return new BridgeError(code, { code, message_fr: fr, message_en: en, ...extra });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function loopbackPermission() {
  // Chrome >= 145 names it "loopback-network"; 142-144 "local-network-access". Unknown names throw.
  if (typeof navigator === "undefined" || !navigator.permissions) return "unknown";
  for (const name of ["loopback-network", "local-network-access"]) {
    try {
      return (await navigator.permissions.query({ name })).state;
    } catch (_) {
      /* not supported by this browser */
    }
  }
  return "unknown";
}

function openSocket(url, openTimeout) {
  return new Promise((resolve, reject) => {
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      reject(sdkError("BRIDGE_UNREACHABLE", { detail: "bad-url" }));
      return;
    }
    const timer = setTimeout(() => {
      ws.close();
      reject(sdkError("BRIDGE_UNREACHABLE", { detail: "open-timeout" }));
    }, openTimeout);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      clearTimeout(timer);
      reject(sdkError("BRIDGE_UNREACHABLE"));
    };
  });
}

/** A live connection to the bridge; reconnects by itself after an unexpected close. */
export class Bridge {
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    this.closedByUser = false;
  }

  async _open() {
    const { attempts, initialDelay, maxDelay } = this.options.retry;
    let delay = initialDelay;
    for (let attempt = 1; ; attempt++) {
      try {
        this._attach(await openSocket(this.url, this.options.openTimeout));
        return;
      } catch (err) {
        if ((await loopbackPermission()) === "denied") throw sdkError("BRIDGE_BLOCKED");
        if (attempt >= attempts || this.closedByUser) throw err;
        await sleep(delay);
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  }

  _attach(ws) {
    this.ws = ws;
    ws.onmessage = (ev) => this._receive(ev.data);
    ws.onclose = (ev) => this._closed(ev);
    this._emit("connection", { state: "open" });
  }

  _receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch (_) {
      return;
    }
    if (msg.method && msg.id === undefined) {
      this._emit(msg.method, msg.params || {});
      return;
    }
    if (msg.id === null && msg.error) {
      // A frame the bridge could not attribute (e.g. message too big): fail every waiting call.
      for (const entry of this.pending.values()) entry.reject(this._rpcError(msg.error));
      this.pending.clear();
      return;
    }
    const entry = this.pending.get(msg.id);
    if (!entry) return;
    this.pending.delete(msg.id);
    if (msg.error) entry.reject(this._rpcError(msg.error));
    else entry.resolve(msg.result);
  }

  _rpcError(error) {
    const data = error.data || {};
    return new BridgeError(data.code || "INTERNAL", data, error.code);
  }

  async _closed(ev) {
    this.ws = null;
    for (const entry of this.pending.values()) entry.reject(sdkError("DISCONNECTED", { closeCode: ev.code }));
    this.pending.clear();
    if (this.closedByUser || !this.options.reconnect) {
      this._emit("connection", { state: "closed" });
      return;
    }
    this._emit("connection", { state: "reconnecting" });
    const retry = { ...this.options.retry, attempts: Infinity };
    const saved = this.options.retry;
    this.options.retry = retry;
    try {
      await this._open();
    } catch (_) {
      this._emit("connection", { state: "closed" });
    } finally {
      this.options.retry = saved;
    }
  }

  _emit(event, params) {
    for (const cb of this.listeners.get(event) || []) {
      try {
        cb(params);
      } catch (err) {
        console.error("dmp-bridge listener failed", err);
      }
    }
  }

  /** Listen to a notification ("readers.changed", "card.inserted", "card.removed", "pairing.approved",
   * "pairing.denied", or "connection"); returns a function that removes the listener. Listeners are kept
   * across reconnections (the bridge pushes events to every approved connection, no re-subscription). */
  on(event, cb) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(cb);
    return () => this.listeners.get(event).delete(cb);
  }

  /** Call any method by name. */
  call(method, params = {}, { timeout = this.options.timeout } = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(sdkError("DISCONNECTED"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(sdkError("TIMEOUT", { method }));
      }, timeout);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  /** Make sure this origin is approved: asks for pairing and waits until the person approves it.
   * `onPending({requestId, code, expiresIn})` lets the page show the code the bridge displays. */
  async pair({ onPending, timeout } = {}) {
    let settle;
    const decided = new Promise((resolve, reject) => (settle = { resolve, reject }));
    const offOk = this.on("pairing.approved", (p) => settle.resolve(p));
    const offNo = this.on("pairing.denied", (p) => settle.reject(sdkError("PAIRING_DENIED", p)));
    try {
      const answer = await this.call("pairing.request");
      if (answer.status === "approved") return answer;
      if (onPending) onPending(answer);
      const limit = timeout ?? answer.expiresIn * 1000;
      const timer = sleep(limit).then(() => Promise.reject(sdkError("TIMEOUT", { method: "pairing.request" })));
      return await Promise.race([decided, timer]);
    } finally {
      offOk();
      offNo();
    }
  }

  info() { return this.call("bridge.info"); }
  readersList() { return this.call("readers.list"); }
  diagnosticsReport() { return this.call("diagnostics.report"); }
  cpsRead({ reader } = {}) { return this.call("cps.read", reader ? { reader } : {}); }
  cpsLogin({ pin, reader, allowLastTry = false }) {
    return this.call("cps.login", { pin, allowLastTry, ...(reader ? { reader } : {}) }, { timeout: 120000 });
  }
  cpsLogout({ reader } = {}) { return this.call("cps.logout", reader ? { reader } : {}); }
  cpsSign({ data, digestAlgorithm = "SHA-256", prehashed = false, key = "signature", reader }) {
    return this.call("cps.sign", { data, digestAlgorithm, prehashed, key, ...(reader ? { reader } : {}) }, { timeout: 120000 });
  }
  vitaleRead({ reader } = {}) { return this.call("vitale.read", reader ? { reader } : {}); }
  dmpPatientStatus(patient) { return this.call("dmp.patient.status", { patient }); }
  dmpPatientAuthorize({ patient, action, patientAgreement = false }) {
    return this.call("dmp.patient.authorize", { patient, action, patientAgreement });
  }
  dmpPatientAdmin(patient) { return this.call("dmp.patient.admin.get", { patient }); }
  dmpPatientAdminUpdate(patient, changes) { return this.call("dmp.patient.admin.update", { patient, changes }); }
  dmpPatientClose(patient) { return this.call("dmp.patient.close", { patient, patientRequest: true }); }
  dmpPatientProfessionals(patient, mode = "all") { return this.call("dmp.patient.professionals", { patient, mode }); }
  dmpPatientsAuthorized(params) { return this.call("dmp.patients.authorized", params); }
  dmpPatientsSearch(params) { return this.call("dmp.patients.search", params); }
  dmpWebPsUrl(page = "patient", patient = undefined) {
    return this.call("dmp.webps.url", patient ? { page, patient } : { page });
  }
  insSearch(params) { return this.call("ins.search", params, { timeout: 120000 }); }
  insVerify(params) { return this.call("ins.verify", params, { timeout: 120000 }); }

  /** Close for good (no reconnection). */
  close() {
    this.closedByUser = true;
    if (this.ws) this.ws.close();
  }
}

/** Connect to the bridge. `retry`: {attempts, initialDelay, maxDelay} (ms) for the first connection;
 * after that, reconnection retries forever with the same backoff unless `reconnect: false`. */
export async function connect({
  url = DEFAULT_URL,
  retry = {},
  reconnect = true,
  timeout = 60000,
  openTimeout = 5000,
} = {}) {
  const options = {
    retry: { attempts: 4, initialDelay: 250, maxDelay: 4000, ...retry },
    reconnect,
    timeout,
    openTimeout,
  };
  const bridge = new Bridge(url, options);
  await bridge._open();
  return bridge;
}
