// One Hubwire node of the classic move bench (bench/classic-move.ts): the hub at /hub and the classic `BenchHub` at
// /signalr on the PostgreSQL backplane (BENCH_DB_URL, schema BENCH_SCHEMA, set by the parent); on request it
// broadcasts numbered messages at a fixed rate, and reports its CPU, hub events and backplane timings.
// Usage: servers/classic-move-node.ts <A|B>; driven over IPC.

import { PostgresStore } from '@hubwire/postgres';
import { Backplane, Hub, Hubwire } from 'hubwire';
import { cpuUs, type ToServer, toParent } from '../lib/classic-move.js';
import { nowUs } from '../lib/common.js';

process.on('disconnect', () => process.exit(0));

async function server(node: string): Promise<void> {
  const url = process.env.BENCH_DB_URL;
  const schema = process.env.BENCH_SCHEMA;
  if (!url || !schema)
    throw new Error('BENCH_DB_URL and BENCH_SCHEMA are set by the parent (npm run bench:classic-move).');
  let connected = 0;
  let disconnected = 0;
  let errors = 0;
  let sendErrors = 0;
  let lastLogged = 0;
  const logLimited = (text: string, error: unknown) => {
    const now = Date.now();
    if (now - lastLogged < 1000) return;
    lastLogged = now;
    console.error(`[node ${node}] ${text}:`, error);
  };
  class BenchHub extends Hub {
    override onConnected(): void {
      connected++;
    }
    override onDisconnected(): void {
      disconnected++;
    }
  }

  // BENCH_PG_POOL: the store's pool size (default: the store's own, 4).
  const poolSize = process.env.BENCH_PG_POOL ? Number(process.env.BENCH_PG_POOL) : undefined;
  // application_name (in the URL, which wins over the store's own) = the schema: the parent finds this run's
  // PostgreSQL backends by it, to count their CPU apart from other users of the same server.
  const connectionString = `${url}${url.includes('?') ? '&' : '?'}application_name=${schema}`;
  const store = new PostgresStore({ connectionString, schema, ...(poolSize ? { poolSize } : {}) });
  // Count every read (the engine's and the replays of moved connections): wrap the instance's method, nothing else.
  const totals = { reads: 0, rowsRead: 0 };
  const readAfter = store.readAfter.bind(store);
  store.readAfter = async (...args) => {
    const rows = await readAfter(...args);
    totals.reads++;
    totals.rowsRead += rows.length;
    return rows;
  };
  const timings = { appends: 0, appendMs: 0, replays: 0, replayMs: 0, waits: 0, waitMs: 0, waitsTimedOut: 0 };
  const append = store.append.bind(store);
  store.append = async (...args) => {
    const t = performance.now();
    try {
      return await append(...args);
    } finally {
      timings.appends++;
      timings.appendMs += performance.now() - t;
    }
  };
  const engine = new Backplane(store);
  const replay = engine.replay.bind(engine);
  engine.replay = async (...args) => {
    const t = performance.now();
    try {
      return await replay(...args);
    } finally {
      timings.replays++;
      timings.replayMs += performance.now() - t;
    }
  };
  const waitFor = engine.waitFor.bind(engine);
  engine.waitFor = async (...args) => {
    const t = performance.now();
    const caughtUp = await waitFor(...args);
    timings.waits++;
    timings.waitMs += performance.now() - t;
    if (!caughtUp) timings.waitsTimedOut++;
    return caughtUp;
  };
  const hubwire = new Hubwire({
    backplane: engine,
    onError: (error, where) => {
      errors++;
      logLimited(where, error);
    },
  });
  const hub = hubwire.mapHub('/hub', BenchHub);
  // No classicKey: the nodes share the token keys through the backplane.
  hubwire.mapClassicHubs('/signalr', { BenchHub: '/hub' });
  await hubwire.ready();
  const port = await hubwire.listen(0, '127.0.0.1');

  /** Broadcasts seq firstSeq … firstSeq + count − 1 at `rate` per second, each stamped right before its send. */
  async function publish(message: Extract<ToServer, { type: 'publish' }>): Promise<void> {
    const pending: Promise<void>[] = [];
    let failed = 0;
    const startUs = nowUs();
    let firstUs = 0;
    let lastUs = 0;
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const due = Math.min(message.count, Math.floor(((nowUs() - startUs) * message.rate) / 1e6) + 1);
        for (; i < due; i++) {
          const ts = nowUs();
          if (i === 0) firstUs = ts;
          lastUs = ts;
          pending.push(
            hub.clients.all.send('m', message.firstSeq + i, ts).catch((error: unknown) => {
              failed++;
              sendErrors++;
              logLimited('publish failed', error);
            }),
          );
        }
        if (i < message.count) setTimeout(tick, 1);
        else resolve();
      };
      tick();
    });
    let timer: NodeJS.Timeout | undefined;
    const settleTimedOut = await Promise.race([
      Promise.all(pending).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), 10_000);
      }),
    ]);
    clearTimeout(timer);
    toParent({ type: 'published', id: message.id, firstUs, lastUs, failed, settleTimedOut });
  }

  process.on('message', (message: ToServer) => {
    if (message.type === 'stats') {
      const s = engine.stats();
      toParent({
        type: 'stats',
        id: message.id,
        stats: {
          node,
          cpuUs: cpuUs(),
          connected,
          disconnected,
          errors,
          sendErrors,
          reads: totals.reads,
          rowsRead: totals.rowsRead,
          timings: { ...timings },
          engine: {
            rowsWritten: s.rowsWritten,
            rowsRead: s.rowsRead,
            published: s.published,
            errors: s.errors,
            gaps: s.gaps,
          },
        },
      });
    } else if (message.type === 'publish') {
      void publish(message);
    } else if (message.type === 'stop') {
      void hubwire.close().finally(() => process.exit(0));
      setTimeout(() => process.exit(0), 3000).unref();
    }
  });
  toParent({ type: 'ready', port });
}

const node = process.argv[2] ?? 'A';
server(node).catch((error: Error) => {
  toParent({ type: 'fatal', message: `node ${node}: ${error.stack ?? error.message}` });
  process.exit(1);
});
