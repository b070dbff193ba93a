// One Hubwire node of the scaleout bench: the README's chat hub at /hub on a SQL backplane (Backplane with
// default options on the store of BENCH_BACKPLANE_URL: postgres://…, sqlite:<file> or mysql://…, in the schema /
// table prefix BENCH_SCHEMA; what `backplaneFromUrl(url, { schema })` builds).
//
// The hub is the README's, as written: `send(name, message)` returns the broadcast's promise, so the invocation
// lasts until the backplane acknowledges the send. `sendForget` is the fire-and-forget variant (the promise is not
// returned; its rejection is caught). Node A also runs the server-side publisher on request: a loop of
// `await hubContext.clients.all.broadcastMessage(name, message)` paced to the offered rate, with the hub context
// that `mapHub` returned.
//
// Nothing in the hub is instrumented. The node times from outside: the store instance's append and readAfter are
// wrapped, the engine instance's publish is wrapped, and an engine observer sees every envelope it delivers; each
// message's stamp (`#seq:ts:` in the message) gives sender → publish, publish → delivered back here (the row
// committed), and sender → handed to the hub from another node's row.
//
// BENCH_NODE_METRICS (set by the parent from BENCH_METRICS): `on`, metrics on and collected once a second; `off`,
// `metrics: false` (see lib/hubwire-metrics.ts). BENCH_STICKY_SESSIONS=1: `stickySessions: true` (bench/no-sticky.ts
// compares it with the default, connections on any node). BENCH_STATEFUL=1: the hub with `allowStatefulReconnects:
// true` (for clients built with `withStatefulReconnect()`). Envelopes published are counted by kind (`publishes` in
// the stats): sends, connection records, stateful-reconnect checkpoints.

import { Backplane, type BackplanePackage, type BackplaneStore, Hub, type HubClients, Hubwire } from 'hubwire';
import { Histogram, nowUs } from '../lib/common.js';
import { collectMetrics, metricsOption, metricsSetting } from '../lib/hubwire-metrics.js';
import {
  cpuUs,
  decodeStamp,
  eventLoopMonitor,
  MESSAGE_NAME,
  type NodeStats,
  publishPaced,
  requireEnv,
  runNode,
} from '../lib/scaleout.js';

interface ChatClient {
  broadcastMessage(name: string, message: string): void;
}

const NODE = process.env.BENCH_NODE;
const MESSAGE_BYTES = Number(process.env.BENCH_MESSAGE_BYTES ?? 100);
let connected = 0;
let sendErrors = 0;
let lastLogged = 0;

function onSendError(error: unknown): void {
  const now = Date.now();
  if (now - lastLogged < 1000) return;
  lastLogged = now;
  console.error(`[hubwire node ${NODE}] send failed:`, (error as Error).message ?? error);
}

class ChatHub extends Hub<ChatClient> {
  // Connection counting only: the parent waits until every client is in.
  override onConnected(): void {
    connected++;
  }
  override onDisconnected(): void {
    connected--;
  }

  // The README's hub method, as written.
  send(name: string, message: string) {
    return this.clients.all.broadcastMessage(name, message);
  }

  // Fire-and-forget: the invocation ends at once; a failed send is only logged.
  joinGroup(group: string) {
    return this.groups.add(this.context.connectionId, group);
  }

  sendToGroup(group: string, name: string, message: string) {
    return this.clients.group(group).broadcastMessage(name, message);
  }

  sendForget(name: string, message: string) {
    this.clients.all.broadcastMessage(name, message).catch(onSendError);
  }
}

// --- Timing from outside -----------------------------------------------------------------------------------------

const timings = {
  toPublish: new Histogram(),
  publishToLocal: new Histogram(),
  toRemoteHub: new Histogram(),
  append: new Histogram(),
};
const storeTotals = {
  appends: 0,
  appendMs: 0,
  appendMaxMs: 0,
  reads: 0,
  readMs: 0,
  readMaxMs: 0,
  rowsRead: 0,
  tops: 0,
};
/** When each recent message (by seq) was published on this node, µs; 0 when it was not. */
const PUBLISHED_RING = 1 << 18;
const publishedAt = new Float64Array(PUBLISHED_RING);

/** Envelopes published by this node, by what they carry (NodeStats.publishes). */
const publishes = { sends: 0, recordMarks: 0, recordMessages: 0, checkpointNotices: 0, checkpoints: 0, other: 0 };

/** The key stateful-reconnect checkpoints travel under (hubwire's hub/moves/stateful-moves.ts). */
const MOVES_KEY = 'hubwire:moves';

function countPublish(envelope: unknown): void {
  const e = envelope as {
    kind?: number;
    hub?: string;
    record?: { kind?: string };
    data?: { op?: unknown; list?: unknown };
  };
  if (e.kind === 1) publishes.sends++;
  else if (e.kind === 9) {
    if (e.record?.kind === 'mark') publishes.recordMarks++;
    else publishes.recordMessages++;
  } else if (e.kind === 5 && e.hub === MOVES_KEY && e.data?.op === 'checkpoints') {
    publishes.checkpointNotices++;
    publishes.checkpoints += Array.isArray(e.data.list) ? e.data.list.length : 0;
  } else publishes.other++;
}

/** The stamp of a chat message in an envelope, or undefined for anything else. */
function stampOf(envelope: unknown): { seq: number; ts: number } | undefined {
  const e = envelope as { kind?: number; args?: unknown[] };
  if (e.kind !== 1 || !e.args) return undefined;
  const message = e.args[1];
  if (typeof message !== 'string' || message.charCodeAt(0) !== 35) return undefined; // '#'
  const stamp = decodeStamp(message, 0);
  return stamp.seq < 0 ? undefined : stamp;
}

