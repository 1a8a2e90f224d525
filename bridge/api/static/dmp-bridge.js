// dmp-bridge SDK: an ES module with no build step and no dependency.
//
//   import { connect } from "http://127.0.0.1:28442/sdk/dmp-bridge.js";
//   const bridge = await connect();            // finds this user's bridge; retries with backoff, then a clear BridgeError
//   await bridge.pair({ onPending: (r) => showCode(r) });  // once per origin: the person approves at the workstation
//   const { readers } = await bridge.readersList();
//   bridge.on("card.inserted", (e) => ...);    // listeners survive reconnections
//
// Errors are BridgeError instances with a stable `code`: the bridge's own codes (NO_CARD, CARD_BUSY,
// ORIGIN_NOT_APPROVED, ...) plus the SDK's BRIDGE_UNREACHABLE (not running, or the browser blocked the
// loopback connection), BRIDGE_BLOCKED (the browser's local-network permission is denied),
// DISCONNECTED and TIMEOUT. Call connect()/pair() from a user gesture: Chrome asks the
// "loopback-network" permission on first use.
//
// Key proof (hidden from the application): on every (re)connection the SDK signs a fresh challenge of the
// bridge with this origin's key, an ECDSA P-256 WebCrypto key created non-extractable and kept in the
// origin's IndexedDB; pairing approves that key, so a program that merely claims the origin gets nothing.
// WebCrypto needs a secure context: serve the application over HTTPS (or from localhost).

export const DEFAULT_PORT = 28442;
export const DEFAULT_URL = `ws://127.0.0.1:${DEFAULT_PORT}/ws`;
/** Ports a daemon listens on when none is configured: one per OS user (bridge/api/user_port.py). */
export const PORT_WINDOW = 16;
export const DEFAULT_PORTS = Array.from({ length: PORT_WINDOW }, (_, i) => DEFAULT_PORT + i);

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

/** Next steps for the SDK's own errors (the bridge sends its own with each error). */
const SDK_HINTS = {
  BRIDGE_UNREACHABLE: [
    "Démarrez le pont DMP sur ce poste (menu des applications ou « dmp-bridge run ») puis rechargez la page.",
    "Start the DMP bridge on this workstation (applications menu or `dmp-bridge run`), then reload the page.",
  ],
  BRIDGE_BLOCKED: [
    "Autorisez l'accès au réseau local pour ce site (icône à gauche de l'adresse), puis rechargez la page.",
    "Allow local network access for this site (icon left of the address bar), then reload the page.",
  ],
  DISCONNECTED: [
    "La page se reconnecte seule ; si cela dure, vérifiez que le pont est lancé.",
    "The page reconnects by itself; if it lasts, check that the bridge is running.",
  ],
  TIMEOUT: ["Réessayez dans un instant.", "Try again in a moment."],
  PAIRING_DENIED: [
    "Demandez une nouvelle autorisation et acceptez-la dans l'icône du pont.",
    "Ask for approval again and accept it in the bridge icon.",
  ],
};

/** An error with a stable symbolic code, French/English messages and the next step (`hint`). */
export class BridgeError extends Error {
  constructor(code, data = {}, rpcCode = null) {
    const [fr, en] = SDK_MESSAGES[code] || [data.message_fr || code, data.message_en || code];
    super(data.message_en || en);
    this.name = "BridgeError";
    this.code = code;
    this.messageFr = data.message_fr || fr;
    this.messageEn = data.message_en || en;
    /** What the person does next (French), from the bridge or, for the SDK's own errors, from SDK_HINTS. */
    this.hint = data.hint_fr || (SDK_HINTS[code] || [""])[0];
    this.hintEn = data.hint_en || (SDK_HINTS[code] || ["", ""])[1];
    this.data = data;
    this.rpcCode = rpcCode;
  }
}

function sdkError(code, extra = {}) {
  const [fr, en] = SDK_MESSAGES[code];
  return new BridgeError(code, { code, message_fr: fr, message_en: en, ...extra });
}

// -- key proof (docs/api.md, "Pairing and key proof") -------------------------------------------------

const PROOF_LABEL = "dmp-bridge key proof v1";
const KEY_DB = "dmp-bridge";
const KEY_STORE = "keys";
const KEY_NAME = "pairing";

const toBase64 = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)));
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

function idb(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function openKeyDb() {
  const request = indexedDB.open(KEY_DB, 1);
  request.onupgradeneeded = () => request.result.createObjectStore(KEY_STORE);
  return idb(request);
}

/** This origin's key pair: {privateKey (non-extractable), spki (base64)}, created once and kept in IndexedDB. */
async function originKey() {
  const db = await openKeyDb();
  try {
    const stored = await idb(db.transaction(KEY_STORE).objectStore(KEY_STORE).get(KEY_NAME));
    if (stored) return stored;
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const entry = { privateKey: pair.privateKey, spki: toBase64(await crypto.subtle.exportKey("spki", pair.publicKey)) };
    try {
      // add(), not put(): two tabs creating a key at once keep the first one stored.
      await idb(db.transaction(KEY_STORE, "readwrite").objectStore(KEY_STORE).add(entry, KEY_NAME));
      return entry;
    } catch (_) {
      return await idb(db.transaction(KEY_STORE).objectStore(KEY_STORE).get(KEY_NAME));
    }
  } finally {
    db.close();
  }
}

async function signProof(privateKey, origin, challenge) {
  const label = new TextEncoder().encode(PROOF_LABEL);
  const name = new TextEncoder().encode(origin);
  const nonce = fromBase64(challenge);
  const message = new Uint8Array(label.length + 1 + name.length + 1 + nonce.length);
  message.set(label, 0);
  message.set(name, label.length + 1);
  message.set(nonce, label.length + name.length + 2);
  return toBase64(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, message));
}

