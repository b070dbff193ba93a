// Presence queries: `usersOnline()` and `groupMembers(group)` from server code (the HubContext) and from hub methods
// (`this.clients`), on one node (LocalBus, Core and classic clients alike) and across nodes sharing an in-memory
// backplane (each node answers a query with its own part); plus `pendingResults()` of both buses.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import {
  Backplane,
  type BusConnection,
  type HubContext,
  Hubwire,
  LocalBus,
  MemoryDatabase,
  MemoryStore,
  type MessageBus,
} from 'hubwire';
import { Client } from 'node-signalr';
import { type ClassicServer, startClassicServer, userFromQuery } from '../classic/fixture.js';
import { startClient } from '../helpers/clients.js';
import { TestHub } from '../helpers/test-hub.js';
import { waitFor } from '../helpers/wait.js';

const servers: { close(): Promise<void> }[] = [];
const clients: signalR.HubConnection[] = [];

after(async () => {
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await Promise.all(servers.map((server) => server.close()));
});

async function connect(url: string, user?: string): Promise<signalR.HubConnection> {
  const client = await startClient(user ? `${url}?user=${user}` : url);
  clients.push(client);
  return client;
}

/** A node on a shared in-memory backplane, with the test hub at /test (users from `?user=`). */
async function node(database: MemoryDatabase, hubs = ['/test']): Promise<{ hubwire: Hubwire; url: string }> {
  const backplane = new Backplane(new MemoryStore(database), { heartbeatInterval: 100, nodeTimeout: 300 });
  const hubwire = new Hubwire({ backplane, authenticate: userFromQuery, clientResultTimeout: 4000, onError: () => {} });
  for (const path of hubs) hubwire.mapHub(path, TestHub);
  servers.push(hubwire);
  await hubwire.ready();
  const port = await hubwire.listen(0);
  return { hubwire, url: `http://127.0.0.1:${port}/test` };
}

/** A hub's bus (the endpoint a HubContext is), for what only the bus tells. */
const busOf = (hub: HubContext) => (hub as unknown as { bus: MessageBus }).bus;

/** A connection registered on a bus directly, as a transport would (it records what it is sent). */
function busConnection(connectionId: string, userId?: string): BusConnection & { written: unknown[] } {
  const written: unknown[] = [];
  return {
    connectionId,
    userId,
    written,
    writeSerialized: (message) => written.push(message),
    writeMessage: (message) => written.push(message),
  };
}

