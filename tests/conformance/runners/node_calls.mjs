// Conformance runner of the Node SDK (@allowly/sdk, bindings-node/): a line protocol for the
// driver of tests/conformance/.
//
//   node node_calls.mjs embedded <home_dir>
//   node node_calls.mjs remote <base_url> <api_key> <workspace_id>
//
// Reads one JSON object per line on stdin, `{"op": "<catalog name>", "args": {...}}` (`args` as the
// HTTP API's JSON merged, plus `idempotency_key`; absent means `{}`), runs it with the SDK's generic
// operation call (`Allowly.call`: the wire's arguments in, the wire's answer out) on the embedded
// workspace at <home_dir> or on the runtime at <base_url>, and writes one JSON line per line read on
// stdout, in order:
//
//   {"ok": <the answer's JSON, exactly the HTTP answer body; null for the 204 operations>}
//   {"error": {"kind": "<core's error kind>", "code": "<stable code>", "status": <number or null>,
//              "class": "<JS error class name>"}}
//
// `{"op": "__catalog__"}` answers `{"ok": <the catalog, a JSON array>}`. Blank lines are skipped;
// the runner exits at the end of its input. Nothing else is written on stdout (diagnostics go to
// stderr).
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = await import(path.resolve(here, '../../../bindings-node/index.js'));

function usage() {
  process.stderr.write(
    'usage: node node_calls.mjs embedded <home_dir>\n' +
      '       node node_calls.mjs remote <base_url> <api_key> <workspace_id>\n',
  );
  process.exit(2);
}

function open(argv) {
  const [mode, ...rest] = argv;
  if (mode === 'embedded' && rest.length === 1) return sdk.Allowly.embedded({ home: rest[0] });
  if (mode === 'remote' && rest.length === 3) {
    const [baseUrl, apiKey, workspaceId] = rest;
    // The runtime of a conformance run listens on 127.0.0.1 over plain HTTP.
    return new sdk.Allowly({ baseUrl, apiKey, workspaceId, dangerouslyAllowInsecureBaseUrl: true });
  }
  return usage();
}

function errorLine(kind, code, status, cls) {
  return { error: { kind, code, status, class: cls } };
}

async function answer(client, line) {
  let request;
  try {
    request = JSON.parse(line);
    if (request === null || typeof request !== 'object' || typeof request.op !== 'string') {
      throw new TypeError('a request line is {"op": "<operation>", "args": {...}}');
    }
    const args = request.args ?? {};
    if (args === null || typeof args !== 'object' || Array.isArray(args)) throw new TypeError('`args` must be a JSON object');
  } catch (err) {
    process.stderr.write(`node_calls: ${err.message}\n`);
    return errorLine('invalid_request', 'invalid_line', null, err.constructor.name);
  }
  if (request.op === '__catalog__') return { ok: sdk.CATALOG };
  try {
    return { ok: await client.call(request.op, request.args ?? {}) };
  } catch (err) {
    if (err instanceof sdk.AllowlyError) return errorLine(err.kind, err.code, err.status ?? null, err.constructor.name);
    // A bug of the SDK: reported on the line, the run goes on.
    process.stderr.write(`node_calls: ${request.op}: ${err?.stack ?? err}\n`);
    return errorLine('internal', 'node_exception', null, err?.constructor?.name ?? typeof err);
  }
}

let client;
try {
  client = open(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`cannot open the ${process.argv[2]} workspace: ${err?.message ?? err}\n`);
  process.exit(1);
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
for await (const line of lines) {
  if (line.trim() === '') continue;
  const out = JSON.stringify(await answer(client, line));
  if (!process.stdout.write(`${out}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}
