// Type definitions of @allowly/sdk. The wire types (every operation's arguments and answer) are
// generated from the core's Rust types into generated/types.d.ts (scripts/gen-types.sh; a stale
// file fails scripts/node-test.sh); this file declares only the SDK's surface on top of them: the
// classes and methods, their camelCase options, and `Camelize`, which maps a wire answer to what a
// method resolves with (snake_case keys → camelCase; user data, definitions and key documents as
// they are). The native layer's own types are in native.d.ts.

import type * as Wire from './generated/types.js';

export type {
  ErrorKind,
  JsonValue as WireJsonValue,
  KeyDocument,
  OperationName,
  Operations,
  PublishedKey,
  Route,
  SignedReceipt,
  Decision,
  PromptStatus,
  ApiKeyKind,
} from './generated/types.js';
/** The wire types themselves (snake_case), by their Rust names. */
export type { Wire };

// ---------------------------------------------------------------------------------------------
// From wire answers to the SDK's answers

/** `snake_case` → `camelCase`, as the SDK renames answer members (`receipt_id` → `receiptId`). */
export type CamelKey<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelKey<Tail>>}` : S;
/** Members whose values are user data or documents, which the SDK passes on as they are. */
type Verbatim = 'context' | 'metadata' | 'definition' | 'evaluated_fields' | 'fields';
/** A wire type as the SDK answers it: keys camelCased, except inside user data and documents. */
export type Camelize<T> = Wire.JsonValue extends T
  ? T
  : T extends readonly (infer E)[]
    ? Camelize<E>[]
    : T extends object
      ? { [K in keyof T as K extends string ? CamelKey<K> : K]: K extends Verbatim ? T[K] : Camelize<T[K]> }
      : T;
/** The arguments of a wire operation as camelCase options. */
type Options<T> = Camelize<T>;

/** Integer micros (`50_000_000` = $50.00). Numbers must be safe integers; a bigint within ±(2^53 − 1) is accepted. */
export type Micros = number | bigint;
export type FallbackMode = 'fail_open' | 'fail_closed';
/** A JSON value as the engine accepts it in `context` and `metadata`: integers only, no floats (a bigint within ±(2^53 − 1) is sent as a number). */
export type JsonValue = string | number | bigint | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };
/** `YYYY-MM-DDTHH:MM:SS.sssZ`. */
export type Timestamp = string;

export type ReceiptEnvelope = Camelize<Wire.ReceiptEnvelope>;
export type SignedReceiptEnvelope = Extract<ReceiptEnvelope, { status: 'signed' }>;
export type PolicyRef = Camelize<Wire.PolicyRef>;

// ---------------------------------------------------------------------------------------------
// Options

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

/** `check`'s arguments (`Wire.CheckRequest`), camelCased; `scopes` is an alias of `actions` (pass one of them). */
export type CheckParams = Omit<
  Options<Wire.CheckRequest>,
  'actions' | 'estimatedCostMicros' | 'context' | 'clientTimestamp'
> & {
  /** 1 to 25 action names. */
  actions?: string[];
  scopes?: string[];
  estimatedCostMicros?: Micros | null;
  /** ≤ 4 KiB; integers only (a float is refused). */
  context?: JsonObject | null;
  clientTimestamp?: string | Date | null;
};

/**
 * `create_authorization`'s arguments (`Wire.AuthorizationCreate`), camelCased. `bundleId` is an
 * alias of `policyId`, `scopes` of `actions` (pass one of each).
 */
export type AuthorizationCreateParams = Omit<
  Options<Wire.AuthorizationCreate>,
  'policyId' | 'actions' | 'expiresAt' | 'budgetLimitMicros' | 'metadata'
> & {
  policyId?: string;
  bundleId?: string;
  /** A subset of the policy's actions. Default: all. */
  actions?: string[] | null;
  scopes?: string[];
  /** Default: now + the policy's `default_expiry_days`. */
  expiresAt?: string | Date | null;
  budgetLimitMicros?: Micros | null;
  metadata?: JsonObject | null;
};

/** A page: `limit` and `cursor` (`Wire.ListPolicies`). */
export type ListParams = Options<Wire.ListPolicies>;
/** `list_authorizations`'s arguments (`Wire.ListAuthorizations`), camelCased: a page, each filter one that must match. */
export type ListAuthorizationsParams = Options<Wire.ListAuthorizations>;
/** `list_confirmations`'s arguments (`Wire.ListConfirmations`): `status` and a page. */
export type ListConfirmationsParams = Options<Wire.ListConfirmations>;
/** `list_escalations`'s arguments (`Wire.ListEscalations`): `status` and a page. */
export type ListEscalationsParams = Options<Wire.ListEscalations>;
/**
 * `list_receipts`'s arguments (`Wire.ListReceipts`), camelCased: each a filter that must match;
 * `since` (inclusive) and `until` (exclusive) as RFC 3339 instants or Dates.
 */
export type ListReceiptsParams = Omit<Options<Wire.ListReceipts>, 'since' | 'until'> & {
  since?: string | Date | null;
  until?: string | Date | null;
};

/** `create_policy` / `publish_policy`: the body's `policy_id` and `description`, and the definition's members. */
export interface PolicyParams {
  policyId: string;
  /** The `allowly.policy.v1` document: `{profile, agent_id, actions, default_expiry_days}` (wire field names). */
  definition: JsonObject;
  description?: string;
  /** A retry under the same key gets the first answer. */
  idempotencyKey?: string;
}

export interface PublishPolicyParams extends PolicyParams {
  /** Sent as `Idempotency-Key` to a runtime (one is made up when absent). */
  idempotencyKey?: string;
}

export type SettleBudgetParams = Omit<Options<Wire.SettleBudget>, 'actualCostMicros'> & { actualCostMicros: Micros };
export type RevokeAuthorizationOptions = Omit<Options<Wire.RevokeAuthorization>, 'authorizationId'>;
export type ApproveConfirmationOptions = Omit<Options<Wire.ResolveConfirmation>, 'nonce' | 'approved'> & {
  /** `false` rejects. Default `true`. */
  approved?: boolean;
};
export type RejectConfirmationOptions = Pick<Options<Wire.ResolveConfirmation>, 'idempotencyKey'>;
export type ResolveEscalationOptions = Omit<Options<Wire.ResolveEscalation>, 'escalationId'>;
export type ApproveEscalationOptions = Omit<ResolveEscalationOptions, 'resolution'>;
export type GetPolicyOptions = Omit<Options<Wire.GetPolicy>, 'policyId'>;
export type ArchivePolicyOptions = Omit<Options<Wire.ArchivePolicy>, 'policyId'>;
export type PreviewPolicyParams = Omit<Options<Wire.PreviewPolicy>, 'context'> & { context?: JsonObject | null };
export type CreateApiKeyParams = Options<Wire.CreateApiKey>;
/** `verify_receipts`'s arguments but `input` (`Wire.VerifyReceipts`), camelCased; documents as they are. */
export type VerifyReceiptsOptions = Omit<Options<Wire.VerifyReceipts>, 'input' | 'keyDocument'> & {
  /** The key document to verify against (default: this workspace's). */
  keyDocument?: Wire.KeyDocument | Wire.JsonValue | null;
};
/**
 * What `receipts.verify` takes: text as pasted (a receipt, its envelope, a check response or JSON
 * Lines), or one of those documents, sent as it is.
 */
export type VerifyInput = string | Wire.SignedReceipt | ReceiptEnvelope | CheckResponse | Wire.JsonValue;

export interface VerifyOptions {
  /** The workspace you trust (from your configuration, never from the receipt). */
  expectedWorkspaceId: string;
  /** `sha256:<hex>` fingerprints of the keys you trust. An empty list trusts nothing. */
  trustedKeyFingerprints: string[];
}

export interface VerifyCheckpointOptions extends VerifyOptions {
  /** The previous checkpoint, to check the chain link. */
  previous?: Wire.SignedReceipt | ReceiptEnvelope | string;
}

// ---------------------------------------------------------------------------------------------
// Answers: the wire answers, camelCased

export type BudgetInfo = Camelize<Wire.BudgetInfo>;
export type EscalationInfo = Camelize<Wire.EscalationInfo>;
/** A check result's `policyEval` (a JSON document of the engine). */
export type PolicyEval = NonNullable<Camelize<Wire.ActionResult>['policyEval']>;
/** One action's result; the SDK always sets `isFallback` and `fallbackMode`. */
export type ActionResult = Omit<Camelize<Wire.ActionResult>, 'isFallback' | 'fallbackMode'> & {
  /** True when the runtime could not decide and the SDK answered locally (no receipt). */
  isFallback: boolean;
  fallbackMode: FallbackMode | null;
};
export type CheckResponse = Omit<Camelize<Wire.CheckResponse>, 'results'> & {
  /** One result per requested action, keyed by the action name as given. */
  results: Record<string, ActionResult>;
};
export type AuthorizationCreated = Camelize<Wire.AuthorizationCreated>;
export type AuthorizationRevoked = Camelize<Wire.AuthorizationRevoked>;
export type AuthorizationView = Camelize<Wire.AuthorizationView>;
export type Page<T> = Omit<Camelize<Wire.Page<never>>, 'items'> & { items: T[] };
export type ConfirmationResolved = Camelize<Wire.ConfirmationResolved>;
export type ConfirmationStatus = Camelize<Wire.ConfirmationStatusView>;
/** A confirmation in `confirmations.list`: its status, and the user and agent it is for. */
export type ConfirmationItem = Camelize<Wire.ConfirmationItem>;
export type EscalationResolved = Camelize<Wire.EscalationResolved>;
export type EscalationStatus = Camelize<Wire.EscalationStatusView>;
/** An escalation in `escalations.list`: its status, who it is for and who decides. */
export type EscalationItem = Camelize<Wire.EscalationItem>;
/** A receipt in `receipts.list`: what it says, and the signed receipt. */
export type ReceiptSummary = Camelize<Wire.ReceiptSummary>;
/** The answer to `receipts.verify`: one verdict per receipt found in the input. */
export type VerifyReport = Camelize<Wire.VerifyReport>;
export type ReceiptVerdict = Camelize<Wire.ReceiptVerdict>;
export type VerifyFailure = Camelize<Wire.VerifyFailure>;
export type BudgetSettlement = Camelize<Wire.BudgetSettlement>;
export type PolicyView = Camelize<Wire.PolicyView>;
/** The answer to `policies.publish`: the edition that is now the newest. */
export type PolicyPublished = Camelize<Wire.PolicyPublished>;
export type PolicyPreview = Camelize<Wire.Operations['preview_policy']['answer']>;
export type CheckpointInfo = Camelize<Wire.CheckpointInfo>;
export type ApiKeyCreated = Camelize<Wire.ApiKeyCreated>;
export type ApiKeyList = Camelize<Wire.ApiKeyList>;

/**
 * A verified receipt's payload, in its wire form. Not an operation's answer: the verifier returns
 * the signed payload as it is (docs/verifying-receipts.md); the core has no Rust type for it.
 */
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
  policy_ref: Wire.PolicyRef | null;
  engine_version: string;
  action?: string;
  event?: string;
  policy_eval?: JsonObject;
}

// ---------------------------------------------------------------------------------------------
// Client

/** The core's operation catalog (`ops::CATALOG`): one route per operation, in catalog order. */
export declare const CATALOG: readonly Readonly<Wire.Route>[];

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
  readonly apiKeys: ApiKeys;

  /**
   * Any operation of the catalog by name, with the wire's arguments, answered with the wire's JSON
   * (`null` for the operations answered with 204). A check that cannot be decided answers the
   * local fallback, as `check` does.
   */
  call<K extends Wire.OperationName>(operation: K, args: Wire.Operations[K]['args']): Promise<Wire.Operations[K]['answer']>;

  /**
   * One decision per action. Never rejects because the runtime is unavailable: it resolves with
   * the local fallback instead (`isFallback: true`, no receipt, deny unless mapped `fail_open`).
   */
  check(params: CheckParams): Promise<CheckResponse>;
  settleBudget(params: SettleBudgetParams): Promise<BudgetSettlement>;
  /** Whether the workspace can serve requests now. */
  readiness(): Promise<boolean>;
  /** The public key document of this workspace (remote: the configured `workspaceId`), or of `workspaceId`. */
  keyDocument(options?: { workspaceId?: string }): Promise<Wire.KeyDocument>;
  /** Retires the signing key and starts a new one (setup key); answers the new key as the key document publishes it. */
  rotateSigningKey(): Promise<Wire.PublishedKey>;
  workspaceId(): Promise<string | null>;
  engineVersion(): Promise<string | null>;
  /** Embedded only: signs the daily checkpoints that are due. */
  createCheckpoints(): Promise<CheckpointInfo[]>;
}

export default Allowly;

export declare class Authorizations {
  private constructor();
  create(params: AuthorizationCreateParams): Promise<AuthorizationCreated>;
  revoke(authorizationId: string, options?: RevokeAuthorizationOptions): Promise<AuthorizationRevoked>;
  /** One page in creation order, by `userId`, `agentId` and `status` as it stands now; follow `nextCursor` while `hasMore`. */
  list(params?: ListAuthorizationsParams): Promise<Page<AuthorizationView>>;
  get(authorizationId: string): Promise<AuthorizationView>;
}

export declare class Confirmations {
  private constructor();
  /** Approves (for `ttlSeconds`, default 60) — or with `approved: false` rejects — by nonce. */
  approve(nonce: string, options?: ApproveConfirmationOptions): Promise<ConfirmationResolved>;
  reject(nonce: string, options?: RejectConfirmationOptions): Promise<ConfirmationResolved>;
  getStatus(confirmationId: string): Promise<ConfirmationStatus>;
  get(confirmationId: string): Promise<ConfirmationStatus>;
  /** One page, newest first (setup key), by `status` as it stands now; follow `nextCursor` while `hasMore`. */
  list(params?: ListConfirmationsParams): Promise<Page<ConfirmationItem>>;
}

export declare class Escalations {
  private constructor();
  resolve(escalationId: string, options: ResolveEscalationOptions): Promise<EscalationResolved>;
  approve(escalationId: string, options: ApproveEscalationOptions): Promise<EscalationResolved>;
  reject(escalationId: string, options: ApproveEscalationOptions): Promise<EscalationResolved>;
  getStatus(escalationId: string): Promise<EscalationStatus>;
  get(escalationId: string): Promise<EscalationStatus>;
  /** One page, newest first (setup key), by `status` as it stands now; follow `nextCursor` while `hasMore`. */
  list(params?: ListEscalationsParams): Promise<Page<EscalationItem>>;
}

export declare class Receipts {
  private constructor();
  /** The signed receipt (both engines sign at once, so the envelope is always `signed`). */
  get(receiptId: string): Promise<SignedReceiptEnvelope>;
  /** The audit lookup (setup key): one page of receipts, newest first, matching every given filter. */
  list(params?: ListReceiptsParams): Promise<Page<ReceiptSummary>>;
  /**
   * Verifies what was pasted (no key needed), against this workspace's keys unless the options
   * name others. A receipt that does not verify is a verdict with an `error`, not a rejection.
   */
  verify(input: VerifyInput, options?: VerifyReceiptsOptions): Promise<VerifyReport>;
}

export declare class Policies {
  private constructor();
  create(params: PolicyParams): Promise<PolicyView>;
  /** Publishes the next edition (or keeps the newest if it has this definition). */
  publish(params: PublishPolicyParams): Promise<PolicyPublished>;
  get(policyId: string, options?: GetPolicyOptions): Promise<PolicyView>;
  list(params?: ListParams): Promise<Page<PolicyView>>;
  archive(policyId: string, options?: ArchivePolicyOptions): Promise<void>;
  preview(params: PreviewPolicyParams): Promise<PolicyPreview>;
}

export declare class ApiKeys {
  private constructor();
  /** A new key; its secret (`key`) is in this answer only. */
  create(params: CreateApiKeyParams): Promise<ApiKeyCreated>;
  list(): Promise<ApiKeyList>;
  revoke(keyId: string): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Verification

export declare class KeySet {
  private constructor();
  /** The `workspace_id` the key document names. */
  readonly workspaceId: string;
}

/** Loads and validates a key document (JSON text or object). Throws `SchemaError`. */
export declare function loadKeysFromJson(document: string | Wire.KeyDocument): KeySet;

/** Verifies a wire-5 receipt; resolves with its payload, rejects with a `VerificationError` subclass. */
export declare function verifyReceipt(
  receipt: Wire.SignedReceipt | ReceiptEnvelope | string,
  keys: KeySet | Wire.KeyDocument | string,
  options: VerifyOptions,
): Promise<ReceiptPayload>;

/** Verifies a `receipt.checkpoint` receipt against exactly its member receipts. */
export declare function verifyCheckpoint(
  checkpoint: Wire.SignedReceipt | ReceiptEnvelope | string,
  members: Array<Wire.SignedReceipt | ReceiptEnvelope | string>,
  keys: KeySet | Wire.KeyDocument | string,
  options: VerifyCheckpointOptions,
): Promise<void>;

// ---------------------------------------------------------------------------------------------
// Errors

export interface FieldError {
  field: string;
  message: string;
}

export interface ErrorDetails {
  kind?: Wire.ErrorKind;
  code?: string;
  status?: number;
  fields?: FieldError[];
  retryAfterSeconds?: number;
  referenceClass?: string;
}

/**
 * Base of every error of this package. `kind` picks the class (`ERROR_CLASSES`), `code` is the
 * stable machine code; `message` is for people.
 */
export declare class AllowlyError extends Error {
  constructor(message: string, details?: ErrorDetails);
  readonly kind: Wire.ErrorKind;
  readonly code: string;
  /** The HTTP status (remote), or the one `allowly serve` would answer (embedded); undefined when no runtime answered. */
  readonly status: number | undefined;
  readonly fields: FieldError[];
  readonly retryAfterSeconds: number | undefined;
}
/** The engine or the runtime answered with an error (`status` is set). */
export declare class AllowlyAPIError extends AllowlyError {
  readonly status: number;
}
/** `invalid_request` (HTTP 400/413/422). */
export declare class InvalidRequestError extends AllowlyAPIError {}
/** `unauthorized` or `forbidden` (HTTP 401/403). */
export declare class AllowlyAuthError extends AllowlyAPIError {}
/** `unauthorized` (HTTP 401). */
export declare class UnauthorizedError extends AllowlyAuthError {}
/** `forbidden`, e.g. a runtime key on a setup operation (HTTP 403). */
export declare class ForbiddenError extends AllowlyAuthError {}
/** `not_found` (HTTP 404). */
export declare class NotFoundError extends AllowlyAPIError {}
/** `conflict` (HTTP 409). */
export declare class ConflictError extends AllowlyAPIError {}
/** `rate_limited` (HTTP 429); see `retryAfterSeconds`. */
export declare class RateLimitError extends AllowlyAPIError {}
/** `unavailable` or `internal` (HTTP 5xx). */
export declare class AllowlyEngineError extends AllowlyAPIError {}
/** `unavailable`: retry later. */
export declare class UnavailableError extends AllowlyEngineError {}
/** `internal`. */
export declare class InternalError extends AllowlyEngineError {}
/** `timeout`, `unreachable` or `protocol`: no answer from the runtime, or one outside the contract. */
export declare class AllowlyTransportError extends AllowlyError {}
/** `timeout`. */
export declare class AllowlyTimeoutError extends AllowlyTransportError {}
/** `unreachable`. */
export declare class ConnectionError extends AllowlyTransportError {}
/** `protocol`. */
export declare class ProtocolError extends AllowlyTransportError {}

/** `verification`; `code`: schema_error, unknown_key, key_outside_active_window, untrusted_key, signature_mismatch, checkpoint_mismatch. */
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

export {
  InvalidRequestError as AllowlyValidationError,
  NotFoundError as AllowlyNotFoundError,
  ConflictError as AllowlyConflictError,
  RateLimitError as AllowlyRateLimitError,
};

/** The one map from an error's `kind` to its class. */
export declare const ERROR_CLASSES: Readonly<Record<Wire.ErrorKind, typeof AllowlyError>>;
