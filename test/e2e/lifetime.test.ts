// Connection lifetime with the official client: keep-alive and timeouts, stateful reconnect after a dropped
// socket, automatic reconnect, skipNegotiation, parallel invocation limits and onDisconnected.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { buildClient, collect, delay, startClient } from '../helpers/clients.js';
import { startTestServer } from '../helpers/server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

describe('keep-alive and timeouts', () => {
  test('the server closes a client that stays silent past clientTimeoutInterval', async () => {
    const server = await startTestServer({ clientTimeoutInterval: 400, timerInterval: 50 });
    try {
      const client = buildClient(server.url, {
        configure: (b) => b.withKeepAliveInterval(60_000).withServerTimeout(120_000),
      });
      const closed = new Promise<Error | undefined>((resolve) => client.onclose(resolve));
      await client.start();
      const started = Date.now();
      const error = await closed;
      assert.ok(Date.now() - started >= 300, 'not before the timeout');
      assert.match(String(error), /Server timeout elapsed without receiving a message from the client/);
    } finally {
      await server.close();
    }
  });

  test('server pings keep a client with a short server timeout alive', async () => {
    const server = await startTestServer({ keepAliveInterval: 100, timerInterval: 25 });
    try {
      const client = buildClient(server.url, { configure: (b) => b.withServerTimeout(600).withKeepAliveInterval(300) });
      let closedWith: unknown = 'open';
      client.onclose((error) => {
        closedWith = error;
      });
      await client.start();
      await delay(1500);
      assert.equal(closedWith, 'open');
      assert.equal(client.state, signalR.HubConnectionState.Connected);
      assert.equal(await client.invoke('add', 1, 2), 3);
      await client.stop();
    } finally {
      await server.close();
    }
  });

  test('without server pings the official client times out (the pings are what keeps it alive)', async () => {
    const server = await startTestServer({ keepAliveInterval: 60_000, timerInterval: 25 });
    try {
      const client = buildClient(server.url, { configure: (b) => b.withServerTimeout(500).withKeepAliveInterval(200) });
      const closed = new Promise<Error | undefined>((resolve) => client.onclose(resolve));
      await client.start();
      assert.match(String(await closed), /Server timeout elapsed/);
    } finally {
      await server.close();
    }
  });
});

describe('stateful reconnect', () => {
  test('after a dropped socket, no message is lost or duplicated in either direction', async () => {
    const server = await startTestServer({ allowStatefulReconnects: true });
    const proxy = await startTcpProxy(server.port);
    try {
      const viaProxy = `http://127.0.0.1:${proxy.port}/test`;
      const client = await startClient(viaProxy, { statefulReconnect: true });
      const sender = await startClient(server.url);
      const received = collect<number>(client, 'message');
      let reconnecting = 0;
      client.onreconnecting(() => {
        reconnecting++;
      });
      const clientId = await client.invoke<string>('getConnectionId');
      // Server → client: a steady stream from another connection, while the socket is dropped twice.
      const total = 300;
      const sending = (async () => {
        for (let i = 1; i <= total; i++) {
          await sender.invoke('toClient', clientId, i);
          if (i % 10 === 0) await delay(2);
        }
      })();
      // Client → server: sends keep going through the drops; the server echoes each to the sender.
      const echoes = collect<number>(sender, 'message');
      const senderId = await sender.invoke<string>('getConnectionId');
      const clientSends = (async () => {
        for (let i = 1; i <= 100; i++) {
          await client.send('toClient', senderId, 1000 + i);
          await delay(3);
        }
      })();
      await delay(100);
      const acceptedBefore = proxy.accepted;
      proxy.dropAll();
      await delay(200);
      proxy.dropAll();
      await Promise.all([sending, clientSends]);
      await received.waitFor(total, 10_000);
      await echoes.waitFor(100, 10_000);
      await delay(200);
      assert.deepEqual(
        received.items,
        Array.from({ length: total }, (_, i) => i + 1),
        'every message once, in order',
      );
      assert.deepEqual(
        echoes.items,
        Array.from({ length: 100 }, (_, i) => 1001 + i),
        'every client send processed once, in order',
      );
      assert.ok(proxy.accepted >= acceptedBefore + 2, 'the client reconnected after each drop');
      assert.equal(reconnecting, 0, 'a stateful reconnect is invisible to the application');
      assert.equal(await client.invoke('getConnectionId'), clientId, 'same connection');
      await client.stop();
      await sender.stop();
    } finally {
      await proxy.close();
      await server.close();
    }
  });

  test('a client that does not come back within disconnectTimeout is disconnected', async () => {
    const server = await startTestServer({ allowStatefulReconnects: true, disconnectTimeout: 300, timerInterval: 50 });
    const proxy = await startTcpProxy(server.port);
    try {
      const client = buildClient(`http://127.0.0.1:${proxy.port}/test`, { statefulReconnect: true });
      await client.start();
      const id = await client.invoke<string>('getConnectionId');
      await proxy.close(); // the client can never reconnect
      proxy.dropAll();
      const disconnected = () => server.observations.disconnected.some((d) => d.id === id);
      await waitFor(disconnected, 2000, 'onDisconnected');
      assert.ok(disconnected(), 'onDisconnected ran');
      await client.stop();
    } finally {
      await server.close();
    }
  });
});

