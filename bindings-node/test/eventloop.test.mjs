// Engine work runs off the event loop: a 10 ms timer keeps ticking during 10,000 embedded checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Allowly } from '../index.js';
import { openPolicy, tempHome } from './helpers.mjs';

test('a 10 ms timer never stalls more than 50 ms during 10,000 embedded checks', async () => {
  const client = Allowly.embedded({ home: tempHome() });
  await client.policies.create(openPolicy());
  const { authorizationId } = await client.authorizations.create({ userId: 'user_1', bundleId: 'bench_agent' });

  let last = performance.now();
  let worstGap = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - last);
    last = now;
    ticks += 1;
  }, 10);

  const total = 10_000;
  const concurrency = 32;
  let next = 0;
  let allowed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const answer = await client.check({
          authorizationId,
          actions: ['search.web'],
          context: { query: 'weather' },
        });
        if (answer.results['search.web'].decision === 'allow') allowed += 1;
      }
    }),
  );
  const elapsed = performance.now() - started;
  clearInterval(timer);

  assert.equal(allowed, total);
  assert.ok(ticks >= Math.floor(elapsed / 10) / 2, `only ${ticks} ticks in ${Math.round(elapsed)} ms`);
  // The interval itself is 10 ms; a stall is the time beyond it.
  assert.ok(worstGap - 10 <= 50, `the event loop stalled ${Math.round(worstGap - 10)} ms`);
});
