// The typed methods of the audit operations, on an embedded engine: `receipts.list` (the audit
// lookup, filters and pages), `receipts.verify` (what a person pastes), `confirmations.list` and
// `escalations.list` (by status).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Allowly, InvalidRequestError } from '../index.js';
import { examplePolicy, receiptId, tempHome } from './helpers.mjs';

/** The signature with its first character changed (still base64url). */
const flipped = (signature) => (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);

test('receipts.list/verify, confirmations.list and escalations.list', async () => {
  const client = Allowly.embedded({ home: tempHome() });
  await client.policies.create(examplePolicy());
  const { authorizationId } = await client.authorizations.create({ userId: 'user_42', policyId: 'support_agent' });
  const check = (actions, context) => client.check({ authorizationId, actions, context });
  const allowed = await check(['email.send'], { recipient_domain: 'example.com' });
  const confirm = (await check(['email.send'], { recipient_domain: 'partner.org' })).results['email.send'];
  const escalate = (await check(['refund.issue'])).results['refund.issue'];
  const denied = await check(['account.delete']);
  assert.deepEqual(
    [confirm.decision, escalate.decision, denied.results['account.delete'].decision],
    ['confirm', 'escalate', 'deny'],
  );

  // confirmations.list: the one pending confirmation, for its action and user; none approved yet.
  const pending = await client.confirmations.list({ status: 'pending' });
  assert.deepEqual(
    pending.items.map((c) => [c.confirmationId, c.action, c.status, c.userId]),
    [[confirm.confirmationId, 'email.send', 'pending', 'user_42']],
  );
  assert.equal(pending.hasMore, false);
  assert.deepEqual((await client.confirmations.list({ status: 'approved' })).items, []);
  await client.confirmations.approve(confirm.confirmNonce);
  assert.deepEqual((await client.confirmations.list({ status: 'pending' })).items, []);
  assert.deepEqual(
    (await client.confirmations.list({ status: 'approved' })).items.map((c) => c.confirmationId),
    [confirm.confirmationId],
  );

  // escalations.list: the pending escalation, routed where the check said.
  const escalations = (await client.escalations.list({ status: 'pending' })).items;
  assert.deepEqual(
    escalations.map((e) => [e.escalationId, e.action, e.escalationTo, e.resolvedBy]),
    [[escalate.escalationId, 'refund.issue', escalate.escalationTo, null]],
  );
  assert.deepEqual((await client.escalations.list({ status: 'rejected' })).items, []);

  // receipts.list: a decision filter returns only that decision; pages follow the cursor.
  const denies = await client.receipts.list({ decision: 'deny' });
  assert.ok(denies.items.length > 0);
  assert.ok(denies.items.every((r) => r.decision === 'deny'));
  const [deny] = denies.items;
  assert.equal(deny.receiptId, receiptId(denied.results['account.delete'].receipt));
  assert.deepEqual([deny.action, deny.userId, deny.authorizationId], ['account.delete', 'user_42', authorizationId]);
  assert.equal(typeof deny.receipt.signature, 'string');
  const everything = await client.receipts.list();
  assert.ok(everything.items.length > denies.items.length);
  assert.equal(everything.hasMore, false);
  const first = await client.receipts.list({ limit: 1 });
  assert.equal(first.items.length, 1);
  assert.equal(first.hasMore, true);
  const second = await client.receipts.list({ limit: 1, cursor: first.nextCursor });
  assert.deepEqual(
    [...first.items, ...second.items].map((r) => r.receiptId),
    everything.items.slice(0, 2).map((r) => r.receiptId),
  );
  assert.deepEqual((await client.receipts.list({ action: 'refund.issue', decision: 'allow' })).items, []);
  const future = new Date(Date.now() + 3_600_000);
  assert.deepEqual((await client.receipts.list({ since: future })).items, []);
  assert.equal((await client.receipts.list({ until: future })).items.length, everything.items.length);
  await assert.rejects(client.receipts.list({ decison: 'deny' }), InvalidRequestError);
  await assert.rejects(client.receipts.list({ since: 'yesterday' }), (err) => err.fields[0]?.field === 'since');

  // receipts.verify: a receipt verifies (as text, as an envelope, in a check response) ...
  const envelope = allowed.results['email.send'].receipt;
  const report = await client.receipts.verify(JSON.stringify(envelope.receipt));
  assert.deepEqual([report.valid, report.input, report.ok, report.invalid], [true, 'receipt', 1, 0]);
  const [verdict] = report.receipts;
  assert.deepEqual(
    [verdict.valid, verdict.receiptId, verdict.kind, verdict.subject, verdict.decision, verdict.error],
    [true, receiptId(envelope), 'decision', 'email.send', 'allow', null],
  );
  assert.equal((await client.receipts.verify(envelope)).input, 'receipt_envelope');
  const whole = await client.receipts.verify(denied);
  assert.deepEqual([whole.valid, whole.input, whole.ok], [true, 'check_response', 1]);
  // ... one changed character of its signature does not ...
  const forged = { ...envelope.receipt, signature: flipped(envelope.receipt.signature) };
  const tampered = await client.receipts.verify(JSON.stringify(forged));
  assert.deepEqual([tampered.valid, tampered.ok, tampered.invalid], [false, 0, 1]);
  assert.equal(tampered.receipts[0].error.class, 'SignatureMismatchError');
  assert.equal(tampered.receipts[0].error.code, 'signature_mismatch');
  // ... and the trusted fingerprints are the ones given.
  const trusted = await client.receipts.verify(envelope.receipt, { trustedKeyFingerprints: [verdict.keyFingerprint] });
  assert.equal(trusted.valid, true);
  const untrusted = await client.receipts.verify(envelope.receipt, {
    trustedKeyFingerprints: [`sha256:${'0'.repeat(64)}`],
  });
  assert.equal(untrusted.valid, false);
  assert.notEqual(untrusted.receipts[0].error, null);
  await assert.rejects(client.receipts.verify(envelope, { trusted: [] }), InvalidRequestError);
});

test('authorizations.list by userId, agentId and status', async () => {
  const client = Allowly.embedded({ home: tempHome() });
  await client.policies.create(examplePolicy());
  const mine = (await client.authorizations.create({ userId: 'user_42', policyId: 'support_agent' })).authorizationId;
  const theirs = (await client.authorizations.create({ userId: 'user_7', policyId: 'support_agent' })).authorizationId;
  await client.authorizations.revoke(theirs);
  const ids = (page) => page.items.map((a) => a.authorizationId);

  const listed = await client.authorizations.list({ userId: 'user_42' });
  assert.deepEqual([ids(listed), listed.hasMore], [[mine], false]);
  const revoked = await client.authorizations.list({ status: 'revoked' });
  assert.deepEqual(revoked.items.map((a) => [a.authorizationId, a.status]), [[theirs, 'revoked']]);
  assert.deepEqual(ids(await client.authorizations.list({ userId: 'user_7', status: 'active' })), []);
  const agentId = listed.items[0].agentId;
  assert.deepEqual(ids(await client.authorizations.list({ agentId, status: 'active', limit: 1 })), [mine]);
  assert.deepEqual(ids(await client.authorizations.list({ agentId: 'nobody' })), []);
  await assert.rejects(client.authorizations.list({ status: 'frozen' }), (err) => err.fields[0]?.field === 'status');
  await assert.rejects(client.authorizations.list({ user: 'user_42' }), InvalidRequestError);
});
