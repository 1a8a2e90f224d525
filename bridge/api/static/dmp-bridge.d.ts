// Types for dmp-bridge.js (the local DMP bridge SDK).

export declare const DEFAULT_PORT: number;
export declare const DEFAULT_URL: string;
/** Ports tried when `connect()` is given no url: 28442-28457 (one daemon per OS user). */
export declare const PORT_WINDOW: number;
export declare const DEFAULT_PORTS: number[];

export type ErrorCode =
  | "NO_READER" | "NO_CARD" | "CARD_REMOVED" | "CARD_RESET" | "UNSUPPORTED_CARD" | "CARD_ERROR"
  | "PIN_INCORRECT" | "PIN_BLOCKED" | "PIN_LAST_TRY" | "PIN_REQUIRED" | "CARD_BUSY" | "SHARING_VIOLATION"
  | "PCSC_UNAVAILABLE" | "TIMEOUT" | "ORIGIN_NOT_APPROVED" | "UNAUTHORIZED" | "DMP_UNREACHABLE" | "DMP_FAULT"
  | "DMP_OUTCOME_UNKNOWN" | "NOT_PERMITTED_FOR_ACTOR" | "CERTIFICATE_EXPIRED" | "CERTIFICATE_NOT_YET_VALID" | "INVALID_PARAMS" | "INVALID_INPUT" | "NOT_FOUND" | "INTERNAL"
  | "BRIDGE_UNREACHABLE" | "BRIDGE_BLOCKED" | "DISCONNECTED" | "PAIRING_DENIED"
  // INSi (ins.search, ins.verify) and the qualified-INS rule of dmp.documents.submit.
  | "INS_NOT_FOUND" | "INS_MULTIPLE_MATCHES" | "INS_MISMATCH" | "INS_NOT_QUALIFIED" | "INSI_UNAVAILABLE"
  | "INSI_REFUSED" | "INSI_SOFTWARE_NOT_AUTHORISED"
  // The DMP's refusals by kind (dmpCode keeps the DMP's own code).
  | "DMP_UNKNOWN" | "DMP_CLOSED" | "DMP_NOT_AUTHORIZED" | "DMP_AUTHORIZATION_EXPIRED" | "BLOCKED_BY_PATIENT"
  | "DMP_MANAGED_BY_MES" | "DOCUMENT_UNKNOWN" | "DOCUMENT_ALREADY_EXISTS" | "PATIENT_MISMATCH"
  | "DMP_AUTHENTICATION_REFUSED" | "DMP_REQUEST_REFUSED";

export interface ErrorData {
  code: ErrorCode;
  message_fr: string;
  message_en: string;
  /** What the person does next, French and English. */
  hint_fr?: string;
  hint_en?: string;
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
  /** The caller states the INS was qualified with the INSi earlier (its DPI keeps it so). */
  insQualified?: boolean;
  /** Send even though the INS is not qualified. Without either flag, an INS that `ins.search` /
   * `ins.verify` did not return in this daemon is refused: INS_NOT_QUALIFIED. */
  allowUnqualifiedIns?: boolean;
  /** Through the outbox: answered at once with a job id; the bridge sends it (establishment certificate). */
  queue?: boolean;
}

export interface DmpSubmitResult {
  uniqueId: string;
  submissionSetUniqueId: string;
  /** How the INS was known to be qualified: returned by the INSi here, stated by the caller, or accepted unqualified. */
  insQualification: "insi" | "stated" | "unqualified";
}

/** Identity traits as a person types them (the bridge removes accents and puts capitals). */
export interface InsTraits {
  birthName: string;
  /** All first names, civil order, space-separated. */
  firstNames: string;
  sex: "M" | "F";
  /** YYYY-MM-DD (a lunar date keeps its 00). */
  birthDate: string;
  /** INSEE (COG) code of the birth place. */
  birthPlace?: string;
}

/** ins.search params: `traits`, or `vitale` (a beneficiary of the card in a reader), not both. */
export interface InsSearchParams {
  traits?: InsTraits;
  vitale?: { reader?: string; beneficiary: number; sex?: "M" | "F" };
  /** cps: the logged-in CPS (signed assertion); establishment: the INSI-AUTO / INSI-MANU certificate. */
  auth?: "cps" | "establishment";
  /** The CPS reader (cps auth). */
  reader?: string;
}

