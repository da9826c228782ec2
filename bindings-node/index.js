// @allowly/sdk — the Allowly engine for Node (napi-rs). ESM, Node >= 20.
//
// This file converts types and errors only: each method is one operation of the core's catalog
// (`CATALOG`), called by its name with the wire's snake_case arguments; answers come back
// camelCased, and the native layer's structured errors become typed Error subclasses, one class
// per error `kind` (`ERROR_CLASSES`). Every decision, signature and verification is made by the
// Rust core (allowly-core), the same engine the Python SDK, the CLI and `allowly serve` run.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('./native.cjs');

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * Base of every error this package throws. `kind` says what kind of failure it is (one class per
 * kind, see `ERROR_CLASSES`), `code` is the stable machine code, `status` the HTTP status (remote:
 * the runtime's; embedded: the one `allowly serve` answers the same failure with). The message is
 * for people; codes are the contract.
 */
export class AllowlyError extends Error {
  constructor(message, { kind, code, status, fields = [], retryAfterSeconds, referenceClass } = {}) {
    super(message);
    this.name = new.target.name;
    this.kind = kind ?? kindOfClass(new.target);
    this.code = code ?? this.kind;
    this.status = status ?? undefined;
    this.fields = fields;
    this.retryAfterSeconds = retryAfterSeconds ?? undefined;
    if (referenceClass !== undefined) this.referenceClass = referenceClass;
  }
}

/** The engine (embedded) or the runtime (remote) answered the request with an error; `status` says which. */
export class AllowlyAPIError extends AllowlyError {}
/** `invalid_request`: malformed, out of range or over a limit (HTTP 400/413/422); nothing was done. */
export class InvalidRequestError extends AllowlyAPIError {}
/** A credential problem (HTTP 401/403): `UnauthorizedError` or `ForbiddenError`. */
export class AllowlyAuthError extends AllowlyAPIError {}
/** `unauthorized`: the API key is missing, malformed, unknown or revoked (HTTP 401). */
export class UnauthorizedError extends AllowlyAuthError {}
/** `forbidden`: the API key may not make this call, e.g. a runtime key on a setup operation (HTTP 403). */
export class ForbiddenError extends AllowlyAuthError {}
/** `not_found`: the named object does not exist in this workspace (HTTP 404). */
export class NotFoundError extends AllowlyAPIError {}
/** `conflict`: the request conflicts with the current state (HTTP 409). */
export class ConflictError extends AllowlyAPIError {}
/** `rate_limited`: too many requests (HTTP 429); see `retryAfterSeconds`. Checks never fall back on 429. */
export class RateLimitError extends AllowlyAPIError {}
/** The engine or the runtime failed (HTTP 5xx): `UnavailableError` or `InternalError`. */
export class AllowlyEngineError extends AllowlyAPIError {}
/** `unavailable`: the store (or the runtime) is unavailable or busy; retry later. */
export class UnavailableError extends AllowlyEngineError {}
/** `internal`: the engine failed (signing, files, an unexpected server error). */
export class InternalError extends AllowlyEngineError {}
/** No answer from the runtime, or one outside the contract (never raised by `check`, which falls back). */
export class AllowlyTransportError extends AllowlyError {}
/** `timeout`: the runtime did not answer in time. */
export class AllowlyTimeoutError extends AllowlyTransportError {}
/** `unreachable`: the runtime could not be reached. */
export class ConnectionError extends AllowlyTransportError {}
/** `protocol`: the runtime answered outside the wire contract. */
export class ProtocolError extends AllowlyTransportError {}

/** `verification`: a receipt, key document or checkpoint did not verify. `referenceClass` names the reference verifier's class. */
export class VerificationError extends AllowlyError {
  constructor(message, details = {}) {
    super(message, details);
    this.referenceClass = details.referenceClass ?? 'VerificationError';
  }
}
export class SchemaError extends VerificationError {}
export class UnknownKeyError extends VerificationError {}
export class KeyOutsideActiveWindowError extends VerificationError {}
export class UntrustedKeyError extends VerificationError {}
export class SignatureMismatchError extends VerificationError {}
export class CheckpointMismatchError extends VerificationError {}

// The names of earlier releases, kept: the same classes.
export {
  InvalidRequestError as AllowlyValidationError,
  NotFoundError as AllowlyNotFoundError,
  ConflictError as AllowlyConflictError,
  RateLimitError as AllowlyRateLimitError,
};

/** The one map from an error's `kind` (the core's `ErrorKind`) to its class. */
export const ERROR_CLASSES = Object.freeze({
  invalid_request: InvalidRequestError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  conflict: ConflictError,
  rate_limited: RateLimitError,
  unavailable: UnavailableError,
  timeout: AllowlyTimeoutError,
  unreachable: ConnectionError,
  protocol: ProtocolError,
  verification: VerificationError,
  internal: InternalError,
});

const KIND_OF_CLASS = new Map(Object.entries(ERROR_CLASSES).map(([kind, cls]) => [cls, kind]));

/** The kind a class (or its nearest ancestor in `ERROR_CLASSES`) stands for. */
function kindOfClass(cls) {
  for (let c = cls; c && c !== Error; c = Object.getPrototypeOf(c)) {
    const kind = KIND_OF_CLASS.get(c);
    if (kind) return kind;
  }
  return 'internal';
}

// Within `verification`, the reference verifier's finer classes, by code.
const VERIFICATION_CLASSES = {
  schema_error: SchemaError,
  unknown_key: UnknownKeyError,
  key_outside_active_window: KeyOutsideActiveWindowError,
  untrusted_key: UntrustedKeyError,
  signature_mismatch: SignatureMismatchError,
  checkpoint_mismatch: CheckpointMismatchError,
};

/** Structured error details from the native layer (`{kind, code, message, status, ...}`) → the typed error. */
function toError(details) {
  let cls = ERROR_CLASSES[details.kind] ?? AllowlyError;
  if (cls === VerificationError) cls = VERIFICATION_CLASSES[details.code] ?? VerificationError;
  return new cls(details.message, {
    kind: details.kind,
    code: details.code,
    status: details.status ?? undefined,
    fields: Array.isArray(details.fields) ? details.fields : [],
    retryAfterSeconds: details.retryAfterSeconds ?? undefined,
    referenceClass: details.referenceClass ?? undefined,
  });
}

function invalid(field, message) {
  return new InvalidRequestError(`invalid \`${field}\`: ${message}`, {
    code: 'invalid_request',
    fields: [{ field, message }],
    status: 422,
  });
}

/** Reads a native envelope (`{"ok": answer}` or `{"error": details}`): the answer, or a thrown typed error. */
function unwrap(text) {
  const envelope = JSON.parse(text);
  if (envelope.error) throw toError(envelope.error);
  return envelope.ok;
}

/**
 * Runs a synchronous native call (a constructor, `NativeKeys.load`). What it throws for a core
 * error is a JS Error the native layer built with the structured details as properties.
 */
function nativeSync(fn) {
  try {
    return fn();
  } catch (err) {
    if (err instanceof Error && typeof err.kind === 'string' && typeof err.code === 'string') throw toError(err);
    throw err;
  }
}

/** The operation catalog of the core (`ops::CATALOG`): one route per operation, in catalog order. */
export const CATALOG = Object.freeze(JSON.parse(native.NativeEngine.catalogJson()).map((route) => Object.freeze(route)));

// ---------------------------------------------------------------------------------------------
// Wire conversion

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

// JSON.stringify would turn NaN/Infinity into null and drop functions silently; money and counts
// may be given as bigint. Values the wire cannot carry exactly are refused instead.
function replacer(key, value) {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw invalid(key || 'value', `${value} is not a JSON number`);
      return value;
    case 'bigint':
      if (value > MAX_SAFE || value < -MAX_SAFE) {
        throw invalid(key || 'value', `${value} is outside ±(2^53 − 1), the wire's integer range`);
      }
      return Number(value);
    case 'function':
    case 'symbol':
      throw invalid(key || 'value', `a ${typeof value} is not a JSON value`);
    default:
      return value;
  }
}

