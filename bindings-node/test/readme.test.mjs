// The README's "Node SDK" program runs as the README says: saved as app.mjs in an empty folder
// outside the repository, whose node_modules/@allowly/sdk links to this package (the link that
// `npm install /path/to/allowly/bindings-node` makes; the addon is the one scripts/node-test.sh
// built), and run there as `node app.mjs`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { root, tempHome } from './helpers.mjs';

function readmeProgram() {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const match = /<!-- node-sdk:begin -->\n```js\n([\s\S]*?)```\n<!-- node-sdk:end -->/.exec(readme);
  assert.ok(match, 'no node-sdk block in README.md');
  assert.match(readme, /\nnpm install \/path\/to\/allowly\/bindings-node\nnode app\.mjs\n/, 'the README no longer says how to install and run app.mjs');
  return match[1];
}

test('README: the Node SDK program runs as `node app.mjs` in an empty folder', () => {
  const dir = tempHome('allowly-readme-');
  assert.ok(path.relative(root, dir).startsWith('..'), 'the folder is outside the repository');
  fs.writeFileSync(path.join(dir, 'app.mjs'), readmeProgram());
  fs.mkdirSync(path.join(dir, 'node_modules/@allowly'), { recursive: true });
  fs.symlinkSync(path.join(root, 'bindings-node'), path.join(dir, 'node_modules/@allowly/sdk'), 'dir');
  const env = { ...process.env };
  delete env.ALLOWLY_HOME;
  delete env.NODE_PATH;
  // Twice: a second run reuses ./.allowly (the policy is no new edition, the authorization is new).
  for (const run of [1, 2]) {
    const out = execFileSync(process.execPath, ['app.mjs'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['confirm condition_requires_user_confirmation', 'allow user_confirmed'], `run ${run}: ${out}`);
    assert.match(lines[2], /^verified rcp_[0-9A-Z]+ allow$/, `run ${run}: ${out}`);
    assert.equal(lines.length, 3, `run ${run}: ${out}`);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), ['.allowly', 'app.mjs', 'node_modules']);
});
