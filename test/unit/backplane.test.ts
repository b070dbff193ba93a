// The scaleout engine on the memory store with fault injection: outages, ambiguous commits, full queues,
// gaps, states.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Backplane, type Envelope, MemoryDatabase, MemoryStore, type StreamState } from 'hubwire';
import { decodeBatch } from '../../packages/hubwire/src/backplane/envelope.js';
import { waitFor } from '../helpers/wait.js';

function engine(database: MemoryDatabase, options: ConstructorParameters<typeof Backplane>[1] = {}) {
  const errors: string[] = [];
  const instance = new Backplane(new MemoryStore(database), {
    retryDelay: { min: 5, max: 20 },
    pollInterval: { min: 5, max: 20 },
    onError: (error, where) => errors.push(`${where}: ${(error as Error).message}`),
    ...options,
  });
  const received: unknown[] = [];
  instance.register('/h', (envelope: Envelope) => {
    if (envelope.kind === 1) received.push(envelope.args[0]);
  });
  return { instance, received, errors };
}

/** An engine whose node writes to stream `home` (an engine picks its stream from its node id). */
function engineOnStream(database: MemoryDatabase, home: number) {
  for (;;) {
    const candidate = engine(database);
    if (candidate.instance.homeStream === home) return candidate;
  }
}

const send = (value: unknown): Envelope => ({
  kind: 1,
  hub: '/h',
  audience: { all: true },
  target: 'm',
  args: [value],
});

/** Waits (3 s at most) for a condition, named by its own source text when it fails. */
const until = (check: () => boolean) => waitFor(check, 3000, check.toString());

