// What "no sticky sessions" costs: classic SignalR 2 long-polling clients on two Hubwire nodes sharing a PostgreSQL
// backplane, whose polls either always go to the client's home node (sticky) or alternate between the two nodes on
// every poll (moving: each poll lands on the node that did not write its cursor, which rebuilds the connection from
// the backplane). Node A broadcasts numbered messages at a fixed offered rate; every client must get every message
// once and in order. Per mode: deliveries/s, latency p50/p99 (publish → receipt), losses, duplicates, reorders,
// server and PostgreSQL CPU per delivery, backplane rows read and written. See bench/README.md ("Classic move
// benchmark").
//
// One file, three roles, each its own process: the parent (no argument), `server <A|B>` (Hubwire on the PostgreSQL
// backplane: hub at /hub, classic `BenchHub` at /signalr) and `clients <portA> <portB>` (HTTP long polls speaking
// the classic protocol by hand over a keep-alive agent).

import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { PostgresStore } from '@hubwire/postgres';
import { Hub, Hubwire, ScaleoutEngine } from 'hubwire';
import pg from 'pg';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import { envInt, HISTOGRAM_BUCKETS, Histogram, nowUs, SetupError } from './lib/common.js';
import {
  assertLocalDatabase,
  cpuStallUs,
  dropSchemas,
  postgresCpu,
  postgresCpuBetween,
  scratchName,
  sweepStaleSchemas,
  withClient,
} from './lib/postgres.js';

type Mode = 'sticky' | 'moving';
const MODES: Mode[] = ['sticky', 'moving'];

interface ServerStats {
  node: string;
  /** process.cpuUsage() user + system, µs. */
  cpuUs: number;
  /** onConnected / onDisconnected calls of the hub on this node so far. */
  connected: number;
  disconnected: number;
  /** Hubwire's onError calls and failed publishes so far. */
  errors: number;
  sendErrors: number;
  /** Every store.readAfter (the engine's own reads and the replays of moved connections): calls and rows. */
  reads: number;
  rowsRead: number;
  /**
   * Timings of the backplane from the outside (instance methods wrapped): the store's appends (ms total), the
   * engine's replays (a moved connection reading the rows after its cursor) and waitFor calls (a moved connection
   * waiting until this node has delivered up to its cursor), count and total ms each.
   */
  timings: {
    appends: number;
    appendMs: number;
    replays: number;
    replayMs: number;
    waits: number;
    waitMs: number;
    waitsTimedOut: number;
  };
  /** ScaleoutEngine.stats(). */
  engine: { rowsWritten: number; rowsRead: number; published: number; errors: number; gaps: number };
}

type ToServer =
  | { type: 'stats'; id: number }
  | { type: 'publish'; id: number; firstSeq: number; count: number; rate: number }
  | { type: 'stop' };
type FromServer =
  | { type: 'ready'; port: number }
  | { type: 'stats'; id: number; stats: ServerStats }
  | { type: 'published'; id: number; firstUs: number; lastUs: number; failed: number; settleTimedOut: boolean }
  | { type: 'fatal'; message: string };

interface PhaseReport {
  /** Deliveries of this phase's seqs (duplicates included). */
  received: number;
  /** Expected deliveries never received (seq × client). */
  lost: number;
  /** Deliveries of a seq the client already had. */
  duplicates: number;
  /** First deliveries of a seq after a higher seq had arrived at the same client. */
  reordered: number;
  /** Deliveries of seqs outside this phase (late ones of an earlier phase). */
  stray: number;
  lastUs: number;
  buckets: Uint32Array;
  /** Polls answered during the phase, and how many went to the other node than the previous request. */
  polls: number;
  moves: number;
  /** How long each poll took, request to full answer (held while there was nothing to send), µs. */
  pollBuckets: Uint32Array;
  /** Requests retried after a reset of a reused keep-alive socket (client side, see http()). */
  resets: number;
  /** Clients process CPU over the phase, µs. */
  cpuUs: number;
  /** For the first clients with a loss or duplicate: what happened (diagnostics). */
  examples: string[];
}

type ToClients =
  | { type: 'connect'; id: number }
  | { type: 'mode'; id: number; mode: Mode }
  | { type: 'phase'; id: number; firstSeq: number; count: number }
  | { type: 'end'; id: number }
  | { type: 'stop' };
type FromClients =
  | { type: 'connected'; id: number; ms: number; home: [number, number] }
  | { type: 'ack'; id: number }
  | { type: 'complete'; firstSeq: number }
  | { type: 'report'; id: number; report: PhaseReport }
  | { type: 'fatal'; message: string };

const role = process.argv[2];
const toParent = (message: FromServer | FromClients) => {
  if (!process.send || !process.connected) process.exit(1);
  process.send(message);
};
if (role) process.on('disconnect', () => process.exit(0));

const cpuUs = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

// --- Server (one node) ---------------------------------------------------------------------------------------------
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
  const engine = new ScaleoutEngine(store);
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

// --- Clients -------------------------------------------------------------------------------------------------------
interface Client {
  index: number;
  /** 0 = node A, 1 = node B: where it negotiated, connected and started, and where sticky polls go. */
  home: number;
  query: string;
  cursor: string;
  groupsToken: string | undefined;
  /** The node of its previous request. */
  at: number;
  /** Highest seq received so far (any phase), for the order check. */
  maxSeq: number;
}

