// The two samples of the product page, as written, against @allowly/sdk — with stand-ins for the
// mail client and the app database. Run: `npm run examples` (compiles with tsc, then runs).
import { Allowly } from '@allowly/sdk';
import { readFileSync } from 'node:fs';

// ---- stand-ins ------------------------------------------------------------------------------
interface User {
  id: string;
  email: string;
  allowlyAuthorizationId?: string;
}
interface Draft {
  to: string[];
  subject: string;
  body: string;
}
const mail = {
  sent: [] as Draft[],
  async send(draft: Draft): Promise<{ messageId: string }> {
    this.sent.push(draft);
    return { messageId: `msg_${this.sent.length}` };
  },
};
const appDb = {
  users: new Map<string, User>(),
  async saveUser(user: User): Promise<void> {
    this.users.set(user.id, user);
  },
};
type AppDb = typeof appDb;

const allowly = Allowly.embedded({ home: process.env.ALLOWLY_HOME ?? '.allowly' });

// ---- sample 1: authorize the agent for a user -----------------------------------------------
export async function authorizeAgent(user: User, appDb: AppDb): Promise<string> {
  const authorization = await allowly.authorizations.create({
    userId: user.id,
    bundleId: 'sales_copilot_email_v1',
    expiresAt: new Date(Date.now() + 30 * 24 * 60 * 60 * 1000),
  });
  user.allowlyAuthorizationId = authorization.authorizationId;
  await appDb.saveUser(user);
  return authorization.authorizationId;
}

// ---- sample 2: check before sending ----------------------------------------------------------
export type SendOutcome =
  | { status: 'sent'; messageId: string }
  | { status: 'needs_confirmation'; confirmNonce: string; expiresAt?: string }
  | { status: 'waiting_for_approval'; escalationId: string; approver?: string }
  | { status: 'blocked'; reason: string };

export async function sendEmail(user: User, draft: Draft): Promise<SendOutcome> {
  const domains = new Set(draft.to.map((address) => address.split('@')[1] ?? ''));
  const answer = await allowly.check({
    authorizationId: user.allowlyAuthorizationId ?? '',
    scopes: ['email.send'],
    context: {
      recipient_domain: domains.size === 1 ? [...domains][0] : 'multiple',
      recipient_count: draft.to.length,
    },
  });
  const result = answer.results['email.send'];
  switch (result.decision) {
    case 'allow': {
      const { messageId } = await mail.send(draft);
      return { status: 'sent', messageId };
    }
    case 'confirm':
      // Ask the user in the app; on "yes" call allowly.confirmations.approve(nonce) and retry.
      return { status: 'needs_confirmation', confirmNonce: result.confirmNonce ?? '', expiresAt: result.confirmExpiresAt };
    case 'escalate':
      // A manager approves with allowly.escalations.approve(id, { resolvedBy }); then retry once.
      return { status: 'waiting_for_approval', escalationId: result.escalationId ?? '', approver: result.escalationTo };
    case 'deny':
      return { status: 'blocked', reason: result.reason };
  }
}

// ---- a run of both -----------------------------------------------------------------------------
async function main(): Promise<void> {
  const { policy_id, description, ...definition } = JSON.parse(
    readFileSync(new URL('../examples/sales_copilot_email_v1.json', import.meta.url), 'utf8'),
  );
  await allowly.policies.create({ policyId: policy_id, description, definition });

  const user: User = { id: 'user_42', email: 'dana@acme.example' };
  const authorizationId = await authorizeAgent(user, appDb);
  console.log(JSON.stringify({ step: 'authorized', authorizationId }));

  const drafts: Record<string, Draft> = {
    internal: { to: ['lee@acme.example'], subject: 'Notes', body: '...' },
    external: { to: ['buyer@customer.example'], subject: 'Offer', body: '...' },
    bulk: { to: Array.from({ length: 80 }, (_, i) => `lead${i}@acme.example`), subject: 'Webinar', body: '...' },
    competitor: { to: ['ceo@competitor.example'], subject: 'Hello', body: '...' },
  };
  for (const [name, draft] of Object.entries(drafts)) {
    console.log(JSON.stringify({ step: name, ...(await sendEmail(user, draft)) }));
  }
}

await main();
