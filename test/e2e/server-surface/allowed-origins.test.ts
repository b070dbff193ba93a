// Per-endpoint allowed origins: CORS with credentials on every response, preflights, the WebSocket Origin check, and
// the origins refused at start-up, with raw requests and the official @microsoft/signalr client.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { Hubwire } from 'hubwire';
import { MATRIX } from '../../helpers/clients.js';
import { negotiate, tryUpgrade } from '../../helpers/http.js';
import { clientPool, type SurfaceServer, startFailure, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';

class CorsHub extends TestHub {}
class CorsAdminHub extends TestHub {}
class CorsAnyHub extends TestHub {}
class CorsPredicateHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/cors', CorsHub, { allowedOrigins: ['http://allowed.example'] });
    hubwire.mapHub('/cors-admin', CorsAdminHub, {
      allowedOrigins: ['http://allowed.example'],
      authorize: { roles: ['admin'] },
    });
    // Any origin with credentials must be asked for explicitly, with a predicate ('*' is refused).
    hubwire.mapHub('/cors-any', CorsAnyHub, { allowedOrigins: () => true });
    hubwire.mapHub('/cors-fn', CorsPredicateHub, { allowedOrigins: (origin) => origin.endsWith('.trusted.example') });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('per-endpoint options: allowed origins (CORS with credentials, WebSocket Origin check)', () => {
  const connect = clientPool(() => server.base);
  const allowed = 'http://allowed.example';
  const evil = 'http://evil.example';

  test('negotiate from a refused Origin → 403; from an allowed one → 200 with CORS headers', T, async () => {
    const refused = await negotiate(`${server.base}/cors`, { Origin: evil });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    const ok = await negotiate(`${server.base}/cors`, { Origin: allowed });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), allowed);
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.match(ok.headers.get('vary') ?? '', /Origin/);
    const { connectionToken } = (await ok.json()) as { connectionToken: string };
    // Transport requests and sends of a refused origin are refused too (before anything else).
    for (const [method, headers] of [
      ['GET', { Accept: 'text/event-stream' }],
      ['GET', {}],
      ['POST', {}],
      ['DELETE', {}],
    ] as const) {
      const response = await fetch(`${server.base}/cors?id=${connectionToken}`, {
        method,
        headers: { ...headers, Origin: evil },
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(response.status, 403, `${method} ${JSON.stringify(headers)}`);
      await response.arrayBuffer();
    }
    // The same origin as the server is never refused.
    const same = await negotiate(`${server.base}/cors`, { Origin: server.base });
    assert.equal(same.status, 200);
  });

  test('an allowed origin gets CORS headers on every response: SSE, polls, sends, and a 401', T, async () => {
    const { connectionToken } = (await (await negotiate(`${server.base}/cors`, { Origin: allowed })).json()) as {
      connectionToken: string;
    };
    const url = `${server.base}/cors?id=${connectionToken}`;
    const poll = await fetch(url, { headers: { Origin: allowed }, signal: AbortSignal.timeout(5000) });
    assert.equal(poll.status, 200);
    assert.equal(poll.headers.get('access-control-allow-origin'), allowed);
    assert.equal(poll.headers.get('access-control-allow-credentials'), 'true');
    await poll.arrayBuffer();
    const sent = await fetch(url, {
      method: 'POST',
      headers: { Origin: allowed },
      body: '{"protocol":"json","version":1}\x1e',
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(sent.status, 200);
    assert.equal(sent.headers.get('access-control-allow-origin'), allowed);
    const deleted = await fetch(url, {
      method: 'DELETE',
      headers: { Origin: allowed },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(deleted.headers.get('access-control-allow-origin'), allowed);

    const sseToken = (
      (await (await negotiate(`${server.base}/cors`, { Origin: allowed })).json()) as {
        connectionToken: string;
      }
    ).connectionToken;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 5000);
    try {
      const sse = await fetch(`${server.base}/cors?id=${sseToken}`, {
        headers: { Origin: allowed, Accept: 'text/event-stream' },
        signal: controller.signal,
      });
      assert.equal(sse.status, 200);
      assert.equal(sse.headers.get('access-control-allow-origin'), allowed);
      assert.equal(sse.headers.get('access-control-allow-credentials'), 'true');
    } finally {
      clearTimeout(timer);
      controller.abort();
    }

    // A browser can only read a 401 that carries the CORS headers; a preflight carries no credentials: 204.
    const unauthorized = await negotiate(`${server.base}/cors-admin`, { Origin: allowed });
    assert.equal(unauthorized.status, 401);
    assert.equal(unauthorized.headers.get('access-control-allow-origin'), allowed);
    const preflight = await fetch(`${server.base}/cors-admin/negotiate`, {
      method: 'OPTIONS',
      headers: {
        Origin: allowed,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization',
      },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(preflight.status, 204);
    const admitted = await negotiate(`${server.base}/cors-admin`, {
      Origin: allowed,
      Authorization: 'Bearer root:admin',
    });
    assert.equal(admitted.status, 200);
    assert.equal(admitted.headers.get('access-control-allow-origin'), allowed);
  });

  test('preflight OPTIONS from an allowed origin → 204 echoing the origin, with credentials', T, async () => {
    for (const path of ['/cors/negotiate', '/cors?id=whatever']) {
      const response = await fetch(`${server.base}${path}`, {
        method: 'OPTIONS',
        headers: {
          Origin: allowed,
          'Access-Control-Request-Method': 'POST',
          'Access-Control-Request-Headers': 'authorization, x-signalr-user-agent, x-requested-with',
        },
        signal: AbortSignal.timeout(5000),
      });
      assert.equal(response.status, 204, path);
      assert.equal(response.headers.get('access-control-allow-origin'), allowed);
      assert.equal(response.headers.get('access-control-allow-credentials'), 'true');
      assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.match(response.headers.get('access-control-allow-headers') ?? '', /authorization/i);
    }
    const refused = await fetch(`${server.base}/cors/negotiate`, {
      method: 'OPTIONS',
      headers: { Origin: evil, 'Access-Control-Request-Method': 'POST' },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(refused.status, 403);
  });

  test("'*' is refused at start-up (credentials for every site); origins must be origins", () => {
    const probe = new Hubwire();
    assert.throws(
      () => probe.mapHub('/star', CorsAnyHub, { allowedOrigins: ['*'] }),
      /cannot contain '\*'.*credentials/,
    );
    assert.throws(() => new Hubwire({ allowedOrigins: ['*'] }).mapHub('/star', CorsAnyHub), /cannot contain '\*'/);
    assert.throws(
      () => probe.mapHub('/slash-origin', CorsAnyHub, { allowedOrigins: ['https://app.example/'] }),
      /not an origin/,
    );
    probe.mapHub('/plain', CorsAnyHub);
    assert.throws(
      () => probe.mapClassicHubs('/signalr-star', { plain: '/plain' }, { allowedOrigins: ['*'] }),
      /cannot contain '\*'/,
    );
  });

  test(
    'a predicate true for every origin allows any (echoed, never * with credentials), or decides per origin',
    T,
    async () => {
      const any = await negotiate(`${server.base}/cors-any`, { Origin: 'http://anything.example' });
      assert.equal(any.status, 200);
      assert.equal(any.headers.get('access-control-allow-origin'), 'http://anything.example');
      assert.equal(any.headers.get('access-control-allow-credentials'), 'true');
      assert.equal((await negotiate(`${server.base}/cors-fn`, { Origin: 'https://app.trusted.example' })).status, 200);
      assert.equal((await negotiate(`${server.base}/cors-fn`, { Origin: 'https://trusted.example.evil' })).status, 403);
    },
  );

  test('a WebSocket upgrade from a refused Origin → 403; from an allowed one → open', T, async () => {
    const refused = await tryUpgrade(`${server.base}/cors`, { origin: evil });
    assert.deepEqual(refused.open, false);
    assert.equal((refused as { status: number }).status, 403);
    assert.deepEqual(await tryUpgrade(`${server.base}/cors`, { origin: allowed }), { open: true });
    assert.deepEqual(await tryUpgrade(`${server.base}/cors-fn`, { origin: 'http://x.trusted.example' }), {
      open: true,
    });
    const refusedFn = await tryUpgrade(`${server.base}/cors-fn`, { origin: evil });
    assert.equal((refusedFn as { status: number }).status, 403);
  });

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: the official client with an allowed / refused Origin header`, T, async () => {
      const withOrigin = (origin: string) => (builder: signalR.HubConnectionBuilder) =>
        builder.withUrl(`${server.base}/cors`, {
          transport: signalR.HttpTransportType[transport],
          headers: { Origin: origin },
        });
      const client = await connect('/cors', { transport, protocol, configure: withOrigin(allowed) });
      assert.equal(await client.invoke('getTransport'), transport);
      // No Origin at all (a non-browser client): not a cross-origin request, allowed.
      const plain = await connect('/cors', { transport, protocol });
      assert.equal(await plain.invoke('echo', 'no origin'), 'no origin');
      const error = await startFailure(`${server.base}/cors`, { transport, protocol, configure: withOrigin(evil) });
      assert.match(error.message, /403/);
    });
  }
});
