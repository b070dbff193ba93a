// One Hubwire node of the scaleout bench: hub /hub on a PostgreSQL backplane (ScaleoutEngine + PostgresStore,
// default options), in a schema of its own. The sender's client calls the hub method `broadcast(payload)` as a
// non-blocking invocation (no invocation id: no completion per message), and the method sends it to every other
// connection with `this.clients.others.send('m', payload)`. By default the method does not wait for the send to
// commit (BENCH_HUBWIRE_SEND=forget, like Socket.IO's `socket.broadcast.emit`, whose publish is not awaited
// either); BENCH_HUBWIRE_SEND=await returns the send's promise instead, so the invocation lasts until the row
// commits (and, with maximumParallelInvocationsPerClient = 1, one client's calls run one at a time).

import { PostgresStore } from '@hubwire/postgres';
import { Hub, Hubwire, ScaleoutEngine } from 'hubwire';
import { cpuUs, eventLoopMonitor, type NodeStats, requireEnv, runNode } from '../lib/scaleout.js';

const awaitSend = process.env.BENCH_HUBWIRE_SEND === 'await';
let connected = 0;
let fromSender = 0;
let sendErrors = 0;
let lastLogged = 0;

function onSendError(error: unknown): void {
  sendErrors++;
  const now = Date.now();
  if (now - lastLogged < 1000) return;
  lastLogged = now;
  console.error(`[hubwire node ${process.env.BENCH_NODE}] send failed:`, (error as Error).message ?? error);
}

class BenchHub extends Hub {
  override onConnected(): void {
    connected++;
  }
  override onDisconnected(): void {
    connected--;
  }
  broadcast(payload: unknown): Promise<void> | undefined {
    fromSender++;
    const sending = this.clients.others.send('m', payload);
    if (awaitSend) return sending.catch(onSendError);
    sending.catch(onSendError);
    return undefined;
  }
}

/** Times the store's appends and reads from the outside (the instance's methods are wrapped; nothing else changes). */
function timeStore(store: PostgresStore): () => NonNullable<NodeStats['store']> {
  const totals = { appends: 0, appendMs: 0, appendMaxMs: 0, reads: 0, readMs: 0, readMaxMs: 0 };
  const append = store.append.bind(store);
  const readAfter = store.readAfter.bind(store);
  store.append = async (...args) => {
    const started = performance.now();
    try {
      return await append(...args);
    } finally {
      const ms = performance.now() - started;
      totals.appends++;
      totals.appendMs += ms;
      if (ms > totals.appendMaxMs) totals.appendMaxMs = ms;
    }
  };
  store.readAfter = async (...args) => {
    const started = performance.now();
    try {
      return await readAfter(...args);
    } finally {
      const ms = performance.now() - started;
      totals.reads++;
      totals.readMs += ms;
      if (ms > totals.readMaxMs) totals.readMaxMs = ms;
    }
  };
  return () => {
    const snapshot = { ...totals };
    totals.appendMaxMs = 0;
    totals.readMaxMs = 0;
    return snapshot;
  };
}

await runNode(`hubwire node ${process.env.BENCH_NODE}`, async () => {
  const store = new PostgresStore({ connectionString: requireEnv('BENCH_DB_URL'), schema: requireEnv('BENCH_SCHEMA') });
  const storeTimes = timeStore(store);
  const eventLoop = eventLoopMonitor();
  const engine = new ScaleoutEngine(store);
  const hubwire = new Hubwire({
    backplane: engine,
    onError: (error, where) => console.error(`[hubwire node ${process.env.BENCH_NODE}] ${where}:`, error),
  });
  hubwire.mapHub('/hub', BenchHub);
  await hubwire.ready();
  const port = await hubwire.listen(0, '127.0.0.1');
  return {
    port,
    path: '/hub',
    stats: () => {
      const s = engine.stats();
      return {
        connections: connected,
        cpuUs: cpuUs(),
        fromSender,
        sendErrors,
        eventLoop: eventLoop(),
        store: storeTimes(),
        backplane: {
          published: s.published,
          rowsWritten: s.rowsWritten,
          rowsRead: s.rowsRead,
          delivered: s.delivered,
          errors: s.errors,
          gaps: s.gaps,
          queueLength: s.queueLength,
        },
      };
    },
    close: () => hubwire.close(),
  };
});
