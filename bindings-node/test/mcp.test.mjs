// @allowly/sdk/mcp with the real MCP SDK (@modelcontextprotocol/sdk 1.x): a Client over
// InMemoryTransport against guarded McpServer and low-level Server instances, the stdio example
// spawned as an MCP host would, a silent remote runtime, and confirmation in the conversation.
// What each case must do is docs/mcp.md.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ElicitRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { Client as ClientV2 } from '@modelcontextprotocol/client';
import { InMemoryTransport as InMemoryTransportV2, McpServer as McpServerV2 } from '@modelcontextprotocol/server';
import { z as z4 } from 'zod/v4';

import { Allowly, InvalidRequestError, loadKeysFromJson, verifyReceipt } from '../index.js';
import { AllowlyMCPMiddleware } from '../mcp.js';
import { root, startServer, tempHome } from './helpers.mjs';

const examplePolicy = () => {
  const { policy_id: policyId, description, ...definition } = JSON.parse(
    fs.readFileSync(path.join(root, 'examples/mcp/policy.json'), 'utf8'),
  );
  return { policyId, description, definition };
};

/** One resource-guarded action: `docs.read` of `doc:public/*` only. */
const readerPolicy = {
  policyId: 'reader',
  description: 'reads public documents',
  definition: {
    profile: 'allowly.policy.v1',
    agent_id: 'reader_bot',
    default_expiry_days: 1,
    actions: [
      {
        policy: {
          profile: 'allowly.basic.v1',
          action: 'docs.read',
          decision: 'allow',
          target: null,
          fields: {},
          rules: [],
        },
        guards: { resource_pattern: 'doc:public/*' },
        executable_operations: [],
      },
    ],
  },
};

/** A fresh in-memory workspace with the example's policy and `alice`'s authorization. */
async function workspace() {
  const allowly = Allowly.inMemory();
  await allowly.policies.create(examplePolicy());
  const { authorizationId } = await allowly.authorizations.create({ userId: 'alice', policyId: 'mcp_assistant' });
  const keys = trustOf(await allowly.keyDocument());
  return { allowly, authorizationId, keys };
}

/** The example's three tools (and `docs.read`), each counting its runs. */
function registerTools(server, ran) {
  const count = (name, text, meta) => async (args) => {
    ran[name] = (ran[name] ?? 0) + 1;
    return { content: [{ type: 'text', text: text(args) }], ...(meta ? { _meta: meta } : {}) };
  };
  server.registerTool(
    'email.send',
    { inputSchema: { to: z.string(), body: z.string().optional() } },
    count('email.send', ({ to }) => `sent to ${to}`, { 'example.com/message-id': 'msg_1' }),
  );
  server.registerTool('billing.refund', { inputSchema: { order_id: z.string() } }, count('billing.refund', () => 'refunded'));
  server.registerTool('files.delete', { inputSchema: { path: z.string() } }, count('files.delete', () => 'deleted'));
  server.registerTool('docs.read', { inputSchema: { doc: z.string() } }, count('docs.read', ({ doc }) => `read ${doc}`));
}

/** The user a call comes from: what the transport authenticated (InMemoryTransport carries `authInfo`). */
const userFromAuth = ({ extra }) => extra.authInfo?.extra?.userId;

const emailDomain = ({ toolName, arguments: args }) =>
  toolName === 'email.send' ? { context: { recipient_domain: String(args.to).split('@')[1] } } : {};

/**
 * A connected Client whose requests carry `userId` as authenticated host context; `elicit` (a
 * function answering `elicitation/create`) makes it declare the elicitation capability.
 */
async function connect(server, { userId = 'alice', elicit } = {}) {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const send = clientTransport.send.bind(clientTransport);
  clientTransport.send = (message, options) =>
    send(message, { ...options, authInfo: { token: 't', clientId: 'test', scopes: [], extra: { userId } } });
  await server.connect(serverTransport);
  const client = new Client({ name: 'test-client', version: '1.0.0' }, { capabilities: elicit ? { elicitation: {} } : {} });
  const elicitations = [];
  if (elicit) {
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      elicitations.push(request.params);
      return elicit(request.params);
    });
  }
  await client.connect(clientTransport);
  return { client, elicitations };
}

/** A guarded McpServer with the tools; the guard attached after the tools unless `attachFirst`. */
async function guardedServer(options, { attachFirst = false, userId, elicit } = {}) {
  const ran = {};
  const server = new McpServer({ name: 'guarded', version: '1.0.0' });
  const guard = new AllowlyMCPMiddleware(options);
  if (attachFirst) guard.attach(server);
  registerTools(server, ran);
  if (!attachFirst) guard.attach(server);
  const { client, elicitations } = await connect(server, { userId, elicit });
  return { client, ran, elicitations };
}

