// Presence queries across processes on PostgreSQL: three Hubwire nodes, official clients with different users in
// different groups on each; `usersOnline` and `groupMembers` asked from hub methods on every node see every node's
// connections, follow a disconnect, and after a node is killed with SIGKILL still resolve: within the query's timeout
// while the registry still says the node is alive, and promptly (without its members) once it is reported dead.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { readStatus } from 'hubwire';
import pg from 'pg';
import { startClient } from '../helpers/clients.js';
import { type NodeProcess, startNodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const HEARTBEAT_MS = 300; // a node is dead after 900 ms without a heartbeat

type Member = { connectionId: string; userId?: string };
const byId = (members: Member[]) => [...members].sort((a, b) => (a.connectionId < b.connectionId ? -1 : 1));

describe('presence queries on PostgreSQL (three nodes as processes)', { timeout: 60_000 }, () => {
  const schema = `hw_presence_${process.pid}_${Date.now().toString(36)}`;
  const status = { schema, nodeTimeout: 3 * HEARTBEAT_MS };
  let nodes: NodeProcess[] = [];
  const clients: signalR.HubConnection[] = [];
  /** One client per node, that asks the queries (as hub code, on that node). */
  let askers: signalR.HubConnection[] = [];
  let ann: signalR.HubConnection;
  let bob: signalR.HubConnection;
  let cid: signalR.HubConnection;
  let anonymous: signalR.HubConnection;

  const connect = async (node: NodeProcess, token?: string) => {
    const client = await startClient(node.url, { token });
    clients.push(client);
    return client;
  };
  const users = (asker: signalR.HubConnection, timeout = 0) => asker.invoke<string[]>('usersOnline', timeout);
  const members = (asker: signalR.HubConnection, group: string, timeout = 0) =>
    asker.invoke<Member[]>('groupMembers', group, timeout);

  before(async () => {
    nodes = await Promise.all(
      [0, 1, 2].map(() =>
        startNodeProcess(['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', String(HEARTBEAT_MS)]),
      ),
    );
    const [a, b, c] = nodes as [NodeProcess, NodeProcess, NodeProcess];
    ann = await connect(a, 'ann');
    anonymous = await connect(a);
    bob = await connect(b, 'bob');
    cid = await connect(c, 'cid');
    askers = [ann, await connect(b, 'bob'), cid];
    await ann.invoke('joinGroup', 'red');
    await bob.invoke('joinGroup', 'red');
    await bob.invoke('joinGroup', 'blue');
    await cid.invoke('joinGroup', 'blue');
    await anonymous.invoke('joinGroup', 'blue');
    // Every node registered (a node missing from the registry is not waited for).
    await waitFor(
      async () => (await readStatus(DATABASE_URL, status)).nodes.filter((node) => node.alive).length === 3,
      10_000,
      'three live nodes in the registry',
    );
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.stop().catch(() => {})));
    await Promise.all(nodes.map((node) => node.stop()));
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test("every node sees every node's users and group members", async () => {
    const red = byId([
      { connectionId: ann.connectionId as string, userId: 'ann' },
      { connectionId: bob.connectionId as string, userId: 'bob' },
    ]);
    const blue = byId([
      { connectionId: bob.connectionId as string, userId: 'bob' },
      { connectionId: cid.connectionId as string, userId: 'cid' },
      { connectionId: anonymous.connectionId as string },
    ]);
    for (const asker of askers) {
      const started = Date.now();
      assert.deepEqual(await users(asker), ['ann', 'bob', 'cid']);
      assert.ok(Date.now() - started < 2000, `every node answered, no timeout (${Date.now() - started} ms)`);
      assert.deepEqual(await members(asker, 'red'), red);
      assert.deepEqual(await members(asker, 'blue'), blue);
      assert.deepEqual(await members(asker, 'green'), []);
    }
  });

  test("a client that disconnects is gone from every node's answer", async () => {
    await bob.stop();
    const asker = askers[0] as signalR.HubConnection;
    await waitFor(async () => (await members(asker, 'red')).length === 1, 5000, "bob's connection gone");
    for (const each of askers) {
      // The other connection of user bob (node B's asker) is still online.
      assert.deepEqual(await users(each), ['ann', 'bob', 'cid']);
      assert.deepEqual(await members(each, 'red'), [{ connectionId: ann.connectionId as string, userId: 'ann' }]);
      assert.equal((await members(each, 'blue')).length, 2);
    }
  });

  test('after a node is killed, queries resolve within their timeout, then promptly without its members', async () => {
    const c = nodes[2] as NodeProcess;
    const [onA, onB] = askers as [signalR.HubConnection, signalR.HubConnection];
    await c.kill();
    // The registry still says node C is alive: the queries wait for their timeout (1500 ms; the default, 5000 ms,
    // on node B), then resolve with the nodes that answered.
    const timed = async (query: Promise<unknown>) => {
      const started = Date.now();
      const result = await query;
      return { result, ms: Date.now() - started };
    };
    const [fromA, fromB] = await Promise.all([timed(users(onA, 1500)), timed(members(onB, 'blue'))]);
    assert.deepEqual(fromA.result, ['ann', 'bob']);
    assert.ok(fromA.ms >= 1400 && fromA.ms < 3000, `node A waited for its timeout, no longer (${fromA.ms} ms)`);
    assert.deepEqual(fromB.result, [{ connectionId: anonymous.connectionId as string }]);
    assert.ok(fromB.ms < 7000, `node B resolved within the default timeout (${fromB.ms} ms)`);

    // Once the registry reports it dead or pruned it (and the nodes' one-second cache of it has expired), no more
    // waiting.
    await waitFor(
      async () => (await readStatus(DATABASE_URL, status)).nodes.find((node) => node.id === c.nodeId)?.alive !== true,
      10_000,
      'node C reported dead (or pruned)',
    );
    await new Promise((resolve) => setTimeout(resolve, 1100));
    for (const asker of [onA, onB]) {
      const started = Date.now();
      assert.deepEqual(await users(asker), ['ann', 'bob']);
      assert.deepEqual(await members(asker, 'blue'), [{ connectionId: anonymous.connectionId as string }]);
      assert.ok(Date.now() - started < 1500, `prompt once node C is dead (${Date.now() - started} ms)`);
    }
  });
});
