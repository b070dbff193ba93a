// Stateful reconnect across nodes (issue 15): a client built with withStatefulReconnect() whose socket breaks and
// whose reconnect reaches another node continues there. Everything addressed to it arrives once and in order, its
// groups and user come along, what it sends is processed once, and an invocation running on the node it left fails
// with a clear error. Two in-process nodes on one memory backplane, a TCP proxy the test points at either node.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { Backplane, getAccessToken, Hubwire, MemoryDatabase, MemoryStore } from 'hubwire';
import { collect, delay, startClient } from '../helpers/clients.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { TestHub } from '../helpers/test-hub.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Node {
  name: string;
  store: MemoryStore & { deaf: boolean };
  hubwire: Hubwire;
  port: number;
  url: string;
  errors: string[];
}

/**
 * A memory store that can go deaf and mute (as a node whose database connections hang): reads, appends and
 * wake-ups fail or are dropped while `deaf` is set; the node itself keeps running.
 */
function deafenable(store: MemoryStore): MemoryStore & { deaf: boolean } {
  const state = { deaf: false };
  const unreachable = () => Promise.reject(new Error('connect ETIMEDOUT (test: this node lost its database)'));
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key === 'deaf') return state.deaf;
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      if (key === 'subscribe') {
        return (onChange: (stream: number, publisher?: string) => void) =>
          target.subscribe((stream, publisher) => {
            if (!state.deaf) onChange(stream, publisher);
          });
      }
      if (key === 'readAfter' || key === 'top' || key === 'append') {
        return (...args: unknown[]) => (state.deaf ? unreachable() : value.apply(target, args));
      }
      return value.bind(target);
    },
    set(target, key, value, receiver) {
      if (key === 'deaf') {
        state.deaf = value as boolean;
        return true;
      }
      return Reflect.set(target, key, value, receiver);
    },
  }) as MemoryStore & { deaf: boolean };
}

async function cluster(options: { tableCount?: number; tokenAdoptionWindow?: number } = {}): Promise<[Node, Node]> {
  const database = new MemoryDatabase(options.tableCount ?? 1);
  const nodes: Node[] = [];
  for (const name of ['A', 'B']) {
    const errors: string[] = [];
    const store = deafenable(new MemoryStore(database));
    const backplane = new Backplane(store, { onError: () => {} });
    const hubwire = new Hubwire({
      backplane,
      authenticate: (request) => {
        const token = getAccessToken(request);
        return token ? { id: token } : undefined;
      },
      onError: (error, where) => errors.push(`${where}: ${(error as Error).message}`),
      ...(options.tokenAdoptionWindow ? { tokenAdoptionWindow: options.tokenAdoptionWindow } : {}),
    });
    hubwire.mapHub(
      '/test',
      class extends TestHub {
        nodeName(): string {
          return name;
        }
      },
      { allowStatefulReconnects: true },
    );
    cleanups.push(() => hubwire.close());
    await hubwire.ready();
    const port = await hubwire.listen(0);
    nodes.push({ name, store, hubwire, port, url: `http://127.0.0.1:${port}/test`, errors });
  }
  return nodes as [Node, Node];
}