/** What a client that keeps receipts trusts: the workspace's key document and every key in it. */
function trustOf(keyDocument) {
  return {
    keys: loadKeysFromJson(keyDocument),
    options: {
      expectedWorkspaceId: keyDocument.workspace_id,
      trustedKeyFingerprints: keyDocument.keys.map((key) => key.public_key_fingerprint),
    },
  };
}

/** The receipt's payload, verified offline (rejects if it does not verify). */
const verify = (receipt, trust) => verifyReceipt(receipt, trust.keys, trust.options);

/** Guard options for the workspace: `alice` (as the transport authenticated her) has its authorization. */
function aliceOptions(ws) {
  return {
    allowly: ws.allowly,
    userIdFn: userFromAuth,
    authorizationIdFn: (userId) => (userId === 'alice' ? ws.authorizationId : null),
    checkInputFn: emailDomain,
  };
}

function payloadOf(result) {
  assert.equal(result.isError, true, `expected a tool error, got ${JSON.stringify(result)}`);
  return JSON.parse(result.content[0].text);
}

describe('MCP guard, McpServer over InMemoryTransport', () => {
  let ws;
  let options;
  before(async () => {
    ws = await workspace();
    options = aliceOptions(ws);
  });

  test('allow: the tool runs once and its result carries a receipt that verifies', async () => {
    const { client, ran } = await guardedServer(options);
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.equal(result.isError, undefined);
    assert.equal(result.content[0].text, 'sent to bob@example.com');
    assert.equal(ran['email.send'], 1);
    const meta = result._meta.allowly;
    assert.equal(meta.decision, 'allow');
    assert.equal(meta.is_fallback, false);
    const payload = await verify(meta.receipt, ws.keys);
    assert.equal(payload.receipt_id, meta.receipt_id);
    assert.equal(payload.action, 'email.send');
    assert.equal(payload.decision, 'allow');
    assert.deepEqual(payload.context, { recipient_domain: 'example.com' }, 'only what checkInputFn gave');
    // The tool's own _meta is kept beside the guard's.
    assert.equal(result._meta['example.com/message-id'], 'msg_1');
  });

  test('confirm: a tool error with the nonce, the tool does not run; once approved the next call runs', async () => {
    const { client, ran } = await guardedServer(options);
    const call = () => client.callTool({ name: 'email.send', arguments: { to: 'carol@partner.org' } });
    const first = await call();
    const payload = payloadOf(first);
    assert.deepEqual(Object.keys(payload).sort(), [
      'confirm_expires_at',
      'confirm_nonce',
      'confirm_prompt_hint',
      'decision',
      'reason',
    ]);
    assert.equal(payload.decision, 'confirm');
    assert.match(payload.confirm_nonce, /^cnf_nonce_/);
    assert.equal(ran['email.send'], undefined);
    assert.equal(first._meta.allowly.decision, 'confirm');
    await verify(first._meta.allowly.receipt, ws.keys);

    await ws.allowly.confirmations.approve(payload.confirm_nonce);
    const second = await call();
    assert.equal(second.isError, undefined, JSON.stringify(second));
    assert.equal(ran['email.send'], 1);
    assert.equal(second._meta.allowly.decision, 'allow');
    assert.equal(second._meta.allowly.reason, 'user_confirmed');
  });

  test('escalate: the payload names the escalation and the approver', async () => {
    const { client, ran } = await guardedServer(options);
    const result = await client.callTool({ name: 'billing.refund', arguments: { order_id: 'o_1' } });
    const payload = payloadOf(result);
    assert.equal(payload.decision, 'escalate');
    assert.match(payload.escalation_id, /^esc_/);
    assert.equal(payload.escalation_to, 'member:finance_lead');
    assert.ok(payload.escalation_expires_at);
    assert.equal(ran['billing.refund'], undefined);
    const status = await ws.allowly.escalations.get(payload.escalation_id);
    assert.equal(status.status, 'pending');
  });

  test('deny: the payload is the decision and reason, with a signed deny receipt', async () => {
    const { client, ran } = await guardedServer(options);
    const result = await client.callTool({ name: 'files.delete', arguments: { path: '/etc/passwd' } });
    const payload = payloadOf(result);
    assert.deepEqual(payload, { decision: 'deny', reason: 'action_denied_by_policy' });
    assert.equal(ran['files.delete'], undefined);
    const receipt = await verify(result._meta.allowly.receipt, ws.keys);
    assert.equal(receipt.decision, 'deny');
  });

  test('an unknown user gets authorization_not_found and nothing is checked', async () => {
    const { client, ran } = await guardedServer(options, { userId: 'mallory' });
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.deepEqual(payloadOf(result), { decision: 'deny', reason: 'authorization_not_found' });
    assert.deepEqual(result._meta.allowly, {
      decision: 'deny',
      reason: 'authorization_not_found',
      receipt_id: null,
      receipt: null,
      is_fallback: false,
    });
    assert.equal(ran['email.send'], undefined);
  });

  test('without userIdFn every call is authorization_not_found (identity never comes from arguments)', async () => {
    const { client, ran } = await guardedServer({ allowly: ws.allowly, authorizationIdFn: () => ws.authorizationId });
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.equal(payloadOf(result).reason, 'authorization_not_found');
    assert.equal(ran['email.send'], undefined);
  });

  test('the host functions failing or answering junk end the call with the reference reasons', async () => {
    const cases = [
      [{ userIdFn: () => { throw new Error('session store down'); } }, 'authorization_unavailable'],
      [{ authorizationIdFn: async () => { throw new Error('db down'); } }, 'authorization_unavailable'],
      [{ checkInputFn: () => { throw new Error('no'); } }, 'check_input_unavailable'],
      [{ checkInputFn: () => 'email.send' }, 'check_input_invalid'],
      [{ checkInputFn: () => null }, 'check_input_invalid'],
      [{ checkInputFn: () => ({ action: 'email.send', recipient: 'x' }) }, 'check_input_invalid'],
      [{ checkInputFn: () => ({ action: '  ' }) }, 'check_action_invalid'],
      [{ checkInputFn: () => ({ context: 'not an object' }) }, 'invalid_request'],
    ];
    for (const [override, reason] of cases) {
      const { client, ran } = await guardedServer({ ...options, ...override });
      const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
      assert.equal(payloadOf(result).reason, reason, `${Object.values(override)[0]}`);
      assert.equal(ran['email.send'], undefined);
    }
  });

  test('tool arguments reach the check only through checkInputFn', async () => {
    // Without a mapping the recipient is unknown to the check: the external-recipient rule applies
    // as if it matched (a missing field never helps), so even an internal address is confirmed.
    const { client, ran } = await guardedServer({ ...options, checkInputFn: undefined });
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    const payload = payloadOf(result);
    assert.equal(payload.decision, 'confirm');
    assert.equal(payload.reason, 'context_field_missing');
    assert.equal(ran['email.send'], undefined);
  });

  test('checkInputFn mapping an argument to the resource is enforced by a resource_pattern guard', async () => {
    await ws.allowly.policies.create(readerPolicy);
    const { authorizationId } = await ws.allowly.authorizations.create({ userId: 'alice', policyId: 'reader' });
    const { client, ran } = await guardedServer({
      allowly: ws.allowly,
      userIdFn: userFromAuth,
      authorizationIdFn: () => authorizationId,
      checkInputFn: ({ arguments: args }) => ({ resource: `doc:${args.doc}` }),
    });
    const ok = await client.callTool({ name: 'docs.read', arguments: { doc: 'public/handbook' } });
    assert.equal(ok.isError, undefined, JSON.stringify(ok));
    assert.equal(ok.content[0].text, 'read public/handbook');
    const refused = await client.callTool({ name: 'docs.read', arguments: { doc: 'private/salaries' } });
    assert.deepEqual(payloadOf(refused), { decision: 'deny', reason: 'resource_not_allowed' });
    assert.equal(ran['docs.read'], 1);
    const receipt = await verify(refused._meta.allowly.receipt, ws.keys);
    assert.equal(receipt.resource, 'doc:private/salaries');
  });

  test('attaching before the tools are registered guards them too', async () => {
    const { client, ran } = await guardedServer(options, { attachFirst: true });
    const denied = await client.callTool({ name: 'files.delete', arguments: { path: '/tmp/x' } });
    assert.equal(payloadOf(denied).decision, 'deny');
    const allowed = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.equal(allowed._meta.allowly.decision, 'allow');
    assert.deepEqual(ran, { 'email.send': 1 });
  });

  test('a guard cannot be attached twice, nor built with options it cannot honour', () => {
    const server = new McpServer({ name: 'x', version: '1' });
    const guard = new AllowlyMCPMiddleware(options);
    guard.attach(server);
    assert.throws(() => guard.attach(server), InvalidRequestError);
    assert.throws(
      () => new AllowlyMCPMiddleware({ ...options, agentTokenFn: () => 'token' }),
      (err) => err instanceof InvalidRequestError && /agent identity tokens/.test(err.message),
    );
    assert.throws(() => new AllowlyMCPMiddleware({ ...options, authorizationIdFn: undefined }), InvalidRequestError);
    assert.throws(() => new AllowlyMCPMiddleware({ ...options, userIdfn: userFromAuth }), /userIdfn/);
    assert.throws(() => new AllowlyMCPMiddleware({ ...options, apiKey: 'k', baseUrl: 'http://127.0.0.1:1' }), /not both/);
  });
});