/** The qualified identity the INSi returned: use `ins` and `oid` in DMP calls. */
export interface InsIdentity {
  ins: string;
  oid: string;
  kind: "INS-NIR" | "INS-NIA";
  birthName: string;
  firstName: string;
  firstNames: string;
  sex: string;
  birthDate: string;
  birthPlace: string | null;
  /** Earlier INS of the same person. */
  history: { ins: string; oid: string }[];
}

export interface InsSearchResult {
  code: "00";
  qualified: true;
  /** vitale: searched with the beneficiary's own NIR on the card; traits: by identity traits. */
  source: "traits" | "vitale";
  identity: InsIdentity;
}

export interface InsVerifyResult {
  code: "00";
  qualified: true;
  verified: true;
  /** false: the INS given is an earlier INS of this person; use identity.ins. */
  insIsCurrent: boolean;
  identity: InsIdentity;
}

/** dmp.documents.find params (TD3.1): every filter is sent to the DMP; codes from the value sets. */
export interface DmpFindParams {
  patient: { ins: string; oid?: string };
  statuses?: ("approved" | "archived")[];
  /** LOINC (JDV_J07), TRE_A03, JDV_J60, TRE_A01, TRE_R02 codes; an unknown code is INVALID_PARAMS. */
  typeCodes?: string[];
  classCodes?: string[];
  formatCodes?: string[];
  practiceSettings?: string[];
  facilityTypes?: string[];
  visibility?: ("hiddenFromProfessionals" | "hiddenFromPatient")[];
  /** HL7 DTM in UTC (YYYYMMDD[hhmm[ss]]): From inclusive, To exclusive (ITI-18). */
  creationFrom?: string;
  creationTo?: string;
  serviceStartFrom?: string;
  serviceStartTo?: string;
  serviceStopFrom?: string;
  serviceStopTo?: string;
  /** Authors' national ids (RPPS/ADELI with their prefix, e.g. 810012345678). */
  authors?: string[];
}

export declare class BridgeError extends Error {
  readonly code: ErrorCode;
  readonly messageFr: string;
  readonly messageEn: string;
  /** What the person does next (French); `hintEn` in English. */
  readonly hint: string;
  readonly hintEn: string;
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
  /** Candidate ports tried at once when `url` is not given (default 28442-28457: one daemon per OS user). */
  ports?: number[];
  /** Only for the bridge's own diagnostics page: the secret it was served with. */
  pageSecret?: string;
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
   * NIR, or a NIR shared with no quality tag to say whose it is). Never use cardNir for this person; the INS
   * for the DMP is the one `insSearch` returns (qualified by the INSi), not a NIR read from the card. */
  nir: string | null;
  /** Key of nir, null with it. */
  nirKey: string | null;
  /** True when nir is not null and its key is right. */
  nirValid: boolean;
  /** True when the card holds this person's own NIR (nirValid): `ins.search` with `vitale` may start from
   * the card. False (e.g. a child on a parent's card): cardNir is not this person's and must never be used
   * as their INS; `ins.search` then searches by the card's traits and the sex you give. Either way the INS
   * to use is the one `ins.search` returns (qualified), not a NIR read from the card. */
  hasOwnIns: boolean;
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

/** A patient as the DMP methods take it. */
export interface DmpPatient {
  ins: string;
  oid?: string;
  lastName?: string;
  firstName?: string;
  gender?: "M" | "F" | "U";
  birthDate?: string;
}

/** dmp.patient.status (TD0.2). */
export interface DmpPatientStatus {
  dmp: "exists" | "closed" | "unknown";
  /** This professional's authorisation; null when the patient has no DMP. */
  authorization: "valid" | "expired" | "blocked" | "none" | null;
  treatingPhysician: boolean;
  /** Associated with Mon espace santé (then TD1.3b/TD1.4 are refused); null when the DMP does not say. */
  mes: boolean | null;
  webAccessOpen: boolean | null;
  patient: { lastName: string; firstName: string; gender: string; birthDate: string };
  /** The rights matrix's actor (PDT-INF-526), e.g. "Médecin (non MT)", "Certificat ES". */
  actor: string;
  accessMode: "normal" | "bris_de_glace" | "centre_15";
  rights: { transaction: string; operation: string; verdict: "allowed" | "refused" | "conditional" }[];
}

