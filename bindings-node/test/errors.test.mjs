// Typed errors: one class per error `kind`, the same failure giving the same class, `code` and
// `status` embedded and remote, and a human `message` (the native layer once sent JSON inside
// `Error.message`, which the wrapper parsed back).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  Allowly,
  AllowlyAPIError,
  AllowlyAuthError,
  AllowlyEngineError,
  AllowlyError,
  AllowlyTimeoutError,
  AllowlyTransportError,
  AllowlyValidationError,
  ConnectionError,
  ERROR_CLASSES,
  ForbiddenError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  ProtocolError,
  RateLimitError,
  SchemaError,
  UnauthorizedError,
  UnavailableError,
  VerificationError,
  loadKeysFromJson,
} from '../index.js';
import { startServer, tempHome } from './helpers.mjs';

const native = createRequire(import.meta.url)('../native.cjs');

/** What must agree between the two engines for one failure. */
async function failure(promise) {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof AllowlyError, `${err?.name}: ${err?.message}`);
    assert.equal(typeof err.message, 'string');
    assert.ok(!err.message.trimStart().startsWith('{'), `a human message, not JSON: ${err.message}`);
    assert.equal(err.name, err.constructor.name);
    assert.equal(ERROR_CLASSES[err.kind], err instanceof VerificationError ? VerificationError : err.constructor);
    return { class: err.constructor.name, kind: err.kind, code: err.code, status: err.status };
  }
  assert.fail('the call did not fail');
}

test('the kind table covers every kind of the core, each with its own class', () => {
  assert.deepEqual(Object.keys(ERROR_CLASSES).sort(), [...native.NativeEngine.errorKinds()].sort());
  const classes = Object.values(ERROR_CLASSES);
  assert.equal(new Set(classes).size, classes.length);
  for (const [kind, cls] of Object.entries(ERROR_CLASSES)) {
    assert.ok(cls.prototype instanceof AllowlyError, kind);
    assert.equal(new cls('m').kind, kind, `new ${cls.name}() has kind ${kind}`);
  }
  // The class tree, and the names of earlier releases.
  assert.equal(AllowlyValidationError, InvalidRequestError);
  for (const cls of [InvalidRequestError, UnauthorizedError, ForbiddenError, NotFoundError, RateLimitError, UnavailableError, InternalError]) {
    assert.ok(cls.prototype instanceof AllowlyAPIError, cls.name);
  }
  assert.ok(UnauthorizedError.prototype instanceof AllowlyAuthError && ForbiddenError.prototype instanceof AllowlyAuthError);
  assert.ok(UnavailableError.prototype instanceof AllowlyEngineError && InternalError.prototype instanceof AllowlyEngineError);
  for (const cls of [AllowlyTimeoutError, ConnectionError, ProtocolError]) assert.ok(cls.prototype instanceof AllowlyTransportError);
});

test('synchronous failures (constructors, key documents) throw typed errors with human messages', () => {
  const file = path.join(tempHome(), 'a-file');
  fs.writeFileSync(file, 'x');
  for (const [fn, cls, kind] of [
    [() => Allowly.embedded({ home: file }), AllowlyEngineError, undefined],
    [() => new Allowly({ apiKey: 'k', baseUrl: 'ftp://example.com' }), InvalidRequestError, 'invalid_request'],
    [() => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', fallbackByAction: { a: 'maybe' } }), InvalidRequestError, 'invalid_request'],
    [() => loadKeysFromJson('{"keys": 1}'), SchemaError, 'verification'],
  ]) {
    assert.throws(fn, (err) => {
      assert.ok(err instanceof cls, `${err.name}: ${err.message}`);
      if (kind) assert.equal(err.kind, kind);
      assert.equal(typeof err.code, 'string');
      assert.ok(!err.message.startsWith('{'), err.message);
      return true;
    });
  }
  assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', fallbackByAction: { a: 'maybe' } }), (err) => {
    assert.deepEqual(err.fields.map((f) => f.field), ['fallback_by_action.a']);
    assert.equal(err.status, 422);
    return true;
  });
});

describe('the same failure embedded and remote', () => {
  let server;
  let embedded;
  let remote;
  let runtime;
  before(async () => {
    server = await startServer();
    embedded = Allowly.embedded({ home: tempHome() });
    remote = new Allowly({ apiKey: server.setupKey, baseUrl: server.baseUrl, workspaceId: server.workspaceId });
    runtime = new Allowly({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
  });
  after(() => server?.stop());

  const cases = [
    ['a missing authorization', (c) => c.authorizations.get('auth_missing'), { class: 'NotFoundError', kind: 'not_found', status: 404 }],
    ['a missing policy', (c) => c.policies.get('no_such_policy'), { class: 'NotFoundError', kind: 'not_found', status: 404 }],
    ['a missing receipt', (c) => c.receipts.get('rcp_missing'), { class: 'NotFoundError', kind: 'not_found', status: 404 }],
    ['a page size out of range', (c) => c.authorizations.list({ limit: 0 }), { class: 'InvalidRequestError', kind: 'invalid_request', status: 422 }],
    ['an unknown member', (c) => c.call('settle_budget', { check_receipt_id: 'rcpt_x', actual_cost_micros: 1, tip: 5 }), { class: 'InvalidRequestError', kind: 'invalid_request', status: 422 }],
    ['a float in the context', (c) => c.check({ authorizationId: 'auth_x', actions: ['a.b'], context: { n: 1.5 } }), { class: 'InvalidRequestError', kind: 'invalid_request', status: 422 }],
  ];
  for (const [name, call, want] of cases) {
    test(name, async () => {
      const here = await failure(call(embedded));
      const there = await failure(call(remote));
      assert.deepEqual(here, there, `${name}: embedded and remote differ`);
      assert.deepEqual({ class: here.class, kind: here.kind, status: here.status }, want);
    });
  }

  test('a runtime key calling a setup operation is a ForbiddenError (403)', async () => {
    for (const call of [() => runtime.policies.list(), () => runtime.apiKeys.list(), () => runtime.rotateSigningKey()]) {
      const got = await failure(call());
      assert.equal(got.class, 'ForbiddenError');
      assert.equal(got.kind, 'forbidden');
      assert.equal(got.status, 403);
    }
  });

  test('an unknown API key is an UnauthorizedError (401)', async () => {
    const stranger = new Allowly({ apiKey: 'allowly.runtime.nope', baseUrl: server.baseUrl });
    const got = await failure(stranger.authorizations.list());
    assert.deepEqual([got.class, got.kind, got.status], ['UnauthorizedError', 'unauthorized', 401]);
  });
});

test('a runtime that cannot be reached: ConnectionError (unreachable), no status', async () => {
  const probe = net.createServer();
  const port = await new Promise((resolve) => probe.listen(0, '127.0.0.1', () => resolve(probe.address().port)));
  await new Promise((resolve) => probe.close(resolve));
  const client = new Allowly({ apiKey: 'k', baseUrl: `http://127.0.0.1:${port}`, requestTimeoutMs: 500 });
  const got = await failure(client.policies.list());
  assert.deepEqual(got, { class: 'ConnectionError', kind: 'unreachable', code: 'unreachable', status: undefined });
});
