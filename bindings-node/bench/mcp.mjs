// Benchmark of the MCP guard (@allowly/sdk/mcp): one MCP tool call round trip (a Client and an
// McpServer of @modelcontextprotocol/sdk over InMemoryTransport), with and without the guard, on
// the embedded engine (a SQLite home: every guarded call signs and stores its receipt).
// Calls are sequential; the two servers take turns in rounds so machine noise hits both alike.
// Usage: node bench/mcp.mjs [--calls N] [--rounds R]
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

import { Allowly } from '../index.js';
import { AllowlyMCPMiddleware } from '../mcp.js';
import { openPolicy, tempHome } from '../test/helpers.mjs';

const { values } = parseArgs({
  options: { calls: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '10' } },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

async function connectedClient(guard) {
  const server = new McpServer({ name: 'bench', version: '1.0.0' });
  server.registerTool('search.web', { inputSchema: { query: z.string() } }, async ({ query }) => ({
    content: [{ type: 'text', text: `results for ${query}` }],
  }));
  guard?.attach(server);
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await server.connect(serverTransport);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(clientTransport);
  return client;
}

async function timeCalls(client, n, into) {
  const request = { name: 'search.web', arguments: { query: 'weather' } };
  for (let i = 0; i < n; i += 1) {
    const started = process.hrtime.bigint();
    const result = await client.callTool(request);
    into.push(Number(process.hrtime.bigint() - started) / 1000);
    if (result.isError) throw new Error(`the call was refused: ${result.content[0].text}`);
  }
}

const allowly = Allowly.embedded({ home: tempHome('allowly-mcp-bench-') });
await allowly.policies.create(openPolicy());
const { authorizationId } = await allowly.authorizations.create({ userId: 'user_bench', policyId: 'bench_agent' });
const guard = new AllowlyMCPMiddleware({
  allowly,
  userIdFn: () => 'user_bench',
  authorizationIdFn: () => authorizationId,
  checkInputFn: ({ arguments: args }) => ({ context: { query: args.query } }),
});
const plain = await connectedClient(null);
const guarded = await connectedClient(guard);

// Warm-up (JIT, SQLite pages), then the measured rounds.
await timeCalls(plain, 500, []);
await timeCalls(guarded, 500, []);
const without = [];
const withGuard = [];
const perRound = Math.ceil(calls / rounds);
for (let round = 0; round < rounds; round += 1) {
  await timeCalls(plain, perRound, without);
  await timeCalls(guarded, perRound, withGuard);
}
without.sort((a, b) => a - b);
withGuard.sort((a, b) => a - b);

const row = (name, xs) =>
  `${name.padEnd(24)} ${pct(xs, 0.5).toFixed(1).padStart(9)} ${pct(xs, 0.99).toFixed(1).padStart(9)}`;
console.log(`MCP tool call round trip, ${without.length} calls each (µs)`);
console.log(`${''.padEnd(24)} ${'p50'.padStart(9)} ${'p99'.padStart(9)}`);
console.log(row('without the guard', without));
console.log(row('with the guard', withGuard));
console.log(
  `${'added by the guard'.padEnd(24)} ${(pct(withGuard, 0.5) - pct(without, 0.5)).toFixed(1).padStart(9)} ${(
    pct(withGuard, 0.99) - pct(without, 0.99)
  ).toFixed(1).padStart(9)}`,
);