function timeStore(store: BackplaneStore): void {
  const append = store.append.bind(store);
  const readAfter = store.readAfter.bind(store);
  const top = store.top.bind(store);
  store.append = async (...args) => {
    const started = performance.now();
    try {
      return await append(...args);
    } finally {
      const ms = performance.now() - started;
      storeTotals.appends++;
      storeTotals.appendMs += ms;
      if (ms > storeTotals.appendMaxMs) storeTotals.appendMaxMs = ms;
      timings.append.add(ms * 1000);
    }
  };
  store.readAfter = async (...args) => {
    const started = performance.now();
    let rows = 0;
    try {
      const result = await readAfter(...args);
      rows = result.length;
      return result;
    } finally {
      const ms = performance.now() - started;
      storeTotals.reads++;
      storeTotals.readMs += ms;
      storeTotals.rowsRead += rows;
      if (ms > storeTotals.readMaxMs) storeTotals.readMaxMs = ms;
    }
  };
  store.top = (...args) => {
    storeTotals.tops++;
    return top(...args);
  };
}

function timeEngine(engine: Backplane): void {
  const publish = engine.publish.bind(engine);
  engine.publish = (envelope) => {
    countPublish(envelope);
    const stamp = stampOf(envelope);
    if (stamp) {
      const now = nowUs();
      timings.toPublish.add(now - stamp.ts);
      publishedAt[stamp.seq % PUBLISHED_RING] = now;
    }
    const result = publish(envelope);
    result.catch(() => {
      sendErrors++;
    });
    return result;
  };
  engine.observe((envelope) => {
    const stamp = stampOf(envelope);
    if (!stamp) return;
    const now = nowUs();
    const at = publishedAt[stamp.seq % PUBLISHED_RING] as number;
    if (at > 0) {
      timings.publishToLocal.add(now - at);
      publishedAt[stamp.seq % PUBLISHED_RING] = 0;
    } else {
      timings.toRemoteHub.add(now - stamp.ts);
    }
  });
}

/** Every number in the engine's stats (nested objects flattened), whatever fields this version of it has. */
function engineNumbers(stats: object, prefix = '', into: Record<string, number> = {}): Record<string, number> {
  for (const [key, value] of Object.entries(stats)) {
    if (typeof value === 'number') into[prefix + key] = value;
    else if (value && typeof value === 'object' && !Array.isArray(value))
      engineNumbers(value, `${prefix}${key}.`, into);
  }
  return into;
}

const PACKAGES: [RegExp, string][] = [
  [/^postgres(ql)?:/i, '@hubwire/postgres'],
  [/^sqlite:/i, '@hubwire/sqlite'],
  [/^(mysql|mariadb):/i, '@hubwire/mysql'],
];

await runNode(`hubwire node ${NODE}`, async () => {
  const url = requireEnv('BENCH_BACKPLANE_URL');
  const name = PACKAGES.find(([test]) => test.test(url))?.[1];
  if (!name) throw new Error(`no backplane package for ${url}`);
  const backplanePackage = (await import(name)) as BackplanePackage;
  // What backplaneFromUrl(url, { schema }) does, with the store in hand to time it.
  const store = backplanePackage.createStore(url, { schema: requireEnv('BENCH_SCHEMA') });
  timeStore(store);
  const engine = new Backplane(store);
  timeEngine(engine);
  const eventLoop = eventLoopMonitor();
  const metrics = metricsSetting('BENCH_NODE_METRICS');
  const hubwire = new Hubwire({
    backplane: engine,
    onError: (error, where) => console.error(`[hubwire node ${NODE}] ${where}:`, error),
    ...metricsOption(metrics),
    ...(process.env.BENCH_STICKY_SESSIONS === '1' ? { stickySessions: true } : {}),
  });
  const chat = hubwire.mapHub(
    '/hub',
    ChatHub,
    process.env.BENCH_STATEFUL === '1' ? { allowStatefulReconnects: true } : {},
  );
  const clients = chat.clients as HubClients<ChatClient>;
  await hubwire.ready();
  collectMetrics(hubwire, metrics, `hubwire node ${NODE}`);
  const port = await hubwire.listen(0, '127.0.0.1');

  /** The server-side publisher: one awaited broadcast at a time, each due at start + i / rate. */
  const publish = (firstSeq: number, count: number, rate: number) =>
    publishPaced(
      firstSeq,
      count,
      rate,
      MESSAGE_BYTES,
      (message) => clients.all.broadcastMessage(MESSAGE_NAME, message),
      onSendError,
    );

  return {
    port,
    path: '/hub',
    stats: (): NodeStats => {
      const snapshot: NodeStats = {
        connections: connected,
        cpuUs: cpuUs(),
        sendErrors,
        eventLoop: eventLoop(),
        store: { ...storeTotals },
        timings: {
          toPublish: timings.toPublish.buckets,
          publishToLocal: timings.publishToLocal.buckets,
          toRemoteHub: timings.toRemoteHub.buckets,
          append: timings.append.buckets,
        },
        engine: engineNumbers(engine.stats()),
        publishes: { ...publishes },
      };
      storeTotals.appendMaxMs = 0;
      storeTotals.readMaxMs = 0;
      timings.toPublish = new Histogram();
      timings.publishToLocal = new Histogram();
      timings.toRemoteHub = new Histogram();
      timings.append = new Histogram();
      return snapshot;
    },
    publish,
    close: () => hubwire.close(),
  };
});
