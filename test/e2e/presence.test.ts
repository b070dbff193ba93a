// Presence from server code: `hubContext.connectionCount()` counts a hub's connections on every node (this node's
// now, the others' as of their last heartbeat in the node registry), and `hubwire.nodes()` lists the cluster.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { Backplane, Hub, Hubwire, MemoryDatabase, MemoryStore } from 'hubwire';
import { startClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/wait.js';

class PresenceHub extends Hub {
  ping(): string {
    return 'pong';
  }
}

const servers: Hubwire[] = [];
const clients: signalR.HubConnection[] = [];

async function server(backplane?: Backplane): Promise<{ hubwire: Hubwire; url: string }> {
  const hubwire = new Hubwire({ backplane, onError: () => {} });
  hubwire.mapHub('/presence', PresenceHub);
  hubwire.mapHub('/other', PresenceHub);
  servers.push(hubwire);
  const port = await hubwire.listen(0);
  return { hubwire, url: `http://127.0.0.1:${port}/presence` };
}

async function connect(url: string, transport?: 'LongPolling'): Promise<signalR.HubConnection> {
  const client = await startClient(url, transport ? { transport } : {});
  clients.push(client);
  return client;
}

after(async () => {
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await Promise.all(servers.map((hubwire) => hubwire.close()));
});

describe('presence', () => {
  test('one node without a backplane: its own connections, by hub; nodes() is this node', async () => {
    const { hubwire, url } = await server();
    await connect(url);
    await connect(url, 'LongPolling');
    await connect(url.replace('/presence', '/other'));
    assert.equal(await hubwire.hub('/presence').connectionCount(), 2);
    assert.equal(await hubwire.hub('/other').connectionCount(), 1);
    const nodes = await hubwire.nodes();
    assert.equal(nodes.length, 1);
    assert.equal(nodes[0]?.self, true);
    assert.equal(nodes[0]?.info.connections, 3);
    assert.deepEqual(nodes[0]?.info.hubs, { '/presence': 2, '/other': 1 });
    assert.deepEqual(nodes[0]?.info.transports, { WebSockets: 2, LongPolling: 1 });
  });

  test('two nodes on one backplane: counts across nodes, following connects, disconnects and a node leaving', async () => {
    const database = new MemoryDatabase();
    const options = { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} };
    const a = await server(new Backplane(new MemoryStore(database), options));
    const b = await server(new Backplane(new MemoryStore(database), options));
    await Promise.all([a.hubwire.ready(), b.hubwire.ready()]);
    await connect(a.url);
    await connect(a.url);
    const onB = await connect(b.url);
    const count = (node: { hubwire: Hubwire }) => node.hubwire.hub('/presence').connectionCount();
    await waitFor(async () => (await count(a)) === 3 && (await count(b)) === 3, 5000, 'both nodes counting 3');
    assert.equal((await a.hubwire.nodes()).filter((node) => node.alive).length, 2);
    await onB.stop();
    // This node's own count follows as soon as it has seen the close; the other node's at its next heartbeat.
    await waitFor(async () => (await count(b)) === 2, 1000, 'node B counting its connection gone');
    await waitFor(async () => (await count(a)) === 2, 5000, "node A seeing B's connection gone");
    await b.hubwire.close();
    // A clean shutdown leaves the registry at once.
    assert.deepEqual(
      (await a.hubwire.nodes()).map((node) => node.self),
      [true],
    );
    assert.equal(await count(a), 2);
  });

  test('a client result for a connection no live node holds fails at once, not after its timeout', async () => {
    const database = new MemoryDatabase();
    const options = { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} };
    const a = await server(new Backplane(new MemoryStore(database), options));
    const b = await server(new Backplane(new MemoryStore(database), options));
    await Promise.all([a.hubwire.ready(), b.hubwire.ready()]);
    await waitFor(async () => (await a.hubwire.nodes()).length === 2, 5000, 'both nodes registered');
    const onB = await connect(b.url);
    onB.on('ask', (question: string) => `answer to ${question}`);
    const id = await onB.invoke<string>('ping').then(() => onB.connectionId as string);
    const hub = a.hubwire.hub('/presence');
    // A connection on the other node answers through the backplane.
    assert.equal(await hub.clients.client(id).invoke('ask', 'q'), 'answer to q');
    // One nobody holds: every live node says so, and the call fails with a clear error long before 30 s.
    const started = Date.now();
    await assert.rejects(
      hub.clients.client('no-such-connection').invoke('ask', 'q'),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'HW_ERR_CONNECTION_NOT_FOUND');
        assert.match(error.message, /Connection 'no-such-connection' does not exist: no live node holds it/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 5000, `failed at once (${Date.now() - started} ms)`);
  });
});
