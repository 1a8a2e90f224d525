// Types for dmp-bridge.js (the local DMP bridge SDK).

export declare const DEFAULT_PORT: number;
export declare const DEFAULT_URL: string;

export type ErrorCode =
  | "NO_READER" | "NO_CARD" | "CARD_REMOVED" | "CARD_RESET" | "UNSUPPORTED_CARD" | "CARD_ERROR"
  | "PIN_INCORRECT" | "PIN_BLOCKED" | "PIN_LAST_TRY" | "PIN_REQUIRED" | "CARD_BUSY" | "SHARING_VIOLATION"
  | "PCSC_UNAVAILABLE" | "TIMEOUT" | "ORIGIN_NOT_APPROVED" | "UNAUTHORIZED" | "DMP_UNREACHABLE" | "DMP_FAULT"
  | "DMP_OUTCOME_UNKNOWN" | "NOT_PERMITTED_FOR_ACTOR" | "INVALID_PARAMS" | "INVALID_INPUT" | "NOT_FOUND" | "INTERNAL"
  | "BRIDGE_UNREACHABLE" | "BRIDGE_BLOCKED" | "DISCONNECTED" | "PAIRING_DENIED";

export interface ErrorData {
  code: ErrorCode;
  message_fr: string;
  message_en: string;
  detail?: string;
  /** TIMEOUT: what ran out ("queue", "connect", "tls-handshake", "send", "receive", "signature", "card", ...). */
  stage?: string;
  /** TIMEOUT with stage "card": the card operation that did not end ("cps.read", "cps.login", "vitale.read", ...). */
  operation?: string;
  /** DMP_OUTCOME_UNKNOWN: the uniqueId the write concerned (check it before sending again). */
  uniqueId?: string;
  /** DMP_OUTCOME_UNKNOWN: every uniqueId of the lot, and the transaction ("TD2.1", "TD3.3"). */
  uniqueIds?: string[];
  transaction?: string;
  [extra: string]: unknown;
}

/** dmp.documents.submit params (the `uniqueId` makes a retry after DMP_OUTCOME_UNKNOWN checkable). */
export interface DmpSubmitParams {
  patient: { ins: string; oid?: string; lastName?: string; firstName?: string; gender?: "M" | "F" | "U"; birthDate?: string };
  content: string;
  mimeType: "application/pdf" | "text/plain" | "text/rtf" | "image/jpeg" | "image/tiff" | "text/xml";
  title: string;
  /** LOINC type of JDV_J07 (ASS_X04); an unknown code is INVALID_PARAMS naming it. */
  typeCode: string;
  typeDisplay?: string;
  /** TRE_A03 class; derived from typeCode (ASS_X04) when absent, refused when it differs. */
  classCode?: string;
  hiddenFromProfessionals?: boolean;
  hiddenFromPatient?: boolean;
  replaces?: string;
  /** The document's uniqueId (an OID), chosen by the caller: an idempotency key. */
  uniqueId?: string;
  progressId?: string;
  /** Through the outbox: answered at once with a job id; the bridge sends it (establishment certificate). */
  queue?: boolean;
  /** With `queue`: the patient's INS is qualified (else the job waits in state "unqualified"). */
  insQualified?: boolean;
}

export interface DmpSubmitResult {
  uniqueId: string;
  submissionSetUniqueId: string;
}

export declare class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly messageFr: string;
  readonly messageEn: string;
  readonly data: ErrorData;
  readonly rpcCode: number | null;
}

export interface RetryOptions {
  attempts?: number;
  initialDelay?: number;
  maxDelay?: number;
}

export interface ConnectOptions {
  url?: string;
  retry?: RetryOptions;
  reconnect?: boolean;
  timeout?: number;
  openTimeout?: number;
}

export interface BridgeInfo {
  name: "dmp-bridge";
  version: string;
  port: number;
  platform: string;
  python: string;
  approved: boolean;
}

export interface ReaderRow {
  name: string;
  cardPresent: boolean;
  atr: string | null;
  kind: string | null;
}

export interface ReadersList {
  pcsc: "available" | "unavailable";
  readers: ReaderRow[];
}

export interface PairingAnswer {
  requestId: string | null;
  status: "pending" | "approved";
  /** The 6-digit code the bridge shows; display it so the person can match it. */
  code: string | null;
  expiresIn: number;
}

export interface PairingDecision {
  requestId: string;
  origin: string;
}

export interface EventMap {
  "readers.changed": ReadersList;
  "card.inserted": { reader: string; atr: string | null };
  "card.removed": { reader: string };
  "pairing.approved": PairingDecision;
  "pairing.denied": PairingDecision;
  "dmp.outbox.changed": OutboxJob;
  connection: { state: "open" | "reconnecting" | "closed" };
}

/** One card certificate (cps.read): summary plus the DER, base64. */
export interface CertificateSummary {
  usage: "authentication" | "signature";
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  /** Negative once expired. */
  daysLeft: number;
  expired: boolean;
  der: string;
}

/** cps.read (and `dmp-bridge card --json` under "cps"): the one JSON form of a CPS/CPE card. */
export interface CpsCard {
  /** The card as identified over PC/SC. */
  kind: "CPS3" | "CPS4";
  /** The token serial, as the ANS Cryptolib derives it (8 digits). */
  serial: string;
  /** Card generation: CPS3 (IAS-ECC) or CPS4 (ChipDoc, issued since 2025). */
  generation: "CPS3" | "CPS4";
  /** Who read it: the ANS Cryptolib (PKCS#11) or the bridge's own PC/SC driver. */
  backend: "pkcs11" | "pcsc";
  cardType: string;
  cardNumber: string;
  validity: { notBefore: string | null; notAfter: string | null };
  holder: {
    idType: string;
    nationalId: string;
    civility: string;
    lastName: string;
    firstName: string;
    professionCode: string;
    specialtyCode: string;
  };
  certificates: { authentication: CertificateSummary; signature: CertificateSummary };
  pin: { triesLeft: number; triesMax: number; blocked: boolean };
}

