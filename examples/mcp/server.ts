// A stdio MCP server whose three tools are guarded by Allowly, on an embedded workspace.
//
//   email.send      allowed to example.com addresses, needs the user's yes for any other
//   billing.refund  goes to the finance lead
//   files.delete    denied
//
// The policy is policy.json beside this file. The user is the one the host runs the server for
// (ALLOWLY_MCP_USER): a stdio server has no other trusted identity, and tool arguments are never one.
import { readFileSync, appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
import { Allowly } from '@allowly/sdk';
import { AllowlyMCPMiddleware } from '@allowly/sdk/mcp';

const here = path.dirname(fileURLToPath(import.meta.url));
const home = process.env.ALLOWLY_HOME ?? '.allowly-mcp';
const user = process.env.ALLOWLY_MCP_USER ?? 'demo_user';

const allowly = Allowly.embedded({ home });
const authorizationId = await authorizationFor(user);

const server = new McpServer({ name: 'allowly-example', version: '1.0.0' });

server.registerTool(
  'email.send',
  { description: 'Send an email', inputSchema: { to: z.string().email(), subject: z.string(), body: z.string() } },
  async ({ to, subject, body }) => {
    record('email.send', { to, subject, body });
    return { content: [{ type: 'text', text: 'sent' }] };
  },
);

server.registerTool(
  'billing.refund',
  { description: 'Refund an order', inputSchema: { order_id: z.string(), amount_cents: z.number().int() } },
  async ({ order_id, amount_cents }) => {
    record('billing.refund', { order_id, amount_cents });
    return { content: [{ type: 'text', text: 'refunded' }] };
  },
);

server.registerTool(
  'files.delete',
  { description: 'Delete a file', inputSchema: { path: z.string() } },
  async ({ path: file }) => {
    record('files.delete', { path: file });
    return { content: [{ type: 'text', text: 'deleted' }] };
  },
);

new AllowlyMCPMiddleware({
  allowly,
  userIdFn: () => user,
  authorizationIdFn: (userId) => (userId === user ? authorizationId : undefined),
  // Only these arguments are decided on; the rest never reach the check.
  checkInputFn: ({ toolName, arguments: args }) => {
    if (toolName === 'email.send') return { context: { recipient_domain: domainOf(args.to) } };
    if (toolName === 'files.delete') return { resource: `file:${String(args.path)}` };
    return {};
  },
  elicitConfirmation: true,
}).attach(server);

await server.connect(new StdioServerTransport());

/** Publishes the policy (unchanged: nothing new) and finds or creates the user's authorization. */
async function authorizationFor(userId: string): Promise<string> {
  mkdirSync(home, { recursive: true });
  const { policy_id: policyId, description, ...definition } = JSON.parse(
    readFileSync(path.join(here, '..', 'policy.json'), 'utf8'), // here is dist/
  );
  await allowly.policies.publish({ policyId, description, definition });
  const filter = { userId, agentId: definition.agent_id, status: 'active' as const };
  let page = await allowly.authorizations.list(filter);
  // A page of a status may be empty while later ones are not.
  while (page.items.length === 0 && page.hasMore) {
    page = await allowly.authorizations.list({ ...filter, cursor: page.nextCursor ?? undefined });
  }
  if (page.items.length > 0) return page.items[0].authorizationId;
  return (await allowly.authorizations.create({ userId, policyId })).authorizationId;
}

/** What the tools do, one JSON line each in the workspace's outbox.jsonl (in place of a mail server, a bank...). */
function record(tool: string, args: Record<string, unknown>): void {
  appendFileSync(path.join(home, 'outbox.jsonl'), JSON.stringify({ tool, ...args }) + '\n');
}

function domainOf(address: unknown): string {
  const text = String(address);
  return text.slice(text.lastIndexOf('@') + 1).toLowerCase();
}