describe('MCP guard, low-level Server', () => {
  let ws;
  before(async () => {
    ws = await workspace();
  });

  for (const order of ['before', 'after']) {
    test(`a tools/call handler installed ${order} attach is guarded`, async () => {
      let runs = 0;
      const server = new Server({ name: 'low-level', version: '1.0.0' }, { capabilities: { tools: {} } });
      const guard = new AllowlyMCPMiddleware({
        allowly: ws.allowly,
        userIdFn: userFromAuth,
        authorizationIdFn: () => ws.authorizationId,
      });
      const install = () => {
        server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [] }));
        server.setRequestHandler(CallToolRequestSchema, () => {
          runs += 1;
          return { content: [{ type: 'text', text: 'ran' }] };
        });
      };
      if (order === 'before') install();
      guard.attach(server);
      if (order === 'after') install();
      const { client } = await connect(server);
      const denied = await client.callTool({ name: 'files.delete', arguments: {} });
      assert.equal(payloadOf(denied).decision, 'deny');
      const escalated = await client.callTool({ name: 'billing.refund', arguments: {} });
      assert.equal(payloadOf(escalated).decision, 'escalate');
      assert.equal(runs, 0);
      // Neither the list handler nor any other method is touched.
      assert.deepEqual((await client.listTools()).tools, []);
    });
  }
});

