// The node registry across processes on PostgreSQL: two Hubwire nodes register themselves, their heartbeats carry
// the connections they hold (by hub and transport), a node stopped cleanly leaves the registry at once, and a node
// killed with SIGKILL is reported dead after the node timeout and then ages out.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { type Backplane, backplaneFromUrl, type ClusterNode } from 'hubwire';
import pg from 'pg';
import { startClient } from '../helpers/clients.js';
import { type NodeProcess, startNodeProcess } from '../helpers/node-process.js';
import { waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const HEARTBEAT_MS = 200;

describe('the node registry on PostgreSQL (two nodes as processes)', () => {
  const schema = `hw_nodes_${process.pid}_${Date.now().toString(36)}`;
  let nodes: NodeProcess[] = [];
  let observer: Backplane;
  const clients: signalR.HubConnection[] = [];

  const registry = () => observer.nodes();
  const find = (list: ClusterNode[], id: string) => list.find((node) => node.id === id);

  before(async () => {
    nodes = await Promise.all(
      [0, 1].map(() =>
        startNodeProcess(['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', String(HEARTBEAT_MS)]),
      ),
    );
    // The test's own view of the cluster: a backplane on the same schema (it registers itself too).
    observer = await backplaneFromUrl(DATABASE_URL, {
      schema,
      heartbeatInterval: HEARTBEAT_MS,
      nodeTimeout: 3 * HEARTBEAT_MS,
      onError: () => {},
    });
    await observer.start();
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.stop().catch(() => {})));
    await Promise.all(nodes.map((node) => node.stop()));
    await observer?.close();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('every node is registered and alive, with its process, version and the connections it holds', async () => {
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    clients.push(await startClient(a.url), await startClient(a.url), await startClient(b.url));
    await waitFor(
      async () => {
        const list = await registry();
        return find(list, a.nodeId)?.info.connections === 2 && find(list, b.nodeId)?.info.connections === 1;
      },
      10_000,
      'both nodes reporting their connections',
    );
    const list = await registry();
    assert.deepEqual(
      list.map((node) => node.id).sort(),
      [a.nodeId, b.nodeId, observer.nodeId].sort(),
      'the two nodes and the observer',
    );
    const nodeA = find(list, a.nodeId) as ClusterNode;
    assert.equal(nodeA.alive, true);
    assert.equal(nodeA.self, false);
    assert.equal(find(list, observer.nodeId)?.self, true);
    assert.equal(nodeA.info.pid, a.child.pid);
    assert.equal(nodeA.info.version, '0.1.0');
    assert.match(String(nodeA.info.address), /:\d+$/);
    assert.deepEqual(nodeA.info.hubs, { '/test': 2 });
    assert.deepEqual(nodeA.info.transports, { WebSockets: 2 });
    assert.ok(nodeA.heartbeatAt.getTime() >= nodeA.startedAt.getTime());
  });

  test('a node stopped cleanly leaves the registry at once', async () => {
    const b = nodes[1] as NodeProcess;
    await b.stop();
    // Removed by its close(), not aged out: well before the node timeout would say anything.
    const list = await registry();
    assert.equal(find(list, b.nodeId), undefined);
  });

  test('a node killed with SIGKILL is reported dead after the node timeout, then ages out', async () => {
    const a = nodes[0] as NodeProcess;
    assert.equal(find(await registry(), a.nodeId)?.alive, true);
    const killedAt = Date.now();
    await a.kill();
    await waitFor(async () => find(await registry(), a.nodeId)?.alive === false, 5000, 'the killed node marked dead');
    const deadAfter = Date.now() - killedAt;
    assert.ok(deadAfter >= 2 * HEARTBEAT_MS, `not declared dead before its heartbeats were missed (${deadAfter} ms)`);
    // Pruned by the living (the observer) once its heartbeat is four node timeouts old.
    await waitFor(async () => find(await registry(), a.nodeId) === undefined, 10_000, 'the killed node pruned');
    assert.deepEqual(
      (await registry()).map((node) => node.id),
      [observer.nodeId],
    );
  });
});
