// Remote mode when the runtime cannot answer: the local fail-closed (or mapped fail-open) fallback
// within checkTimeoutMs, no receipt, and typed errors for 4xx.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import {
  Allowly,
  AllowlyAPIError,
  AllowlyAuthError,
  AllowlyError,
  AllowlyNotFoundError,
  AllowlyRateLimitError,
  AllowlyTransportError,
  AllowlyValidationError,
} from '../index.js';
import { startServer } from './helpers.mjs';

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

describe('fallback', () => {
  let silent;
  let silentPort;
  const sockets = new Set();
  let statusServer;
  let statusPort;

  before(async () => {
    // Accepts connections and never answers.
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    silentPort = await listen(silent);
    // Answers every request with the status named in the path's first segment.
    statusServer = http.createServer((req, res) => {
      const status = Number(req.headers['x-test-status'] ?? /\/s(\d{3})/.exec(req.url)?.[1] ?? 500);
      res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(JSON.stringify({ error: { code: `test_${status}`, message: `status ${status}`, fields: [] } }));
    });
    statusPort = await listen(statusServer);
  });
  after(() => {
    for (const s of sockets) s.destroy();
    silent.close();
    statusServer.closeAllConnections();
    statusServer.close();
  });

  test('a socket that never answers: fail-closed deny within checkTimeoutMs + 100 ms', async () => {
    const client = new Allowly({ apiKey: 'k_test', baseUrl: `http://127.0.0.1:${silentPort}`, checkTimeoutMs: 300 });
    const started = performance.now();
    const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send', 'search.web'] });
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 300 + 100, `took ${elapsed} ms`);
    assert.equal(answer.engineVersion, 'sdk_fallback');
    assert.equal(answer.authorizationId, 'auth_x');
    for (const action of ['email.send', 'search.web']) {
      const r = answer.results[action];
      assert.equal(r.decision, 'deny');
      assert.equal(r.reason, 'fallback_closed_timeout');
      assert.equal(r.isFallback, true);
      assert.equal(r.fallbackMode, 'fail_closed');
      assert.equal(r.receipt, null);
    }
  });

  test('the default checkTimeoutMs is 1000 ms', async () => {
    const client = new Allowly({ apiKey: 'k_test', baseUrl: `http://127.0.0.1:${silentPort}` });
    const started = performance.now();
    const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send'] });
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 1000 + 100, `took ${elapsed} ms`);
    assert.equal(answer.results['email.send'].reason, 'fallback_closed_timeout');
  });

  test('fallbackByAction fail_open is honoured per action', async () => {
    const client = new Allowly({
      apiKey: 'k_test',
      baseUrl: `http://127.0.0.1:${silentPort}`,
      checkTimeoutMs: 200,
      fallbackByAction: { 'search.web': 'fail_open' },
    });
    const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send', 'search.web'] });
    assert.equal(answer.results['email.send'].decision, 'deny');
    assert.equal(answer.results['email.send'].reason, 'fallback_closed_timeout');
    assert.equal(answer.results['search.web'].decision, 'allow');
    assert.equal(answer.results['search.web'].reason, 'fallback_open_timeout');
    assert.equal(answer.results['search.web'].fallbackMode, 'fail_open');
    assert.equal(answer.results['search.web'].isFallback, true);
    assert.equal(answer.results['search.web'].receipt, null);
  });

  test('nothing listening: fallback_closed_unreachable', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    // Close it again so the port refuses connections.
    await new Promise((resolve) => probe.close(resolve));
    const client = new Allowly({ apiKey: 'k_test', baseUrl: `http://127.0.0.1:${port}`, checkTimeoutMs: 500 });
    const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send'] });
    assert.equal(answer.results['email.send'].isFallback, true);
    assert.equal(answer.results['email.send'].decision, 'deny');
    assert.equal(answer.results['email.send'].reason, 'fallback_closed_unreachable');
  });

  test('HTTP 5xx → fallback unreachable, 408 → fallback timeout', async () => {
    for (const [status, reason] of [
      [503, 'fallback_closed_unreachable'],
      [500, 'fallback_closed_unreachable'],
      [408, 'fallback_closed_timeout'],
    ]) {
      const client = new Allowly({ apiKey: 'k_test', baseUrl: `http://127.0.0.1:${statusPort}/s${status}` });
      const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send'] });
      assert.equal(answer.results['email.send'].reason, reason, `status ${status}`);
      assert.equal(answer.results['email.send'].decision, 'deny');
    }
  });

  test('4xx (429 included) throw typed errors with status, code and Retry-After', async () => {
    const cases = [
      [400, AllowlyValidationError],
      [401, AllowlyAuthError],
      [404, AllowlyNotFoundError],
      [422, AllowlyValidationError],
      [429, AllowlyRateLimitError],
    ];
    for (const [status, cls] of cases) {
      const client = new Allowly({ apiKey: 'k_test', baseUrl: `http://127.0.0.1:${statusPort}/s${status}` });
      await assert.rejects(
        client.check({ authorizationId: 'auth_x', actions: ['email.send'] }),
        (err) => {
          assert.ok(err instanceof cls, `${status}: ${err.name}`);
          assert.ok(err instanceof AllowlyAPIError && err instanceof AllowlyError && err instanceof Error);
          assert.equal(err.status, status);
          assert.equal(err.code, `test_${status}`);
          if (status === 429) assert.equal(err.retryAfterSeconds, 7);
          return true;
        },
      );
    }
  });

  test('other calls to an unreachable runtime throw AllowlyTransportError', async () => {
    const client = new Allowly({
      apiKey: 'k_test',
      baseUrl: `http://127.0.0.1:${silentPort}`,
      requestTimeoutMs: 200,
    });
    await assert.rejects(client.authorizations.list(), (err) => {
      assert.ok(err instanceof AllowlyTransportError, err.name);
      assert.equal(err.code, 'timeout');
      return true;
    });
  });

  describe('against allowly serve', () => {
    let server;
    before(async () => {
      server = await startServer();
    });
    after(async () => {
      await server?.stop();
    });

    test('a wrong API key is a typed 401, not a fallback', async () => {
      const client = new Allowly({ apiKey: 'allowly.runtime.nope', baseUrl: server.baseUrl });
      await assert.rejects(client.check({ authorizationId: 'auth_x', actions: ['email.send'] }), (err) => {
        assert.ok(err instanceof AllowlyAuthError, err.name);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_or_revoked_api_key');
        return true;
      });
    });

    test('invalid input is a typed 422 from the server, like the embedded engine', async () => {
      const client = new Allowly({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
      await assert.rejects(
        client.check({ authorizationId: 'auth_x', actions: ['email.send'], context: { amount: 1.5 } }),
        (err) => err instanceof AllowlyValidationError && err.status === 422,
      );
      const embedded = Allowly.inMemory();
      await assert.rejects(
        embedded.check({ authorizationId: 'auth_x', actions: ['email.send'], context: { amount: 1.5 } }),
        (err) => err instanceof AllowlyValidationError && err.status === 422 && err.code === 'invalid_request',
      );
    });

    test('a body over the server\'s limit is a typed 413 request_too_large, not a fallback', async () => {
      const client = new Allowly({ apiKey: server.runtimeKey, baseUrl: server.baseUrl });
      const context = { note: 'x'.repeat(100 * 1024) };
      for (let attempt = 0; attempt < 5; attempt += 1) {
        await assert.rejects(client.check({ authorizationId: 'auth_x', actions: ['email.send'], context }), (err) => {
          assert.ok(err instanceof AllowlyValidationError, err.name);
          assert.equal(err.status, 413);
          assert.equal(err.code, 'request_too_large');
          return true;
        });
      }
    });

    test('a stopped server: fail closed, unreachable', async () => {
      const client = new Allowly({ apiKey: server.runtimeKey, baseUrl: server.baseUrl, checkTimeoutMs: 500 });
      await server.stop();
      const answer = await client.check({ authorizationId: 'auth_x', actions: ['email.send'] });
      assert.equal(answer.results['email.send'].decision, 'deny');
      assert.equal(answer.results['email.send'].reason, 'fallback_closed_unreachable');
      assert.equal(answer.results['email.send'].receipt, null);
    });
  });
});
