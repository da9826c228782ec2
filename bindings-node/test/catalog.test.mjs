// Every operation of the core's catalog is reachable from the `Allowly` object: through its typed
// method (camelCase options, camelCase answers) and through `call(operation, args)` with the wire's
// arguments and answers. A catalog operation without a method here fails this test.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Allowly, AllowlyError, CATALOG } from '../index.js';
import { examplePolicy, tempHome } from './helpers.mjs';

/** The typed method of each operation, called with placeholder arguments. */
const METHODS = {
  check: (c) => c.check({ authorizationId: 'auth_missing', actions: ['email.send'] }),
  create_authorization: (c) => c.authorizations.create({ userId: 'u', policyId: 'support_agent' }),
  list_authorizations: (c) => c.authorizations.list(),
  get_authorization: (c) => c.authorizations.get('auth_missing'),
  revoke_authorization: (c) => c.authorizations.revoke('auth_missing', { idempotencyKey: 'k-revoke' }),
  confirmation_status: (c) => c.confirmations.getStatus('cnf_missing'),
  list_confirmations: (c) => c.confirmations.list({ status: 'pending' }),
  resolve_confirmation: (c) => c.confirmations.approve('cnf_nonce_missing', { idempotencyKey: 'k-approve' }),
  escalation_status: (c) => c.escalations.getStatus('esc_missing'),
  list_escalations: (c) => c.escalations.list({ status: 'pending' }),
  resolve_escalation: (c) => c.escalations.resolve('esc_missing', { resolution: 'rejected', resolvedBy: 'x', idempotencyKey: 'k-esc' }),
  settle_budget: (c) => c.settleBudget({ checkReceiptId: 'rcp_missing', actualCostMicros: 1, idempotencyKey: 'k-settle' }),
  get_receipt: (c) => c.receipts.get('rcp_missing'),
  list_receipts: (c) => c.receipts.list({ decision: 'deny' }),
  verify_receipts: (c) => c.receipts.verify('{"protected": "e30", "payload": "e30", "signature": "AA"}'),
  create_policy: (c) => c.policies.create(examplePolicy()),
  list_policies: (c) => c.policies.list(),
  get_policy: (c) => c.policies.get('support_agent', { version: 1 }),
  archive_policy: (c) => c.policies.archive('no_such_policy', { idempotencyKey: 'k-archive' }),
  preview_policy: (c) => c.policies.preview({ definition: examplePolicy().definition, action: 'email.send', context: {} }),
  publish_policy: (c) => c.policies.publish({ ...examplePolicy(), idempotencyKey: 'k-publish' }),
  list_api_keys: (c) => c.apiKeys.list(),
  create_api_key: (c) => c.apiKeys.create({ kind: 'runtime', label: 'catalog test' }),
  revoke_api_key: (c) => c.apiKeys.revoke('key_missing'),
  rotate_signing_key: (c) => c.rotateSigningKey(),
  get_key_document: (c) => c.keyDocument(),
};

test('the catalog: one frozen route per operation, as the core lists them', () => {
  assert.ok(Object.isFrozen(CATALOG));
  const names = CATALOG.map((route) => route.operation);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(CATALOG.find((r) => r.operation === 'revoke_authorization'), {
    operation: 'revoke_authorization',
    method: 'DELETE',
    path: '/v1/authorizations/{id}',
    path_field: 'authorization_id',
    access: 'runtime',
    idempotency: 'optional',
    body: 'optional',
    status: 200,
    large_body: false,
  });
});

test('every catalog operation has a typed method, and each reaches its operation', async () => {
  assert.deepEqual(Object.keys(METHODS).sort(), CATALOG.map((r) => r.operation).sort());
  const client = Allowly.embedded({ home: tempHome() });
  for (const route of CATALOG) {
    try {
      await METHODS[route.operation](client);
    } catch (err) {
      // Placeholder ids may not exist; the engine must still have run this operation.
      assert.ok(err instanceof AllowlyError, `${route.operation}: ${err}`);
      assert.ok(!err.fields.some((f) => f.field === 'operation'), `${route.operation}: ${err.message}`);
      assert.ok(['not_found', 'conflict'].includes(err.kind), `${route.operation}: ${err.kind} ${err.message}`);
    }
  }
});

test('call(): any operation by name, wire arguments in, wire answers out', async () => {
  const client = Allowly.inMemory();
  const { definition } = examplePolicy();
  const created = await client.call('create_policy', { policy_id: 'support_agent', ...definition });
  assert.equal(created.policy_ref.policy_id, 'support_agent');
  const authorization = await client.call('create_authorization', { user_id: 'u', policy_id: 'support_agent', idempotency_key: 'a-1' });
  assert.deepEqual(await client.call('create_authorization', { user_id: 'u', policy_id: 'support_agent', idempotency_key: 'a-1' }), authorization);
  const page = await client.call('list_authorizations', { limit: 10 });
  assert.deepEqual(Object.keys(page).sort(), ['has_more', 'items', 'next_cursor']);
  assert.equal(await client.call('archive_policy', { policy_id: 'support_agent' }), null);
  await assert.rejects(client.call('launch_rockets', {}), (err) => err.kind === 'invalid_request' && /unknown operation/.test(err.message));
  await assert.rejects(client.call(''), (err) => err.kind === 'invalid_request');
  await assert.rejects(client.call('list_policies', []), (err) => err.kind === 'invalid_request');
});
