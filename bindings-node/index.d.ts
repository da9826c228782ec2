// Type definitions of @allowly/sdk (hand-written; the native layer's own types are in native.d.ts).
// Field names are the wire's snake_case names in camelCase; user data (context, metadata), policy
// definitions, key documents and signed receipts keep their wire form.

/** Integer micros (`50_000_000` = $50.00). Numbers must be safe integers; a bigint within ±(2^53 − 1) is accepted. */
export type Micros = number | bigint;
export type Decision = 'allow' | 'deny' | 'confirm' | 'escalate';
export type FallbackMode = 'fail_open' | 'fail_closed';
/** A JSON value as the engine accepts it in `context` and `metadata`: integers only, no floats. */
export type JsonValue = string | number | bigint | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };
/** `YYYY-MM-DDTHH:MM:SS.sssZ`. */
export type Timestamp = string;

/** A flattened JWS, wire 5: verify it with `verifyReceipt`. */
export interface SignedReceipt {
  protected: string;
  payload: string;
  signature: string;
}

export type ReceiptEnvelope =
  | { status: 'signed'; receipt: SignedReceipt }
  | { status: 'pending'; receiptId: string; readyAtEstimate: string | null; url: string };

export interface PolicyRef {
  policyId: string;
  policyVersion: number;
  definitionSha256: string;
}

// ---------------------------------------------------------------------------------------------
// Options and requests

export interface RemoteOptions {
  /** A runtime API key (`allowly.runtime.…`; policy calls need a setup key). */
  apiKey: string;
  /** The `allowly serve` URL, e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** Bound of one `check`, connect to last byte (default 1000). */
  checkTimeoutMs?: number;
  /** Bound of every other call (default 10 000). */
  requestTimeoutMs?: number;
  /** What `check` answers per action when the runtime cannot (default `fail_closed`). */
  fallbackByAction?: Record<string, FallbackMode>;
  /** The runtime's workspace (needed for `keyDocument()`). */
  workspaceId?: string;
  /** Allow `http://` to a host that is not a loopback address (the API key travels in clear). */
  dangerouslyAllowInsecureBaseUrl?: boolean;
}

export interface EmbeddedOptions {
  /** The workspace directory (default `$ALLOWLY_HOME` or `./.allowly`); created on first use. */
  home?: string;
}

export interface CheckParams {
  authorizationId: string;
  /** 1 to 25 action names (`scopes` is an alias; pass one of them). */
  actions?: string[];
  scopes?: string[];
  resource?: string | null;
  sessionId?: string | null;
  estimatedCostMicros?: Micros | null;
  /** ≤ 4 KiB; integers only (a float is refused). */
  context?: JsonObject;
  idempotencyKey?: string;
  clientTimestamp?: string | Date;
}

export interface AuthorizationCreateParams {
  userId: string;
  /** The policy (bundle) to authorize from (`policyId` is the wire name; pass one of them). */
  bundleId?: string;
  policyId?: string;
  /** Default: the newest edition. */
  policyVersion?: number;
  /** A subset of the policy's actions (`scopes` is an alias). Default: all. */
  actions?: string[];
  scopes?: string[];
  /** Default: now + the policy's `default_expiry_days`. */
  expiresAt?: string | Date;
  budgetLimitMicros?: Micros | null;
  metadata?: JsonObject;
  /** An authorization this one supersedes (and revokes). */
  replaces?: string;
  idempotencyKey?: string;
}

export interface ListParams {
  limit?: number;
  cursor?: string;
}

export interface PolicyParams {
  policyId: string;
  /** The `allowly.policy.v1` document: `{profile, agent_id, actions, default_expiry_days}` (wire field names). */
  definition: JsonObject;
  description?: string;
}

export interface PublishPolicyParams extends PolicyParams {
  /** Sent as `Idempotency-Key` to a runtime (one is made up when absent); unused embedded. */
  idempotencyKey?: string;
}

/** The answer to `policies.publish`: the edition that is now the newest. */
export interface PolicyPublished {
  policyRef: PolicyRef;
  agentId: string;
  /** Who published it: `api_key:<key id>` on a runtime, `embedded` in process. */
  createdBy: string;
  createdAt: string;
  /** Always empty here: this engine migrates no authorizations on publish. */
  authorizationMigrations: { userId: string; previousAuthorizationId: string; authorizationId: string }[];
  /** Always empty here: publishing archives no other policy. */
  archivedPolicyIds: string[];
  revokedConfirmationCount: number;
}

