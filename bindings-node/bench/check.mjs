// Benchmark of @allowly/sdk `check`: embedded throughput (SQLite home, signed receipt per check)
// and remote latency against one local `allowly serve`, beside the official Python client 0.8.0.
// Usage: node bench/check.mjs [--checks N] [--runs R] [--concurrency C] [--remote-checks N]
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Allowly } from '../index.js';
import { openPolicy, root, startServer, tempHome } from '../test/helpers.mjs';

const { values } = parseArgs({
  options: {
    checks: { type: 'string', default: '30000' },
    runs: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
    'remote-checks': { type: 'string', default: '2000' },
  },
});
const checks = Number(values.checks);
const runs = Number(values.runs);
const concurrency = Number(values.concurrency);
const remoteChecks = Number(values['remote-checks']);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
const params = (authorizationId) => ({ authorizationId, actions: ['search.web'], context: { query: 'weather' } });

async function setup(client) {
  await client.policies.create(openPolicy());
  const { authorizationId } = await client.authorizations.create({ userId: 'user_bench', bundleId: 'bench_agent' });
  return authorizationId;
}

async function throughput(client, authorizationId, n, c) {
  let next = 0;
  let signed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < n) {
        next += 1;
        const r = (await client.check(params(authorizationId))).results['search.web'];
        if (r.decision === 'allow' && r.receipt?.status === 'signed') signed += 1;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (signed !== n) throw new Error(`only ${signed} of ${n} checks were signed allows`);
  return n / seconds;
}

async function latencies(client, authorizationId, n) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await client.check(params(authorizationId));
    samples.push(performance.now() - started);
  }
  return samples;
}

const fmt = (x) => x.toFixed(3);
console.log(`node ${process.version}, ${(await import('node:os')).cpus().length} CPUs, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' ')}`);

// Embedded: one SQLite workspace, `runs` runs of `checks` checks, `concurrency` in flight.
const embedded = Allowly.embedded({ home: tempHome('allowly-bench-') });
const authId = await setup(embedded);
await throughput(embedded, authId, 2000, concurrency); // warm-up
const rates = [];
const cpuBefore = process.cpuUsage();
for (let r = 0; r < runs; r++) rates.push(await throughput(embedded, authId, checks, concurrency));
const cpu = process.cpuUsage(cpuBefore);
const cpuPerCheck = (cpu.user + cpu.system) / (runs * checks);
const seq = await latencies(embedded, authId, 2000);
console.log(`\nembedded check (SQLite home, signed receipt each), ${runs} runs × ${checks} checks, ${concurrency} in flight`);
console.log(`  checks/s  median ${Math.round(median(rates))}  (runs: ${rates.map(Math.round).join(', ')})  target ≥ 15000`);
console.log(`  process CPU per check (all threads): ${cpuPerCheck.toFixed(1)} µs`);
console.log(`  one at a time: median ${fmt(median(seq))} ms, p99 ${fmt(pct(seq, 0.99))} ms`);

// Remote: one local server, sequential checks.
const server = await startServer();
try {
  const common = { baseUrl: server.baseUrl, workspaceId: server.workspaceId };
  const setupClient = new Allowly({ apiKey: server.setupKey, ...common });
  const runtime = new Allowly({ apiKey: server.runtimeKey, ...common });
  await setupClient.policies.create(openPolicy());
  const { authorizationId } = await runtime.authorizations.create({ userId: 'user_bench', bundleId: 'bench_agent' });
  await latencies(runtime, authorizationId, 200);
  const node = await latencies(runtime, authorizationId, remoteChecks);
  // The same script drives both Python clients (this project's SDK keeps the official names).
  const pythonClients = [
    ['official Python allowly 0.8.0', 'target/venv-official', 'run scripts/server-test.sh once'],
    ['Python SDK (bindings-python)', 'target/venv-python', 'run scripts/python-test.sh once'],
  ];
  const python = [];
  for (const [name, venv, hint] of pythonClients) {
    const interpreter = path.join(root, venv, 'bin/python');
    if (!fs.existsSync(interpreter)) {
      python.push([name, null, hint]);
      continue;
    }
    const { stdout } = await promisify(execFile)(
      interpreter,
      [
        path.join(root, 'bindings-node/bench/python_client_latency.py'),
        server.baseUrl,
        server.runtimeKey,
        authorizationId,
        String(remoteChecks),
      ],
      { encoding: 'utf8' },
    );
    python.push([name, JSON.parse(stdout), hint]);
  }
  console.log(`\nremote check latency against one local allowly serve, ${remoteChecks} sequential checks (ms)`);
  console.log('  client                          median    p95      p99');
  const row = (name, m, p95, p99) => console.log(`  ${name.padEnd(30)}  ${fmt(m).padStart(7)}  ${fmt(p95).padStart(7)}  ${fmt(p99).padStart(7)}`);
  row('@allowly/sdk (this package)', median(node), pct(node, 0.95), pct(node, 0.99));
  for (const [name, measured, hint] of python) {
    if (!measured) {
      console.log(`  ${name.padEnd(30)}  (missing: ${hint})`);
      continue;
    }
    row(name, measured.median_ms, measured.p95_ms, measured.p99_ms);
    if (measured.fallbacks) console.log(`  (${name} answered ${measured.fallbacks} checks by its local fallback)`);
  }
} finally {
  await server.stop();
}
