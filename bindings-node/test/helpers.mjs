// Test helpers: temporary homes, the shared quickstart scenario, and an `allowly serve` process.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const allowlyBin = process.env.ALLOWLY_BIN ?? path.join(root, 'target/release/allowly');

// Every folder tempHome() makes and every server startServer() starts, removed and stopped when the
// test process exits (each test file runs in its own process), whether or not the test stopped it.
const tempDirs = [];
const servers = new Set();
process.on('exit', () => {
  for (const child of servers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the system's temporary folder, removed when the test process exits. */
export function tempHome(prefix = 'allowly-node-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** The example policy file as the `policies.create` arguments. */
export function examplePolicy(file = 'examples/policies/support-agent.json') {
  const { policy_id: policyId, description, ...definition } = JSON.parse(
    fs.readFileSync(path.join(root, file), 'utf8'),
  );
  return { policyId, description, definition };
}

export function loadScenario() {
  return JSON.parse(fs.readFileSync(path.join(root, 'tests/scenarios/quickstart.json'), 'utf8'));
}

const camel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
/** The scenario's snake_case expectation objects in the SDK's camelCase. */
export function camelKeys(value) {
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [camel(k), camelKeys(v)]));
}

/**
 * Runs tests/scenarios/quickstart.json on `client` (a fresh workspace): publishes the policy (with
 * `setup`, the client holding the setup credential; defaults to `client`), authorizes, runs every
 * step. Returns `{ outcomes, receipts }`: per check step, `{id, results}` with each action's
 * decision/reason/budget, and every signed receipt seen.
 */
export async function runScenario(client, setup = client) {
  const scenario = loadScenario();
  await setup.policies.create(examplePolicy(scenario.policy_file));
  const a = scenario.authorization;
  const created = await client.authorizations.create({
    userId: a.user_id,
    policyId: a.policy_id,
    budgetLimitMicros: a.budget_limit_micros,
    expiresAt: new Date(Date.now() + a.expires_in_seconds * 1000),
  });
  const authorizationId = created.authorizationId;
  const receipts = [created.receipt];
  const answers = new Map();
  const outcomes = [];
  for (const step of scenario.steps) {
    const of = step.of && answers.get(step.of).results[step.action];
    switch (step.op) {
      case 'check': {
        const answer = await client.check({
          authorizationId,
          actions: step.actions,
          context: step.context,
          estimatedCostMicros: step.estimated_cost_micros,
        });
        answers.set(step.id, answer);
        const results = {};
        for (const [action, result] of Object.entries(answer.results)) {
          results[action] = { decision: result.decision, reason: result.reason, budget: result.budget };
          receipts.push(result.receipt);
        }
        outcomes.push({ id: step.id, expect: step.expect, results });
        break;
      }
      case 'approve_confirmation':
        receipts.push((await client.confirmations.approve(of.confirmNonce, { ttlSeconds: step.ttl_seconds })).receipt);
        break;
      case 'approve_escalation':
        receipts.push((await client.escalations.approve(of.escalationId, { resolvedBy: step.resolved_by })).receipt);
        break;
      case 'settle':
        receipts.push(
          (
            await client.settleBudget({
              checkReceiptId: of.receiptId ?? receiptId(of.receipt),
              actualCostMicros: step.actual_cost_micros,
            })
          ).receipt,
        );
        break;
      case 'revoke':
        receipts.push((await client.authorizations.revoke(authorizationId)).receipt);
        break;
      default:
        throw new Error(`unknown scenario op ${step.op}`);
    }
  }
  return { authorizationId, outcomes, receipts };
}

/** The receipt id inside a signed envelope (decoded for display; verification is the core's). */
export function receiptId(envelope) {
  if (envelope.status !== 'signed') return envelope.receiptId;
  return JSON.parse(Buffer.from(envelope.receipt.payload, 'base64url').toString('utf8')).receipt_id;
}

/** Checks each outcome against the scenario's expectations; returns a list of mismatches. */
export function mismatches(outcomes) {
  const out = [];
  for (const { id, expect, results } of outcomes) {
    for (const [action, want] of Object.entries(expect)) {
      const got = results[action];
      if (!got) {
        out.push(`${id}: no result for ${action}`);
        continue;
      }
      if (got.decision !== want.decision || got.reason !== want.reason) {
        out.push(`${id}: ${action} got ${got.decision}/${got.reason}, want ${want.decision}/${want.reason}`);
      }
      if (want.budget !== undefined && JSON.stringify(got.budget) !== JSON.stringify(camelKeys(want.budget))) {
        out.push(`${id}: ${action} budget ${JSON.stringify(got.budget)}, want ${JSON.stringify(want.budget)}`);
      }
    }
  }
  return out;
}

/** Starts `allowly serve` on a fresh home; resolves with its URL, keys and a stop function. */
export async function startServer(home = tempHome('allowly-serve-')) {
  if (!fs.existsSync(allowlyBin)) throw new Error(`${allowlyBin} is missing: run scripts/node-test.sh`);
  // The server's log goes to a file: a pipe that nobody drains (while the test process waits on
  // something synchronous) would fill up and block the server.
  const logPath = path.join(home, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const child = spawn(allowlyBin, ['--home', home, 'serve', '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', log],
  });
  fs.closeSync(log);
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  let out = '';
  const err = () => fs.readFileSync(logPath, 'utf8').slice(-2000);
  const ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start: ${err()}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      const url = /listening on (http:\/\/[0-9.:]+)/.exec(out);
      const setup = /(allowly\.setup\.\S+)/.exec(out);
      const runtime = /(allowly\.runtime\.\S+)/.exec(out);
      const ws = /workspace (ws_[0-9A-Za-z]+)/.exec(out);
      if (url && setup && runtime && ws) {
        clearTimeout(timer);
        resolve({ baseUrl: url[1], setupKey: setup[1], runtimeKey: runtime[1], workspaceId: ws[1] });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited ${code}: ${err()}`)));
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { ...ready, home, stop };
}

/** A policy whose one action is allowed without caps (load tests and benchmarks). */
export function openPolicy(policyId = 'bench_agent') {
  return {
    policyId,
    description: 'load tests: one allowed action, no caps',
    definition: {
      profile: 'allowly.policy.v1',
      agent_id: 'bench_bot',
      default_expiry_days: 30,
      actions: [
        {
          policy: {
            profile: 'allowly.basic.v1',
            action: 'search.web',
            decision: 'allow',
            target: null,
            fields: { query: 'string' },
            rules: [],
          },
          guards: {},
          executable_operations: [],
        },
      ],
    },
  };
}
