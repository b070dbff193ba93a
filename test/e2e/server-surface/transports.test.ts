// Per-endpoint transport options: the transports a hub offers, the long-polling timeout, keep-alive pings and the
// client timeout, with the official @microsoft/signalr client over every transport × hub protocol.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { buildClient, delay, MATRIX } from '../../helpers/clients.js';
import { negotiate, tryUpgrade } from '../../helpers/http.js';
import { clientPool, type SurfaceServer, startFailure, startSurfaceServer, T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';
import { withTimeout } from '../../helpers/wait.js';

class NoWebSocketsHub extends TestHub {}
class LongPollingOnlyHub extends TestHub {}
class WebSocketsOnlyHub extends TestHub {}
class KeepAliveHub extends TestHub {}
class ClientTimeoutHub extends TestHub {}

let server: SurfaceServer;
before(async () => {
  server = await startSurfaceServer((hubwire) => {
    hubwire.mapHub('/surface', TestHub);
    hubwire.mapHub('/no-ws', NoWebSocketsHub, { transports: ['ServerSentEvents', 'LongPolling'] });
    hubwire.mapHub('/lp-only', LongPollingOnlyHub, { transports: ['LongPolling'], longPollTimeout: 300 });
    hubwire.mapHub('/ws-only', WebSocketsOnlyHub, { transports: ['WebSockets'] });
    hubwire.mapHub('/keepalive', KeepAliveHub, { keepAliveInterval: 150 });
    // The official client pings only after hearing from the server, so the server must ping more often than it times out.
    hubwire.mapHub('/client-timeout', ClientTimeoutHub, { clientTimeoutInterval: 600, keepAliveInterval: 100 });
  });
});
after(async () => {
  await server.hubwire.close();
});

describe('per-endpoint options: transports', () => {
  const connect = clientPool(() => server.base);

  test(
    'a hub without WebSockets: forcing WebSockets fails, SSE and long polling work, the default falls back',
    T,
    async () => {
      const response = await negotiate(`${server.base}/no-ws`);
      const body = (await response.json()) as { availableTransports: { transport: string }[] };
      assert.deepEqual(
        body.availableTransports.map((t) => t.transport),
        ['ServerSentEvents', 'LongPolling'],
      );
      for (const protocol of ['json', 'messagepack'] as const) {
        const error = await startFailure(`${server.base}/no-ws`, { transport: 'WebSockets', protocol });
        assert.match(error.message, /Unable to connect to the server with any of the available transports/);
      }
      for (const { transport, protocol } of MATRIX.filter((m) => m.transport !== 'WebSockets')) {
        const client = await connect('/no-ws', { transport, protocol });
        assert.equal(await client.invoke('getTransport'), transport);
      }
      // No transport forced: the client skips WebSockets (not offered) and uses the next one.
      const client = await connect('/no-ws', {
        configure: (builder) => builder.withUrl(`${server.base}/no-ws`),
      });
      assert.equal(await client.invoke('getTransport'), 'ServerSentEvents');
      // A WebSocket upgrade (negotiated elsewhere or skipNegotiation) is refused.
      const upgrade = await tryUpgrade(`${server.base}/no-ws`);
      assert.equal(upgrade.open, false);
      assert.equal((upgrade as { status: number }).status, 404);
    },
  );

  test('a long-polling-only hub refuses SSE and WebSockets; a WebSockets-only hub refuses the others', T, async () => {
    for (const transport of ['WebSockets', 'ServerSentEvents'] as const) {
      const error = await startFailure(`${server.base}/lp-only`, { transport });
      assert.match(error.message, /available transports/);
    }
    for (const protocol of ['json', 'messagepack'] as const) {
      const client = await connect('/lp-only', { transport: 'LongPolling', protocol });
      assert.equal(await client.invoke('getTransport'), 'LongPolling');
    }
    for (const transport of ['ServerSentEvents', 'LongPolling'] as const) {
      const error = await startFailure(`${server.base}/ws-only`, { transport });
      assert.match(error.message, /available transports/);
    }
    const client = await connect('/ws-only', { transport: 'WebSockets', protocol: 'messagepack' });
    assert.equal(await client.invoke('getTransport'), 'WebSockets');
    // Raw requests for a transport the hub does not offer are refused.
    const token = ((await (await negotiate(`${server.base}/ws-only`)).json()) as { connectionToken: string })
      .connectionToken;
    const poll = await fetch(`${server.base}/ws-only?id=${token}`, { signal: AbortSignal.timeout(5000) });
    assert.equal(poll.status, 404);
    const sse = await fetch(`${server.base}/ws-only?id=${token}`, {
      headers: { Accept: 'text/event-stream' },
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(sse.status, 404);
  });
});

describe('per-endpoint options: long-polling and keep-alive timeouts', () => {
  const connect = clientPool(() => server.base);

  test('longPollTimeout: an idle poll answers 200 empty after it; a long-polling client lives on', T, async () => {
    const { connectionToken } = (await (await negotiate(`${server.base}/lp-only`)).json()) as {
      connectionToken: string;
    };
    const url = `${server.base}/lp-only?id=${connectionToken}`;
    const first = await fetch(url, { signal: AbortSignal.timeout(5000) });
    assert.equal(first.status, 200, 'the first poll answers at once');
    await first.arrayBuffer();
    const started = Date.now();
    const idle = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const waited = Date.now() - started;
    assert.equal(idle.status, 200);
    assert.equal((await idle.arrayBuffer()).byteLength, 0);
    assert.ok(waited >= 250 && waited < 2000, `the poll waited ${waited} ms (longPollTimeout 300)`);
    const deleted = await fetch(url, { method: 'DELETE', signal: AbortSignal.timeout(5000) });
    assert.equal(deleted.status, 202);

    const client = await connect('/lp-only', { transport: 'LongPolling' });
    await delay(1000); // several poll cycles
    assert.equal(await client.invoke('echo', 'after idle polls'), 'after idle polls');
    assert.equal(client.state, signalR.HubConnectionState.Connected);
  });

  for (const { transport, protocol } of MATRIX.filter((m) => m.transport !== 'LongPolling')) {
    test(`${transport} + ${protocol}: keepAliveInterval pings keep a strict client alive`, T, async () => {
      const strict = (builder: signalR.HubConnectionBuilder) => builder.withServerTimeout(700);
      const kept = await connect('/keepalive', { transport, protocol, configure: strict });
      // The default hub pings every 15 s: the same strict client times out there (the control).
      const control = buildClient(`${server.base}/surface`, { transport, protocol, configure: strict });
      const controlClosed = new Promise<Error | undefined>((resolve) => control.onclose(resolve));
      await control.start();
      await delay(1500);
      assert.equal(kept.state, signalR.HubConnectionState.Connected);
      assert.equal(await kept.invoke('echo', 'alive'), 'alive');
      const error = await withTimeout(controlClosed, 3000, 'the control client timing out');
      assert.match(String(error), /Server timeout elapsed without receiving a message from the server/);
    });

    test(`${transport} + ${protocol}: clientTimeoutInterval closes a silent client`, T, async () => {
      const silent = buildClient(`${server.base}/client-timeout`, {
        transport,
        protocol,
        configure: (builder) => builder.withKeepAliveInterval(60_000).withServerTimeout(120_000),
      });
      const closed = new Promise<Error | undefined>((resolve) => silent.onclose(resolve));
      await silent.start();
      const chatty = await connect('/client-timeout', {
        transport,
        protocol,
        configure: (builder) => builder.withKeepAliveInterval(100),
      });
      const error = await withTimeout(closed, 4000, 'the server closing the silent client');
      assert.match(String(error), /Server timeout elapsed without receiving a message from the client/);
      assert.equal(chatty.state, signalR.HubConnectionState.Connected);
      assert.equal(await chatty.invoke('echo', 'pinging'), 'pinging');
    });
  }
});
