// The issue's proof, on PostgreSQL with two Hubwire nodes as processes: traffic flows; both nodes' Prometheus
// endpoints show their counters moving; a stopped node (SIGSTOP) shows in the other's metrics and in the status
// (its heartbeat ages, its lag grows) and recovers when it resumes; a killed node ages out of the registry and of
// presence; and the status agrees with the metrics.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import { readStatus } from 'hubwire';
import pg from 'pg';
import { collect, startClient } from '../helpers/clients.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { sample } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const HEARTBEAT_MS = 200;
const NODE_TIMEOUT = 3 * HEARTBEAT_MS;

async function scrape(node: NodeProcess): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${node.port}/metrics`);
  assert.equal(response.status, 200);
  return response.text();
}

describe('observability on PostgreSQL (two nodes as processes)', () => {
  const schema = `hw_obs_${process.pid}_${Date.now().toString(36)}`;
  let a: NodeProcess;
  let b: NodeProcess;
  const clients: signalR.HubConnection[] = [];
  const status = () => readStatus(DATABASE_URL, { schema, nodeTimeout: NODE_TIMEOUT });

  before(async () => {
    const args = ['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', String(HEARTBEAT_MS)];
    [a, b] = (await startNodeProcesses(2, args)) as [NodeProcess, NodeProcess];
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.stop().catch(() => {})));
    b?.child.kill('SIGCONT');
    await Promise.all([a, b].map((node) => node?.stop()));
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('counters move on both nodes; a stopped node shows; a killed one ages out; status agrees', async () => {
    const onA = await startClient(a.url, { token: 'alice' });
    const onB = await startClient(b.url, { token: 'bob' });
    clients.push(onA, onB);
    const atA = collect<string>(onA, 'message');
    const atB = collect<string>(onB, 'message');
    for (let i = 0; i < 20; i++) await (i % 2 ? onB : onA).invoke('broadcast', `m${i}`);
    await atA.waitFor(20);
    await atB.waitFor(20);

    // Both endpoints show the traffic, and their counters move with more of it.
    const before = await Promise.all([scrape(a), scrape(b)]);
    const published = (text: string) =>
      sample(text, 'hubwire_backplane_messages_total', { hubwire_backplane_direction: 'published' }) ?? 0;
    const received = (text: string) =>
      sample(text, 'hubwire_backplane_messages_total', { hubwire_backplane_direction: 'received' }) ?? 0;
    const calls = (text: string) =>
      sample(text, 'hubwire_invocations_total', { hubwire_hub: '/test', hubwire_method: 'broadcast' }) ?? 0;
    for (const text of before) {
      assert.ok(published(text) >= 10 && received(text) >= 20 && calls(text) === 10, 'each node counted its half');
      assert.equal(sample(text, 'signalr_server_active_connections', { signalr_transport: 'web_sockets' }), 1);
      assert.equal(sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'alive' }), 2);
    }
    for (let i = 0; i < 10; i++) await (i % 2 ? onB : onA).invoke('broadcast', `n${i}`);
    await atA.waitFor(30);
    await atB.waitFor(30);
    const moved = await Promise.all([scrape(a), scrape(b)]);
    for (const [i, text] of moved.entries()) {
      const earlier = before[i] as string;
      assert.equal(calls(text), calls(earlier) + 5);
      assert.ok(received(text) >= received(earlier) + 10);
      assert.ok(published(text) > published(earlier));
    }

    // Node B stops (SIGSTOP): its heartbeat ages and its lag grows, in A's metrics and in the status alike.
    b.child.kill('SIGSTOP');
    for (let i = 0; i < 10; i++) await onA.invoke('broadcast', `while-b-stopped-${i}`);
    await waitFor(
      async () => {
        const text = await scrape(a);
        return (
          (sample(text, 'hubwire_cluster_node_heartbeat_age_seconds', { hubwire_node: b.nodeId }) ?? 0) >
            (2 * NODE_TIMEOUT) / 1000 && sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'dead' }) === 1
        );
      },
      10_000,
      "the stopped node's heartbeat to age in A's metrics",
    );
    const stoppedMetrics = await scrape(a);
    const lagOfB = sample(stoppedMetrics, 'hubwire_cluster_node_lag_rows', { hubwire_node: b.nodeId });
    assert.ok(lagOfB !== undefined && lagOfB >= 1, `lag of the stopped node in A's metrics: ${lagOfB}`);
    assert.equal(sample(stoppedMetrics, 'hubwire_cluster_node_lag_rows', { hubwire_node: a.nodeId }), 0);
    const stopped = await status();
    const bInStatus = stopped.nodes.find((node) => node.id === b.nodeId);
    assert.equal(bInStatus?.alive, false);
    assert.ok((bInStatus?.heartbeatAgeMs ?? 0) > 2 * NODE_TIMEOUT);
    // The status and the metrics agree: the same heads, the same positions B last reported.
    assert.equal(bInStatus?.lag, lagOfB);
    const head = stopped.streams[0]?.head;
    assert.equal(sample(stoppedMetrics, 'hubwire_backplane_stream_head', { hubwire_backplane_stream: '0' }), head);

    // B resumes: it catches up, and everyone sees it alive with no lag.
    b.child.kill('SIGCONT');
    await atB.waitFor(40, 10_000);
    await waitFor(
      async () => {
        const text = await scrape(a);
        return (
          sample(text, 'hubwire_cluster_node_lag_rows', { hubwire_node: b.nodeId }) === 0 &&
          sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'alive' }) === 2
        );
      },
      10_000,
      'the resumed node alive and caught up',
    );
    const resumed = await status();
    assert.deepEqual(
      resumed.nodes.map((node) => [node.alive, node.lag]),
      [
        [true, 0],
        [true, 0],
      ],
    );
    assert.deepEqual(await onA.invoke('usersOnline'), ['alice', 'bob']);

    // B is killed: it is reported dead, then ages out of the registry, of presence and of A's metrics.
    await b.kill();
    await waitFor(async () => (await status()).nodes.length === 1, 15_000, 'the killed node aged out of the registry');
    const text = await scrape(a);
    assert.equal(sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'alive' }), 1);
    assert.equal(sample(text, 'hubwire_cluster_nodes', { hubwire_node_state: 'dead' }), 0);
    assert.equal(sample(text, 'hubwire_cluster_node_heartbeat_age_seconds', { hubwire_node: b.nodeId }), undefined);
    assert.deepEqual(await onA.invoke('usersOnline'), ['alice']);
  });
});
