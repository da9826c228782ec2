// @allowly/sdk — the Allowly engine for Node (napi-rs). ESM, Node >= 20.
//
// This file converts types and errors only: camelCase options become the wire's snake_case JSON,
// answers come back camelCased, and error envelopes become typed Error subclasses with a stable
// `.code`. Every decision, signature and verification is made by the Rust core (allowly-core),
// the same engine the Python SDK, the CLI and `allowly serve` run.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('./native.cjs');

// ---------------------------------------------------------------------------------------------
// Errors

/** Base of every error this package throws. `code` is the stable machine code. */
export class AllowlyError extends Error {
  constructor(message, { code = 'error', fields = [], status, retryAfterSeconds } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.fields = fields;
    this.status = status;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}
/** A request the engine (embedded) or the runtime (HTTP 4xx) refused. */
export class AllowlyAPIError extends AllowlyError {}
/** Malformed input or over a limit (HTTP 400/422); nothing was changed. */
export class AllowlyValidationError extends AllowlyAPIError {}
/** Missing, unknown or revoked credential, or a key of the wrong kind (HTTP 401/403). */
export class AllowlyAuthError extends AllowlyAPIError {}
/** The named object does not exist in this workspace (HTTP 404). */
export class AllowlyNotFoundError extends AllowlyAPIError {}
/** The request conflicts with the current state (HTTP 409). */
export class AllowlyConflictError extends AllowlyAPIError {}
/** Too many requests (HTTP 429); see `retryAfterSeconds`. Checks never fall back on 429. */
export class AllowlyRateLimitError extends AllowlyAPIError {}
/** The runtime could not be reached or answered outside the contract (not raised by `check`, which falls back). */
export class AllowlyTransportError extends AllowlyError {}
/** The engine's store, signing or files failed; the operation did not happen. */
export class AllowlyEngineError extends AllowlyError {}

/** A receipt, key document or checkpoint did not verify. `referenceClass` names the reference verifier's class. */
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

const VERIFICATION_CLASSES = {
  schema_error: SchemaError,
  unknown_key: UnknownKeyError,
  key_outside_active_window: KeyOutsideActiveWindowError,
  untrusted_key: UntrustedKeyError,
  signature_mismatch: SignatureMismatchError,
  checkpoint_mismatch: CheckpointMismatchError,
};

function classForStatus(status) {
  if (status === 400 || status === 413 || status === 422) return AllowlyValidationError;
  if (status === 401 || status === 403) return AllowlyAuthError;
  if (status === 404) return AllowlyNotFoundError;
  if (status === 409) return AllowlyConflictError;
  if (status === 429) return AllowlyRateLimitError;
  return AllowlyAPIError;
}

function toError(e) {
  const details = {
    code: e.code,
    fields: Array.isArray(e.fields) ? e.fields : [],
    // The core gives embedded errors the status `allowly serve` answers with, so both modes agree.
    status: e.status ?? undefined,
    retryAfterSeconds: e.retry_after_seconds ?? undefined,
    referenceClass: e.reference_class ?? undefined,
  };
  switch (e.kind) {
    case 'invalid_request':
    case 'not_found':
    case 'unauthorized':
    case 'conflict':
    case 'api':
      return new (classForStatus(details.status))(e.message, details);
    case 'transport':
      return new AllowlyTransportError(e.message, details);
    case 'verification':
      return new (VERIFICATION_CLASSES[e.code] ?? VerificationError)(e.message, details);
    default:
      return new AllowlyEngineError(e.message, details);
  }
}

function invalid(field, message) {
  return new AllowlyValidationError(`invalid \`${field}\`: ${message}`, {
    code: 'invalid_request',
    fields: [{ field, message }],
    status: 422,
  });
}

/** Reads a native JSON envelope: the value, or a thrown typed error. */
function unwrap(text) {
  const envelope = JSON.parse(text);
  if (envelope.error) throw toError(envelope.error);
  return envelope.ok;
}

/** Runs a synchronous native call whose failure is an Error carrying an envelope. */
function nativeSync(fn) {
  try {
    return fn();
  } catch (err) {
    if (err && typeof err.message === 'string' && err.message.startsWith('{"error"')) {
      throw toError(JSON.parse(err.message).error);
    }
    throw err;
  }
}

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
    const request = {
      authorization_id: p.authorizationId,
      actions: oneOf(p, 'actions', 'scopes', 'check'),
      resource: p.resource,
      session_id: p.sessionId,
      estimated_cost_micros: p.estimatedCostMicros,
      context: p.context,
      client_timestamp: timestamp(p.clientTimestamp, 'clientTimestamp'),
    };
    return camelize(await this.#call('check', { request, idempotency_key: p.idempotencyKey }));
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

  /** The workspace's public key document, exactly as published (pass it to `loadKeysFromJson`). */
  async keyDocument() {
    return this.#call('key_document');
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
    if (!this.isEmbedded) {
      throw new AllowlyValidationError('checkpoints are created by the runtime itself, not through its HTTP API', {
        code: 'invalid_request',
        status: 422,
      });
    }
    return camelize(await this.#call('create_checkpoints'));
  }
}

function listArgs(params, what) {
  const p = object(params, what);
  known(p, what, ['limit', 'cursor']);
  return { limit: p.limit, cursor: p.cursor };
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
    const request = {
      user_id: p.userId,
      policy_id: oneOf(p, 'policyId', 'bundleId', 'authorizations.create'),
      policy_version: p.policyVersion,
      actions: oneOf(p, 'actions', 'scopes', 'authorizations.create'),
      expires_at: timestamp(p.expiresAt, 'expiresAt'),
      budget_limit_micros: p.budgetLimitMicros,
      metadata: p.metadata,
      replaces: p.replaces,
    };
    return camelize(await this.#call('create_authorization', { request, idempotency_key: p.idempotencyKey }));
  }

  async revoke(authorizationId, options) {
    const o = object(options, 'authorizations.revoke');
    known(o, 'authorizations.revoke', ['revokedBy', 'notes']);
    return camelize(
      await this.#call('revoke_authorization', {
        authorization_id: authorizationId,
        revoked_by: o.revokedBy,
        notes: o.notes,
      }),
    );
  }