function toWire(args) {
  return JSON.stringify(args, replacer);
}

const camelCache = new Map();
function camel(key) {
  let out = camelCache.get(key);
  if (out === undefined) {
    out = key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
    if (camelCache.size < 10_000) camelCache.set(key, out);
  }
  return out;
}

// Members whose values are user or wire documents, kept exactly as they are.
const VERBATIM = new Set(['context', 'metadata', 'definition', 'evaluated_fields', 'fields']);

/** snake_case wire answer → camelCase, leaving user data and documents untouched. */
function camelize(value) {
  if (Array.isArray(value)) return value.map(camelize);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, inner] of Object.entries(value)) {
    if (VERBATIM.has(key)) out[camel(key)] = inner;
    else if (key === 'results') out.results = camelizeResults(inner);
    else out[camel(key)] = camelize(inner);
  }
  return out;
}

/** `results` is keyed by action names, which are kept as they are. */
function camelizeResults(results) {
  const out = {};
  for (const [action, result] of Object.entries(results)) {
    const r = camelize(result);
    r.isFallback = r.isFallback ?? false;
    r.fallbackMode = r.fallbackMode ?? null;
    out[action] = r;
  }
  return out;
}

function object(value, what) {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(what, 'must be an object');
  }
  return value;
}

/** Refuses option names this call does not know (a typo must not be silently ignored). */
function known(value, what, names) {
  for (const key of Object.keys(value)) {
    if (!names.includes(key)) throw invalid(`${what}.${key}`, 'is not a known option');
  }
}

