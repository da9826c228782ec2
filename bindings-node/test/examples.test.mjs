// The product-page samples (examples/product-page.ts), compiled with tsc against index.d.ts and
// run as written: authorizeAgent, then sendEmail taking each of its four branches.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { root, tempHome } from './helpers.mjs';

const pkg = path.join(root, 'bindings-node');
const tsc = path.join(pkg, 'node_modules/.bin/tsc');

test('product page samples: authorizeAgent and the four branches of sendEmail', { skip: !fs.existsSync(tsc) && 'typescript is not installed (npm install)' }, () => {
  execFileSync(tsc, ['-p', path.join(pkg, 'tsconfig.examples.json')], { cwd: pkg, stdio: 'inherit' });
  const out = execFileSync(process.execPath, [path.join(pkg, '.examples-build/product-page.js')], {
    cwd: pkg,
    env: { ...process.env, ALLOWLY_HOME: tempHome() },
    encoding: 'utf8',
  });
  const steps = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .map((s) => [s.step, s]),
  );
  assert.match(steps.authorized.authorizationId, /^auth_/);
  assert.equal(steps.internal.status, 'sent');
  assert.equal(steps.external.status, 'needs_confirmation');
  assert.match(steps.external.confirmNonce, /^cnf_/);
  assert.equal(steps.bulk.status, 'waiting_for_approval');
  assert.equal(steps.bulk.approver, 'member:sales_manager');
  assert.equal(steps.competitor.status, 'blocked');
});
