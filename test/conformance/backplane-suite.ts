// The backplane conformance suite: every backplane (memory, PostgreSQL, SQLite, ...) runs it unchanged.
// Three Hubwire nodes share one backplane database; official clients on each node; every addressing mode,
// group changes and client results cross nodes; ordering holds.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { type Backplane, getAccessToken, Hubwire } from 'hubwire';
import { collect, delay, startClient } from '../helpers/clients.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { TestHub } from '../helpers/test-hub.js';
import { waitFor } from '../helpers/wait.js';

export interface BackplaneFactory {
  /** A new engine on the shared test database (each call is another node). */
  createBackplane(): Backplane | Promise<Backplane>;
  /** Called once after the suite. */
  cleanup?(): Promise<void>;
}

interface Node {
  hubwire: Hubwire;
  url: string;
  backplane: Backplane;
}

export function runBackplaneConformance(name: string, factory: BackplaneFactory): void {
  describe(`backplane conformance: ${name}`, () => {
    const nodes: Node[] = [];
    const clients: signalR.HubConnection[] = [];
    const connect = async (node: number, token?: string, protocol: 'json' | 'messagepack' = 'json') => {
      const client = await startClient((nodes[node] as Node).url, { token, protocol });
      clients.push(client);
      return client;
    };

    before(async () => {
      for (let i = 0; i < 3; i++) {
        const backplane = await factory.createBackplane();
        const hubwire = new Hubwire({
          backplane,
          authenticate: (request) => {
            const token = getAccessToken(request);
            return token ? { id: token } : undefined;
          },
          clientResultTimeout: 3000,
          allowStatefulReconnects: true,
          onError: () => {},
        });
        hubwire.mapHub('/test', TestHub);
        await hubwire.ready();
        const port = await hubwire.listen(0);
        nodes.push({ hubwire, url: `http://127.0.0.1:${port}/test`, backplane });
      }
    });

    after(async () => {
      await Promise.all(clients.map((c) => c.stop()));
      await Promise.all(nodes.map((n) => n.hubwire.close()));
      await factory.cleanup?.();
    });

    test('broadcast, client(id), clients(ids), allExcept and others reach connections on every node', async () => {
      const [a, b, c] = [await connect(0), await connect(1), await connect(2, undefined, 'messagepack')];
      const inbox = [collect(a, 'message'), collect(b, 'message'), collect(c, 'message')];
      const ids = await Promise.all([a, b, c].map((x) => x.invoke<string>('getConnectionId')));
      await a.invoke('broadcast', 'all');
      await b.invoke('toClient', ids[2], 'to-c');
      await c.invoke('toAllExcept', ids[0], 'except-a');
      await a.invoke('toOthers', 'others-of-a');
      await inbox[0]?.waitFor(1);
      await inbox[1]?.waitFor(3);
      await inbox[2]?.waitFor(4);
      await delay(100);
      assert.deepEqual(inbox[0]?.items, ['all']);
      assert.deepEqual(inbox[1]?.items, ['all', 'except-a', 'others-of-a']);
      assert.deepEqual(inbox[2]?.items, ['all', 'to-c', 'except-a', 'others-of-a']);
    });

    test('groups across nodes: join, send, groupExcept, othersInGroup, leave', async () => {
      const group = `g-${Math.random()}`;
      const [a, b, c] = [await connect(0), await connect(1), await connect(2)];
      const inbox = [a, b, c].map((x) => collect<[string, number]>(x, 'groupMessage'));
      await a.invoke('joinGroup', group);
      await b.invoke('joinGroup', group);
      const aId = await a.invoke<string>('getConnectionId');
      await c.invoke('toGroup', group, 1);
      await c.invoke('toGroupExcept', group, aId, 2);
      await a.invoke('toOthersInGroup', group, 3);
      await b.invoke('leaveGroup', group);
      await c.invoke('toGroup', group, 4);
      await inbox[0]?.waitFor(2);
      await inbox[1]?.waitFor(3);
      await delay(150);
      assert.deepEqual(
        inbox[0]?.items.map((m) => m[1]),
        [1, 4],
      );
      assert.deepEqual(
        inbox[1]?.items.map((m) => m[1]),
        [1, 2, 3],
      );
      assert.deepEqual(inbox[2]?.items, []);
    });

    test('a node adds a connection of another node to a group (hub context)', async () => {
      const group = `remote-${Math.random()}`;
      const b = await connect(1);
      const bId = await b.invoke<string>('getConnectionId');
      const inbox = collect<[string, string]>(b, 'groupMessage');
      const nodeA = (nodes[0] as Node).hubwire.hub('/test');
      await nodeA.groups.add(bId, group);
      await nodeA.clients.group(group).send('groupMessage', group, 'joined remotely');
      assert.deepEqual(await inbox.waitFor(1), [[group, 'joined remotely']]);
      await nodeA.groups.remove(bId, group);
      await nodeA.clients.group(group).send('groupMessage', group, 'after leaving');
      await nodeA.clients.client(bId).send('groupMessage', group, 'marker');
      await inbox.waitFor(2);
      assert.deepEqual(
        inbox.items.map((m) => m[1]),
        ['joined remotely', 'marker'],
      );
    });

    test('users across nodes', async () => {
      const user = `u-${Math.random()}`;
      const [a1, a2, other] = [await connect(0, user), await connect(2, user), await connect(1)];
      const inbox = [collect(a1, 'message'), collect(a2, 'message')];
      const otherInbox = collect(other, 'message');
      await other.invoke('toUser', user, 'hi user');
      await other.invoke('toUsers', [user, 'nobody'], 'hi users');
      assert.deepEqual(await inbox[0]?.waitFor(2), ['hi user', 'hi users']);
      assert.deepEqual(await inbox[1]?.waitFor(2), ['hi user', 'hi users']);
      await delay(50);
      assert.deepEqual(otherInbox.items, []);
    });

    test('presence across nodes: users online and group members, asked on any node', async () => {
      const tag = Math.random().toString(36).slice(2);
      const users = [`p0-${tag}`, `p1-${tag}`, `p2-${tag}`];
      const [a, b, c] = [
        await connect(0, users[0]),
        await connect(1, users[1]),
        await connect(2, users[2], 'messagepack'),
      ];
      const group = `presence-${tag}`;
      await a.invoke('joinGroup', group);
      await c.invoke('joinGroup', group);
      const members = [
        { connectionId: a.connectionId as string, userId: users[0] },
        { connectionId: c.connectionId as string, userId: users[2] },
      ].sort((x, y) => (x.connectionId < y.connectionId ? -1 : 1));
      for (const node of nodes) {
        const hub = node.hubwire.hub('/test');
        // Every live node answers (a node that did not would be left out after the 3 s default timeout).
        const started = Date.now();
        const online = await hub.usersOnline();
        for (const user of users) assert.ok(online.includes(user), `${user} online, seen from ${node.url}`);
        assert.deepEqual(await hub.groupMembers(group), members);
        assert.ok(Date.now() - started < 2500, `answered by every node (${Date.now() - started} ms)`);
      }
      // From a hub method.
      assert.deepEqual(await b.invoke('groupMembers', group), members);
      await c.stop();
      const hubB = (nodes[1] as Node).hubwire.hub('/test');
      await waitFor(async () => (await hubB.groupMembers(group)).length === 1, 5000, 'the stopped client gone');
      assert.ok(!(await hubB.usersOnline()).includes(users[2] as string));
    });

    test('client results from a client on another node; one for a connection no node holds fails at once', async () => {
      const a = await connect(0);
      const c = await connect(2);
      c.on('answer', (q: string) => `c on node 2 answers ${q}`);
      const cId = await c.invoke<string>('getConnectionId');
      assert.equal(await a.invoke('askClient', cId, 'q'), 'c on node 2 answers q');
      const nodeB = (nodes[1] as Node).hubwire.hub('/test');
      assert.equal(await nodeB.clients.client(cId).invoke('answer', 'from B'), 'c on node 2 answers from B');
      // Every live node says it does not hold it (the node registry says who is alive): no waiting for the timeout.
      const started = Date.now();
      await assert.rejects(nodeB.clients.client('nobody').invokeWithOptions('answer', ['x'], { timeout: 20_000 }), {
        code: 'HW_ERR_CONNECTION_NOT_FOUND',
      });
      assert.ok(Date.now() - started < 10_000, `well before the timeout (${Date.now() - started} ms)`);
    });

    test('a remote client result rejects when the connection ends', async () => {
      const c = await connect(2);
      let asked!: () => void;
      const reached = new Promise<void>((resolve) => {
        asked = resolve;
      });
      c.on('answer', () => {
        asked();
        return new Promise(() => {});
      });
      const cId = await c.invoke<string>('getConnectionId');
      const pending = (nodes[0] as Node).hubwire.hub('/test').clients.client(cId).invoke('answer', 'q');
      pending.catch(() => {}); // asserted below
      // The question has reached the client (through the backplane, polled on MariaDB) before it leaves.
      await reached;
      await c.stop();
      await assert.rejects(pending, /disconnected/);
    });

    test('a stateful-reconnect session resumed after a dropped socket gets what it missed, in order, none twice', async () => {
      const node = nodes[1] as Node;
      const proxy = await startTcpProxy(Number(new URL(node.url).port));
      try {
        const client = await startClient(`http://127.0.0.1:${proxy.port}/test`, { statefulReconnect: true });
        clients.push(client);
        const id = await client.invoke<string>('getConnectionId');
        const inbox = collect<number>(client, 'message');
        const sender = await connect(2);
        const sending = (async () => {
          for (let i = 1; i <= 200; i++) {
            await sender.invoke('toClient', id, i);
            if (i % 20 === 0) await delay(5);
          }
        })();
        await delay(30);
        proxy.dropAll();
        await delay(100);
        proxy.dropAll();
        await sending;
        await inbox.waitFor(200, 10_000);
        await delay(100);
        assert.deepEqual(
          inbox.items,
          Array.from({ length: 200 }, (_, i) => i + 1),
        );
        assert.equal(await client.invoke('getConnectionId'), id);
      } finally {
        await proxy.close();
      }
    });

    test('ordering: concurrent senders on every node; each receiver sees each sender in order, once', async () => {
      const receivers = [await connect(0), await connect(1), await connect(2)];
      const inboxes = receivers.map((r) => collect<[string, number]>(r, 'groupMessage'));
      const group = `order-${Math.random()}`;
      for (const r of receivers) await r.invoke('joinGroup', group);
      const senders = [await connect(0), await connect(1), await connect(2), await connect(0), await connect(1)];
      const perSender = 40;
      await Promise.all(
        senders.map(async (sender, s) => {
          for (let i = 0; i < perSender; i++) {
            await sender.send('toGroup', group, s * 1000 + i);
            if (i % 7 === 0) await delay(Math.random() * 5);
          }
        }),
      );
      const total = senders.length * perSender;
      const orders: number[][] = [];
      for (const inbox of inboxes) {
        const items = await inbox.waitFor(total, 15_000);
        const values = items.map((m) => m[1]);
        assert.equal(new Set(values).size, total, 'each message exactly once');
        for (let s = 0; s < senders.length; s++) {
          const mine = values.filter((v) => Math.floor(v / 1000) === s);
          assert.deepEqual(
            mine,
            Array.from({ length: perSender }, (_, i) => s * 1000 + i),
            `sender ${s} in order`,
          );
        }
        orders.push(values);
      }
      await delay(100);
      for (const inbox of inboxes) assert.equal(inbox.items.length, total, 'no duplicates arrive later');
      // With one stream, every node delivers in the same (commit) order.
      if ((nodes[0] as Node).backplane.store.streamCount === 1) {
        assert.deepEqual(orders[1], orders[0]);
        assert.deepEqual(orders[2], orders[0]);
      }
    });
  });
}