  async list(params) {
    return camelize(await this.#call('list_authorizations', listArgs(params, 'authorizations.list')));
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
    known(o, 'confirmations.approve', ['approved', 'ttlSeconds']);
    return camelize(
      await this.#call('resolve_confirmation', { nonce, approved: o.approved ?? true, ttl_seconds: o.ttlSeconds }),
    );
  }

  async reject(nonce) {
    return camelize(await this.#call('resolve_confirmation', { nonce, approved: false }));
  }

  async getStatus(confirmationId) {
    return camelize(await this.#call('confirmation_status', { confirmation_id: confirmationId }));
  }

  async get(confirmationId) {
    return this.getStatus(confirmationId);
  }
}

class Escalations {
  #call;
  constructor(call) {
    this.#call = call;
  }

  async resolve(escalationId, options) {
    const o = object(options, 'escalations.resolve');
    known(o, 'escalations.resolve', ['resolution', 'resolvedBy', 'note']);
    return camelize(
      await this.#call('resolve_escalation', {
        escalation_id: escalationId,
        resolution: o.resolution,
        resolved_by: o.resolvedBy,
        note: o.note,
      }),
    );
  }

  async approve(escalationId, options) {
    const o = object(options, 'escalations.approve');
    known(o, 'escalations.approve', ['resolvedBy', 'note']);
    return this.resolve(escalationId, { ...o, resolution: 'approved' });
  }

  async reject(escalationId, options) {
    const o = object(options, 'escalations.reject');
    known(o, 'escalations.reject', ['resolvedBy', 'note']);
    return this.resolve(escalationId, { ...o, resolution: 'rejected' });
  }

  async getStatus(escalationId) {
    return camelize(await this.#call('escalation_status', { escalation_id: escalationId }));
  }

  async get(escalationId) {
    return this.getStatus(escalationId);
  }
}

class Receipts {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** `{ status: 'signed', receipt }`: the signed JWS object exactly as stored (verify it with `verifyReceipt`). */
  async get(receiptId) {
    return { status: 'signed', receipt: await this.#call('receipt', { receipt_id: receiptId }) };
  }
}

function policyBody(p, what) {
  const definition = object(p.definition, `${what}.definition`);
  return { policy_id: p.policyId, description: p.description, ...definition };
}

class Policies {
  #call;
  constructor(call) {
    this.#call = call;
  }

  /** Publishes a policy edition: `definition` is the `allowly.policy.v1` document (wire field names). */
  async create(params) {
    const p = object(params, 'policies.create');
    known(p, 'policies.create', ['policyId', 'definition', 'description']);
    return camelize(await this.#call('create_policy', { body: policyBody(p, 'policies.create') }));
  }

  /**
   * Publishes the next edition of a policy (or keeps the newest one if it has this definition),
   * answered in the publish shape. Remotely an `idempotencyKey` is sent (made up when absent).
   */
  async publish(params) {
    const p = object(params, 'policies.publish');
    known(p, 'policies.publish', ['policyId', 'definition', 'description', 'idempotencyKey']);
    return camelize(
      await this.#call('publish_policy', {
        body: policyBody(p, 'policies.publish'),
        idempotency_key: p.idempotencyKey,
      }),
    );
  }

  async get(policyId) {
    return camelize(await this.#call('get_policy', { policy_id: policyId }));
  }

  async list(params) {
    return camelize(await this.#call('list_policies', listArgs(params, 'policies.list')));
  }

  async archive(policyId) {
    await this.#call('archive_policy', { policy_id: policyId });
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