interface Phase {
  firstSeq: number;
  count: number;
  /** Deliveries per (client, seq): client × count + (seq − firstSeq). */
  counts: Uint8Array;
  /** Distinct seqs of the phase each client has. */
  have: Uint32Array;
  complete: number;
  histogram: Histogram;
  received: number;
  duplicates: number;
  reordered: number;
  stray: number;
  lastUs: number;
  polls: number;
  moves: number;
  pollTimes: Histogram;
  resetsStart: number;
  cpuStart: number;
  examples: string[];
}

async function clients(ports: [number, number]): Promise<void> {
  const count = CLIENTS;
  // No socket cap: every client holds a poll open, on either node. With an agent `timeout`, Node closes idle sockets
  // a second before the server's `Keep-Alive: timeout=5` hint (without one it ignores the hint); the race that is
  // left (the server closes an idle socket just as a request goes out on it) is retried below.
  const agent = new Agent({ keepAlive: true, timeout: 60_000 });
  /** Requests sent again after a reused keep-alive socket was reset (Node's documented retry). */
  let resets = 0;
  const hubs = encodeURIComponent(JSON.stringify([{ name: 'benchhub' }]));
  const list: Client[] = [];
  let mode: Mode = 'sticky';
  let phase: Phase | undefined;
  /** Messages that arrived between two phases (late ones of the phase before): counted as stray in the next. */
  let betweenPhases = 0;
  let stopping = false;

  /**
   * One request. A reused keep-alive socket that the server closed meanwhile fails with ECONNRESET before the server
   * read anything: the request is sent again, once (for a poll: the same cursor, so nothing is lost or repeated).
   */
  async function http(nodeIndex: number, path: string, method = 'GET', body?: string): Promise<string> {
    try {
      return await httpOnce(nodeIndex, path, method, body);
    } catch (error) {
      if (!(error as { reusedSocket?: boolean }).reusedSocket || stopping) throw error;
      resets++;
      return httpOnce(nodeIndex, path, method, body);
    }
  }

  function httpOnce(nodeIndex: number, path: string, method: string, body?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        `http://127.0.0.1:${ports[nodeIndex]}${path}`,
        {
          method,
          agent,
          headers: body !== undefined ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {},
          // A poll is held up to 110 s; nothing in this bench waits that long.
          timeout: 60_000,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.on('end', () =>
            response.statusCode === 200
              ? resolve(text)
              : reject(
                  new Error(
                    `${method} ${path.split('?')[0]} on node ${'AB'[nodeIndex]}: ${response.statusCode} ${text}`,
                  ),
                ),
          );
          response.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${path.split('?')[0]}: no answer in 60 s`)));
      req.on('error', (error: NodeJS.ErrnoException) => {
        const reset = error.code === 'ECONNRESET' && req.reusedSocket;
        reject(
          Object.assign(
            new Error(
              `${method} ${path.split('?')[0]} on node ${'AB'[nodeIndex]}: ${error.message}` +
                `${req.reusedSocket ? ' (on a reused keep-alive socket)' : ''}`,
            ),
            { reusedSocket: reset },
          ),
        );
      });
      req.end(body);
    });
  }

  function onMessages(client: Client, items: { A?: unknown[] }[]): void {
    const receivedUs = nowUs();
    const p = phase;
    for (const item of items) {
      const seq = item.A?.[0] as number;
      const ts = item.A?.[1] as number;
      if (typeof seq !== 'number' || typeof ts !== 'number') continue;
      const newer = seq > client.maxSeq;
      if (newer) client.maxSeq = seq;
      if (!p) {
        betweenPhases++;
        continue;
      }
      const index = seq - p.firstSeq;
      if (index < 0 || index >= p.count) {
        p.stray++;
        continue;
      }
      p.received++;
      p.lastUs = receivedUs;
      p.histogram.add(receivedUs - ts);
      const slot = client.index * p.count + index;
      const times = p.counts[slot] as number;
      p.counts[slot] = Math.min(255, times + 1);
      if (times > 0) {
        p.duplicates++;
        if (p.examples.length < 5) p.examples.push(`client ${client.index}: seq ${seq} again (mode ${mode})`);
        continue;
      }
      if (!newer) p.reordered++;
      const have = (p.have[client.index] as number) + 1;
      p.have[client.index] = have;
      if (have === p.count) {
        p.complete++;
        if (p.complete === count) toParent({ type: 'complete', firstSeq: p.firstSeq });
      }
    }
  }

  async function pollLoop(client: Client): Promise<void> {
    while (!stopping) {
      const target = mode === 'sticky' ? client.home : 1 - client.at;
      const form = new URLSearchParams({ messageId: client.cursor });
      if (client.groupsToken !== undefined) form.set('groupsToken', client.groupsToken);
      const sentUs = nowUs();
      const text = await http(target, `/signalr/poll?${client.query}`, 'POST', form.toString());
      if (stopping) return;
      if (phase) {
        phase.pollTimes.add(nowUs() - sentUs);
        phase.polls++;
        if (target !== client.at) phase.moves++;
      }
      client.at = target;
      const trimmed = text.trim(); // keep-alive spaces may come first
      const envelope = JSON.parse(trimmed) as { C?: string; G?: string; T?: number; M?: { A?: unknown[] }[] };
      if (!envelope.C)
        throw new Error(`poll on node ${'AB'[target]} answered without a cursor: ${trimmed.slice(0, 200)}`);
      if (envelope.T === 1) throw new Error(`poll on node ${'AB'[target]} asked to reconnect (T:1)`);
      client.cursor = envelope.C;
      if (envelope.G !== undefined) client.groupsToken = envelope.G;
      if (envelope.M?.length) onMessages(client, envelope.M);
    }
  }

  async function connect(index: number): Promise<Client> {
    const home = index % 2;
    const negotiated = JSON.parse(await http(home, `/signalr/negotiate?clientProtocol=2.1&connectionData=${hubs}`)) as {
      ConnectionToken: string;
    };
    const query = `transport=longPolling&clientProtocol=2.1&connectionToken=${encodeURIComponent(negotiated.ConnectionToken)}&connectionData=${hubs}`;
    const init = JSON.parse((await http(home, `/signalr/connect?${query}`, 'POST', '')).trim()) as {
      C: string;
      G?: string;
      S?: number;
    };
    if (init.S !== 1 || !init.C) throw new Error(`connect: unexpected init message ${JSON.stringify(init)}`);
    const started = await http(home, `/signalr/start?${query}`);
    if (!started.includes('started')) throw new Error(`start: unexpected answer ${started}`);
    return { index, home, query, cursor: init.C, groupsToken: init.G, at: home, maxSeq: 0 };
  }

  process.on('message', (message: ToClients) => {
    if (message.type === 'connect') {
      const t0 = Date.now();
      (async () => {
        for (let i = 0; i < count; i += 50) {
          const batch = await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => connect(i + j)));
          list.push(...batch);
        }
        for (const client of list) {
          pollLoop(client).catch((error: Error) => {
            if (!stopping)
              toParent({ type: 'fatal', message: `client ${client.index} (mode ${mode}): ${error.message}` });
          });
        }
        toParent({
          type: 'connected',
          id: message.id,
          ms: Date.now() - t0,
          home: [list.filter((c) => c.home === 0).length, list.filter((c) => c.home === 1).length],
        });
      })().catch((error: Error) => toParent({ type: 'fatal', message: `connecting: ${error.message}` }));
    } else if (message.type === 'mode') {
      mode = message.mode;
      toParent({ type: 'ack', id: message.id });
    } else if (message.type === 'phase') {
      phase = {
        firstSeq: message.firstSeq,
        count: message.count,
        counts: new Uint8Array(count * message.count),
        have: new Uint32Array(count),
        complete: 0,
        histogram: new Histogram(),
        received: 0,
        duplicates: 0,
        reordered: 0,
        stray: betweenPhases,
        lastUs: 0,
        polls: 0,
        moves: 0,
        pollTimes: new Histogram(),
        resetsStart: resets,
        cpuStart: cpuUs(),
        examples: [],
      };
      betweenPhases = 0;
      toParent({ type: 'ack', id: message.id });
    } else if (message.type === 'end') {
      const p = phase;
      phase = undefined;
      if (!p) {
        toParent({ type: 'fatal', message: 'clients: end of a phase that was not started' });
        return;
      }
      let lost = 0;
      for (let c = 0; c < count; c++) {
        const missing = p.count - (p.have[c] as number);
        if (missing === 0) continue;
        lost += missing;
        if (p.examples.length < 10) {
          const seqs: number[] = [];
          for (let i = 0; i < p.count && seqs.length < 5; i++)
            if (p.counts[c * p.count + i] === 0) seqs.push(p.firstSeq + i);
          const client = list[c] as Client;
          p.examples.push(
            `client ${c} (home ${'AB'[client.home]}, last request on ${'AB'[client.at]}): ${missing} missing, e.g. seq ${seqs.join(', ')}; cursor ${client.cursor.slice(0, 80)}`,
          );
        }
      }
      toParent({
        type: 'report',
        id: message.id,
        report: {
          received: p.received,
          lost,
          duplicates: p.duplicates,
          reordered: p.reordered,
          stray: p.stray,
          lastUs: p.lastUs,
          buckets: p.histogram.buckets,
          polls: p.polls,
          moves: p.moves,
          pollBuckets: p.pollTimes.buckets,
          resets: resets - p.resetsStart,
          cpuUs: cpuUs() - p.cpuStart,
          examples: p.examples,
        },
      });
    } else if (message.type === 'stop') {
      stopping = true;
      agent.destroy();
      process.exit(0);
    }
  });
}

// --- Parent --------------------------------------------------------------------------------------------------------
const CLIENTS = envInt('BENCH_CLASSIC_MOVE_CLIENTS', 100, 2, 5000);

function readConfig() {
  const rates = (process.env.BENCH_RATES || '100,200,400').split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new SetupError(`BENCH_RATES: bad rate '${s}'.`);
    return n;
  });
  const dbUrl = process.env.BENCH_DB_URL || 'postgres://postgres@127.0.0.1:5432/test';
  assertLocalDatabase(dbUrl);
  return {
    dbUrl,
    rates,
    roundMs: envInt('BENCH_ROUND_MS', 4000, 200, 60_000),
    warmupMs: envInt('BENCH_WARMUP_MS', 500, 0, 10_000),
    /** Rounds per mode and rate. */
    rounds: envInt('BENCH_ROUNDS', 3, 1, 20),
    /** How long after the last publish the parent waits for the last deliveries before counting the rest lost. */
    graceMs: envInt('BENCH_GRACE_MS', 5000, 100, 60_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 170, 20, 3600),
    /** The PostgresStore pool size of each node; 0 = the store's default (4). */
    pgPool: envInt('BENCH_PG_POOL', 0, 0, 100),
  };
}

const CONFIG = (() => {
  if (role) return undefined as unknown as ReturnType<typeof readConfig>;
  try {
    return readConfig();
  } catch (error) {
    process.stderr.write(`bench:classic-move: ${(error as Error).message}\n`);
    process.exit(2);
  }
})();

const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;

interface RoundResult {
  rate: number;
  mode: Mode;
  round: number;
  warmup: boolean;
  firstSeq: number;
  messages: number;
  expectedDeliveries: number;
  received: number;
  lost: number;
  duplicates: number;
  reordered: number;
  stray: number;
  /** Deliveries / (last arrival − first publish stamp). */
  deliveriesPerSec: number;
  sentPerSec: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Both nodes' CPU / deliveries. */
  serverUsPerDelivery: number;
  /** Both nodes' CPU / polls answered: what one poll costs (a moved one rebuilds the connection). */
  serverUsPerPoll: number;
  /** CPU of this run's PostgreSQL backends (both nodes' pools and LISTEN connections) / deliveries. */
  postgresUsPerDelivery: number | undefined;
  /** CPU of every `postgres` process of the machine (other users of the server included) / deliveries. */
  postgresAllUsPerDelivery: number | undefined;
  /**
   * Share of one core over the phase; stall: share of the phase during which some runnable task of the machine
   * waited for a CPU (Linux PSI `some`, every process of the machine included): how contended the machine was.
   */
  cpu: {
    nodeA: number;
    nodeB: number;
    postgres: number | undefined;
    postgresAll: number | undefined;
    clients: number;
    stall: number | undefined;
  };
  polls: number;
  /** Requests the clients sent again after a reused keep-alive socket was reset. */
  keepAliveResets: number;
  pollsPerSec: number;
  /** Poll durations (request → full answer), µs. */
  pollP50Us: number;
  pollP99Us: number;
  moves: number;
  /** Backplane, summed over both nodes: store reads (engine's + replays), rows they returned, rows written. */
  /** Wall time of the phase (stats before → stats after, publishing and the last arrivals), s. */
  phaseSeconds: number;
  pgReads: number;
  pgRowsRead: number;
  pgRowsReadByReplays: number;
  rowsWritten: number;
  /** Both nodes over the phase: appends, replays, waitFor calls (count, average ms), waits that timed out. */
  backplane: {
    appends: number;
    appendAvgMs: number;
    replays: number;
    replayAvgMs: number;
    waits: number;
    waitAvgMs: number;
    waitsTimedOut: number;
  };
  /** Changes over the phase: hub onConnected/onDisconnected calls, onError calls, failed publishes, engine errors/gaps. */
  events: {
    connected: number;
    disconnected: number;
    errors: number;
    sendErrors: number;
    engineErrors: number;
    gaps: number;
  };
  examples: string[];
  complete: boolean;
}

const median = (values: number[]) => {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
};
const fmtMs = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const log = (text: string) => process.stderr.write(`${text}\n`);

/** The nodes' backplane schema: fresh for this run, installed by the nodes, dropped at the end (also on failure). */
const schema = role ? '' : scratchName('hw_bench');
let schemaCreated = false;
let closeMonitor: () => Promise<void> = async () => {};

async function cleanUpDatabase(): Promise<void> {
  void closeMonitor();
  if (!schemaCreated) return;
  try {
    await Promise.race([
      dropSchemas(CONFIG.dbUrl, [schema]),
      sleep(10_000).then(() => {
        throw new Error('timed out');
      }),
    ]);
    schemaCreated = false;
  } catch (error) {
    log(`Could not drop the scratch schema ${schema}: ${(error as Error).message}`);
  }
}

async function parent(): Promise<number> {
  const started = Date.now();
  let finished = false;
  const rounds: RoundResult[] = [];
  const problems: string[] = [];
  const notes: string[] = [];
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`\nInterrupted (${signal}); stopping children and dropping ${schema}.`);
      killAllChildren();
      void cleanUpDatabase().finally(() => process.exit(130));
    });
  }
  setTimeout(() => {
    if (finished) return;
    log(`\nbench:classic-move: deadline of ${CONFIG.deadlineSeconds} s passed; stopping.`);
    killAllChildren();
    void cleanUpDatabase().finally(() => process.exit(1));
  }, CONFIG.deadlineSeconds * 1000).unref();

  try {
    await withClient(CONFIG.dbUrl, (c) => c.query('SELECT 1'));
  } catch (error) {
    throw new SetupError(`PostgreSQL is not reachable at ${CONFIG.dbUrl}: ${(error as Error).message}`);
  }
  const swept = await sweepStaleSchemas(CONFIG.dbUrl);
  if (swept.length) log(`Dropped stale schemas of earlier runs: ${swept.join(', ')}`);
  log(
    `Classic move bench: ${CLIENTS} long-polling clients on 2 nodes (PostgreSQL schema ${schema}), rates ` +
      `${CONFIG.rates.join(', ')} msg/s, ${CONFIG.rounds} rounds per mode of ${CONFIG.roundMs / 1000} s ` +
      `(+ ${CONFIG.warmupMs} ms warm-up). Node ${process.version}, ${cpus().length} CPUs, load ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
  );

  const script = join(ROOT, 'bench/classic-move.ts');
  const env = {
    BENCH_DB_URL: CONFIG.dbUrl,
    BENCH_SCHEMA: schema,
    BENCH_CLASSIC_MOVE_CLIENTS: String(CLIENTS),
    BENCH_PG_POOL: CONFIG.pgPool ? String(CONFIG.pgPool) : '',
  };
  schemaCreated = true; // the nodes install it
  const nodes = ['A', 'B'].map(
    (name) => new Child<ToServer, FromServer>(`node ${name}`, script, ['server', name], env),
  );
  const [nodeA, nodeB] = nodes as [Child<ToServer, FromServer>, Child<ToServer, FromServer>];
  const ports = (await Promise.all(
    nodes.map((n) => n.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')),
  )) as Extract<FromServer, { type: 'ready' }>[];
  const cli = new Child<ToClients, FromClients>(
    'clients',
    script,
    ['clients', String(ports[0]?.port), String(ports[1]?.port)],
    env,
  );
  const checkHealthy = () => {
    for (const child of [nodeA, nodeB, cli]) if (child.error) throw child.error;
  };
  const stats = async () =>
    (
      (await Promise.all(
        nodes.map((n) => n.request((id) => ({ type: 'stats', id }), REQUEST_TIMEOUT_MS, 'stats')),
      )) as Extract<FromServer, { type: 'stats' }>[]
    ).map((m) => m.stats) as [ServerStats, ServerStats];

  const connected = (await cli.request((id) => ({ type: 'connect', id }), 120_000, 'connections')) as Extract<
    FromClients,
    { type: 'connected' }
  >;
  // onConnected runs at /start, on the home node.
  let s0 = await stats();
  for (let i = 0; i < 50 && s0[0].connected + s0[1].connected < CLIENTS; i++) {
    await sleep(100);
    s0 = await stats();
  }
  if (s0[0].connected !== connected.home[0] || s0[1].connected !== connected.home[1]) {
    throw new Error(
      `the hubs count ${s0[0].connected} + ${s0[1].connected} connections, expected ${connected.home.join(' + ')}`,
    );
  }
  log(`connected ${CLIENTS} clients (${connected.home.join(' on A, ')} on B) in ${connected.ms} ms`);

  // This run's backends: the nodes name their connections after the schema (application_name).
  const monitor = new pg.Client({
    connectionString: CONFIG.dbUrl,
    connectionTimeoutMillis: 5000,
    application_name: 'bench',
  });
  monitor.on('error', () => {});
  await monitor.connect();
  closeMonitor = () => monitor.end().catch(() => {});
  const ourBackends = async (): Promise<number[]> => {
    const { rows } = await monitor.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE application_name = $1',
      [schema],
    );
    return rows.map((r) => r.pid);
  };

  let nextSeq = 1;
  async function runPhase(rate: number, mode: Mode, round: number, warmup: boolean): Promise<RoundResult> {
    checkHealthy();
    const messages = Math.max(5, Math.round((rate * (warmup ? CONFIG.warmupMs : CONFIG.roundMs)) / 1000));
    const firstSeq = nextSeq;
    nextSeq += messages;
    await cli.request((id) => ({ type: 'mode', id, mode }), REQUEST_TIMEOUT_MS, 'mode ack');
    const before = await stats();
    const pidsBefore = await ourBackends();
    const pgBefore = postgresCpu();
    const stallBefore = cpuStallUs();
    const t0 = nowUs();
    await cli.request((id) => ({ type: 'phase', id, firstSeq, count: messages }), REQUEST_TIMEOUT_MS, 'phase ack');
    let complete = false;
    let onComplete: (() => void) | undefined;
    const stopListening = cli.listen((m) => {
      if (m.type === 'complete' && m.firstSeq === firstSeq) {
        complete = true;
        onComplete?.();
      }
    });
    let published: Extract<FromServer, { type: 'published' }>;
    try {
      published = (await nodeA.request(
        (id) => ({ type: 'publish', id, firstSeq, count: messages, rate }),
        (messages / rate) * 3000 + 15_000,
        'end of publishing',
      )) as Extract<FromServer, { type: 'published' }>;
      if (!complete) {
        await new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if ([nodeA, nodeB, cli].some((c) => c.error)) done();
          }, 100);
          const timer = setTimeout(done, CONFIG.graceMs);
          function done() {
            clearTimeout(timer);
            clearInterval(check);
            resolve();
          }
          onComplete = done;
        });
      }
    } finally {
      stopListening();
    }
    checkHealthy();
    const report = (
      (await cli.request((id) => ({ type: 'end', id }), REQUEST_TIMEOUT_MS, 'phase report')) as Extract<
        FromClients,
        { type: 'report' }
      >
    ).report;
    const after = await stats();
    const pgAfter = postgresCpu();
    const pids = new Set([...pidsBefore, ...(await ourBackends())]);
    const pgAllUs = postgresCpuBetween(pgBefore, pgAfter);
    const only = (m: Map<number, number> | undefined) => m && new Map([...m].filter(([pid]) => pids.has(pid)));
    const pgUs = postgresCpuBetween(only(pgBefore), only(pgAfter));
    const wallUs = nowUs() - t0;
    const stallAfter = cpuStallUs();
    const histogram = new Histogram(report.buckets);
    const pollTimes = new Histogram(report.pollBuckets);
    let maxUs = 0;
    for (let i = HISTOGRAM_BUCKETS - 1; i >= 0; i--) {
      if ((report.buckets[i] as number) > 0) {
        maxUs = 1.02 ** i;
        break;
      }
    }
    const delta = (f: (s: ServerStats) => number) => f(after[0]) - f(before[0]) + f(after[1]) - f(before[1]);
    const serverUs = delta((s) => s.cpuUs);
    const pgRowsRead = delta((s) => s.rowsRead);
    const activeUs = Math.max(1, report.lastUs - published.firstUs);
    const result: RoundResult = {
      rate,
      mode,
      round,
      warmup,
      firstSeq,
      messages,
      expectedDeliveries: messages * CLIENTS,
      received: report.received,
      lost: report.lost,
      duplicates: report.duplicates,
      reordered: report.reordered,
      stray: report.stray,
      deliveriesPerSec: (report.received * 1e6) / activeUs,
      sentPerSec: messages > 1 ? ((messages - 1) * 1e6) / Math.max(1, published.lastUs - published.firstUs) : rate,
      p50Us: histogram.quantile(0.5),
      p99Us: histogram.quantile(0.99),
      maxUs,
      serverUsPerDelivery: serverUs / report.received,
      serverUsPerPoll: serverUs / report.polls,
      postgresUsPerDelivery: pgUs === undefined ? undefined : pgUs / report.received,
      postgresAllUsPerDelivery: pgAllUs === undefined ? undefined : pgAllUs / report.received,
      cpu: {
        nodeA: (after[0].cpuUs - before[0].cpuUs) / wallUs,
        nodeB: (after[1].cpuUs - before[1].cpuUs) / wallUs,
        postgres: pgUs === undefined ? undefined : pgUs / wallUs,
        postgresAll: pgAllUs === undefined ? undefined : pgAllUs / wallUs,
        clients: report.cpuUs / wallUs,
        stall: stallBefore === undefined || stallAfter === undefined ? undefined : (stallAfter - stallBefore) / wallUs,
      },
      polls: report.polls,
      keepAliveResets: report.resets,
      pollsPerSec: (report.polls * 1e6) / activeUs,
      pollP50Us: pollTimes.quantile(0.5),
      pollP99Us: pollTimes.quantile(0.99),
      moves: report.moves,
      phaseSeconds: wallUs / 1e6,
      pgReads: delta((s) => s.reads),
      pgRowsRead,
      pgRowsReadByReplays: pgRowsRead - delta((s) => s.engine.rowsRead),
      rowsWritten: delta((s) => s.engine.rowsWritten),
      backplane: {
        appends: delta((s) => s.timings.appends),
        appendAvgMs: delta((s) => s.timings.appendMs) / delta((s) => s.timings.appends),
        replays: delta((s) => s.timings.replays),
        replayAvgMs: delta((s) => s.timings.replayMs) / delta((s) => s.timings.replays),
        waits: delta((s) => s.timings.waits),
        waitAvgMs: delta((s) => s.timings.waitMs) / delta((s) => s.timings.waits),
        waitsTimedOut: delta((s) => s.timings.waitsTimedOut),
      },
      events: {
        connected: delta((s) => s.connected),
        disconnected: delta((s) => s.disconnected),
        errors: delta((s) => s.errors),
        sendErrors: delta((s) => s.sendErrors),
        engineErrors: delta((s) => s.engine.errors),
        gaps: delta((s) => s.engine.gaps),
      },
      examples: report.examples,
      complete,
    };
    if (published.failed) problems.push(`${mode} ${rate}/s round ${round}: ${published.failed} publishes failed`);
    if (published.settleTimedOut) problems.push(`${mode} ${rate}/s round ${round}: publishes not settled in 10 s`);
    const bad = result.lost || result.duplicates || result.reordered || result.stray;
    const ev = result.events;
    if (bad) {
      problems.push(
        `${mode} ${rate}/s ${warmup ? 'warm-up' : `round ${round}`} (seq ${firstSeq}–${firstSeq + messages - 1}): ` +
          `${result.lost} lost, ${result.duplicates} duplicated, ${result.reordered} reordered, ${result.stray} stray` +
          `${report.examples.length ? `; ${report.examples.join('; ')}` : ''}`,
      );
    }
    if (result.keepAliveResets) {
      notes.push(
        `${mode} ${rate}/s ${warmup ? 'warm-up' : `round ${round}`}: ${result.keepAliveResets} request(s) sent again after ` +
          'a reused keep-alive socket was reset (ECONNRESET before an answer)',
      );
    }
    if (ev.connected || ev.disconnected || ev.errors || ev.sendErrors || ev.engineErrors || ev.gaps) {
      problems.push(`${mode} ${rate}/s ${warmup ? 'warm-up' : `round ${round}`}: server events ${JSON.stringify(ev)}`);
    }
    log(
      `  ${rate}/s ${mode.padEnd(6)} ${warmup ? 'warm-up' : `round ${round}`}: ${Math.round(result.deliveriesPerSec)} deliveries/s, ` +
        `p50 ${(result.p50Us / 1000).toFixed(2)} ms, p99 ${(result.p99Us / 1000).toFixed(2)} ms, ` +
        `${result.serverUsPerDelivery.toFixed(1)} µs srv/deliv, stall ${result.cpu.stall === undefined ? '-' : `${Math.round(result.cpu.stall * 100)}%`}, ${result.polls} polls (${result.moves} moves), ` +
        `${result.pgReads} pg reads, append ${result.backplane.appendAvgMs.toFixed(1)} ms, ` +
        `${result.backplane.replays} replays ${fmtMs(result.backplane.replayAvgMs)}, ${result.backplane.waits} waits ${fmtMs(result.backplane.waitAvgMs)}, ` +
        `${result.keepAliveResets ? `${result.keepAliveResets} keep-alive resets, ` : ''}lost ${result.lost}, dup ${result.duplicates}${complete ? '' : ' (INCOMPLETE)'}`,
    );
    return result;
  }

  // Per rate: a warm-up phase before every round (unmeasured; it also puts each client on the mode's footing), then
  // rounds in the order sticky, moving, moving, sticky, sticky, moving, … so neither mode always follows the other.
  const skipped: number[] = [];
  let lastRateSeconds = CONFIG.rounds * 2 * ((CONFIG.warmupMs + CONFIG.roundMs) / 1000 + 1.5);
  for (const rate of CONFIG.rates) {
    const elapsed = (Date.now() - started) / 1000;
    if (elapsed + lastRateSeconds > CONFIG.deadlineSeconds - 15) {
      skipped.push(rate);
      notes.push(`rate ${rate}/s skipped: it would not fit in BENCH_DEADLINE_S=${CONFIG.deadlineSeconds}`);
      continue;
    }
    const rateStarted = Date.now();
    log(`\n${rate} msg/s → ${(rate * CLIENTS).toLocaleString('en-US')} deliveries/s offered`);
    for (let r = 0; r < CONFIG.rounds; r++) {
      const order: Mode[] = r % 2 === 0 ? ['sticky', 'moving'] : ['moving', 'sticky'];
      for (const mode of order) {
        if (CONFIG.warmupMs > 0) rounds.push(await runPhase(rate, mode, r + 1, true));
        rounds.push(await runPhase(rate, mode, r + 1, false));
      }
    }
    lastRateSeconds = (Date.now() - rateStarted) / 1000;
  }

  // No false disconnects: the hubs saw every client connect once and none leave.
  const sEnd = await stats();
  const totals = {
    connected: sEnd[0].connected + sEnd[1].connected,
    disconnected: sEnd[0].disconnected + sEnd[1].disconnected,
    errors: sEnd[0].errors + sEnd[1].errors,
    sendErrors: sEnd[0].sendErrors + sEnd[1].sendErrors,
    engineErrors: sEnd[0].engine.errors + sEnd[1].engine.errors,
    gaps: sEnd[0].engine.gaps + sEnd[1].engine.gaps,
  };
  if (totals.connected !== CLIENTS || totals.disconnected !== 0) {
    problems.push(
      `the hubs counted ${totals.connected} onConnected and ${totals.disconnected} onDisconnected calls (expected ${CLIENTS} and 0)`,
    );
  }

  // --- Summary ---
  const measured = rounds.filter((r) => !r.warmup);
  const summary = CONFIG.rates
    .filter((rate) => !skipped.includes(rate))
    .map((rate) => {
      const modeSummary = (mode: Mode) => {
        const rs = measured.filter((r) => r.rate === rate && r.mode === mode);
        const sum = (f: (r: RoundResult) => number) => rs.reduce((a, r) => a + f(r), 0);
        const allRounds = rounds.filter((r) => r.rate === rate && r.mode === mode);
        return {
          deliveriesPerSec: median(rs.map((r) => r.deliveriesPerSec)),
          p50Us: median(rs.map((r) => r.p50Us)),
          p99Us: median(rs.map((r) => r.p99Us)),
          serverUsPerDelivery: median(rs.map((r) => r.serverUsPerDelivery)),
          serverUsPerPoll: median(rs.map((r) => r.serverUsPerPoll)),
          deliveriesPerPoll: sum((r) => r.received) / sum((r) => r.polls),
          postgresUsPerDelivery: median(rs.map((r) => r.postgresUsPerDelivery ?? Number.NaN)),
          postgresAllUsPerDelivery: median(rs.map((r) => r.postgresAllUsPerDelivery ?? Number.NaN)),
          pollsPerSec: median(rs.map((r) => r.pollsPerSec)),
          pollP50Us: median(rs.map((r) => r.pollP50Us)),
          pollP99Us: median(rs.map((r) => r.pollP99Us)),
          pgReadsPerPoll: sum((r) => r.pgReads) / sum((r) => r.polls),
          pgReadsPerSec: median(rs.map((r) => r.pgReads / r.phaseSeconds)),
          pgRowsReadPerSec: median(rs.map((r) => r.pgRowsRead / r.phaseSeconds)),
          pgRowsReadPerPoll: sum((r) => r.pgRowsRead) / sum((r) => r.polls),
          rowsWrittenPerSec: median(rs.map((r) => r.rowsWritten / r.phaseSeconds)),
          appendAvgMs: median(rs.map((r) => r.backplane.appendAvgMs)),
          replayAvgMs: median(rs.map((r) => r.backplane.replayAvgMs)),
          waitAvgMs: median(rs.map((r) => r.backplane.waitAvgMs)),
          replaysPerPoll: sum((r) => r.backplane.replays) / sum((r) => r.polls),
          movesPerPoll: sum((r) => r.moves) / sum((r) => r.polls),
          cpuStall: median(rs.map((r) => r.cpu.stall ?? Number.NaN)),
          // Checks count warm-ups too: a message lost there is lost all the same.
          lost: allRounds.reduce((a, r) => a + r.lost, 0),
          duplicates: allRounds.reduce((a, r) => a + r.duplicates, 0),
          reordered: allRounds.reduce((a, r) => a + r.reordered, 0),
          stray: allRounds.reduce((a, r) => a + r.stray, 0),
          deliveries: allRounds.reduce((a, r) => a + r.received, 0),
          expectedDeliveries: allRounds.reduce((a, r) => a + r.expectedDeliveries, 0),
        };
      };
      const byMode = { sticky: modeSummary('sticky'), moving: modeSummary('moving') };
      type Key = keyof typeof byMode.sticky;
      const ratio = (key: Key) => byMode.moving[key] / byMode.sticky[key];
      return {
        rate,
        offeredDeliveriesPerSec: rate * CLIENTS,
        ...byMode,
        movingOverSticky: {
          deliveriesPerSec: ratio('deliveriesPerSec'),
          p50: ratio('p50Us'),
          p99: ratio('p99Us'),
          serverUsPerDelivery: ratio('serverUsPerDelivery'),
          postgresUsPerDelivery: ratio('postgresUsPerDelivery'),
        },
      };
    });

  finished = true;
  const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '-');
  const fx = (n: number, d: number) => (Number.isFinite(n) ? n.toFixed(d) : '-');
  const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
  console.log(
    `\nClassic long polling on 2 nodes (PostgreSQL backplane), ${CLIENTS} clients (half homed on each node), ` +
      `node A broadcasts; ${CONFIG.rounds} rounds × ${CONFIG.roundMs / 1000} s per mode and rate, medians. ` +
      `sticky: every request to the home node; moving: successive polls alternate between the nodes.`,
  );
  const header = [
    'rate/s',
    'mode',
    'deliveries/s',
    'p50 ms',
    'p99 ms',
    'srv µs/deliv',
    'pg µs/deliv',
    'polls/s',
    'poll p50 ms',
    'pg reads/s',
    'rows read/s',
    'lost',
    'dup',
    'reord',
  ];
  const rows: string[][] = [];
  for (const s of summary) {
    for (const mode of MODES) {
      const m = s[mode];
      rows.push([
        String(s.rate),
        mode,
        int(m.deliveriesPerSec),
        ms(m.p50Us),
        ms(m.p99Us),
        fx(m.serverUsPerDelivery, 2),
        fx(m.postgresUsPerDelivery, 2),
        int(m.pollsPerSec),
        ms(m.pollP50Us),
        int(m.pgReadsPerSec),
        int(m.pgRowsReadPerSec),
        String(m.lost),
        String(m.duplicates),
        String(m.reordered),
      ]);
    }
    const r = s.movingOverSticky;
    const x = (n: number) => `${fx(n, 2)}×`;
    rows.push([
      String(s.rate),
      'moving / sticky',
      x(r.deliveriesPerSec),
      x(r.p50),
      x(r.p99),
      x(r.serverUsPerDelivery),
      x(r.postgresUsPerDelivery),
      '',
      '',
      '',
      '',
      '',
      '',
      '',
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 1 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  console.log('');
  console.log(line(header));
  console.log(`| ${widths.map((w, i) => (i === 1 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`);
  for (const row of rows) console.log(line(row));
  for (const s of summary) {
    const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '-');
    const m = (mode: Mode) => {
      const x = s[mode];
      return (
        `${mode}: ${fx(x.deliveriesPerPoll, 1)} messages/poll, ${fx(x.serverUsPerPoll, 0)} srv µs/poll, ` +
        `${fx(x.replaysPerPoll, 2)} replays/poll (avg ${fmtMs(x.replayAvgMs)}), waits for catch-up avg ` +
        `${fmtMs(x.waitAvgMs)}, appends avg ${fmtMs(x.appendAvgMs)}, ${int(x.rowsWrittenPerSec)} rows written/s, ` +
        `all postgres processes ${fx(x.postgresAllUsPerDelivery, 1)} µs/deliv, machine CPU stall ${pct(x.cpuStall)}`
      );
    };
    console.log(`\n${s.rate}/s backplane: ${m('sticky')}; ${m('moving')}.`);
  }
  console.log(
    "\nratio = moving / sticky. srv = both node processes; pg = this run's PostgreSQL backends (the nodes' pools and LISTEN connections); per delivered message.",
  );
  const totalLost = rounds.reduce((a, r) => a + r.lost + r.duplicates + r.reordered + r.stray, 0);
  console.log(
    totalLost === 0
      ? `Every client got every message exactly once, in order (${rounds.reduce((a, r) => a + r.received, 0).toLocaleString('en-US')} deliveries, warm-ups included).`
      : 'DELIVERY PROBLEMS: see below.',
  );
  if (problems.length) console.log(`\nProblems:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  if (notes.length) console.log(`\nNotes:\n${notes.map((n) => `  ${n}`).join('\n')}`);

  const file = join(ROOT, 'bench/results', `classic-move-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        config: { ...CONFIG, clients: CLIENTS, histogramBuckets: HISTOGRAM_BUCKETS, schema },
        machine: {
          node: process.version,
          cpus: cpus().length,
          cpu: cpus()[0]?.model,
          totalMem: totalmem(),
          loadAtEnd: loadavg(),
        },
        summary,
        totals,
        problems,
        notes,
        rounds,
        seconds: (Date.now() - started) / 1000,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  // Clients first: a poll that moves while its node closes would make that node report a failed claim notice.
  await cli.stop({ type: 'stop' });
  await sleep(300);
  await Promise.all([nodeA.stop({ type: 'stop' }), nodeB.stop({ type: 'stop' })]);
  await cleanUpDatabase();
  return problems.length ? 1 : 0;
}

if (role === 'server') {
  server(process.argv[3] ?? 'A').catch((error: Error) => {
    toParent({ type: 'fatal', message: `node ${process.argv[3]}: ${error.stack ?? error.message}` });
    process.exit(1);
  });
} else if (role === 'clients') {
  clients([Number(process.argv[3]), Number(process.argv[4])]).catch((error: Error) => {
    toParent({ type: 'fatal', message: `clients: ${error.stack ?? error.message}` });
    process.exit(1);
  });
} else {
  let exitCode = 1;
  parent()
    .then((code) => {
      exitCode = code;
    })
    .catch((error: Error) => {
      log(
        `\nbench:classic-move failed: ${error instanceof SetupError ? error.message : (error.stack ?? error.message)}`,
      );
    })
    .finally(async () => {
      killAllChildren();
      await cleanUpDatabase();
      process.exit(exitCode);
    });
}