describe('MCP guard on the 2.x packages (@modelcontextprotocol/server and client)', () => {
  for (const attachFirst of [false, true]) {
    test(`allow and deny, attached ${attachFirst ? 'before' : 'after'} the tools are registered`, async () => {
      const ws = await workspace();
      let runs = 0;
      const server = new McpServerV2({ name: 'v2', version: '1.0.0' });
      const guard = new AllowlyMCPMiddleware({
        allowly: ws.allowly,
        userIdFn: () => 'alice',
        authorizationIdFn: () => ws.authorizationId,
        checkInputFn: emailDomain,
      });
      if (attachFirst) guard.attach(server);
      const tool = (text) => async () => {
        runs += 1;
        return { content: [{ type: 'text', text }] };
      };
      server.registerTool('email.send', { inputSchema: z4.object({ to: z4.string() }) }, tool('sent'));
      server.registerTool('files.delete', { inputSchema: z4.object({ path: z4.string() }) }, tool('deleted'));
      if (!attachFirst) guard.attach(server);
      const [clientTransport, serverTransport] = InMemoryTransportV2.createLinkedPair();
      await server.connect(serverTransport);
      const client = new ClientV2({ name: 'v2-client', version: '1.0.0' });
      await client.connect(clientTransport);

      const allowed = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
      assert.equal(allowed.content[0].text, 'sent');
      await verify(allowed._meta.allowly.receipt, trustOf(await ws.allowly.keyDocument()));
      const denied = await client.callTool({ name: 'files.delete', arguments: { path: '/etc' } });
      assert.deepEqual(payloadOf(denied), { decision: 'deny', reason: 'action_denied_by_policy' });
      assert.equal(runs, 1);
      await client.close();
    });
  }
});