export interface SettleBudgetParams {
  /** The receipt id of the check whose reservation is settled. */
  checkReceiptId: string;
  actualCostMicros: Micros;
  idempotencyKey?: string;
}

export interface VerifyOptions {
  /** The workspace you trust (from your configuration, never from the receipt). */
  expectedWorkspaceId: string;
  /** `sha256:<hex>` fingerprints of the keys you trust. An empty list trusts nothing. */
  trustedKeyFingerprints: string[];
}

export interface VerifyCheckpointOptions extends VerifyOptions {
  /** The previous checkpoint, to check the chain link. */
  previous?: SignedReceipt | ReceiptEnvelope | string;
}

// ---------------------------------------------------------------------------------------------
// Answers

export interface BudgetInfo {
  limitMicros: number;
  spentMicros: number;
  estimatedCostMicros: number;
  /** Null when the check was denied for the budget. */
  spentAfterMicros: number | null;
}

export interface EscalationInfo {
  escalationId: string;
  status: string;
  escalationTo: string | null;
  expiresAt: string | null;
}

export interface PolicyEval {
  inputSha256: string;
  result: {
    profile: string;
    status: string;
    decision: Decision;
    target: string | null;
    matchedRuleId: string | null;
    evaluatedFields: JsonValue;
  };
}

export interface ActionResult {
  decision: Decision;
  reason: string;
  /** The signed receipt of this decision; null only for a local fallback. */
  receipt: ReceiptEnvelope | null;
  receiptId?: string;
  /** True when the runtime could not decide and the SDK answered locally (no receipt). */
  isFallback: boolean;
  fallbackMode: FallbackMode | null;
  budget: BudgetInfo | null;
  escalation: EscalationInfo | null;
  policyEval: PolicyEval | null;
  /** `confirm`: the bearer secret that approves this confirmation. */
  confirmNonce?: string;
  confirmExpiresAt?: string;
  confirmPromptHint?: string;
  confirmationId?: string;
  /** `escalate`: the escalation to resolve. */
  escalationId?: string;
  escalationTo?: string;
  escalationExpiresAt?: string;
  supersededBy?: string;
}

export interface CheckResponse {
  authorizationId: string;
  userId: string | null;
  agentId: string | null;
  authorizationExpiresAt: string | null;
  /** `sha256:<hex>`, or `sdk_fallback` for a local fallback answer. */
  engineVersion: string;
  /** One result per requested action, keyed by the action name as given. */
  results: Record<string, ActionResult>;
}

export interface AuthorizationCreated {
  authorizationId: string;
  policyRef: PolicyRef;
  actions: string[];
  createdAt: Timestamp;
  expiresAt: Timestamp;
  receipt: ReceiptEnvelope;
  authorizationProvenance: { [key: string]: JsonValue };
  budgetLimitMicros: number | null;
  budgetSpentMicros: number;
  replacedAuthorizationId: string | null;
  revocationReceipt: ReceiptEnvelope | null;
}

export interface AuthorizationRevoked {
  authorizationId: string;
  revokedAt: Timestamp;
  receipt: ReceiptEnvelope;
  revokedConfirmations: string[];
}

export interface AuthorizationView {
  authorizationId: string;
  userId: string;
  agentId: string;
  policyRef: PolicyRef;
  actions: string[];
  status: 'active' | 'revoked' | 'expired';
  createdAt: Timestamp;
  expiresAt: Timestamp;
  revokedAt: Timestamp | null;
  budgetLimitMicros: number | null;
  budgetSpentMicros: number;
  metadata: JsonObject;
  replaces: string | null;
  supersededBy: string | null;
}

export interface Page<T> {
  items: T[];
  hasMore: boolean;
  nextCursor: string | null;
}

export type PromptStatus = 'pending' | 'approved' | 'rejected' | 'expired';

export interface ConfirmationResolved {
  decision: string;
  authorizationId: string | null;
  expiresAt: Timestamp | null;
  receipt: ReceiptEnvelope | null;
}