describe('presence queries', () => {
  test('one node: users online and group members, Core and classic, from server code and hub methods', async () => {
    const server: ClassicServer = await startClassicServer();
    servers.push(server);
    const url = `${server.base}/test`;
    const ann = await connect(url, 'ann');
    const bob = await connect(url, 'bob');
    const anonymous = await connect(url);
    const classic = new Client(`${server.base}/signalr`, ['testHub']);
    classic.qs = { user: 'carl' };
    const connected = once(classic, 'connected');
    classic.start();
    await connected;
    servers.push({ close: async () => classic.end() });
    const carlId = classic.connection.id as string;

    await ann.invoke('joinGroup', 'lobby');
    await anonymous.invoke('joinGroup', 'lobby');
    await classic.connection.hub.call('testHub', 'joinGroup', 'lobby');
    await bob.invoke('joinGroup', 'other');

    const hub = server.hubwire.hub('/test');
    assert.deepEqual(await hub.usersOnline(), ['ann', 'bob', 'carl']);
    assert.deepEqual(await hub.clients.usersOnline(), ['ann', 'bob', 'carl']);
    const lobby = [
      { connectionId: ann.connectionId as string, userId: 'ann' },
      { connectionId: anonymous.connectionId as string },
      { connectionId: carlId, userId: 'carl' },
    ].sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));
    assert.deepEqual(await hub.groupMembers('lobby'), lobby);
    assert.deepEqual(await hub.groupMembers('nobody-here'), []);
    // From a hub method, for a Core caller and a classic one.
    assert.deepEqual(await bob.invoke('usersOnline'), ['ann', 'bob', 'carl']);
    assert.deepEqual(await bob.invoke('groupMembers', 'lobby'), lobby);
    assert.deepEqual(await classic.connection.hub.call('testHub', 'groupMembers', 'other'), [
      { connectionId: bob.connectionId, userId: 'bob' },
    ]);
    await assert.rejects(hub.usersOnline({ timeout: -1 }), { code: 'HW_ERR_INVALID_OPTION' });

    // Leaving a group, and leaving altogether.
    await anonymous.invoke('leaveGroup', 'lobby');
    await ann.stop();
    await waitFor(async () => (await hub.usersOnline()).length === 2, 5000, "ann's connection gone");
    assert.deepEqual(await hub.usersOnline(), ['bob', 'carl']);
    assert.deepEqual(await hub.groupMembers('lobby'), [{ connectionId: carlId, userId: 'carl' }]);
  });

  test('LocalBus.pendingResults counts the client results waiting for an answer', async () => {
    const bus = new LocalBus({ clientResultTimeout: 5000 });
    const connection = busConnection('c1', 'u1');
    await bus.onConnected(connection);
    assert.equal(bus.pendingResults(), 0);
    const first = bus.invokeConnection('c1', 'ask', []);
    const second = bus.invokeConnection('c1', 'ask', [], { timeout: 20 });
    assert.equal(bus.pendingResults(), 2);
    await assert.rejects(second, { code: 'HW_ERR_CLIENT_RESULT_TIMEOUT' });
    assert.equal(bus.pendingResults(), 1);
    const invocation = connection.written[0] as { invocationId: string };
    assert.equal(bus.setConnectionResult('c1', { type: 3, invocationId: invocation.invocationId, result: 7 }), true);
    assert.equal(await first, 7);
    assert.equal(bus.pendingResults(), 0);
    await bus.close();
  });

  test('two nodes on one backplane: each node answers its part; a node that does not answer is left out after the timeout', async () => {
    const database = new MemoryDatabase();
    const a = await node(database);
    const b = await node(database, ['/test', '/other']);
    await waitFor(async () => (await a.hubwire.nodes()).length === 2, 5000, 'both nodes registered');
    const ann = await connect(a.url, 'ann');
    const bob = await connect(b.url, 'bob');
    const bob2 = await connect(b.url, 'bob');
    await ann.invoke('joinGroup', 'red');
    await bob.invoke('joinGroup', 'red');
    await bob2.invoke('joinGroup', 'blue');
    const red = [
      { connectionId: ann.connectionId as string, userId: 'ann' },
      { connectionId: bob.connectionId as string, userId: 'bob' },
    ].sort((x, y) => (x.connectionId < y.connectionId ? -1 : 1));
    for (const [hubwire, client] of [
      [a.hubwire, ann],
      [b.hubwire, bob2],
    ] as const) {
      const hub = hubwire.hub('/test');
      assert.deepEqual(await hub.usersOnline(), ['ann', 'bob']);
      assert.deepEqual(await hub.groupMembers('red'), red);
      assert.deepEqual(await client.invoke('usersOnline'), ['ann', 'bob']);
      assert.deepEqual(await client.invoke('groupMembers', 'blue'), [
        { connectionId: bob2.connectionId, userId: 'bob' },
      ]);
    }
    // A group change made through another node is seen by a query made after it.
    await ann.invoke('toClient', bob2.connectionId, 'hello');
    await a.hubwire.hub('/test').groups.add(bob2.connectionId as string, 'red');
    assert.equal((await a.hubwire.hub('/test').groupMembers('red')).length, 3);
    await a.hubwire.hub('/test').groups.remove(bob2.connectionId as string, 'red');

    await bob.stop();
    const redCount = async () => (await a.hubwire.hub('/test').groupMembers('red')).length;
    await waitFor(async () => (await redCount()) === 1, 5000, "bob's connection gone from node A's answer");
    assert.deepEqual(await a.hubwire.hub('/test').groupMembers('red'), [
      { connectionId: ann.connectionId as string, userId: 'ann' },
    ]);
    assert.deepEqual(await a.hubwire.hub('/test').usersOnline(), ['ann', 'bob']); // bob2 is still there

    // Node A does not map /other (its registry row says so): a query there does not wait for it.
    let started = Date.now();
    assert.deepEqual(await b.hubwire.hub('/other').usersOnline(), []);
    assert.ok(Date.now() - started < 1000, `answered without waiting (${Date.now() - started} ms)`);

    // A live node that never answers (a bare backplane in the registry, which says nothing of its hubs) is waited
    // for until the timeout; the query then resolves with the parts that arrived.
    const silent = new Backplane(new MemoryStore(database), { heartbeatInterval: 100, nodeTimeout: 300 });
    servers.push(silent);
    await silent.start();
    await waitFor(async () => (await a.hubwire.nodes()).length === 3, 5000, 'the silent node registered');
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the node list is cached for a second
    started = Date.now();
    assert.deepEqual(await a.hubwire.hub('/test').usersOnline({ timeout: 400 }), ['ann', 'bob']);
    const waited = Date.now() - started;
    assert.ok(waited >= 390 && waited < 2000, `waited for the timeout, not longer (${waited} ms)`);
    await silent.close();
    // A cleanly closed node leaves the registry at once: no more waiting (after the cached list expires).
    await new Promise((resolve) => setTimeout(resolve, 1100));
    started = Date.now();
    assert.deepEqual(await a.hubwire.hub('/test').usersOnline({ timeout: 3000 }), ['ann', 'bob']);
    assert.ok(Date.now() - started < 1000, `prompt again (${Date.now() - started} ms)`);
  });

  test('BackplaneBus.pendingResults counts local and remote client results; a huge answer is refused', async () => {
    const database = new MemoryDatabase();
    const a = await node(database);
    const b = await node(database);
    await waitFor(async () => (await a.hubwire.nodes()).length === 2, 5000, 'both nodes registered');
    const onA = await connect(a.url, 'ann');
    const onB = await connect(b.url, 'bob');
    let release: (value: string) => void = () => {};
    const held = new Promise<string>((resolve) => {
      release = resolve;
    });
    onA.on('answer', () => held);
    onB.on('answer', () => held);
    const hub = a.hubwire.hub('/test');
    const bus = busOf(hub);
    assert.equal(bus.pendingResults(), 0);
    const local = hub.clients.client(onA.connectionId as string).invoke('answer', 'q');
    const remote = hub.clients.client(onB.connectionId as string).invoke('answer', 'q');
    await waitFor(() => bus.pendingResults() === 2, 2000, 'two results pending');
    release('done');
    assert.deepEqual(await Promise.all([local, remote]), ['done', 'done']);
    assert.equal(bus.pendingResults(), 0);
    assert.equal(busOf(b.hubwire.hub('/test')).pendingResults(), 0, 'node B only forwarded');

    // Node B holds more users than an answer carries: node A's query fails clearly; B's own view is not bounded.
    const busB = busOf(b.hubwire.hub('/test'));
    for (let i = 0; i < 10_001; i++) await busB.onConnected(busConnection(`many-${i}`, `user-${i}`));
    await assert.rejects(hub.usersOnline(), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'HW_ERR_MESSAGE_TOO_LARGE');
      assert.match(error.message, /has 10002 users to report, more than a presence answer carries \(10000 ids/);
      return true;
    });
    assert.equal((await b.hubwire.hub('/test').usersOnline()).length, 10_003);
  });
});
