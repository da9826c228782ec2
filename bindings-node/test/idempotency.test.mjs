// Idempotency keys reach the engine from every state-changing method, embedded and remote: a replay
// under the same key answers the first answer (the SDK once dropped the key of archive, revoke and
// the approvals, so a retry after a lost answer failed as a second call instead).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Allowly, ConflictError, NotFoundError } from '../index.js';
import { startServer, tempHome } from './helpers.mjs';

// email.send to another domain needs the user's confirmation; refund.issue goes to a human approver.
const definition = {
  agent_id: 'support_bot',
  default_expiry_days: 30,
  actions: [
    {
      policy: {
        action: 'email.send',
        decision: 'allow',
        fields: { recipient_domain: 'string' },
        rules: [
          { id: 'external', decision: 'confirm', conditions: [{ field: 'recipient_domain', op: 'ne', value: 'example.com' }] },
        ],
      },
    },
    { policy: { action: 'refund.issue', decision: 'escalate', target: 'member:finance_lead', fields: {}, rules: [] } },
  ],
};

/** A fresh authorization with one pending confirmation and one pending escalation. */
async function pending(client, policyId) {
  await client.policies.create({ policyId, definition });
  const { authorizationId } = await client.authorizations.create({ userId: 'user_1', policyId });
  const { results } = await client.check({
    authorizationId,
    actions: ['email.send', 'refund.issue'],
    context: { recipient_domain: 'partner.org' },
  });
  assert.equal(results['email.send'].decision, 'confirm');
  assert.equal(results['refund.issue'].decision, 'escalate');
  return { authorizationId, nonce: results['email.send'].confirmNonce, escalationId: results['refund.issue'].escalationId };
}

/** `first()` answers; `first()` again under the same key answers the same; without the key it is refused. */
async function replays(first, again, refused) {
  const answer = await first();
  assert.deepEqual(await first(), answer, 'a replay under the same key answers the first answer');
  await assert.rejects(again(), refused, 'without the key the same call is a second call');
  return answer;
}

function suite(mode, open) {
  describe(`idempotency keys (${mode})`, () => {
    let client;
    let close = async () => {};
    before(async () => {
      ({ client, close = close } = await open());
    });
    after(() => close());

    test('authorizations.revoke', async () => {
      const { authorizationId } = await pending(client, 'idem_revoke');
      const answer = await replays(
        () => client.authorizations.revoke(authorizationId, { revokedBy: 'ops', idempotencyKey: `${mode}-revoke-1` }),
        () => client.authorizations.revoke(authorizationId, { revokedBy: 'ops' }),
        ConflictError,
      );
      assert.equal(answer.authorizationId, authorizationId);
    });

    test('confirmations.approve and confirmations.reject', async () => {
      const { nonce } = await pending(client, 'idem_confirm');
      const answer = await replays(
        () => client.confirmations.approve(nonce, { ttlSeconds: 120, idempotencyKey: `${mode}-approve-1` }),
        () => client.confirmations.approve(nonce, { ttlSeconds: 120 }),
        ConflictError,
      );
      assert.equal(answer.decision, 'approved');
      const other = await pending(client, 'idem_reject');
      await replays(
        () => client.confirmations.reject(other.nonce, { idempotencyKey: `${mode}-reject-1` }),
        () => client.confirmations.reject(other.nonce),
        ConflictError,
      );
    });

    test('escalations.approve / reject / resolve', async () => {
      const { escalationId } = await pending(client, 'idem_escalate');
      const answer = await replays(
        () => client.escalations.approve(escalationId, { resolvedBy: 'finance_lead', idempotencyKey: `${mode}-esc-1` }),
        () => client.escalations.approve(escalationId, { resolvedBy: 'finance_lead' }),
        ConflictError,
      );
      assert.equal(answer.escalationId, escalationId);
      const other = await pending(client, 'idem_escalate_reject');
      await replays(
        () => client.escalations.reject(other.escalationId, { resolvedBy: 'finance_lead', idempotencyKey: `${mode}-esc-2` }),
        () => client.escalations.resolve(other.escalationId, { resolution: 'rejected', resolvedBy: 'finance_lead' }),
        ConflictError,
      );
    });

    test('policies.archive', async () => {
      await client.policies.create({ policyId: 'idem_archive', definition });
      await replays(
        () => client.policies.archive('idem_archive', { idempotencyKey: `${mode}-archive-1` }),
        () => client.policies.archive('idem_archive'),
        NotFoundError,
      );
    });

    test('unknown options are still refused (a typo must not silently drop the key)', async () => {
      await assert.rejects(client.policies.archive('p', { idempotencykey: 'k' }), /idempotencykey/);
      await assert.rejects(client.authorizations.revoke('auth_x', { idempotency_key: 'k' }), /idempotency_key/);
    });
  });
}

suite('embedded', async () => ({ client: Allowly.embedded({ home: tempHome() }) }));
suite('remote', async () => {
  const server = await startServer();
  const client = new Allowly({ apiKey: server.setupKey, baseUrl: server.baseUrl, workspaceId: server.workspaceId });
  return { client, close: () => server.stop() };
});