/** dmp.patient.authorize (TD0.3). */
export interface DmpPatientAuthorizeParams {
  patient: DmpPatient;
  action: "declare" | "remove" | "removeTreatingPhysician";
  /** Required true for "declare": the caller recorded the patient's agreement. */
  patientAgreement?: boolean;
}

/** dmp.patient.admin.get / update (TD1.3a/b). */
export interface DmpAdminData {
  lastName: string;
  firstName: string;
  prefix: string;
  gender: string;
  birthDate: string;
  telecoms: { use?: string; value: string }[];
  street: string[];
  postalCode: string;
  city: string;
  country: string;
  oppositionBrisDeGlace: boolean;
  oppositionAccesUrgence: boolean;
  closed: boolean;
  representatives: { lastName: string; firstName: string }[];
}

export type DmpAdminChanges = Partial<Omit<DmpAdminData, "closed" | "representatives">>;

/** dmp.patient.professionals (TD1.6) rows. */
export interface DmpProfessional {
  nationalId: string;
  lastName: string;
  firstName: string;
  specialities: string[];
  since: string;
  lastAction: string;
  blocked: boolean;
}

/** dmp.patients.authorized (TD0.4) rows. */
export interface DmpAuthorizedDmp {
  identifiers: { oid: string; value: string }[];
  lastName: string;
  firstName: string;
  birthDate: string;
  treatingPhysician: boolean;
  lastAccess: string;
  lastUpdate: string;
  lastAdd: string;
}

/** dmp.patients.search (TD0.5): at most 10 candidates; `remaining` > 0 means refine. */
export interface DmpSearchResult {
  candidates: {
    ins: string; insOid: string; lastName: string; birthName: string; firstName: string; gender: string;
    birthDate: string; postalCode: string; city: string; match: number | null; oppositionAccesUrgence: boolean | null;
  }[];
  total: number;
  remaining: number;
}

export type WebPsPage =
  | "dashboard" | "patient" | "management" | "documents" | "carePathway" | "accessHistory" | "settings"
  | "wishesAndRights" | "vaccination";

export declare class Bridge {
  /** Whether this connection proved an approved key (the SDK proves it on every connection). */
  readonly approved: boolean;
  /** Fingerprint of this origin's key as the bridge shows it (`dmp-bridge origins list`). */
  readonly keyFingerprint: string | null;
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
    /** A page signs with the signature key only ("authentication" is for local programs: INVALID_PARAMS). */
    key?: "signature" | "authentication";
    reader?: string;
  }): Promise<CpsSignResult>;
  vitaleRead(options?: { reader?: string }): Promise<VitaleCard>;
  /** INSi: the qualified INS of a person (INS_NOT_FOUND, INS_MULTIPLE_MATCHES otherwise). */
  insSearch(params: InsSearchParams): Promise<InsSearchResult>;
  /** INSi: check an INS against the traits (INS_MISMATCH when they designate someone else). */
  insVerify(params: { ins: string; traits: InsTraits; auth?: "cps" | "establishment"; reader?: string }): Promise<InsVerifyResult>;
  dmpPatientStatus(patient: DmpPatient): Promise<DmpPatientStatus>;
  dmpPatientAuthorize(params: DmpPatientAuthorizeParams): Promise<{ action: string; context: string }>;
  dmpPatientAdmin(patient: DmpPatient): Promise<DmpAdminData>;
  /** Only for a DMP not associated with Mon espace santé (else DMP_MANAGED_BY_MES). */
  dmpPatientAdminUpdate(patient: DmpPatient, changes: DmpAdminChanges): Promise<DmpAdminData>;
  /** At the patient's request; only for a DMP not associated with Mon espace santé. */
  dmpPatientClose(patient: DmpPatient): Promise<{ closed: true }>;
  dmpPatientProfessionals(patient: DmpPatient, mode?: "authorized" | "blocked" | "all"): Promise<{ professionals: DmpProfessional[] }>;
  dmpPatientsAuthorized(params: {
    contextPatient: DmpPatient; since: string; dateType?: "authorization" | "document"; psOwnerId?: string;
  }): Promise<{ dmps: DmpAuthorizedDmp[] }>;
  dmpPatientsSearch(params: {
    contextPatient: DmpPatient; lastName: string; firstName?: string; gender?: "M" | "F" | "U"; birthDate?: string;
    postalCode?: string; city?: string;
  }): Promise<DmpSearchResult>;
  dmpWebPsUrl(page?: WebPsPage, patient?: DmpPatient): Promise<{ url: string }>;
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
