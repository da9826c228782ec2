// Bad input throws typed errors (never a crash, never a silent coercion); money beyond 2^31 is exact.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import {
  Allowly,
  AllowlyEngineError,
  AllowlyError,
  AllowlyNotFoundError,
  AllowlyValidationError,
  SchemaError,
  loadKeysFromJson,
  verifyReceipt,
} from '../index.js';
import { examplePolicy, openPolicy, tempHome } from './helpers.mjs';

const validation = (err) => {
  assert.ok(err instanceof AllowlyValidationError, `${err?.name}: ${err?.message}`);
  assert.equal(err.code, 'invalid_request');
  assert.equal(typeof err.message, 'string');
  return true;
};

describe('bad input', () => {
  let client;
  let authorizationId;
  before(async () => {
    client = Allowly.embedded({ home: tempHome() });
    await client.policies.create(examplePolicy());
    await client.policies.create(openPolicy());
    ({ authorizationId } = await client.authorizations.create({ userId: 'user_1', bundleId: 'bench_agent' }));
  });

  test('check: wrong types, floats in context, missing fields, unknown options', async () => {
    const base = { authorizationId, actions: ['search.web'] };
    const bad = [
      { ...base, authorizationId: 42 },
      { ...base, actions: 'search.web' },
      { ...base, actions: [1] },
      { ...base, actions: [] },
      { ...base, context: { query: 1.5 } },
      { ...base, context: { nested: { amount: 0.1 } } },
      { ...base, context: { query: Number.NaN } },
      { ...base, context: { query: Infinity } },
      { ...base, context: { query: 2n ** 60n } },
      { ...base, context: { query: () => 1 } },
      { ...base, context: 'not an object' },
      { ...base, estimatedCostMicros: 1.5 },
      { ...base, estimatedCostMicros: '100' },
      { ...base, resource: 7 },
      { ...base, idempotencyKey: 5 },
      { ...base, authorisationId: 'typo' },
      { ...base, actions: ['search.web'], scopes: ['search.web'] },
      { actions: ['search.web'] },
      { authorizationId },
      null,
      'auth_x',
      [],
    ];
    for (const params of bad) {
      await assert.rejects(client.check(params), validation, JSON.stringify(params, (k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
    }
    // And the engine still answers afterwards.
    const ok = await client.check(base);
    assert.equal(ok.results['search.web'].decision, 'allow');
  });

  test('lifecycle calls: missing or mistyped arguments, unknown ids', async () => {
    await assert.rejects(client.authorizations.create({ bundleId: 'bench_agent' }), validation);
    await assert.rejects(client.authorizations.create({ userId: 'u', bundleId: 'bench_agent', budgetLimitMicros: 2 ** 53 }), validation);
    await assert.rejects(client.authorizations.create({ userId: 'u', bundleId: 'bench_agent', expiresAt: new Date('x') }), validation);
    await assert.rejects(client.authorizations.create({ userId: 'u', bundleId: 'no_such_policy' }), AllowlyNotFoundError);
    await assert.rejects(client.authorizations.revoke(12), validation);
    await assert.rejects(client.confirmations.approve('cnf_nonce_nope'), AllowlyNotFoundError);
    await assert.rejects(client.escalations.resolve('esc_nope', { resolution: 'maybe', resolvedBy: 'x' }), validation);
    await assert.rejects(client.receipts.get('rcp_nope'), (err) => err instanceof AllowlyNotFoundError && err.status === 404);
    await assert.rejects(client.settleBudget({ checkReceiptId: 'rcp_nope', actualCostMicros: -1 }), AllowlyError);
    await assert.rejects(client.policies.create({ policyId: 'p', definition: { profile: 'nope' } }), validation);
    await assert.rejects(client.policies.create({ policyId: 'p', definition: 'nope' }), validation);
    await assert.rejects(client.policies.get(''), AllowlyError);
    await assert.rejects(client.authorizations.list({ limit: -1 }), validation);
  });

  test('constructors: bad options throw synchronously, typed', () => {
    assert.throws(() => new Allowly(), validation);
    assert.throws(() => new Allowly({ baseUrl: 'http://127.0.0.1:1' }), validation);
    assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', checkTimeoutMs: 0 }), validation);
    assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', checkTimeoutMs: 1.5 }), validation);
    assert.throws(
      () => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', fallbackByAction: { 'a.b': 'maybe' } }),
      validation,
    );
    assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'ftp://example.com' }), validation);
    assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'http://example.com' }), validation);
    assert.throws(() => new Allowly({ apiKey: 'k', baseUrl: 'http://127.0.0.1:1', timeout: 5 }), validation);
    const file = path.join(tempHome(), 'a-file');
    fs.writeFileSync(file, 'x');
    assert.throws(() => Allowly.embedded({ home: file }), AllowlyEngineError);
    assert.throws(() => Allowly.embedded({ home: 5 }), validation);
  });

  test('verification input: garbage is a SchemaError', async () => {
    const doc = await client.keyDocument();
    const keys = loadKeysFromJson(doc);
    const options = { expectedWorkspaceId: doc.workspace_id, trustedKeyFingerprints: [doc.keys[0].public_key_fingerprint] };
    for (const receipt of ['', '{', '[]', '{"protected":"a","payload":"b","signature":"c"}', { a: 1 }]) {
      await assert.rejects(verifyReceipt(receipt, keys, options), SchemaError);
    }
    await assert.rejects(verifyReceipt({ a: 1 }, keys, { expectedWorkspaceId: doc.workspace_id }), validation);
    assert.throws(() => loadKeysFromJson({ workspace_id: 'ws', keys: [{ key_id: 'k' }] }), SchemaError);
  });

  test('random junk into every call: only typed errors, and the process lives on', async () => {
    const junk = [undefined, null, 0, -1, 1.5, NaN, '', 'x', true, [], {}, [1], { a: 1n }, 2n ** 70n, Symbol('s'), () => 0, new Date(0)];
    const calls = [
      (x) => client.check(x),
      (x) => client.check({ authorizationId: x, actions: ['search.web'] }),
      (x) => client.check({ authorizationId, actions: x }),
      (x) => client.check({ authorizationId, actions: ['search.web'], context: x }),
      (x) => client.authorizations.create(x),
      (x) => client.authorizations.create({ userId: x, bundleId: 'bench_agent' }),
      (x) => client.authorizations.revoke(x),
      (x) => client.authorizations.list(x),
      (x) => client.confirmations.approve(x),
      (x) => client.escalations.approve(x, { resolvedBy: x }),
      (x) => client.receipts.get(x),
      (x) => client.policies.create(x),
      (x) => client.policies.preview(x),
      (x) => client.settleBudget(x),
    ];
    let refused = 0;
    for (const call of calls) {
      for (const x of junk) {
        try {
          await call(x);
        } catch (err) {
          assert.ok(err instanceof AllowlyError, `${err?.name}: ${err?.message}`);
          refused += 1;
        }
      }
    }
    assert.ok(refused > calls.length * junk.length * 0.8, `refused ${refused}`);
  });

  test('money beyond 2^31 is exact; bigint is accepted', async () => {
    const limit = 10_000_000_000_000; // $10M in micros
    const { authorizationId: id, budgetLimitMicros } = await client.authorizations.create({
      userId: 'user_big',
      bundleId: 'bench_agent',
      budgetLimitMicros: BigInt(limit),
    });
    assert.equal(budgetLimitMicros, limit);
    const first = await client.check({ authorizationId: id, actions: ['search.web'], estimatedCostMicros: 4_294_967_296n });
    const r = first.results['search.web'];
    assert.equal(r.decision, 'allow');
    assert.deepEqual(r.budget, { limitMicros: limit, spentMicros: 0, estimatedCostMicros: 4_294_967_296, spentAfterMicros: 4_294_967_296 });
    const settled = await client.settleBudget({ checkReceiptId: r.receiptId, actualCostMicros: 3_000_000_000 });
    assert.equal(settled.spentAfterMicros, 3_000_000_000);
    const over = await client.check({ authorizationId: id, actions: ['search.web'], estimatedCostMicros: limit });
    assert.equal(over.results['search.web'].reason, 'budget_exceeded');
  });
});
