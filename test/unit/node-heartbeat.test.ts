// A backplane's row in the node registry, on the memory store: registered at start with what the node says about
// itself, refreshed every heartbeatInterval, removed by close(); the registry tells the living from the dead.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backplane, type BackplaneStore, MemoryDatabase, MemoryStore, supportsNodes } from 'hubwire';
import { delay, waitFor } from '../helpers/wait.js';

const quick = { heartbeatInterval: 100, nodeTimeout: 300, onError: () => {} };

describe('the node heartbeat of a Backplane', () => {
  test('nodes() lists every started node, alive, with its info; close() removes it at once', async () => {
    const database = new MemoryDatabase();
    const a = new Backplane(new MemoryStore(database), quick);
    const b = new Backplane(new MemoryStore(database), quick);
    let connections = 1;
    a.setNodeInfo(() => ({ connections }));
    await Promise.all([a.start(), b.start()]);
    await waitFor(async () => (await a.nodes()).length === 2, 2000, 'both nodes registered');
    const list = await a.nodes();
    assert.deepEqual(
      list.map((node) => [node.id, node.alive, node.self]).sort(),
      [
        [a.nodeId, true, true],
        [b.nodeId, true, false],
      ].sort(),
    );
    const infoA = list.find((node) => node.id === a.nodeId)?.info;
    assert.equal(infoA?.connections, 1);
    // The backplane adds where the node stands in the streams (for `hubwire status`).
    assert.deepEqual(infoA?.backplane, {
      epoch: a.epoch,
      retention: { rows: 10_000, ageMs: 60_000 },
      queueLength: 0,
      streams: [{ stream: 0, state: 'open', position: a.positions()?.[0], head: a.positions()?.[0], behindMs: 0 }],
    });
    assert.deepEqual(Object.keys(list.find((node) => node.id === b.nodeId)?.info ?? {}), ['backplane']);
    connections = 7;
    await waitFor(
      async () => (await b.nodes()).find((node) => node.id === a.nodeId)?.info.connections === 7,
      2000,
      'the next heartbeat carrying the new info',
    );
    await a.close();
    assert.deepEqual(
      (await b.nodes()).map((node) => node.id),
      [b.nodeId],
    );
    await b.close();
    assert.equal(database.nodes.size, 0);
  });

  test('a node whose heartbeat stopped is dead after nodeTimeout, and pruned after four', async () => {
    const database = new MemoryDatabase();
    const living = new Backplane(new MemoryStore(database), quick);
    await living.start();
    // A node that died without closing: its row stays, its heartbeat does not move.
    const store = new MemoryStore(database);
    await store.heartbeatNode('dead-node', '{}');
    assert.equal((await living.nodes()).find((node) => node.id === 'dead-node')?.alive, true);
    await delay(400);
    assert.equal((await living.nodes()).find((node) => node.id === 'dead-node')?.alive, false);
    await waitFor(
      async () => !(await living.nodes()).some((node) => node.id === 'dead-node'),
      3000,
      'the dead node pruned by the living one',
    );
    await living.close();
  });

  test('info that cannot be encoded, or is over 4096 bytes, is reported and sent as {}', async () => {
    const errors: string[] = [];
    const database = new MemoryDatabase();
    const node = new Backplane(new MemoryStore(database), { ...quick, onError: (error) => errors.push(String(error)) });
    node.setNodeInfo(() => ({ big: 'x'.repeat(5000) }));
    await node.start();
    await waitFor(() => database.nodes.size === 1, 2000, 'registered');
    assert.equal(database.nodes.get(node.nodeId)?.info, '{}');
    assert.ok(errors.some((error) => /over 4096 bytes/.test(error)));
    await node.close();
  });

  test('a store without a node registry: nodes() rejects with a clear error, the rest works', async () => {
    const memory = new MemoryStore(new MemoryDatabase());
    const plain: BackplaneStore = {
      kind: 'plain',
      streamCount: 1,
      install: () => memory.install(),
      append: (...args) => memory.append(...args),
      readAfter: (...args) => memory.readAfter(...args),
      top: (stream) => memory.top(stream),
      trim: (...args) => memory.trim(...args),
      subscribe: (onChange) => memory.subscribe(onChange),
      close: () => memory.close(),
    };
    assert.equal(supportsNodes(plain), false);
    const node = new Backplane(plain, quick);
    await node.start();
    await assert.rejects(node.nodes(), /keeps no node registry/);
    await node.close();
  });

  test('heartbeatInterval below 100 ms, or a nodeTimeout not above it, is refused', () => {
    const store = new MemoryStore(new MemoryDatabase());
    assert.throws(() => new Backplane(store, { heartbeatInterval: 50 }), /heartbeatInterval/);
    assert.throws(() => new Backplane(store, { heartbeatInterval: 1000, nodeTimeout: 1000 }), /nodeTimeout/);
  });
});
