// An embedded engine takes the calls made together in batches, and the checks of a batch share one
// commit (the core's `check_many`). Batching must not change any answer: budgets stay exact, a bad
// call fails alone, other calls mixed into a batch still run, and every returned receipt is stored.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Allowly, AllowlyNotFoundError, AllowlyValidationError, loadKeysFromJson, verifyReceipt } from '../index.js';
import { openPolicy, receiptId, tempHome } from './helpers.mjs';

const CAP = 1_000_000;
const COST = 7_000;
const CHECKS = 400;

test('checks made together: exact budget, bad calls fail alone, every allowed receipt stored and valid', async () => {
  const home = tempHome();
  const client = Allowly.embedded({ home });
  await client.policies.create(openPolicy());
  const { authorizationId } = await client.authorizations.create({
    userId: 'user_batch',
    bundleId: 'bench_agent',
    budgetLimitMicros: CAP,
  });

  // One burst: budgeted checks, an invalid check every 50th call, and other operations in between.
  const calls = Array.from({ length: CHECKS }, (_, i) => {
    if (i % 50 === 7) return client.check({ authorizationId, actions: [] }).then(() => 'no error', (err) => err);
    if (i % 50 === 21) return client.receipts.get('rcp_missing').then(() => 'no error', (err) => err);
    return client.check({ authorizationId, actions: ['search.web'], estimatedCostMicros: COST, context: { query: 'q' } });
  });
  const answers = await Promise.all(calls);

  const invalid = answers.filter((a) => a instanceof AllowlyValidationError);
  const missing = answers.filter((a) => a instanceof AllowlyNotFoundError);
  const results = answers.filter((a) => a.results).map((a) => a.results['search.web']);
  assert.equal(invalid.length, CHECKS / 50);
  assert.equal(missing.length, CHECKS / 50);
  assert.equal(results.length, CHECKS - 2 * (CHECKS / 50));

  const allowed = results.filter((r) => r.decision === 'allow');
  const refused = results.filter((r) => r.decision === 'deny');
  assert.equal(allowed.length, Math.floor(CAP / COST));
  assert.ok(refused.every((r) => r.reason === 'budget_exceeded'));
  assert.equal(allowed.length + refused.length, results.length);
  // Each allow reserved a distinct slice of the budget, in order, ending exactly at the total.
  const spentAfter = allowed.map((r) => r.budget.spentAfterMicros).sort((a, b) => a - b);
  assert.deepEqual(spentAfter, Array.from({ length: allowed.length }, (_, i) => (i + 1) * COST));
  const { budgetSpentMicros } = await client.authorizations.get(authorizationId);
  assert.equal(budgetSpentMicros, allowed.length * COST);

  // Every receipt that was answered is stored, reads back the same through a new engine on the
  // same home, and verifies.
  const reopened = Allowly.embedded({ home });
  const keysDoc = await reopened.keyDocument();
  const keys = loadKeysFromJson(keysDoc);
  const options = {
    expectedWorkspaceId: keysDoc.workspace_id,
    trustedKeyFingerprints: keysDoc.keys.map((k) => k.public_key_fingerprint),
  };
  const stored = await Promise.all(results.map((r) => reopened.receipts.get(receiptId(r.receipt))));
  for (const [i, r] of results.entries()) {
    assert.deepEqual(stored[i].receipt, r.receipt.receipt);
    const payload = await verifyReceipt(r.receipt, keys, options);
    assert.equal(payload.decision, r.decision);
  }
});