describe('Backplane (the database-independent engine)', () => {
  test('two nodes see every message once, in the same order', async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    const b = engine(db);
    await Promise.all([a.instance.start(), b.instance.start()]);
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) sends.push((i % 2 ? a : b).instance.publish(send(i)));
    await Promise.all(sends);
    await until(() => a.received.length === 50 && b.received.length === 50);
    assert.deepEqual(a.received, b.received);
    assert.equal(new Set(a.received).size, 50);
    assert.ok((db.tops[0] as number) < 50, 'sends in the same tick share rows');
    await a.instance.close();
    await b.instance.close();
  });

  test('during an outage sends queue in order, states go buffering → open, and nothing is lost', async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    const b = engine(db);
    await Promise.all([a.instance.start(), b.instance.start()]);
    const states: StreamState[] = [];
    a.instance.onStateChange((_stream, state) => states.push(state));
    db.down = true;
    const sends = [];
    for (let i = 0; i < 20; i++) sends.push(a.instance.publish(send(i)));
    await until(() => a.instance.stats().streams[0]?.state === 'buffering');
    assert.equal(a.instance.stats().queueLength, 20);
    db.down = false;
    await Promise.all(sends);
    await until(() => b.received.length === 20);
    assert.deepEqual(
      b.received,
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.deepEqual(states, ['buffering', 'open']);
    assert.ok(a.errors.some((e) => e.includes('ECONNREFUSED')));
    await a.instance.close();
    await b.instance.close();
  });

  test('a full queue fails new sends with a clear error; queued ones still go out', async () => {
    const db = new MemoryDatabase();
    const a = engine(db, { maxQueueLength: 5 });
    await a.instance.start();
    db.down = true;
    const queued = Array.from({ length: 5 }, (_, i) => a.instance.publish(send(i)));
    await assert.rejects(a.instance.publish(send('overflow')), {
      code: 'HW_ERR_BACKPLANE_UNAVAILABLE',
      message: /send queue is full \(5 messages\)/,
    });
    db.down = false;
    await Promise.all(queued);
    await until(() => a.received.length === 5);
    assert.deepEqual(a.received, [0, 1, 2, 3, 4]);
    await a.instance.close();
  });

  test('an ambiguous commit (connection lost after COMMIT) is retried without a duplicate', async () => {
    const db = new MemoryDatabase();
    // Each send awaited until committed: one row each.
    const a = engine(db, { acknowledge: 'committed' });
    const b = engine(db);
    await Promise.all([a.instance.start(), b.instance.start()]);
    db.ambiguousCommits = 2;
    await a.instance.publish(send('once'));
    await a.instance.publish(send('twice'));
    await until(() => b.received.length >= 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(b.received, ['once', 'twice']);
    assert.equal(db.tops[0], 2, 'two rows, no gap');
    await a.instance.close();
    await b.instance.close();
  });

  test('a reader that fell behind the retention reports the gap and goes on', async () => {
    const db = new MemoryDatabase();
    // One row per send (each awaited until committed).
    const writer = engine(db, { acknowledge: 'committed' });
    await writer.instance.start();
    // The late node's reads fail (its database connection is broken) while rows are written and trimmed.
    class BrokenReads extends MemoryStore {
      broken = true;
      override readAfter(stream: number, afterId: number, limit: number) {
        return this.broken ? Promise.reject(new Error('read failed')) : super.readAfter(stream, afterId, limit);
      }
    }
    const store = new BrokenReads(db);
    const late = new Backplane(store, {
      retryDelay: { min: 5, max: 20 },
      pollInterval: { min: 5, max: 20 },
      onError: () => {},
    });
    const received: unknown[] = [];
    late.register('/h', (envelope) => {
      if (envelope.kind === 1) received.push(envelope.args[0]);
    });
    await late.start();
    for (let i = 0; i < 5; i++) await writer.instance.publish(send(i));
    await new MemoryStore(db).trim(0, 2, 0);
    store.broken = false;
    await until(() => received.length === 2);
    assert.deepEqual(received, [3, 4], 'what survived the trim, in order');
    assert.equal(late.stats().gaps, 1);
    await writer.instance.close();
    await late.close();
  });

  test('close writes what was accepted before it stops reading and writing', async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    await a.instance.start();
    for (let i = 0; i < 100; i++) await a.instance.publish(send(i));
    await a.instance.close();
    const written = (await new MemoryStore(db).readAfter(0, 0, 1000)).flatMap(
      (row) => decodeBatch(row.payload).envelopes,
    );
    assert.deepEqual(
      written.map((e) => (e.kind === 1 ? e.args[0] : undefined)),
      Array.from({ length: 100 }, (_, i) => i),
    );
    await assert.rejects(a.instance.publish(send('late')), { code: 'HW_ERR_BACKPLANE_UNAVAILABLE' });
    assert.deepEqual(a.errors, []);
  });

  test('close gives up on an unreachable database after closeTimeout: waits reject and the loss is reported', async () => {
    const db = new MemoryDatabase();
    const a = engine(db, { closeTimeout: 50 });
    const b = engine(db, { closeTimeout: 50, acknowledge: 'committed' });
    await Promise.all([a.instance.start(), b.instance.start()]);
    db.down = true;
    await a.instance.publish(send('accepted')); // resolves: the outbox took it
    const durable = a.instance.flush();
    const committed = b.instance.publish(send('never'));
    const rejected = [
      assert.rejects(durable, { code: 'HW_ERR_BACKPLANE_UNAVAILABLE', message: /closed before/ }),
      assert.rejects(committed, { code: 'HW_ERR_BACKPLANE_UNAVAILABLE' }),
    ];
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    await Promise.all([a.instance.close(), b.instance.close()]);
    assert.ok(Date.now() - started < 1000, 'close waited about closeTimeout');
    await Promise.all(rejected);
    assert.ok(a.errors.some((e) => /1 accepted message\(s\) were not written/.test(e)));
    assert.equal(a.instance.stats().streams[0]?.state, 'closed');
  });

  test("acknowledge 'accepted': awaited sends resolve before commit and share rows; flush and whenCommitted wait for commit", async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    await a.instance.start();
    db.down = true;
    // One caller awaiting each send: with the database unreachable, they still resolve (accepted, in order).
    for (let i = 0; i < 10; i++) await a.instance.publish(send(i));
    assert.equal(a.instance.accepted, 10);
    assert.equal(a.instance.stats().published, 0);
    const mark = a.instance.accepted;
    const committed = a.instance.whenCommitted(mark);
    assert.ok(committed, 'not committed yet');
    let flushed = false;
    const flushing = a.instance.flush().then(() => {
      flushed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(flushed, false);
    db.down = false;
    await Promise.all([committed, flushing]);
    assert.equal(a.instance.stats().published, 10);
    assert.ok((db.tops[0] as number) <= 2, `awaited sends share rows (${db.tops[0]} rows for 10 sends)`);
    assert.equal(a.instance.whenCommitted(mark), undefined, 'nothing to wait for once committed');
    assert.deepEqual(
      a.received,
      Array.from({ length: 10 }, (_, i) => i),
    );
    await a.instance.close();
  });

  test('past acceptWindow a send waits until at most acceptWindow messages are uncommitted; the queue bound still holds', async () => {
    const db = new MemoryDatabase();
    // One message per row, so that commits come one at a time.
    const a = engine(db, { acceptWindow: 3, maxQueueLength: 5, batchSize: 1 });
    await a.instance.start();
    db.down = true;
    for (let i = 0; i < 3; i++) await a.instance.publish(send(i));
    let publishedWhenResolved: number | undefined;
    const waiting = a.instance.publish(send(3)).then(() => {
      publishedWhenResolved = a.instance.stats().published;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(publishedWhenResolved, undefined, 'the fourth send waits while 4 are uncommitted');
    void a.instance.publish(send(4)).catch(() => {});
    await assert.rejects(a.instance.publish(send(5)), { message: /send queue is full \(5 messages\)/ });
    db.down = false;
    await waiting;
    assert.ok(
      publishedWhenResolved !== undefined && publishedWhenResolved >= 1 && publishedWhenResolved < 4,
      `resolved once the first row committed, not its own (${publishedWhenResolved} published then)`,
    );
    await until(() => a.received.length === 5);
    assert.deepEqual(a.received, [0, 1, 2, 3, 4]);
    await a.instance.close();
  });

  test("acknowledge 'committed': a send resolves once its row committed", async () => {
    const db = new MemoryDatabase();
    const a = engine(db, { acknowledge: 'committed' });
    await a.instance.start();
    await a.instance.publish(send('x'));
    assert.equal(db.tops[0], 1);
    assert.equal(a.instance.stats().published, 1);
    assert.throws(() => engine(db, { acknowledge: 'never' as 'committed' }), /'accepted' or 'committed'/);
    await a.instance.close();
  });

  test("sync waits for this node's accepted messages before a local group change", async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    await a.instance.start();
    db.down = true;
    await a.instance.publish(send('before'));
    setTimeout(() => {
      db.down = false;
    }, 30);
    assert.equal(await a.instance.sync(2000), true);
    assert.deepEqual(a.received, ['before'], 'delivered before sync resolved');
    await a.instance.close();
  });

  test('replay: rows after a position, from memory while cached and from the database before that', async () => {
    const db = new MemoryDatabase();
    const a = engine(db, { replayCache: { rows: 8 }, acknowledge: 'committed' });
    await a.instance.start();
    const from = a.instance.positions() as number[];
    // One row per send (each awaited until committed).
    for (let i = 0; i < 30; i++) await a.instance.publish(send(i));
    const to = a.instance.positions() as number[];
    assert.equal((to[0] as number) - (from[0] as number), 30);
    const all = await a.instance.replay(from, to);
    assert.equal(all.missed, 0);
    assert.deepEqual(
      all.rows.flatMap((row) => row.envelopes.map((e) => (e.kind === 1 ? e.args[0] : undefined))),
      Array.from({ length: 30 }, (_, i) => i),
    );
    // With the database down, only what the cache holds can be replayed.
    db.down = true;
    const recent = await a.instance.replay([(to[0] as number) - 5], to);
    assert.equal(recent.rows.length, 5);
    await assert.rejects(a.instance.replay(from, to));
    db.down = false;
    // At most maxRows: the newest, the rest reported as missed.
    const capped = await a.instance.replay(from, to, 10);
    assert.equal(capped.rows.length, 10);
    assert.equal(capped.missed, 20);
    await a.instance.close();
  });

  test('replay merges streams in the order publishers saw them (stamps)', async () => {
    const db = new MemoryDatabase(2);
    // Two engines on different home streams.
    const x = engineOnStream(db, 0);
    const y = engineOnStream(db, 1);
    await Promise.all([x.instance.start(), y.instance.start()]);
    const from = x.instance.positions() as number[];
    // x1 (stream 0), then y1 (stream 1) once Y delivered x1, then x2 once X delivered y1, …
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const [node, name] = i % 2 ? [y, `y${i}`] : [x, `x${i}`];
      await node.instance.publish(send(name));
      order.push(name);
      await until(() => x.received.includes(name) && y.received.includes(name));
    }
    const to = x.instance.positions() as number[];
    // A node that reads a fresh copy (empty cache) gets the same causal order.
    const z = engine(db, { replayCache: { rows: 0 } });
    await z.instance.start();
    const replayed = await z.instance.replay(from, to);
    assert.deepEqual(
      replayed.rows.flatMap((row) => row.envelopes.map((e) => (e.kind === 1 ? e.args[0] : undefined))),
      order,
    );
    await Promise.all([x.instance.close(), y.instance.close(), z.instance.close()]);
  });

  test('waitFor: true once delivered up to a position; a wait that times out leaves no waiter behind', async () => {
    const db = new MemoryDatabase();
    const a = engine(db);
    await a.instance.start();
    const top = (a.instance.positions() as number[])[0] as number;
    assert.equal(await a.instance.waitFor([top + 1000], 30), false);
    const waiting = a.instance.waitFor([top + 1], 2000);
    await a.instance.publish(send('w'));
    assert.equal(await waiting, true);
    const readers = (a.instance as unknown as { readers: { streams: { waiters: unknown[] }[] } }).readers;
    const waiters = readers.streams[0]?.waiters;
    assert.deepEqual(waiters, []);
    await a.instance.close();
  });

  test('with two streams, a node that reads one stream late still delivers in the order publishers saw', async () => {
    const db = new MemoryDatabase(2);
    const x = engineOnStream(db, 0);
    const y = engineOnStream(db, 1);
    // Z reads stream 1 (Y's) 150 ms late.
    class LateStreamOne extends MemoryStore {
      override async readAfter(stream: number, afterId: number, limit: number) {
        if (stream === 1) await new Promise((resolve) => setTimeout(resolve, 150));
        return super.readAfter(stream, afterId, limit);
      }
    }
    const zReceived: unknown[] = [];
    const z = new Backplane(new LateStreamOne(db), { pollInterval: { min: 5, max: 20 }, onError: () => {} });
    z.register('/h', (envelope) => {
      if (envelope.kind === 1) zReceived.push(envelope.args[0]);
    });
    await Promise.all([x.instance.start(), y.instance.start(), z.start()]);
    // Y publishes; X answers once it has delivered it (as a hub reacting to a message would).
    await y.instance.publish(send('question'));
    await until(() => x.received.includes('question'));
    await x.instance.publish(send('answer'));
    await until(() => zReceived.length === 2);
    assert.deepEqual(zReceived, ['question', 'answer']);
    await Promise.all([x.instance.close(), y.instance.close(), z.close()]);
  });
});

describe('the backplane’s earlier names', () => {
  test('ScaleoutEngine and ScaleoutBus still name Backplane and BackplaneBus (deprecated aliases)', async () => {
    const hubwire = await import('hubwire');
    assert.equal(hubwire.ScaleoutEngine, hubwire.Backplane);
    assert.equal(hubwire.ScaleoutBus, hubwire.BackplaneBus);
    const old = new hubwire.ScaleoutEngine(new MemoryStore(new MemoryDatabase()));
    assert.ok(old instanceof hubwire.Backplane);
    await old.close();
  });
});