const canProveKey = () =>
  typeof location !== "undefined" && globalThis.isSecureContext && globalThis.crypto?.subtle && globalThis.indexedDB;

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

/** Whether `url` answers bridge.info as a dmp-bridge (another user's daemon resets the connection first). */
async function probeBridge(url, openTimeout) {
  const ws = await openSocket(url, openTimeout);
  try {
    const reply = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout")), openTimeout);
      ws.onmessage = (ev) => {
        clearTimeout(timer);
        resolve(JSON.parse(ev.data));
      };
      ws.onclose = () => reject(new Error("closed"));
      ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "bridge.info" }));
    });
    if (!reply.result || reply.result.name !== "dmp-bridge") throw new Error("not a dmp-bridge");
    return url;
  } finally {
    ws.onclose = null;
    ws.close();
  }
}

/** This OS user's bridge among the candidate ports (all tried at once); BRIDGE_UNREACHABLE when none answers. */
async function discoverUrl(ports, openTimeout) {
  try {
    return await Promise.any(ports.map((port) => probeBridge(`ws://127.0.0.1:${port}/ws`, openTimeout)));
  } catch (_) {
    throw sdkError("BRIDGE_UNREACHABLE", { detail: "no-port", ports });
  }
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
    /** Whether this connection proved an approved key (or the diagnostics page its secret). */
    this.approved = false;
    this.keyFingerprint = null;
    this._opening = false;
    this._handshake = null; // calls wait for the key proof of the current connection
  }

  async _open() {
    const { attempts, initialDelay, maxDelay } = this.options.retry;
    let delay = initialDelay;
    this._opening = true;
    try {
      await this._openLoop(attempts, delay, maxDelay);
    } finally {
      this._opening = false;
    }
  }

  async _openLoop(attempts, initialDelay, maxDelay) {
    let delay = initialDelay;
    for (let attempt = 1; ; attempt++) {
      try {
        // No url given: find this user's daemon again on every attempt (a restarted one may take another port).
        if (this.options.ports) this.url = await discoverUrl(this.options.ports, this.options.openTimeout);
        this._attach(await openSocket(this.url, this.options.openTimeout));
        this._handshake = this._prove();
        try {
          await this._handshake;
        } finally {
          this._handshake = null;
        }
        this._emit("connection", { state: "open" });
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
  }

  /** Prove this page's key (or the diagnostics page's secret) on the new connection. */
  async _prove() {
    this.approved = false;
    try {
      if (this.options.pageSecret) {
        this.approved = (await this._call("pairing.prove", { pageSecret: this.options.pageSecret })).approved;
        return;
      }
      if (!canProveKey()) return; // not a page in a secure context: it can only use the public methods
      const key = await originKey();
      const { challenge } = await this._call("pairing.challenge");
      const signature = await signProof(key.privateKey, location.origin, challenge);
      const answer = await this._call("pairing.prove", { publicKey: key.spki, signature });
      this.approved = answer.approved;
      this.keyFingerprint = answer.keyFingerprint;
    } catch (err) {
      // An older bridge (no pairing.challenge) or a refused proof: the page stays unapproved, and says why
      // on its first call (ORIGIN_NOT_APPROVED). A lost connection is reported by the caller's retry.
      if (err && err.code === "DISCONNECTED") throw err;
      console.warn("dmp-bridge: key proof failed", err && err.code);
    }
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
    if (this._opening) return; // closed during the key proof: the opening loop retries
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

  /** Call any method by name (after the connection's key proof). */
  call(method, params = {}, options = {}) {
    if (this._handshake) return this._handshake.then(() => this._call(method, params, options));
    return this._call(method, params, options);
  }

  _call(method, params = {}, { timeout = this.options.timeout } = {}) {
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
    const offOk = this.on("pairing.approved", (p) => {
      this.approved = true;
      settle.resolve(p);
    });
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
  insSearch(params) { return this.call("ins.search", params, { timeout: 120000 }); }
  insVerify(params) { return this.call("ins.verify", params, { timeout: 120000 }); }
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

  /** Close for good (no reconnection). */
  close() {
    this.closedByUser = true;
    if (this.ws) this.ws.close();
  }
}

/** Connect to the bridge (and prove this origin's key). Without `url`, the SDK finds this OS user's bridge
 * among `ports` (default 28442-28457, all tried at once, kept if `bridge.info` answers). `pageSecret` is for
 * the bridge's own diagnostics page. `retry`: {attempts, initialDelay, maxDelay} (ms) for the first connection;
 * after that, reconnection retries forever with the same backoff unless `reconnect: false`. */
export async function connect({
  url = null,
  ports = DEFAULT_PORTS,
  retry = {},
  reconnect = true,
  timeout = 60000,
  openTimeout = 5000,
  pageSecret = null,
} = {}) {
  const options = {
    retry: { attempts: 4, initialDelay: 250, maxDelay: 4000, ...retry },
    reconnect,
    timeout,
    openTimeout,
    pageSecret,
    // An explicit url is used as is; otherwise the candidate ports are tried (one daemon per OS user).
    ports: url ? null : ports,
  };
  const bridge = new Bridge(url, options);
  await bridge._open();
  return bridge;
}