function text(value, field) {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'must be a non-empty string');
  return value;
}

function timestamp(value, field) {
  if (value === undefined || value === null) return undefined;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(field, 'is an invalid Date');
    return value.toISOString();
  }
  return value;
}

function oneOf(params, a, b, what) {
  if (params[a] !== undefined && params[b] !== undefined) {
    throw invalid(what, `pass either \`${a}\` or \`${b}\`, not both`);
  }
  return params[a] ?? params[b];
}

// ---------------------------------------------------------------------------------------------
// Client

const EMBEDDED = Symbol('embedded');

// An in-process engine gets its calls in batches: one libuv task per batch instead of one per call
// (each task costs two thread wake-ups), and the consecutive checks of a batch share one commit
// (the core's `check_many`). Calls made in the same tick leave together. Two batches may be in
// flight, so the engine works on one while this thread reads the other's answers; the size cap
// keeps both busy and bounds how long answering one batch holds the event loop.
const BATCH_SIZE = 32;
const BATCHES_IN_FLIGHT = 2;

class EmbeddedCalls {
  #native;
  #ops = [];
  #args = [];
  #waiters = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(nativeEngine) {
    this.#native = nativeEngine;
  }

  /** Resolves with the call's JSON envelope. */
  call(op, argsJson) {
    return new Promise((resolve, reject) => {
      this.#ops.push(op);
      this.#args.push(argsJson);
      this.#waiters.push({ resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => this.#send());
      }
    });
  }

  #send() {
    this.#scheduled = false;
    while (this.#ops.length > 0 && this.#inFlight < BATCHES_IN_FLIGHT) {
      const ops = this.#ops.splice(0, BATCH_SIZE);
      const args = this.#args.splice(0, BATCH_SIZE);
      const waiters = this.#waiters.splice(0, BATCH_SIZE);
      this.#inFlight += 1;
      let answers;
      try {
        answers = this.#native.callMany(ops, args);
      } catch (err) {
        answers = Promise.reject(err);
      }
      answers.then(
        (answers) => this.#settle(waiters, (waiter, i) => waiter.resolve(answers[i])),
        (err) => this.#settle(waiters, (waiter) => waiter.reject(err)),
      );
    }
  }

  #settle(waiters, each) {
    this.#inFlight -= 1;
    waiters.forEach(each);
    this.#send();
  }
}

