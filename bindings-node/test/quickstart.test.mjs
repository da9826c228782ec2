// The shared quickstart scenario (tests/scenarios/quickstart.json), embedded and against
// `allowly serve`: every expected decision, reason and budget, and the same outcomes in both modes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Allowly, loadKeysFromJson, verifyReceipt } from '../index.js';
import { mismatches, runScenario, startServer, tempHome } from './helpers.mjs';

let embeddedOutcomes;

async function verifyAll(client, receipts, keysDoc) {
  const keys = loadKeysFromJson(keysDoc);
  const options = {
    expectedWorkspaceId: keysDoc.workspace_id,
    trustedKeyFingerprints: keysDoc.keys.map((k) => k.public_key_fingerprint),
  };
  let verified = 0;
  for (const envelope of receipts) {
    const signed = envelope.status === 'signed' ? envelope : await client.receipts.get(envelope.receiptId);
    const payload = await verifyReceipt(signed, keys, options);
    assert.equal(payload.workspace_id, keysDoc.workspace_id);
    verified += 1;
  }
  return verified;
}

describe('quickstart scenario', () => {
  test('embedded: every step gets the expected decision, reason and budget', async () => {
    const client = Allowly.embedded({ home: tempHome() });
    assert.equal(client.isEmbedded, true);
    const run = await runScenario(client);
    assert.deepEqual(mismatches(run.outcomes), []);
    embeddedOutcomes = run.outcomes;
    const verified = await verifyAll(client, run.receipts, await client.keyDocument());
    assert.equal(verified, run.receipts.length);
  });

  describe('against allowly serve', () => {
    let server;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server?.stop();
    });

    test('remote: the same outcomes as embedded, receipts verify', async () => {
      const common = { baseUrl: server.baseUrl, workspaceId: server.workspaceId };
      const runtime = new Allowly({ apiKey: server.runtimeKey, ...common });
      const setup = new Allowly({ apiKey: server.setupKey, ...common });
      assert.equal(runtime.isEmbedded, false);
      assert.equal(await runtime.readiness(), true);
      const run = await runScenario(runtime, setup);
      assert.deepEqual(mismatches(run.outcomes), []);
      if (embeddedOutcomes) assert.deepEqual(run.outcomes, embeddedOutcomes);
      const verified = await verifyAll(runtime, run.receipts, await runtime.keyDocument());
      assert.equal(verified, run.receipts.length);
      assert.match(await runtime.engineVersion(), /^sha256:[0-9a-f]{64}$/);
    });

    test('remote: lists, statuses and policies through the same API', async () => {
      const common = { baseUrl: server.baseUrl, workspaceId: server.workspaceId };
      const runtime = new Allowly({ apiKey: server.runtimeKey, ...common });
      const setup = new Allowly({ apiKey: server.setupKey, ...common });
      const page = await setup.authorizations.list({ limit: 10 });
      assert.ok(Array.isArray(page.items) && page.items.length >= 1);
      assert.equal(typeof page.hasMore, 'boolean');
      const policy = await setup.policies.get('support_agent');
      assert.equal(policy.policyRef.policyId, 'support_agent');
      const policies = await setup.policies.list();
      assert.ok(policies.items.some((p) => p.policyRef.policyId === 'support_agent'));
      const auth = await runtime.authorizations.create({ userId: 'user_7', bundleId: 'support_agent' });
      const answer = await runtime.check({ authorizationId: auth.authorizationId, scopes: ['refund.issue'] });
      const refund = answer.results['refund.issue'];
      assert.equal(refund.decision, 'escalate');
      const status = await runtime.escalations.getStatus(refund.escalationId);
      assert.equal(status.status, 'pending');
      await runtime.escalations.reject(refund.escalationId, { resolvedBy: 'finance_lead', note: 'no' });
      const again = await runtime.check({ authorizationId: auth.authorizationId, scopes: ['refund.issue'] });
      assert.equal(again.results['refund.issue'].decision, 'deny');
    });

    test('publish: the same answer embedded and remote; an unchanged definition is no new edition', async () => {
      const common = { baseUrl: server.baseUrl, workspaceId: server.workspaceId };
      const setup = new Allowly({ apiKey: server.setupKey, ...common });
      const embedded = Allowly.embedded({ home: tempHome() });
      const definition = (await setup.policies.get('support_agent')).definition;
      const changed = { ...definition, default_expiry_days: 7 };
      for (const [client, createdBy] of [
        [embedded, /^embedded$/],
        [setup, /^api_key:/],
      ]) {
        const first = await client.policies.publish({ policyId: 'published', definition, idempotencyKey: 'p-1' });
        assert.deepEqual(Object.keys(first).sort(), [
          'agentId',
          'archivedPolicyIds',
          'authorizationMigrations',
          'createdAt',
          'createdBy',
          'policyRef',
          'revokedConfirmationCount',
        ]);
        assert.equal(first.policyRef.policyVersion, 1);
        assert.equal(first.agentId, definition.agent_id);
        assert.match(first.createdBy, createdBy);
        assert.deepEqual([first.authorizationMigrations, first.archivedPolicyIds, first.revokedConfirmationCount], [[], [], 0]);
        const same = await client.policies.publish({ policyId: 'published', definition });
        assert.deepEqual(same.policyRef, first.policyRef);
        const next = await client.policies.publish({ policyId: 'published', definition: changed });
        assert.equal(next.policyRef.policyVersion, 2);
        assert.equal((await client.policies.get('published')).definition.default_expiry_days, 7);
      }
    });
  });
});