describe('automatic reconnect', () => {
  test('the client reconnects with a new connection after the socket drops', async () => {
    const server = await startTestServer();
    const proxy = await startTcpProxy(server.port);
    try {
      const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, { automaticReconnect: [0, 50, 100] });
      const firstId = await client.invoke<string>('getConnectionId');
      const reconnected = new Promise<string | undefined>((resolve) => client.onreconnected(resolve));
      proxy.dropAll();
      const newId = await reconnected;
      assert.ok(newId);
      assert.notEqual(newId, firstId);
      assert.equal(await client.invoke('getConnectionId'), newId);
      const disconnected = () => server.observations.disconnected.some((d) => d.id === firstId);
      await waitFor(disconnected, 2000, 'onDisconnected of the old connection');
      assert.ok(disconnected(), 'the old connection was disconnected on the server');
      await client.stop();
    } finally {
      await proxy.close();
      await server.close();
    }
  });
});

describe('connection setup', () => {
  test('skipNegotiation over WebSockets', async () => {
    const server = await startTestServer();
    try {
      const client = new signalR.HubConnectionBuilder()
        .withUrl(server.url, { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
        .configureLogging(signalR.LogLevel.None)
        .build();
      await client.start();
      assert.equal(await client.invoke('echo', 'skip'), 'skip');
      await client.stop();
    } finally {
      await server.close();
    }
  });

  test('transport fallback: a hub without WebSockets gets SSE', async () => {
    const server = await startTestServer({}, { transports: ['ServerSentEvents', 'LongPolling'] });
    try {
      const client = new signalR.HubConnectionBuilder()
        .withUrl(server.url)
        .configureLogging(signalR.LogLevel.None)
        .build();
      await client.start();
      assert.equal(await client.invoke('getTransport'), 'ServerSentEvents');
      await client.stop();
    } finally {
      await server.close();
    }
  });

  test('invocations run one at a time by default, in order; more in parallel when allowed', async () => {
    for (const [limit, expectParallel] of [
      [1, false],
      [4, true],
    ] as const) {
      const server = await startTestServer({}, { maximumParallelInvocationsPerClient: limit });
      try {
        const client = await startClient(server.url);
        const started = Date.now();
        const results = await Promise.all([
          client.invoke('slow', 150, 'a'),
          client.invoke('slow', 150, 'b'),
          client.invoke('slow', 150, 'c'),
        ]);
        const elapsed = Date.now() - started;
        assert.deepEqual(results, ['a', 'b', 'c']);
        if (expectParallel) assert.ok(elapsed < 400, `parallel: ${elapsed} ms`);
        else assert.ok(elapsed >= 440, `serial: ${elapsed} ms`);
        // A client result works even while the only invocation slot is taken by the asking method.
        client.on('answer', (q: string) => `re: ${q}`);
        assert.equal(await client.invoke('askCaller', 'x'), 're: x');
        await client.stop();
      } finally {
        await server.close();
      }
    }
  });

  test('onDisconnected runs when the client stops', async () => {
    const server = await startTestServer();
    try {
      const client = await startClient(server.url, { transport: 'LongPolling' });
      const id = await client.invoke<string>('getConnectionId');
      await client.stop();
      const disconnected = () => server.observations.disconnected.some((d) => d.id === id);
      await waitFor(disconnected, 1000, 'onDisconnected');
      assert.ok(disconnected());
    } finally {
      await server.close();
    }
  });
});