/**
 * One Allowly workspace: `new Allowly({ apiKey, baseUrl })` talks to an `allowly serve` runtime;
 * `Allowly.embedded({ home })` runs the engine in this process on a local SQLite file.
 *
 * Every method is one operation of the core's catalog (`CATALOG`), sent by its name with the
 * wire's snake_case arguments; `call(operation, args)` sends any of them as they are.
 */
export class Allowly {
  #native;
  /** `(op, argsJson) => Promise<envelope text>`: batched when embedded, one task per call when remote. */
  #send;

  constructor(options) {
    if (options && options[EMBEDDED]) {
      this.#native = options[EMBEDDED];
      const calls = new EmbeddedCalls(this.#native);
      this.#send = (op, argsJson) => calls.call(op, argsJson);
    } else {
      const o = object(options, 'options');
      known(o, 'options', [
        'apiKey',
        'baseUrl',
        'checkTimeoutMs',
        'requestTimeoutMs',
        'fallbackByAction',
        'workspaceId',
        'dangerouslyAllowInsecureBaseUrl',
      ]);
      const remoteOptions = {
        check_timeout_ms: o.checkTimeoutMs ?? 1000,
        request_timeout_ms: o.requestTimeoutMs,
        fallback_by_action: o.fallbackByAction,
        workspace_id: o.workspaceId,
        allow_insecure_http: o.dangerouslyAllowInsecureBaseUrl,
      };
      if (!(Number.isSafeInteger(remoteOptions.check_timeout_ms) && remoteOptions.check_timeout_ms > 0)) {
        throw invalid('checkTimeoutMs', 'must be a positive integer (milliseconds)');
      }
      const apiKey = text(o.apiKey, 'apiKey');
      const baseUrl = text(o.baseUrl, 'baseUrl');
      this.#native = nativeSync(() => native.NativeEngine.remote(baseUrl, apiKey, toWire(remoteOptions)));
      // Remote calls wait on the network, so each gets its own pool thread.
      this.#send = (op, argsJson) => this.#native.call(op, argsJson);
    }
    const call = (op, args) => this.#call(op, args);
    this.authorizations = new Authorizations(call);
    this.confirmations = new Confirmations(call);
    this.escalations = new Escalations(call);
    this.receipts = new Receipts(call);
    this.policies = new Policies(call);
    this.apiKeys = new ApiKeys(call);
  }

  /** The in-process engine on the workspace in `home` (default `$ALLOWLY_HOME` or `./.allowly`). */
  static embedded(options = {}) {
    const o = object(options, 'options');
    known(o, 'options', ['home']);
    const home = o.home ?? process.env.ALLOWLY_HOME ?? '.allowly';
    text(home, 'home');
    return new Allowly({ [EMBEDDED]: nativeSync(() => native.NativeEngine.embedded(home)) });
  }

  /** An in-process engine on a workspace that lives in memory only (tests, demos). */
  static inMemory() {
    return new Allowly({ [EMBEDDED]: nativeSync(() => native.NativeEngine.inMemory()) });
  }

  /** Whether the engine runs in this process. */
  get isEmbedded() {
    return this.#native.isEmbedded;
  }

  async #call(op, args = {}) {
    return unwrap(await this.#send(op, toWire(args)));
  }

  /**
   * Any operation of the catalog by its name, with the wire's arguments (snake_case: the HTTP
   * request's path id, query or body, and `idempotency_key`), answered with the wire's JSON
   * exactly as the HTTP API answers it (`null` for the operations answered with 204). A check
   * that cannot be decided answers the local fallback, as `check` does.
   */
  async call(operation, args = {}) {
    text(operation, 'operation');
    return this.#call(operation, object(args, 'args'));
  }

  /**
   * One decision per action. Never throws for an unavailable runtime: it answers the local
   * fallback (`isFallback: true`, no receipt; deny unless the action is mapped to `fail_open`).
   */
  async check(params) {
    const p = object(params, 'check');
    known(p, 'check', [
      'authorizationId',
      'actions',
      'scopes',
      'resource',
      'sessionId',
      'estimatedCostMicros',
      'context',
      'idempotencyKey',
      'clientTimestamp',
    ]);
    return camelize(
      await this.#call('check', {
        authorization_id: p.authorizationId,
        actions: oneOf(p, 'actions', 'scopes', 'check'),
        resource: p.resource,
        session_id: p.sessionId,
        estimated_cost_micros: p.estimatedCostMicros,
        context: p.context,
        client_timestamp: timestamp(p.clientTimestamp, 'clientTimestamp'),
        idempotency_key: p.idempotencyKey,
      }),
    );
  }

  /** Settles a check's actual cost against its reservation (once per check receipt). */
  async settleBudget(params) {
    const p = object(params, 'settleBudget');
    known(p, 'settleBudget', ['checkReceiptId', 'actualCostMicros', 'idempotencyKey']);
    return camelize(
      await this.#call('settle_budget', {
        check_receipt_id: p.checkReceiptId,
        actual_cost_micros: p.actualCostMicros,
        idempotency_key: p.idempotencyKey,
      }),
    );
  }

  /** Whether the workspace can serve requests now (`GET /readyz`). */
  async readiness() {
    return this.#call('readiness');
  }

  /**
   * A workspace's public key document, exactly as published (pass it to `loadKeysFromJson`):
   * this workspace's (remote: the configured `workspaceId`), or `options.workspaceId`'s.
   */
  async keyDocument(options) {
    const o = object(options, 'keyDocument');
    known(o, 'keyDocument', ['workspaceId']);
    const workspaceId = o.workspaceId ?? (await this.#call('workspace_id'));
    if (workspaceId === null || workspaceId === undefined) {
      throw invalid('workspaceId', 'the key document needs the workspace id: set `workspaceId` in the remote options');
    }
    return this.#call('get_key_document', { workspace_id: workspaceId });
  }

  /** Retires the workspace's signing key and starts a new one (setup key): the new key, as the key document publishes it. */
  async rotateSigningKey() {
    return this.#call('rotate_signing_key');
  }

  /** The workspace id (embedded: always; remote: the configured `workspaceId`, else null). */
  async workspaceId() {
    return this.#call('workspace_id');
  }

  /** `sha256:<hex>` of the engine (remote: of the last non-fallback check answer, else null). */
  async engineVersion() {
    return this.#call('engine_version');
  }

  /** Embedded only: signs the daily `receipt.checkpoint` receipts that are due. */
  async createCheckpoints() {
    return camelize(await this.#call('create_checkpoints'));
  }
}

function listArgs(params, what) {
  const p = object(params, what);
  known(p, what, ['limit', 'cursor']);
  return { limit: p.limit, cursor: p.cursor };
}

/** A list of confirmations or escalations: a page, and `status` (`pending`, `approved`, `rejected`, `expired`). */
function statusListArgs(params, what) {
  const p = object(params, what);
  known(p, what, ['status', 'limit', 'cursor']);
  return { status: p.status, limit: p.limit, cursor: p.cursor };
}

class Authorizations {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** Creates an authorization from a policy (bundle) edition for one user. */
  async create(params) {
    const p = object(params, 'authorizations.create');
    known(p, 'authorizations.create', [
      'userId',
      'bundleId',
      'policyId',
      'policyVersion',
      'actions',
      'scopes',
      'expiresAt',
      'budgetLimitMicros',
      'metadata',
      'replaces',
      'idempotencyKey',
    ]);
    return camelize(
      await this.#call('create_authorization', {
        user_id: p.userId,
        policy_id: oneOf(p, 'policyId', 'bundleId', 'authorizations.create'),
        policy_version: p.policyVersion,
        actions: oneOf(p, 'actions', 'scopes', 'authorizations.create'),
        expires_at: timestamp(p.expiresAt, 'expiresAt'),
        budget_limit_micros: p.budgetLimitMicros,
        metadata: p.metadata,
        replaces: p.replaces,
        idempotency_key: p.idempotencyKey,
      }),
    );
  }

  /** Revokes an authorization; a retry under the same `idempotencyKey` answers the first revocation. */
  async revoke(authorizationId, options) {
    const o = object(options, 'authorizations.revoke');
    known(o, 'authorizations.revoke', ['revokedBy', 'notes', 'idempotencyKey']);
    return camelize(
      await this.#call('revoke_authorization', {
        authorization_id: authorizationId,
        revoked_by: o.revokedBy,
        notes: o.notes,
        idempotency_key: o.idempotencyKey,
      }),
    );
  }

  /**
   * One page in creation order, each given option a filter that must match: `userId`, `agentId`,
   * `status` (`active`, `revoked` or `expired`, as it stands now). A page of a status may hold
   * fewer than `limit`: follow `nextCursor` while `hasMore`.
   */
  async list(params) {
    const p = object(params, 'authorizations.list');
    known(p, 'authorizations.list', ['userId', 'agentId', 'status', 'limit', 'cursor']);
    return camelize(
      await this.#call('list_authorizations', {
        user_id: p.userId,
        agent_id: p.agentId,
        status: p.status,
        limit: p.limit,
        cursor: p.cursor,
      }),
    );
  }

  async get(authorizationId) {
    return camelize(await this.#call('get_authorization', { authorization_id: authorizationId }));
  }
}