async function proxyTo(node: Node): Promise<TcpProxy> {
  const proxy = await startTcpProxy(node.port);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Moves the client behind `proxy` to `node`: its socket breaks, its reconnect reaches `node`. */
async function moveTo(proxy: TcpProxy, node: Node, client: signalR.HubConnection): Promise<void> {
  proxy.retarget(node.port);
  proxy.dropAll();
  await waitFor(
    async () => {
      try {
        return (await client.invoke<string>('nodeName')) === node.name;
      } catch {
        return false;
      }
    },
    10_000,
    `the client to continue on node ${node.name}`,
  );
}

describe('stateful reconnect across nodes', () => {
  test('the connection moves to the node the reconnect reaches, and back: nothing lost, nothing twice', async () => {
    const [a, b] = await cluster();
    const proxy = await proxyTo(a);
    // With automatic reconnect on, a move that failed would show as a reconnect (or a close).
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      automaticReconnect: [0, 100],
      token: 'alice',
    });
    cleanups.push(() => client.stop());
    const sender = await startClient(b.url, { token: 'bob' });
    cleanups.push(() => sender.stop());
    let reconnecting = 0;
    client.onreconnecting(() => {
      reconnecting++;
    });
    let closed = 0;
    client.onclose(() => {
      closed++;
    });
    assert.equal(await client.invoke('nodeName'), 'A');
    const clientId = await client.invoke<string>('getConnectionId');
    await client.invoke('joinGroup', 'room');
    const direct = collect<number>(client, 'message');
    const inGroup = collect<[string, number]>(client, 'groupMessage');
    const echoes = collect<number>(sender, 'message');
    const senderId = await sender.invoke<string>('getConnectionId');

    // Server → client from another node: by connection id, to its group and to its user, while it moves twice.
    const total = 300;
    const sending = (async () => {
      for (let i = 1; i <= total; i++) {
        await sender.invoke('toClient', clientId, i);
        await sender.invoke('toGroup', 'room', i);
        if (i % 10 === 0) await delay(2);
      }
    })();
    // Client → server: sends keep going through the moves; each is echoed to the sender once.
    const clientSends = (async () => {
      for (let i = 1; i <= 100; i++) {
        await client.send('toClient', senderId, 1000 + i);
        await delay(3);
      }
    })();
    await delay(100);
    await moveTo(proxy, b, client);
    await delay(100);
    await moveTo(proxy, a, client);
    await Promise.all([sending, clientSends]);
    await direct.waitFor(total, 10_000);
    await inGroup.waitFor(total, 10_000);
    await echoes.waitFor(100, 10_000);
    await delay(300);
    const expected = Array.from({ length: total }, (_, i) => i + 1);
    assert.deepEqual(direct.items, expected, 'every message by connection id once, in order');
    assert.deepEqual(
      inGroup.items.map(([, i]) => i),
      expected,
      'every group message once, in order: the group came along',
    );
    assert.deepEqual(
      echoes.items,
      Array.from({ length: 100 }, (_, i) => 1001 + i),
      'every client send processed once, in order',
    );
    assert.equal(reconnecting, 0, 'a stateful reconnect is invisible to the application');
    assert.equal(closed, 0);
    assert.equal(await client.invoke('getConnectionId'), clientId, 'same connection');
    assert.equal(await client.invoke('getUserId'), 'alice', 'same user');
    // Group and user sends still reach it on the node it came back to.
    const late = collect<number>(client, 'message');
    await sender.invoke('toUser', 'alice', 7);
    await late.waitFor(1, 5000);
    assert.deepEqual(late.items, [7]);
    // Each node counts the connections that moved to it.
    for (const node of [a, b]) {
      node.hubwire.mapMetrics();
      const text = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
      assert.match(text, /^hubwire_cross_node_moved_total 1$/m, `one move to node ${node.name}`);
    }
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  });

  test('an invocation running on the node the client left fails with a clear error', async () => {
    const [a, b] = await cluster();
    const proxy = await proxyTo(a);
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      token: 'carol',
    });
    cleanups.push(() => client.stop());
    const slow = client.invoke('slow', 5000, 'late');
    const failed = slow.then(
      () => 'completed',
      (error: Error) => error.message,
    );
    await delay(200);
    await moveTo(proxy, b, client);
    assert.match(await failed, /moved to another server/);
    // The connection goes on: results come from the node it is on now.
    assert.equal(await client.invoke('echo', 'still here'), 'still here');
    assert.equal(await client.invoke('nodeName'), 'B');
  });

  test('a stream from the node it left ends with the error; streams and client results work after the move', async () => {
    const [a, b] = await cluster();
    const proxy = await proxyTo(a);
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      token: 'erin',
    });
    cleanups.push(() => client.stop());
    client.on('answer', (question: string) => `erin says ${question}`);
    const clientId = await client.invoke<string>('getConnectionId');
    const asker = await startClient(a.url, { token: 'frank' });
    cleanups.push(() => asker.stop());
    // Client results asked of it on the node it is on, and from another node.
    assert.equal(await asker.invoke('askClient', clientId, 'one'), 'erin says one');
    const items: number[] = [];
    const ended = new Promise<string>((resolve) => {
      client.stream<number>('forever').subscribe({
        next: (item) => items.push(item),
        complete: () => resolve('completed'),
        error: (error) => resolve(error.message),
      });
    });
    await waitFor(() => items.length >= 5, 5000, 'stream items');
    await moveTo(proxy, b, client);
    assert.match(await ended, /moved to another server/);
    assert.deepEqual(
      items,
      Array.from({ length: items.length }, (_, i) => i),
      'the items it got before the move, once, in order',
    );
    const counted: number[] = [];
    await new Promise<void>((resolve, reject) => {
      client.stream<number>('countTo', 50).subscribe({
        next: (item) => counted.push(item),
        complete: () => resolve(),
        error: reject,
      });
    });
    assert.deepEqual(
      counted,
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.equal(await asker.invoke('askClient', clientId, 'two'), 'erin says two', 'asked from node A, now on B');
    assert.equal(await client.invoke('askCaller', 'three'), 'erin says three', 'asked by its own node');
  });

  test('a holder that cannot answer is taken over from its checkpoint; when it hears of it, it lets go', async () => {
    const [a, b] = await cluster();
    const proxy = await proxyTo(a);
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      token: 'gina',
    });
    cleanups.push(() => client.stop());
    const sender = await startClient(b.url, { token: 'hank' });
    cleanups.push(() => sender.stop());
    const clientId = await client.invoke<string>('getConnectionId');
    await client.invoke('joinGroup', 'g');
    const received = collect<number>(client, 'message');
    for (let i = 1; i <= 50; i++) await sender.invoke('toClient', clientId, i);
    await received.waitFor(50, 5000);
    const running = client.invoke('slow', 8000, 'late').then(
      () => 'completed',
      (error: Error) => error.message,
    );
    await delay(3500); // a checkpoint past the start covers the invocation (the client acknowledged the 50)
    // A loses its database: it cannot hear the request to let go, nor answer.
    a.store.deaf = true;
    for (let i = 51; i <= 100; i++) await sender.invoke('toClient', clientId, i);
    const started = Date.now();
    await moveTo(proxy, b, client);
    const tookMs = Date.now() - started;
    assert.match(await running, /stopped before it completed/);
    for (let i = 101; i <= 150; i++) await sender.invoke('toGroup', 'g', i);
    await received.waitFor(100, 5000);
    // A comes back, reads that the connection moved on, and lets it go without an onDisconnected of its own.
    a.store.deaf = false;
    await waitFor(() => a.hubwire.metrics.snapshot().connections.total === 0, 10_000, 'A to let the connection go');
    await delay(300);
    const groupItems = collect<number>(client, 'groupMessage');
    await sender.invoke('toGroup', 'g', 151);
    await groupItems.waitFor(1, 5000);
    assert.deepEqual(
      received.items,
      Array.from({ length: 100 }, (_, i) => i + 1),
      'every message by id once, in order',
    );
    assert.equal(await client.invoke('nodeName'), 'B');
    assert.ok(tookMs < 8000, `the move took ${tookMs} ms`);
  });

  test('a connection older than the token adoption window still moves', async () => {
    const [a, b] = await cluster({ tokenAdoptionWindow: 300 });
    const proxy = await proxyTo(a);
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      token: 'ivy',
    });
    cleanups.push(() => client.stop());
    await delay(700); // past the window: the token is "expired" for starts
    // A new connection's claim makes every node forget the claims older than the window.
    const other = await startClient(b.url, { token: 'jack' });
    cleanups.push(() => other.stop());
    await moveTo(proxy, b, client);
    assert.equal(await client.invoke('echo', 1), 1);
  });

  test('with several backplane streams the move is refused and the client starts over', async () => {
    const [a, b] = await cluster({ tableCount: 2 });
    const proxy = await proxyTo(a);
    const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, {
      statefulReconnect: true,
      token: 'dave',
    });
    const closed = new Promise<Error | undefined>((resolve) => client.onclose(resolve));
    proxy.retarget(b.port);
    proxy.dropAll();
    const error = await closed;
    assert.ok(error, 'the connection ends with an error');
  });
});