/** A situation d'exercice read from the card after the PIN. */
export interface Situation {
  /** The card slot (0..15); what dmp.context.set's `situation` names. */
  index: number;
  number: number;
  practiceMode: string;
  professionCode: string;
  specialtyCode: string;
  structureIdType: string;
  structureId: string;
  structureName: string;
  activitySector: string;
  billing: { billingNumber: string; conventionCode: string; amSpecialty: string; tariffZone: string } | null;
}

export interface CpsLoginResult {
  authenticated: true;
  triesLeft: number;
  triesMax: number;
  situations: Situation[];
  /** Index of the situation selected by default (the first one), null when the card has none. */
  situation: number | null;
}

export interface CpsSignResult {
  /** PKCS#1 v1.5 signature, base64. */
  signature: string;
  key: "signature" | "authentication";
  digestAlgorithm: "SHA-256" | "SHA-384" | "SHA-512";
  /** DER of the certificate of the key used, base64. */
  certificate: string;
}

export interface Beneficiary {
  lastName: string;
  firstName: string;
  birthDateRaw: string;
  birthDate: string | null;
  lunar: boolean;
  /** The beneficiary's own NIR (13 characters), null when the card shows none that is surely theirs
   * (no tag 93, a NIR whose birth year/month contradicts the birth date, e.g. a child on a parent's
   * NIR, or a NIR shared with no quality tag to say whose it is). Use it, never cardNir, as an INS. */
  nir: string | null;
  /** Key of nir, null with it. */
  nirKey: string | null;
  /** True when nir is not null and its key is right. */
  nirValid: boolean;
  /** The NIR written in this beneficiary's template (tag 93), whoever it belongs to; null without one. */
  cardNir: string | null;
  cardNirKey: string | null;
  /** From the quality tag only (unverified): true for quality "00", null when the card has no quality
   * tag for this beneficiary. Never inferred from the order of beneficiaries. */
  isInsured: boolean | null;
  /** Unverified tag 84. */
  rank: number | null;
  /** Unverified tag 85. */
  quality: string | null;
}

export interface VitaleCard {
  /** Unverified (EF 2F02 / 5A). */
  serial: string | null;
  validityStart: string | null;
  /** Unverified tag 66/81. */
  validityEnd: string | null;
  beneficiaries: Beneficiary[];
  /** JSON fields (card or beneficiary) read from tags that no public source confirms. */
  unverified: string[];
}

export declare class Bridge {
  on<K extends keyof EventMap>(event: K, cb: (params: EventMap[K]) => void): () => void;
  call<T = unknown>(method: string, params?: Record<string, unknown>, options?: { timeout?: number }): Promise<T>;
  pair(options?: { onPending?: (answer: PairingAnswer) => void; timeout?: number }): Promise<PairingAnswer | PairingDecision>;
  info(): Promise<BridgeInfo>;
  readersList(): Promise<ReadersList>;
  diagnosticsReport(): Promise<Record<string, unknown>>;
  cpsRead(options?: { reader?: string }): Promise<CpsCard>;
  cpsLogin(options: { pin: string; reader?: string; allowLastTry?: boolean }): Promise<CpsLoginResult>;
  cpsLogout(options?: { reader?: string }): Promise<{ authenticated: false }>;
  cpsSign(options: {
    data: string;
    digestAlgorithm?: "SHA-256" | "SHA-384" | "SHA-512";
    prehashed?: boolean;
    key?: "signature" | "authentication";
    reader?: string;
  }): Promise<CpsSignResult>;
  vitaleRead(options?: { reader?: string }): Promise<VitaleCard>;
  close(): void;
}

export declare function connect(options?: ConnectOptions): Promise<Bridge>;

// -- The feeding outbox (dmp.outbox.*, dmp.documents.submit with queue: true) ---------------------------

export type OutboxState = "queued" | "sending" | "sent" | "waiting" | "unqualified" | "failed" | "cancelled";

/** One outbox job (dmp.outbox.get, dmp.outbox.changed). Never the document nor the INS. */
export interface OutboxJob {
  id: number;
  kind: "submit" | "replace" | "delete";
  state: OutboxState;
  uniqueId: string;
  origin: "api" | "cli" | "hl7" | "hotfolder";
  attempts: number;
  createdAt: number;
  updatedAt: number;
  /** Epoch seconds of the next attempt (state "waiting"). */
  nextAt?: number;
  /** Stable code of the last fault (an ErrorCode, or INS_NOT_QUALIFIED). */
  reason?: string;
  /** The DMP's own code, when it gave one. */
  detail?: string;
  /** What to do, in French, for the person. */
  message_fr?: string;
  /** The DMP's answer once sent: uniqueId, submissionSetUniqueId, or alreadyRegistered. */
  result?: Record<string, unknown>;
}

/** dmp.documents.submit with queue: true. */
export interface DmpQueuedResult {
  jobId: number;
  uniqueId: string;
  state: OutboxState;
}

export interface OutboxSummary {
  counts: Record<OutboxState, number>;
  acks: { delivered: number; pending: number };
  oldestWaiting: OutboxJob | null;
  lastFailures: OutboxJob[];
}

/** dmp.outbox.list result. */
export interface OutboxList {
  jobs: OutboxJob[];
  summary: OutboxSummary;
}
