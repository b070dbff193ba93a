// Client results asked for outside a hub: an Express route awaits one connection's answer, on one node and through a
// backplane (two nodes, memory store), with the official @microsoft/signalr client over every transport × protocol.

import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import express from 'express';
import { Backplane, Hubwire, HubwireError, MemoryDatabase, MemoryStore } from 'hubwire';
import { buildClient, collect, delay, MATRIX, startClient } from '../../helpers/clients.js';
import { T } from '../../helpers/surface-server.js';
import { TestHub } from '../../helpers/test-hub.js';
import { withTimeout } from '../../helpers/wait.js';

function notifyApp(hubwire: Hubwire) {
  const app = express();
  app.use(hubwire.middleware());
  app.get('/notify/:id', async (request, response) => {
    const timeout = Number(request.query.timeout ?? 2000);
    try {
      const value = await hubwire
        .hub(TestHub)
        .clients.client(request.params.id)
        .invokeWithOptions('getValue', [request.query.q ?? null], { timeout });
      response.json({ value });
    } catch (error) {
      const code = error instanceof HubwireError ? error.code : undefined;
      const status = code === 'HW_ERR_CONNECTION_NOT_FOUND' ? 404 : code === 'HW_ERR_CLIENT_RESULT_TIMEOUT' ? 504 : 502;
      response.status(status).json({ error: (error as Error).message, code });
    }
  });
  return app;
}

async function listenExpress(app: ReturnType<typeof express>, hubwire: Hubwire) {
  const http = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => http.once('listening', resolve));
  hubwire.attach(http);
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    base,
    close: async () => {
      await hubwire.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

describe('an Express route GET /notify/:id asks one connection for a value (client results)', () => {
  let hubwire: Hubwire;
  let app: Awaited<ReturnType<typeof listenExpress>>;
  const open: signalR.HubConnection[] = [];
  before(async () => {
    hubwire = new Hubwire({ onError: () => {} });
    hubwire.mapHub('/chat', TestHub);
    app = await listenExpress(notifyApp(hubwire), hubwire);
  });
  after(async () => {
    await Promise.all(open.map((c) => c.stop().catch(() => {})));
    await app.close();
  });

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}`, T, async () => {
      const client = await startClient(`${app.base}/chat`, { transport, protocol });
      open.push(client);
      client.on('getValue', async (q: string | null) => {
        await delay(5);
        return { answer: `${q} via ${transport}`, protocol };
      });
      const id = await client.invoke<string>('getConnectionId');
      const response = await fetch(`${app.base}/notify/${id}?q=hello`, { signal: AbortSignal.timeout(5000) });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { value: { answer: `hello via ${transport}`, protocol } });
    });
  }

  test(
    'mounted after a body parser (app.use(express.text())), sends work or fail fast; they never hang',
    T,
    async () => {
      const hubwire = new Hubwire({ onError: () => {} });
      hubwire.mapHub('/chat', TestHub);
      const parsed = express();
      parsed.use(express.text({ type: '*/*' }));
      parsed.use(hubwire.middleware());
      const listening = await listenExpress(parsed, hubwire);
      try {
        for (const transport of ['ServerSentEvents', 'LongPolling'] as const) {
          const client = buildClient(`${listening.base}/chat`, { transport });
          try {
            await withTimeout(client.start(), 3000, `${transport}: start() with a body parser in front`);
            assert.equal(await withTimeout(client.invoke('echo', 1), 3000, `${transport}: an invocation`), 1);
          } catch (error) {
            assert.doesNotMatch(String(error), /Timed out/, `${transport}: must not hang`);
          } finally {
            await withTimeout(client.stop(), 1000, 'stopping').catch(() => {});
          }
        }
      } finally {
        await listening.close();
      }
    },
  );

  test('unknown connection → 404, a client that throws → 502, a client that never answers → 504', T, async () => {
    const missing = await fetch(`${app.base}/notify/nobody`, { signal: AbortSignal.timeout(5000) });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { code: string }).code, 'HW_ERR_CONNECTION_NOT_FOUND');

    const client = await startClient(`${app.base}/chat`, { transport: 'LongPolling' });
    open.push(client);
    const id = await client.invoke<string>('getConnectionId');
    client.on('getValue', (q: string) => {
      if (q === 'throw') throw new Error('no value for you');
      return new Promise(() => {});
    });
    const failed = await fetch(`${app.base}/notify/${id}?q=throw`, { signal: AbortSignal.timeout(5000) });
    assert.equal(failed.status, 502);
    assert.match(((await failed.json()) as { error: string }).error, /no value for you/);
    const started = Date.now();
    const slow = await fetch(`${app.base}/notify/${id}?q=wait&timeout=200`, { signal: AbortSignal.timeout(5000) });
    assert.equal(slow.status, 504);
    assert.ok(Date.now() - started < 3000, 'the invocation timeout applies');
    assert.equal(await client.invoke('echo', 'still alive'), 'still alive');
  });
});

// --------------------------------------------------------------------------------------------------------------
describe('hub context and client results through a backplane (two nodes, memory store)', () => {
  let nodeA: Hubwire;
  let nodeB: Hubwire;
  let app: Awaited<ReturnType<typeof listenExpress>>;
  let baseB = '';
  const open: signalR.HubConnection[] = [];
  before(async () => {
    const database = new MemoryDatabase();
    const make = () =>
      new Hubwire({
        onError: () => {},
        backplane: new Backplane(new MemoryStore(database), { onError: () => {} }),
      });
    nodeA = make();
    nodeB = make();
    nodeA.mapHub('/chat', TestHub);
    nodeB.mapHub('/chat', TestHub);
    await Promise.all([nodeA.ready(), nodeB.ready()]);
    app = await listenExpress(notifyApp(nodeA), nodeA);
    baseB = `http://127.0.0.1:${await nodeB.listen(0)}`;
  });
  after(async () => {
    await Promise.all(open.map((c) => c.stop().catch(() => {})));
    await app.close();
    await nodeB.close();
  });

  for (const { transport, protocol } of MATRIX) {
    test(`${transport} + ${protocol}: node A's route reaches a client of node B`, T, async () => {
      const client = await startClient(`${baseB}/chat`, { transport, protocol });
      open.push(client);
      const id = await client.invoke<string>('getConnectionId');
      client.on('getValue', (q: string) => `${q} from node B`);
      const messages = collect(client, 'message');
      const response = await fetch(`${app.base}/notify/${id}?q=hi`, { signal: AbortSignal.timeout(8000) });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { value: 'hi from node B' });
      const hub = nodeA.hub(TestHub);
      const group = `bp-${transport}-${protocol}`;
      await hub.groups.add(id, group);
      await hub.clients.group(group).send('message', 'group via A');
      await hub.clients.client(id).send('message', 'direct via A');
      assert.deepEqual(await messages.waitFor(2), ['group via A', 'direct via A']);
    });
  }
});