describe('MCP guard, confirmation in the conversation (elicitation)', () => {
  let ws;
  let options;
  before(async () => {
    ws = await workspace();
    options = { ...aliceOptions(ws), elicitConfirmation: true };
  });
  // Each case writes to its own domain: an answer covers the later checks with the same recipient domain.

  test('the user accepts: approved with a resolution receipt, checked again, the tool runs', async () => {
    const { client, ran, elicitations } = await guardedServer(options, { elicit: () => ({ action: 'accept', content: {} }) });
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'dan@accepted.net' } });
    assert.equal(result.isError, undefined, JSON.stringify(result));
    assert.equal(ran['email.send'], 1);
    assert.equal(elicitations.length, 1);
    assert.equal(elicitations[0].message, 'Allow email.send? {"to":"dan@accepted.net"}');
    const meta = result._meta.allowly;
    assert.equal(meta.decision, 'allow');
    assert.equal(meta.reason, 'user_confirmed');
    assert.equal(meta.confirmation.approved, true);
    const resolution = await ws.allowly.receipts.get(meta.confirmation.receipt_id);
    const payload = await verify(resolution, ws.keys);
    assert.equal(payload.event, 'confirmation.resolve');
  });

  for (const [action, word] of [
    ['decline', 'declined'],
    ['cancel', 'cancelled'],
  ]) {
    test(`the user answers ${action}: rejected with a resolution receipt, the tool does not run`, async () => {
      const { client, ran } = await guardedServer(options, { elicit: () => ({ action }) });
      const result = await client.callTool({ name: 'email.send', arguments: { to: `dan@${word}.net` } });
      const payload = payloadOf(result);
      assert.equal(payload.decision, 'confirm');
      assert.equal(payload.confirmation, word);
      assert.equal(ran['email.send'], undefined);
      const { confirmation } = result._meta.allowly;
      assert.equal(confirmation.approved, false);
      const receipt = await verify(await ws.allowly.receipts.get(confirmation.receipt_id), ws.keys);
      assert.equal(receipt.event, 'confirmation.resolve');
    });
  }

  test('a client without the capability gets the confirm tool error', async () => {
    const { client, ran } = await guardedServer(options);
    const payload = payloadOf(await client.callTool({ name: 'email.send', arguments: { to: 'dan@no-capability.net' } }));
    assert.equal(payload.decision, 'confirm');
    assert.match(payload.confirm_nonce, /^cnf_nonce_/);
    assert.equal(ran['email.send'], undefined);
  });

  test('an elicitation that fails leaves the nonce pending and the tool not run', async () => {
    const { client, ran } = await guardedServer(options, {
      elicit: () => {
        throw new Error('the user closed the window');
      },
    });
    const payload = payloadOf(await client.callTool({ name: 'email.send', arguments: { to: 'dan@failed-elicitation.net' } }));
    assert.equal(payload.decision, 'confirm');
    assert.equal(ran['email.send'], undefined);
    await ws.allowly.confirmations.approve(payload.confirm_nonce);
  });
});

describe('MCP guard against allowly serve', () => {
  let srv;
  let authorizationId;
  let silent;
  let silentPort;
  const sockets = new Set();
  before(async () => {
    srv = await startServer();
    const setup = new Allowly({ apiKey: srv.setupKey, baseUrl: srv.baseUrl });
    await setup.policies.create(examplePolicy());
    ({ authorizationId } = await setup.authorizations.create({ userId: 'alice', policyId: 'mcp_assistant' }));
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    silentPort = await new Promise((resolve) => silent.listen(0, '127.0.0.1', () => resolve(silent.address().port)));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    silent.close();
    await srv.stop();
  });

  test('apiKey + baseUrl, as the public middleware takes them', async () => {
    const { client, ran } = await guardedServer({
      apiKey: srv.runtimeKey,
      baseUrl: srv.baseUrl,
      userIdFn: userFromAuth,
      authorizationIdFn: () => authorizationId,
      checkInputFn: emailDomain,
    });
    const allowed = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.equal(allowed._meta.allowly.decision, 'allow');
    const keys = trustOf(
      await new Allowly({ apiKey: srv.runtimeKey, baseUrl: srv.baseUrl }).keyDocument({ workspaceId: srv.workspaceId }),
    );
    await verify(allowed._meta.allowly.receipt, keys);
    assert.equal(payloadOf(await client.callTool({ name: 'files.delete', arguments: { path: 'x' } })).decision, 'deny');
    assert.equal(ran['email.send'], 1);
  });

  test('a silent runtime: fallback deny within the check timeout + 100 ms, the tool not run', async () => {
    const checkTimeoutMs = 300;
    const { client, ran } = await guardedServer({
      apiKey: srv.runtimeKey,
      baseUrl: `http://127.0.0.1:${silentPort}`,
      checkTimeoutMs,
      userIdFn: userFromAuth,
      authorizationIdFn: () => authorizationId,
    });
    const started = performance.now();
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    const elapsed = performance.now() - started;
    assert.deepEqual(payloadOf(result), { decision: 'deny', reason: 'fallback_closed_timeout' });
    assert.deepEqual(result._meta.allowly, {
      decision: 'deny',
      reason: 'fallback_closed_timeout',
      receipt_id: null,
      receipt: null,
      is_fallback: true,
    });
    assert.equal(ran['email.send'], undefined);
    assert.ok(elapsed >= checkTimeoutMs - 5 && elapsed <= checkTimeoutMs + 100, `answered in ${elapsed.toFixed(1)} ms`);
  });

  test('a fallback never runs the tool, even for an action mapped to fail_open', async () => {
    const ran = {};
    const server = new McpServer({ name: 'fail-open', version: '1.0.0' });
    registerTools(server, ran);
    new AllowlyMCPMiddleware({
      allowly: new Allowly({
        apiKey: srv.runtimeKey,
        baseUrl: `http://127.0.0.1:${silentPort}`,
        checkTimeoutMs: 200,
        fallbackByAction: { 'email.send': 'fail_open' },
      }),
      userIdFn: userFromAuth,
      authorizationIdFn: () => authorizationId,
    }).attach(server);
    const { client } = await connect(server);
    const result = await client.callTool({ name: 'email.send', arguments: { to: 'bob@example.com' } });
    assert.deepEqual(payloadOf(result), { decision: 'deny', reason: 'fallback_open_timeout' });
    assert.equal(ran['email.send'], undefined);
  });
});