export interface ConfirmationStatus {
  confirmationId: string;
  authorizationId: string;
  action: string;
  resource: string | null;
  status: PromptStatus;
  expiresAt: Timestamp;
  resolvedAt: Timestamp | null;
  sourceReceiptId: string | null;
  resolutionReceiptId: string | null;
  childAuthorizationId: string | null;
  authorityStatus: string;
  authorityExpiresAt: Timestamp | null;
}

export interface EscalationResolved {
  escalationId: string;
  status: string;
  resolvedBy: string | null;
  resolvedAt: Timestamp | null;
  receipt: ReceiptEnvelope | null;
}

export interface EscalationStatus {
  escalationId: string;
  authorizationId: string;
  action: string;
  resource: string | null;
  status: PromptStatus;
  expiresAt: Timestamp;
  resolvedAt: Timestamp | null;
  sourceReceiptId: string | null;
  resolutionReceiptId: string | null;
  authorityStatus: string;
  consumedAt: Timestamp | null;
}

export interface BudgetSettlement {
  checkReceiptId: string;
  authorizationId: string;
  estimatedCostMicros: number;
  actualCostMicros: number;
  deltaMicros: number;
  spentBeforeMicros: number;
  spentAfterMicros: number;
  receipt: ReceiptEnvelope;
}

export interface PolicyView {
  policyRef: PolicyRef;
  /** The definition document, in its wire form. */
  definition: JsonObject;
  description: string | null;
  createdBy: string | null;
  createdAt: Timestamp | null;
  deletedAt: Timestamp | null;
}

export interface CheckpointInfo {
  receiptId: string;
  periodStart: Timestamp;
  receiptCount: number;
  merkleRoot: string;
}

/** `GET /v1/workspaces/{id}/keys`, in its wire form (pass it to `loadKeysFromJson`). */
export interface KeyDocument {
  workspace_id: string;
  keys: Array<{
    key_id: string;
    alg: 'Ed25519';
    public_key: string;
    public_key_fingerprint: string;
    active_from: Timestamp;
    active_until: Timestamp | null;
  }>;
}

/** A verified receipt's payload, in its wire form. */
export interface ReceiptPayload {
  schema_version: '5';
  receipt_id: string;
  workspace_id: string;
  issued_at: Timestamp;
  decision: string;
  reason: string;
  user_id: string;
  agent_id: string;
  resource: string | null;
  context: JsonObject;
  authorization_id: string | null;
  policy_ref: { policy_id: string; policy_version: number; definition_sha256: string } | null;
  engine_version: string;
  action?: string;
  event?: string;
  policy_eval?: JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Client

export declare class Allowly {
  /** A client of an `allowly serve` runtime (no connection is opened until the first call). */
  constructor(options: RemoteOptions);
  /** The engine in this process, on the workspace in `options.home`. */
  static embedded(options?: EmbeddedOptions): Allowly;
  /** The engine in this process, on a workspace that lives in memory only. */
  static inMemory(): Allowly;

  readonly isEmbedded: boolean;
  readonly authorizations: Authorizations;
  readonly confirmations: Confirmations;
  readonly escalations: Escalations;
  readonly receipts: Receipts;
  readonly policies: Policies;

