// A list call that names no page size gets the same page everywhere: the HTTP API's 100 (the SDK
// once defaulted to 50, so a caller reading one page saw half of what Python and the server showed).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Allowly } from '../index.js';
import { examplePolicy, tempHome } from './helpers.mjs';

test('authorizations.list() without a limit answers a page of 100', async () => {
  const client = Allowly.embedded({ home: tempHome() });
  await client.policies.create(examplePolicy());
  for (let i = 0; i < 120; i += 1) {
    await client.authorizations.create({ userId: `user_${i}`, bundleId: 'support_agent' });
  }
  const first = await client.authorizations.list();
  assert.equal(first.items.length, 100);
  assert.equal(first.hasMore, true);
  const rest = await client.authorizations.list({ cursor: first.nextCursor });
  assert.equal(rest.items.length, 20);
  assert.equal(rest.hasMore, false);
});