class Confirmations {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** Resolves a pending confirmation by its nonce: approved (for `ttlSeconds`, default 60) unless `approved: false`. */
  async approve(nonce, options) {
    const o = object(options, 'confirmations.approve');
    known(o, 'confirmations.approve', ['approved', 'ttlSeconds', 'idempotencyKey']);
    return camelize(
      await this.#call('resolve_confirmation', {
        nonce,
        approved: o.approved ?? true,
        ttl_seconds: o.ttlSeconds,
        idempotency_key: o.idempotencyKey,
      }),
    );
  }

  async reject(nonce, options) {
    const o = object(options, 'confirmations.reject');
    known(o, 'confirmations.reject', ['idempotencyKey']);
    return camelize(
      await this.#call('resolve_confirmation', { nonce, approved: false, idempotency_key: o.idempotencyKey }),
    );
  }

  async getStatus(confirmationId) {
    return camelize(await this.#call('confirmation_status', { confirmation_id: confirmationId }));
  }

  async get(confirmationId) {
    return this.getStatus(confirmationId);
  }

  /**
   * One page of the confirmations, newest first (setup key), by `status` as it stands now
   * (`pending`: still waiting for the user). A page may hold fewer than `limit`: follow
   * `nextCursor` while `hasMore`.
   */
  async list(params) {
    return camelize(await this.#call('list_confirmations', statusListArgs(params, 'confirmations.list')));
  }
}

class Escalations {
  #call;
  constructor(call) {
    this.#call = call;
  }

  async resolve(escalationId, options) {
    const o = object(options, 'escalations.resolve');
    known(o, 'escalations.resolve', ['resolution', 'resolvedBy', 'note', 'idempotencyKey']);
    return camelize(
      await this.#call('resolve_escalation', {
        escalation_id: escalationId,
        resolution: o.resolution,
        resolved_by: o.resolvedBy,
        note: o.note,
        idempotency_key: o.idempotencyKey,
      }),
    );
  }

  async approve(escalationId, options) {
    const o = object(options, 'escalations.approve');
    known(o, 'escalations.approve', ['resolvedBy', 'note', 'idempotencyKey']);
    return this.resolve(escalationId, { ...o, resolution: 'approved' });
  }

  async reject(escalationId, options) {
    const o = object(options, 'escalations.reject');
    known(o, 'escalations.reject', ['resolvedBy', 'note', 'idempotencyKey']);
    return this.resolve(escalationId, { ...o, resolution: 'rejected' });
  }

  async getStatus(escalationId) {
    return camelize(await this.#call('escalation_status', { escalation_id: escalationId }));
  }

  async get(escalationId) {
    return this.getStatus(escalationId);
  }

  /**
   * One page of the escalations, newest first (setup key), by `status` as it stands now
   * (`pending`: waiting for an approver). Pages as `confirmations.list`.
   */
  async list(params) {
    return camelize(await this.#call('list_escalations', statusListArgs(params, 'escalations.list')));
  }
}

class Receipts {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** `{ status: 'signed', receipt }`: the signed JWS object exactly as stored (verify it with `verifyReceipt`). */
  async get(receiptId) {
    return camelize(await this.#call('get_receipt', { receipt_id: receiptId }));
  }

  /**
   * The audit lookup (setup key): one page of the workspace's receipts, newest first, each given
   * option a filter that must match. `since` (inclusive) and `until` (exclusive) are RFC 3339
   * instants or Dates.
   */
  async list(params) {
    const p = object(params, 'receipts.list');
    known(p, 'receipts.list', [
      'userId',
      'agentId',
      'action',
      'event',
      'decision',
      'reason',
      'authorizationId',
      'since',
      'until',
      'limit',
      'cursor',
    ]);
    return camelize(
      await this.#call('list_receipts', {
        user_id: p.userId,
        agent_id: p.agentId,
        action: p.action,
        event: p.event,
        decision: p.decision,
        reason: p.reason,
        authorization_id: p.authorizationId,
        since: timestamp(p.since, 'since'),
        until: timestamp(p.until, 'until'),
        limit: p.limit,
        cursor: p.cursor,
      }),
    );
  }

  /**
   * Verifies what a person pasted (no key needed): `input` is the text as pasted (one receipt, its
   * `{status: 'signed', receipt}` envelope, a check response or a JSON Lines export) or that
   * document as an object, sent as it is. Against this workspace's key document and keys unless
   * `keyDocument` / `trustedKeyFingerprints` say otherwise; `checkpointEvidence` is an export's
   * evidence document. Resolves with the report (`valid`, one verdict per receipt); a receipt that
   * does not verify is a verdict with an `error`, not a rejection.
   */
  async verify(input, options) {
    const o = object(options, 'receipts.verify');
    known(o, 'receipts.verify', ['keyDocument', 'trustedKeyFingerprints', 'checkpointEvidence']);
    return camelize(
      await this.#call('verify_receipts', {
        input,
        key_document: o.keyDocument,
        trusted_key_fingerprints: o.trustedKeyFingerprints,
        checkpoint_evidence: o.checkpointEvidence,
      }),
    );
  }
}