  /**
   * One decision per action. Never rejects because the runtime is unavailable: it resolves with
   * the local fallback instead (`isFallback: true`, no receipt, deny unless mapped `fail_open`).
   */
  check(params: CheckParams): Promise<CheckResponse>;
  settleBudget(params: SettleBudgetParams): Promise<BudgetSettlement>;
  /** Whether the workspace can serve requests now. */
  readiness(): Promise<boolean>;
  keyDocument(): Promise<KeyDocument>;
  workspaceId(): Promise<string | null>;
  engineVersion(): Promise<string | null>;
  /** Embedded only: signs the daily checkpoints that are due. */
  createCheckpoints(): Promise<CheckpointInfo[]>;
}

export default Allowly;

export declare class Authorizations {
  private constructor();
  create(params: AuthorizationCreateParams): Promise<AuthorizationCreated>;
  revoke(authorizationId: string, options?: { revokedBy?: string; notes?: string }): Promise<AuthorizationRevoked>;
  list(params?: ListParams): Promise<Page<AuthorizationView>>;
  get(authorizationId: string): Promise<AuthorizationView>;
}

export declare class Confirmations {
  private constructor();
  /** Approves (for `ttlSeconds`, default 60) — or with `approved: false` rejects — by nonce. */
  approve(nonce: string, options?: { approved?: boolean; ttlSeconds?: number }): Promise<ConfirmationResolved>;
  reject(nonce: string): Promise<ConfirmationResolved>;
  getStatus(confirmationId: string): Promise<ConfirmationStatus>;
  get(confirmationId: string): Promise<ConfirmationStatus>;
}

export declare class Escalations {
  private constructor();
  resolve(
    escalationId: string,
    options: { resolution: 'approved' | 'rejected'; resolvedBy: string; note?: string },
  ): Promise<EscalationResolved>;
  approve(escalationId: string, options: { resolvedBy: string; note?: string }): Promise<EscalationResolved>;
  reject(escalationId: string, options: { resolvedBy: string; note?: string }): Promise<EscalationResolved>;
  getStatus(escalationId: string): Promise<EscalationStatus>;
  get(escalationId: string): Promise<EscalationStatus>;
}

export declare class Receipts {
  private constructor();
  get(receiptId: string): Promise<{ status: 'signed'; receipt: SignedReceipt }>;
}

export declare class Policies {
  private constructor();
  create(params: PolicyParams): Promise<PolicyView>;
  /** Publishes the next edition (or keeps the newest if it has this definition). */
  publish(params: PublishPolicyParams): Promise<PolicyPublished>;
  get(policyId: string): Promise<PolicyView>;
  list(params?: ListParams): Promise<Page<PolicyView>>;
  archive(policyId: string): Promise<void>;
  preview(params: { definition: JsonObject; action: string; context?: JsonObject }): Promise<{ [key: string]: JsonValue }>;
}

// ---------------------------------------------------------------------------------------------
// Verification

export declare class KeySet {
  private constructor();
  /** The `workspace_id` the key document names. */
  readonly workspaceId: string;
}

/** Loads and validates a key document (JSON text or object). Throws `SchemaError`. */
export declare function loadKeysFromJson(document: string | KeyDocument): KeySet;

/** Verifies a wire-5 receipt; resolves with its payload, rejects with a `VerificationError` subclass. */
export declare function verifyReceipt(
  receipt: SignedReceipt | ReceiptEnvelope | string,
  keys: KeySet | KeyDocument | string,
  options: VerifyOptions,
): Promise<ReceiptPayload>;

/** Verifies a `receipt.checkpoint` receipt against exactly its member receipts. */
export declare function verifyCheckpoint(
  checkpoint: SignedReceipt | ReceiptEnvelope | string,
  members: Array<SignedReceipt | ReceiptEnvelope | string>,
  keys: KeySet | KeyDocument | string,
  options: VerifyCheckpointOptions,
): Promise<void>;

// ---------------------------------------------------------------------------------------------
// Errors

export interface FieldError {
  field: string;
  message: string;
}

/** Base of every error of this package; `code` is the stable machine code. */
export declare class AllowlyError extends Error {
  readonly code: string;
  readonly fields: FieldError[];
  /** The HTTP status (remote), or the one `allowly serve` would answer (embedded). */
  readonly status: number | undefined;
  readonly retryAfterSeconds: number | undefined;
}
export declare class AllowlyAPIError extends AllowlyError {}
export declare class AllowlyValidationError extends AllowlyAPIError {}
export declare class AllowlyAuthError extends AllowlyAPIError {}
export declare class AllowlyNotFoundError extends AllowlyAPIError {}
export declare class AllowlyConflictError extends AllowlyAPIError {}
export declare class AllowlyRateLimitError extends AllowlyAPIError {}
export declare class AllowlyTransportError extends AllowlyError {}
export declare class AllowlyEngineError extends AllowlyError {}

/** `code`: schema_error, unknown_key, key_outside_active_window, untrusted_key, signature_mismatch, checkpoint_mismatch. */
export declare class VerificationError extends AllowlyError {
  /** The reference verifier's exception class for the same failure. */
  readonly referenceClass: string;
}
export declare class SchemaError extends VerificationError {}
export declare class UnknownKeyError extends VerificationError {}
export declare class KeyOutsideActiveWindowError extends VerificationError {}
export declare class UntrustedKeyError extends VerificationError {}
export declare class SignatureMismatchError extends VerificationError {}
export declare class CheckpointMismatchError extends VerificationError {}
