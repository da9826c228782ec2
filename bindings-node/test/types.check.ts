// Type-level checks of index.d.ts over the generated wire types (compiled by `tsc -p tsconfig.json`
// in scripts/node-test.sh, never run): the generic `call` takes and answers the catalog's wire
// types, the methods answer them camelCased, and a wrong member does not compile.
import { Allowly, ForbiddenError, type Camelize, type CheckResponse, type Operations, type Wire } from '@allowly/sdk';
import { AllowlyMCPMiddleware } from '@allowly/sdk/mcp';

declare const client: Allowly;

export async function wireCalls(): Promise<void> {
  const page: Wire.Page<Wire.AuthorizationView> = await client.call('list_authorizations', { limit: 10 });
  const first: string | undefined = page.items[0]?.authorization_id;
  const archived: null = await client.call('archive_policy', { policy_id: 'p', idempotency_key: 'k' });
  const keys: Operations['get_key_document']['answer'] = await client.call('get_key_document', { workspace_id: 'ws' });
  const report: Wire.VerifyReport = await client.call('verify_receipts', { input: '{}', trusted_key_fingerprints: [] });
  const audit: Wire.Page<Wire.ReceiptSummary> = await client.call('list_receipts', { decision: 'deny', limit: 5 });
  // @ts-expect-error: the wire's names are snake_case
  await client.call('get_authorization', { authorizationId: 'auth_x' });
  // @ts-expect-error: not an operation of the catalog
  await client.call('launch_rockets', {});
  void first, archived, keys, report, audit;
}

export async function surfaceCalls(): Promise<void> {
  const answer: CheckResponse = await client.check({ authorizationId: 'auth_x', actions: ['a.b'], estimatedCostMicros: 10n });
  const result = answer.results['a.b'];
  const nonce: string | undefined = result.confirmNonce;
  const fallback: boolean = result.isFallback;
  const revoked = await client.authorizations.revoke('auth_x', { revokedBy: 'ops', idempotencyKey: 'k' });
  const when: string = revoked.revokedAt;
  const page = await client.authorizations.list({ limit: 5 });
  const more: boolean = page.hasMore;
  const receipt = await client.receipts.get('rcp_x');
  const signature: string = receipt.receipt.signature;
  await client.policies.archive('p', { idempotencyKey: 'k' });
  await client.confirmations.approve('cnf_nonce', { ttlSeconds: 60, idempotencyKey: 'k' });
  await client.escalations.approve('esc_x', { resolvedBy: 'm', idempotencyKey: 'k' });
  const created = await client.apiKeys.create({ kind: 'runtime', label: 'ci' });
  const secret: string = created.key;
  // @ts-expect-error: answers are camelCased
  void revoked.revoked_at;
  // @ts-expect-error: not an option of revoke
  await client.authorizations.revoke('auth_x', { idempotency_key: 'k' });
  const camel: Camelize<{ receipt_id: string; context: { a_b: number } }> = { receiptId: 'r', context: { a_b: 1 } };
  const audit = await client.receipts.list({ decision: 'deny', authorizationId: 'auth_x', since: new Date(), limit: 10 });
  const decided: string | null | undefined = audit.items[0]?.action;
  const verified = await client.receipts.verify(receipt, { trustedKeyFingerprints: ['sha256:00'] });
  const errorClass: string | undefined = verified.receipts[0]?.error?.class;
  await client.receipts.verify(answer);
  await client.receipts.verify('{"protected": "", "payload": "", "signature": ""}', { keyDocument: await client.keyDocument() });
  const confirmations = await client.confirmations.list({ status: 'pending', limit: 5 });
  const confirmationUser: string | null | undefined = confirmations.items[0]?.userId;
  const escalations = await client.escalations.list({ status: 'expired', cursor: 'esc_x' });
  const approver: string | null | undefined = escalations.items[0]?.escalationTo;
  // @ts-expect-error: not a status
  await client.confirmations.list({ status: 'done' });
  // @ts-expect-error: the options are camelCase
  await client.receipts.list({ user_id: 'u' });
  const granted = await client.authorizations.list({ userId: 'user_42', agentId: 'bot', status: 'active', limit: 5 });
  const grantStatus: 'active' | 'revoked' | 'expired' | undefined = granted.items[0]?.status;
  // @ts-expect-error: not a status of an authorization
  await client.authorizations.list({ status: 'pending' });
  // @ts-expect-error: policies are listed by page only
  await client.policies.list({ userId: 'u' });
  void nonce, fallback, when, more, signature, secret, camel, decided, errorClass, confirmationUser, approver, grantStatus;
}

export function errors(err: unknown): number | undefined {
  return err instanceof ForbiddenError && err.kind === 'forbidden' ? err.status : undefined;
}

export function mcpGuardOptions(): void {
  // The client's identity comes from the host; the verdict's meta is the wire's snake_case.
  const guard = new AllowlyMCPMiddleware({
    allowly: client,
    userIdFn: ({ extra }) => (extra.authInfo?.extra?.userId as string | undefined) ?? null,
    authorizationIdFn: async (userId) => `auth_for_${userId}`,
    checkInputFn: ({ arguments: args }) => ({ resource: `doc:${String(args.doc)}`, clientTimestamp: new Date() }),
    elicitConfirmation: true,
  });
  void guard.decide({ toolName: 't', arguments: {}, request: { method: 'tools/call' }, extra: {} }).then((verdict) => {
    const receiptId: string | null = verdict.meta.receipt_id;
    void receiptId;
  });
  new AllowlyMCPMiddleware({ apiKey: 'allowly.runtime.x', baseUrl: 'http://127.0.0.1:8787', authorizationIdFn: () => null });
  // @ts-expect-error: a client, or an API key and a URL, not both
  new AllowlyMCPMiddleware({ allowly: client, apiKey: 'k', baseUrl: 'u', authorizationIdFn: () => null });
  // @ts-expect-error: agent identity tokens are not verified by this engine
  new AllowlyMCPMiddleware({ allowly: client, authorizationIdFn: () => null, agentTokenFn: () => 'token' });
  // @ts-expect-error: a check input has no such member
  new AllowlyMCPMiddleware({ allowly: client, authorizationIdFn: () => null, checkInputFn: () => ({ recipient: 'x' }) });
}