describe('the stdio example (examples/mcp), spawned as an MCP host does', () => {
  const exampleDir = path.join(root, 'examples/mcp');
  let home;
  let client;
  const outbox = () => {
    const file = path.join(home, 'outbox.jsonl');
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
  };
  before(async () => {
    assert.ok(
      fs.existsSync(path.join(exampleDir, 'dist/server.js')),
      'examples/mcp/dist/server.js is missing: scripts/node-test.sh builds it (npm install, tsc)',
    );
    home = tempHome('allowly-mcp-example-');
    client = new Client({ name: 'desktop-assistant', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: [path.join(exampleDir, 'dist/server.js')],
        env: { ...process.env, ALLOWLY_HOME: home, ALLOWLY_MCP_USER: 'alice' },
        stderr: 'inherit',
      }),
    );
  });
  after(async () => {
    await client?.close();
  });

  test('lists the three tools', async () => {
    const names = (await client.listTools()).tools.map((tool) => tool.name).sort();
    assert.deepEqual(names, ['billing.refund', 'email.send', 'files.delete']);
  });

  test('allow, confirm, approve out of band, escalate, deny', async () => {
    const keys = trustOf(await Allowly.embedded({ home }).keyDocument());
    const inside = await client.callTool({
      name: 'email.send',
      arguments: { to: 'bob@example.com', subject: 'hi', body: 'lunch?' },
    });
    assert.equal(inside.isError, undefined, JSON.stringify(inside));
    await verify(inside._meta.allowly.receipt, keys);
    assert.equal(outbox().length, 1);

    const outside = { name: 'email.send', arguments: { to: 'carol@partner.org', subject: 'offer', body: '...' } };
    const asked = payloadOf(await client.callTool(outside));
    assert.equal(asked.decision, 'confirm');
    assert.equal(outbox().length, 1, 'not sent before the user says yes');
    // The user approves elsewhere (here the CLI on the same workspace, as a person would).
    const approve = spawnSync(
      process.env.ALLOWLY_BIN ?? path.join(root, 'target/release/allowly'),
      ['--home', home, 'confirmations', 'approve', asked.confirm_nonce],
      { encoding: 'utf8' },
    );
    assert.equal(approve.status, 0, approve.stderr);
    const sent = await client.callTool(outside);
    assert.equal(sent.isError, undefined, JSON.stringify(sent));
    assert.equal(outbox().length, 2);
    assert.deepEqual(JSON.parse(outbox()[1]), { tool: 'email.send', ...outside.arguments });

    const refund = payloadOf(await client.callTool({ name: 'billing.refund', arguments: { order_id: 'o_7', amount_cents: 1200 } }));
    assert.equal(refund.decision, 'escalate');
    assert.equal(refund.escalation_to, 'member:finance_lead');
    const deleted = payloadOf(await client.callTool({ name: 'files.delete', arguments: { path: '/home/alice/notes' } }));
    assert.deepEqual(deleted, { decision: 'deny', reason: 'action_denied_by_policy' });
    const receipt = await verify((await client.callTool({ name: 'files.delete', arguments: { path: 'x' } }))._meta.allowly.receipt, keys);
    assert.equal(receipt.resource, 'file:x');
  });
});
