// Types for dmp-bridge.js (the local DMP bridge SDK).

export declare const DEFAULT_PORT: number;
export declare const DEFAULT_URL: string;

export type ErrorCode =
  | "NO_READER" | "NO_CARD" | "CARD_REMOVED" | "CARD_RESET" | "UNSUPPORTED_CARD" | "CARD_ERROR"
  | "PIN_INCORRECT" | "PIN_BLOCKED" | "PIN_LAST_TRY" | "PIN_REQUIRED" | "CARD_BUSY" | "SHARING_VIOLATION"
  | "PCSC_UNAVAILABLE" | "TIMEOUT" | "ORIGIN_NOT_APPROVED" | "UNAUTHORIZED" | "DMP_UNREACHABLE" | "DMP_FAULT"
  | "INVALID_PARAMS" | "INVALID_INPUT" | "NOT_FOUND" | "INTERNAL"
  | "BRIDGE_UNREACHABLE" | "BRIDGE_BLOCKED" | "DISCONNECTED" | "PAIRING_DENIED";

export interface ErrorData {
  code: ErrorCode;
  message_fr: string;
  message_en: string;
  detail?: string;
  [extra: string]: unknown;
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
  connection: { state: "open" | "reconnecting" | "closed" };
}

export declare class Bridge {
  on<K extends keyof EventMap>(event: K, cb: (params: EventMap[K]) => void): () => void;
  call<T = unknown>(method: string, params?: Record<string, unknown>, options?: { timeout?: number }): Promise<T>;
  pair(options?: { onPending?: (answer: PairingAnswer) => void; timeout?: number }): Promise<PairingAnswer | PairingDecision>;
  info(): Promise<BridgeInfo>;
  readersList(): Promise<ReadersList>;
  diagnosticsReport(): Promise<Record<string, unknown>>;
  cpsRead(options?: { reader?: string }): Promise<Record<string, unknown>>;
  cpsLogin(options: { pin: string; reader?: string; allowLastTry?: boolean }): Promise<Record<string, unknown>>;
  cpsLogout(options?: { reader?: string }): Promise<Record<string, unknown>>;
  cpsSign(options: {
    data: string;
    digestAlgorithm?: "SHA-256" | "SHA-384" | "SHA-512";
    prehashed?: boolean;
    key?: "signature" | "authentication";
    reader?: string;
  }): Promise<Record<string, unknown>>;
  vitaleRead(options?: { reader?: string }): Promise<Record<string, unknown>>;
  close(): void;
}

export declare function connect(options?: ConnectOptions): Promise<Bridge>;