function policyArgs(params, what, names) {
  const p = object(params, what);
  known(p, what, names);
  const definition = object(p.definition, `${what}.definition`);
  return { policy_id: p.policyId, description: p.description, ...definition, idempotency_key: p.idempotencyKey };
}

class Policies {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** Publishes a policy edition: `definition` is the `allowly.policy.v1` document (wire field names). */
  async create(params) {
    const args = policyArgs(params, 'policies.create', ['policyId', 'definition', 'description', 'idempotencyKey']);
    return camelize(await this.#call('create_policy', args));
  }

  /**
   * Publishes the next edition of a policy (or keeps the newest one if it has this definition),
   * answered in the publish shape. Remotely an `idempotencyKey` is sent (made up when absent).
   */
  async publish(params) {
    const args = policyArgs(params, 'policies.publish', ['policyId', 'definition', 'description', 'idempotencyKey']);
    return camelize(await this.#call('publish_policy', args));
  }

  /** The newest active edition, or edition `options.version`. */
  async get(policyId, options) {
    const o = object(options, 'policies.get');
    known(o, 'policies.get', ['version']);
    return camelize(await this.#call('get_policy', { policy_id: policyId, version: o.version }));
  }

  async list(params) {
    return camelize(await this.#call('list_policies', listArgs(params, 'policies.list')));
  }

  /** Archives every edition; a retry under the same `idempotencyKey` answers as the first call did. */
  async archive(policyId, options) {
    const o = object(options, 'policies.archive');
    known(o, 'policies.archive', ['idempotencyKey']);
    await this.#call('archive_policy', { policy_id: policyId, idempotency_key: o.idempotencyKey });
  }

  /** Provisional evaluation of a definition for one action on a context (nothing is stored). */
  async preview(params) {
    const p = object(params, 'policies.preview');
    known(p, 'policies.preview', ['definition', 'action', 'context']);
    return camelize(
      await this.#call('preview_policy', { definition: p.definition, action: p.action, context: p.context }),
    );
  }
}

/** The workspace's API keys (setup key). */
class ApiKeys {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** A new `runtime` or `setup` key; its secret (`key`) is in this answer only. */
  async create(params) {
    const p = object(params, 'apiKeys.create');
    known(p, 'apiKeys.create', ['kind', 'label']);
    return camelize(await this.#call('create_api_key', { kind: p.kind, label: p.label }));
  }

  /** `{ items }`: every key, revoked ones included, never with its secret. */
  async list() {
    return camelize(await this.#call('list_api_keys'));
  }

  async revoke(keyId) {
    await this.#call('revoke_api_key', { key_id: keyId });
  }
}

// ---------------------------------------------------------------------------------------------
// Verification (offline, by the core's wire-5 verifier)

/** A workspace's public keys, loaded and validated. */
export class KeySet {
  #native;
  constructor(handle) {
    this.#native = handle;
  }
  /** The `workspace_id` the key document names. */
  get workspaceId() {
    return this.#native.workspaceId;
  }
  /** @internal */
  get native() {
    return this.#native;
  }
}

/** Loads a key document (`GET /v1/workspaces/{id}/keys`), as JSON text or as the parsed object. */
export function loadKeysFromJson(document) {
  const json = typeof document === 'string' ? document : JSON.stringify(object(document, 'keys'));
  return new KeySet(nativeSync(() => native.NativeKeys.load(json)));
}

function keySet(keys) {
  return keys instanceof KeySet ? keys : loadKeysFromJson(keys);
}

function receiptJson(receipt) {
  if (typeof receipt === 'string') return receipt;
  const r = object(receipt, 'receipt');
  // A check result's envelope `{status: "signed", receipt: {...}}` carries the JWS object.
  const jws = r.status === 'signed' && r.receipt && typeof r.receipt === 'object' ? r.receipt : r;
  return JSON.stringify(jws);
}

function verifyOptions(options) {
  const o = object(options, 'options');
  known(o, 'options', ['expectedWorkspaceId', 'trustedKeyFingerprints', 'previous']);
  return toWire({
    expected_workspace_id: o.expectedWorkspaceId,
    trusted_key_fingerprints: o.trustedKeyFingerprints,
  });
}

/**
 * Verifies a wire-5 receipt (the JWS object, its JSON text, or a `{status: 'signed', receipt}`
 * envelope) and resolves with its payload. Rejects with a `VerificationError` subclass.
 */
export async function verifyReceipt(receipt, keys, options) {
  const set = keySet(keys);
  return unwrap(await set.native.verifyReceipt(receiptJson(receipt), verifyOptions(options)));
}

/**
 * Verifies a `receipt.checkpoint` receipt against exactly its member receipts (and, with
 * `options.previous`, the chain link to the previous checkpoint).
 */
export async function verifyCheckpoint(checkpoint, members, keys, options) {
  const set = keySet(keys);
  const o = object(options, 'options');
  if (!Array.isArray(members)) throw invalid('members', 'must be an array of receipts');
  const unwrapEnvelope = (r) => JSON.parse(receiptJson(r));
  const input = JSON.stringify({
    checkpoint: unwrapEnvelope(checkpoint),
    members: members.map(unwrapEnvelope),
    previous: o.previous === undefined || o.previous === null ? null : unwrapEnvelope(o.previous),
  });
  unwrap(await set.native.verifyCheckpoint(input, verifyOptions(o)));
}

export default Allowly;
