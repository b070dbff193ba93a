// `npm run bench`: single-node broadcast fan-out of Hubwire against a bare `ws` loop and Socket.IO 4.
//
// Each server runs in its own child process; its clients run in other children, so the server's CPU and
// memory are measured apart from the clients'. For every size (1k, 10k connections) the three servers are
// started side by side, their idle memory per connection is measured, then their rounds are interleaved
// (rotating the order) so that a noisy neighbour hurts all three alike. Medians over rounds are reported,
// and the ratios compare peers measured in this same run. A fourth peer, Hubwire with `metrics: false`, prices
// Hubwire's metrics (BENCH_METRICS_COST=0 leaves it out). See bench/README.md.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import {
  assertOpenFileLimit,
  configOrExit,
  envInt,
  type FromClient,
  type FromServer,
  Histogram,
  type RoundReport,
  type ServerName,
  type ServerStats,
  SetupError,
  sleep,
  type ToClient,
  type ToServer,
} from './lib/common.js';
import { wsVersion } from './lib/ws.js';

// --- Configuration (environment overrides for quick experiments) -------------------------------------------

function readConfig() {
  const sizes = (process.env.BENCH_SIZES ?? '1000,10000').split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 100_000) throw new SetupError(`BENCH_SIZES: bad size '${s}'.`);
    return n;
  });
  return {
    sizes,
    rounds: envInt('BENCH_ROUNDS', 7, 1, 50),
    /** Broadcasts per round ≈ this / connections: every round moves about the same number of deliveries. */
    deliveriesPerRound: envInt('BENCH_DELIVERIES', 300_000, 1000, 10_000_000),
    /**
     * Broadcasts in flight: the next goes out once every client has the oldest. Two keep the server busy while
     * the last clients of the previous one read; more only queue bytes in socket buffers (more CPU per
     * delivery and latency that measures the queue).
     */
    window: envInt('BENCH_WINDOW', 2, 1, 1000),
    bodyBytes: envInt('BENCH_BODY_BYTES', 64, 0, 1_000_000),
    batch: envInt('BENCH_BATCH', 200, 1, 5000),
    /** One client process per server by default: the 2-core machine then gives one core to each side. */
    clientsPerProcess: envInt('BENCH_CLIENTS_PER_PROCESS', 10_000, 100, 100_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 600, 10, 3600),
    /**
     * BENCH_METRICS_COST=0 leaves out "Hubwire, metrics off" (`metrics: false`), the peer that prices Hubwire's
     * metrics: on by default.
     */
    metricsCost: process.env.BENCH_METRICS_COST !== '0',
    /** BENCH_PROFILE=1: each server child writes a V8 CPU profile (for Chrome DevTools) here at exit. */
    profileDir: process.env.BENCH_PROFILE === '1' ? join(tmpdir(), 'hubwire-bench-profiles') : undefined,
  };
}

const CONFIG = configOrExit('bench', readConfig);
const {
  sizes: SIZES,
  rounds: ROUNDS,
  deliveriesPerRound: DELIVERIES_PER_ROUND,
  window: WINDOW,
  bodyBytes: BODY_BYTES,
  batch: BATCH,
  clientsPerProcess: CLIENTS_PER_PROCESS,
  deadlineSeconds: DEADLINE_S,
  metricsCost: METRICS_COST,
  profileDir: PROFILE_DIR,
} = CONFIG;
/**
 * What is measured: the three servers, and Hubwire again with `metrics: false` (the same server and clients:
 * `CODE`). The normal Hubwire has metrics on and collects them once a second (see servers/hubwire.ts).
 */
type TargetName = ServerName | 'hubwire-nometrics';
const SERVERS: TargetName[] = ['hubwire', ...(METRICS_COST ? (['hubwire-nometrics'] as const) : []), 'ws', 'socketio'];
const LABEL: Record<TargetName, string> = {
  hubwire: 'Hubwire',
  'hubwire-nometrics': 'Hubwire, metrics off',
  ws: 'raw ws',
  socketio: 'Socket.IO',
};
/** The server script (bench/servers/<code>.ts) and the clients' protocol. */
const CODE: Record<TargetName, ServerName> = {
  hubwire: 'hubwire',
  'hubwire-nometrics': 'hubwire',
  ws: 'ws',
  socketio: 'socketio',
};

const TARGET_VS_WS = 0.8;
/** Issue 14: at most 3 % fewer deliveries/s with metrics on. */
const TARGET_METRICS_ON_OVER_OFF = 0.97;
const TARGET_HEAP_PER_CONNECTION = 8 * 1024;

const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;
const ROUND_TIMEOUT_MS = 60_000;
const WARMUP_CONNECTIONS = 100;

type Server = Child<ToServer, FromServer>;
type Client = Child<ToClient, FromClient>;

// --- Results --------------------------------------------------------------------------------------------

interface RoundResult {
  deliveries: number;
  deliveriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  serverCpuUsPerDelivery: number;
  /** Server CPU time / wall time of the round (1 = one core busy throughout). */
  serverCpu: number;
  /** Busiest client process: CPU time / wall time. */
  clientCpu: number;
}

interface MemoryResult {
  heapPerConnection: number;
  rssPerConnection: number;
  externalPerConnection: number;
  baseline: ServerStats;
  idle: ServerStats;
}

interface ConfigResult {
  server: TargetName;
  connections: number;
  broadcastsPerRound: number;
  clientProcesses: number;
  connectSeconds?: number;
  memory?: MemoryResult;
  rounds: RoundResult[];
  median?: Omit<RoundResult, 'deliveries' | 'maxMs'>;
  error?: string;
}

// --- Helpers --------------------------------------------------------------------------------------------

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

// --- One server and its clients ---------------------------------------------------------------------------

class Target {
  readonly result: ConfigResult;
  private server: Server | undefined;
  private clients: Client[] = [];
  private nextSeq = 0;

  constructor(
    readonly name: TargetName,
    readonly connections: number,
  ) {
    this.result = {
      server: name,
      connections,
      broadcastsPerRound: Math.max(10, Math.min(2000, Math.round(DELIVERIES_PER_ROUND / connections))),
      clientProcesses: Math.ceil(connections / CLIENTS_PER_PROCESS),
      rounds: [],
    };
  }

  get failed(): boolean {
    return this.result.error !== undefined;
  }

  fail(error: unknown): void {
    this.result.error ??= (error as Error).message;
    log(`  ${LABEL[this.name]} @ ${this.connections}: FAILED: ${this.result.error}`);
  }

  private checkHealthy(): void {
    const error = this.server?.error ?? this.clients.find((c) => c.error)?.error;
    if (error) throw error;
  }

  private stats(memory: boolean): Promise<ServerStats> {
    const server = this.server as Server;
    return server
      .request((id) => ({ type: memory ? 'mem' : 'stats', id }), REQUEST_TIMEOUT_MS, 'stats')
      .then((m) => (m as Extract<FromServer, { type: 'reply' }>).stats);
  }

  /** Polls until the server counts exactly `n` connected clients. */
  private async waitForConnections(n: number): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const { connections } = await this.stats(false);
      if (connections === n) return;
      if (Date.now() > deadline) throw new Error(`the server counts ${connections} connections, expected ${n}.`);
      await sleep(100);
    }
  }

  private async connectClients(total: number): Promise<void> {
    const shares = split(total, this.clients.length);
    // The batch is shared between client processes so the server never sees more than BATCH handshakes at once.
    const batch = Math.max(1, Math.floor(BATCH / this.clients.length));
    await Promise.all(
      this.clients.map((client, i) =>
        client.request(
          (id) => ({ type: 'connect', id, count: shares[i] as number, batch }),
          READY_TIMEOUT_MS + (shares[i] as number) * 20,
          'connect',
        ),
      ),
    );
    await this.waitForConnections(total);
  }

  private async disconnectClients(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.request((id) => ({ type: 'disconnect', id }), 30_000, 'disconnect')));
    await this.waitForConnections(0);
  }

  /** Starts the server and its client processes, measures idle memory, and leaves N clients connected. */
  async setUp(): Promise<void> {
    const n = this.connections;
    const server: Server = new Child(
      `${this.name} server`,
      `bench/servers/${CODE[this.name]}.ts`,
      [],
      {
        BENCH_MAX_CONNECTIONS: String(n),
        BENCH_BODY_BYTES: String(BODY_BYTES),
        BENCH_SERVER_METRICS: this.name === 'hubwire-nometrics' ? 'off' : 'on',
      },
      PROFILE_DIR ? ['--expose-gc', '--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : ['--expose-gc'],
    );
    this.server = server;
    const ready = (await server.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')) as Extract<
      FromServer,
      { type: 'ready' }
    >;
    const url = `ws://127.0.0.1:${ready.port}${ready.path}`;
    const shares = split(n, this.result.clientProcesses);
    this.clients = shares.map(
      (share, i) =>
        new Child<ToClient, FromClient>(`${this.name} clients #${i + 1}`, 'bench/client.ts', [CODE[this.name], url], {
          BENCH_MAX_CONNECTIONS: String(share),
        }),
    );
    await Promise.all(this.clients.map((c) => c.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')));

    // Warm up: the first connections load and compile code that the per-connection numbers must not include.
    await this.connectClients(Math.min(WARMUP_CONNECTIONS, n));
    await this.disconnectClients();
    const baseline = await this.stats(true);

    const started = Date.now();
    await this.connectClients(n);
    this.result.connectSeconds = (Date.now() - started) / 1000;
    // Let the handshakes' garbage and any deferred work settle before measuring "idle".
    await sleep(1000);
    const idle = await this.stats(true);
    this.result.memory = {
      heapPerConnection: (idle.heapUsed - baseline.heapUsed) / n,
      rssPerConnection: (idle.rss - baseline.rss) / n,
      externalPerConnection: (idle.external - baseline.external) / n,
      baseline,
      idle,
    };
    log(
      `  ${LABEL[this.name]} @ ${n}: connected in ${this.result.connectSeconds.toFixed(1)} s, ` +
        `heap ${kib(this.result.memory.heapPerConnection)}/conn, rss ${kib(this.result.memory.rssPerConnection)}/conn`,
    );
  }

  /** One round: `broadcastsPerRound` broadcasts with WINDOW in flight, timed at the clients. */
  async round(): Promise<RoundResult> {
    this.checkHealthy();
    const server = this.server as Server;
    const broadcasts = this.result.broadcastsPerRound;
    const firstSeq = this.nextSeq;
    this.nextSeq += broadcasts;
    await Promise.all(
      this.clients.map((c) =>
        c.request((id) => ({ type: 'round-start', id, firstSeq, broadcasts }), REQUEST_TIMEOUT_MS, 'round start'),
      ),
    );
    const before = await this.stats(false);
    const startedNs = process.hrtime.bigint();

    const gotBy = new Uint16Array(broadcasts);
    let sent = 0;
    const sendNext = () => server.send({ type: 'broadcast', seq: firstSeq + sent++ });
    const unlisten: (() => void)[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        let complete = 0;
        const done = (error?: Error) => {
          clearTimeout(timer);
          clearInterval(check);
          if (error) reject(error);
          else resolve();
        };
        const timer = setTimeout(
          () => done(new Error(`round not complete after ${ROUND_TIMEOUT_MS / 1000} s (${complete}/${broadcasts}).`)),
          ROUND_TIMEOUT_MS,
        );
        // A crashed child sends no more 'got' messages: notice it rather than wait for the timeout.
        const check = setInterval(() => {
          try {
            this.checkHealthy();
          } catch (error) {
            done(error as Error);
          }
        }, 200);
        for (const client of this.clients) {
          unlisten.push(
            client.listen((message) => {
              if (message.type === 'lost') {
                done(new Error(`a client lost its connection mid-round: ${message.reason}.`));
                return;
              }
              if (message.type !== 'got') return;
              const index = message.seq - firstSeq;
              gotBy[index] = (gotBy[index] as number) + 1;
              if (gotBy[index] !== this.clients.length) return;
              complete++;
              try {
                if (sent < broadcasts) sendNext();
              } catch (error) {
                done(error as Error);
                return;
              }
              if (complete === broadcasts) done();
            }),
          );
        }
        for (let i = 0; i < Math.min(WINDOW, broadcasts); i++) sendNext();
      });
    } finally {
      for (const stop of unlisten) stop();
    }

    const after = await this.stats(false);
    const wallUs = Number(process.hrtime.bigint() - startedNs) / 1000;
    const reports = await Promise.all(
      this.clients.map((c) =>
        c
          .request((id) => ({ type: 'round-end', id }), REQUEST_TIMEOUT_MS, 'round report')
          .then((m) => (m as Extract<FromClient, { type: 'round' }>).report),
      ),
    );
    return summarize(reports, before, after, wallUs);
  }

  async tearDown(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.stop()));
    await this.server?.stop({ type: 'stop' });
  }
}

function summarize(reports: RoundReport[], before: ServerStats, after: ServerStats, wallUs: number): RoundResult {
  const histogram = new Histogram();
  let deliveries = 0;
  let firstSent = Number.POSITIVE_INFINITY;
  let lastReceived = 0;
  let clientCpuUs = 0;
  for (const report of reports) {
    histogram.merge(report.buckets);
    deliveries += report.received;
    firstSent = Math.min(firstSent, report.firstSentUs);
    lastReceived = Math.max(lastReceived, report.lastReceivedUs);
    clientCpuUs = Math.max(clientCpuUs, report.cpuUs);
  }
  const serverCpuUs = after.cpuUs - before.cpuUs;
  return {
    deliveries,
    // From the first broadcast's stamp to the last arrival: neither IPC nor setup is counted.
    deliveriesPerSec: deliveries / ((lastReceived - firstSent) / 1e6),
    p50Ms: histogram.quantile(0.5) / 1000,
    p99Ms: histogram.quantile(0.99) / 1000,
    maxMs: histogram.quantile(1) / 1000,
    serverCpuUsPerDelivery: serverCpuUs / deliveries,
    serverCpu: serverCpuUs / wallUs,
    clientCpu: clientCpuUs / wallUs,
  };
}

// --- Output ---------------------------------------------------------------------------------------------

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(2)} KiB`;
}

function fixed(value: number | undefined, digits: number): string {
  return value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits);
}

function table(results: ConfigResult[]): string {
  const header = [
    'server',
    'conns',
    'deliveries/s',
    'p50 ms',
    'p99 ms',
    'srv µs/deliv',
    'srv CPU',
    'cli CPU',
    'heap/conn',
    'rss/conn',
    'connect s',
  ];
  const rows = results.map((r) => {
    const m = r.median;
    return [
      LABEL[r.server],
      String(r.connections),
      r.error ? 'FAILED (below)' : m ? Math.round(m.deliveriesPerSec).toLocaleString('en-US') : '-',
      fixed(m?.p50Ms, 2),
      fixed(m?.p99Ms, 2),
      fixed(m?.serverCpuUsPerDelivery, 2),
      m ? `${Math.round(m.serverCpu * 100)}%` : '-',
      m ? `${Math.round(m.clientCpu * 100)}%` : '-',
      r.memory ? kib(r.memory.heapPerConnection) : '-',
      r.memory ? kib(r.memory.rssPerConnection) : '-',
      fixed(r.connectSeconds, 1),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const errors = results.filter((r) => r.error).map((r) => `${LABEL[r.server]} @ ${r.connections}: ${r.error}`);
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line), ...errors].join('\n');
}

interface Ratios {
  connections: number;
  hubwireOverWs?: number;
  hubwireOverSocketIo?: number;
  /** Per interleaved cycle (same moment, same noise): min and max of Hubwire/peer. */
  hubwireOverWsRange?: [number, number];
  hubwireOverSocketIoRange?: [number, number];
  /** Server CPU per delivery, Hubwire / peer (lower is cheaper; independent of how fast the clients read). */
  cpuPerDeliveryVsWs?: number;
  cpuPerDeliveryVsSocketIo?: number;
  hubwireHeapPerConnection?: number;
  /**
   * The cost of metrics: Hubwire (metrics on, collected once a second) / Hubwire with `metrics: false`, of the
   * medians and per cycle; deliveries/s (below 1: slower with metrics) and server CPU per delivery (above 1: dearer).
   */
  metricsOnOverOff?: number;
  metricsOnOverOffRange?: [number, number];
  cpuPerDeliveryMetricsOnOverOff?: number;
  cpuPerDeliveryMetricsOnOverOffRange?: [number, number];
  targets: { vsWs?: boolean; aheadOfSocketIo?: boolean; heap?: boolean; metricsCost?: boolean };
}

type RoundKey = 'deliveriesPerSec' | 'serverCpuUsPerDelivery';

function ratios(results: ConfigResult[], connections: number): Ratios {
  const of = (name: TargetName) => results.find((r) => r.server === name && r.connections === connections);
  const hubwire = of('hubwire');
  const ws = of('ws');
  const socketio = of('socketio');
  const noMetrics = of('hubwire-nometrics');
  const ratio = (peer: ConfigResult | undefined, key: RoundKey = 'deliveriesPerSec') =>
    hubwire?.median && peer?.median ? hubwire.median[key] / peer.median[key] : undefined;
  const range = (peer: ConfigResult | undefined, key: RoundKey = 'deliveriesPerSec'): [number, number] | undefined => {
    if (!hubwire || !peer || hubwire.error || peer.error) return undefined;
    const paired = hubwire.rounds
      .map((r, i) => r[key] / (peer.rounds[i]?.[key] ?? Number.NaN))
      .filter((x) => Number.isFinite(x));
    return paired.length ? [Math.min(...paired), Math.max(...paired)] : undefined;
  };
  const vsWs = ratio(ws);
  const vsSocketIo = ratio(socketio);
  const metricsCost = ratio(noMetrics);
  const heap = hubwire?.memory?.heapPerConnection;
  return {
    connections,
    hubwireOverWs: vsWs,
    hubwireOverSocketIo: vsSocketIo,
    hubwireOverWsRange: range(ws),
    hubwireOverSocketIoRange: range(socketio),
    cpuPerDeliveryVsWs: ratio(ws, 'serverCpuUsPerDelivery'),
    cpuPerDeliveryVsSocketIo: ratio(socketio, 'serverCpuUsPerDelivery'),
    hubwireHeapPerConnection: heap,
    metricsOnOverOff: metricsCost,
    metricsOnOverOffRange: range(noMetrics),
    cpuPerDeliveryMetricsOnOverOff: ratio(noMetrics, 'serverCpuUsPerDelivery'),
    cpuPerDeliveryMetricsOnOverOffRange: range(noMetrics, 'serverCpuUsPerDelivery'),
    targets: {
      vsWs: vsWs === undefined ? undefined : vsWs >= TARGET_VS_WS,
      aheadOfSocketIo: vsSocketIo === undefined ? undefined : vsSocketIo > 1,
      heap: heap === undefined ? undefined : heap <= TARGET_HEAP_PER_CONNECTION,
      metricsCost: metricsCost === undefined ? undefined : metricsCost >= TARGET_METRICS_ON_OVER_OFF,
    },
  };
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED';
}

function ratioText(r: Ratios): string {
  const spread = (range: [number, number] | undefined, digits = 2) =>
    range ? ` (per cycle ${range[0].toFixed(digits)}–${range[1].toFixed(digits)})` : '';
  return [
    `  ${r.connections} connections:`,
    `    Hubwire / raw ws     deliveries/s  ${fixed(r.hubwireOverWs, 2)}${spread(r.hubwireOverWsRange)}` +
      `   target ≥ ${TARGET_VS_WS}: ${verdict(r.targets.vsWs)}`,
    `    Hubwire / Socket.IO  deliveries/s  ${fixed(r.hubwireOverSocketIo, 2)}${spread(r.hubwireOverSocketIoRange)}` +
      `   target > 1: ${verdict(r.targets.aheadOfSocketIo)}`,
    `    Hubwire heap per idle connection  ${r.hubwireHeapPerConnection === undefined ? '-' : kib(r.hubwireHeapPerConnection)}` +
      `   target ≤ 8 KiB: ${verdict(r.targets.heap)}`,
    `    server CPU per delivery: Hubwire / raw ws ${fixed(r.cpuPerDeliveryVsWs, 2)}, ` +
      `Hubwire / Socket.IO ${fixed(r.cpuPerDeliveryVsSocketIo, 2)} (lower = cheaper)`,
    ...(METRICS_COST
      ? [
          `    metrics on / off     deliveries/s  ${fixed(r.metricsOnOverOff, 3)}${spread(r.metricsOnOverOffRange, 3)}` +
            `   target ≥ ${TARGET_METRICS_ON_OVER_OFF}: ${verdict(r.targets.metricsCost)}; server CPU per delivery ` +
            `${fixed(r.cpuPerDeliveryMetricsOnOverOff, 3)}${spread(r.cpuPerDeliveryMetricsOnOverOffRange, 3)}`,
        ]
      : []),
  ].join('\n');
}

// --- Main -----------------------------------------------------------------------------------------------

const results: ConfigResult[] = [];
const startedAt = new Date();
let finished = false;

function writeResults(complete: boolean): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `broadcast-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    benchmark: 'broadcast',
    complete,
    startedAt: startedAt.toISOString(),
    durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    environment: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      totalMemoryBytes: totalmem(),
      loadAverageAtStart: loadAtStart,
      ws: wsVersion,
    },
    config: {
      ...CONFIG,
      clients: 'raw ws sockets speaking each protocol (SignalR JSON handshake; engine.io v4 + Socket.IO v5 packets)',
    },
    results,
    ratios: SIZES.map((n) => ratios(results, n)),
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

const loadAtStart = loadavg();

async function benchSize(n: number): Promise<void> {
  log(`\n${n} connections: starting servers and connecting clients (batches of ${BATCH})`);
  const targets = SERVERS.map((name) => new Target(name, n));
  for (const target of targets) results.push(target.result);
  try {
    // One at a time: connecting is CPU-heavy, and idle memory must be measured without neighbours' churn.
    for (const target of targets) {
      try {
        await target.setUp();
      } catch (error) {
        target.fail(error);
      }
    }
    // One warm-up round each (JIT, buffer pools), then measured rounds in rotating order.
    for (let r = -1; r < ROUNDS; r++) {
      const order = targets.map((_, i) => targets[(i + Math.max(r, 0)) % targets.length] as Target);
      for (const target of order) {
        if (target.failed) continue;
        try {
          const result = await target.round();
          if (r >= 0) target.result.rounds.push(result);
        } catch (error) {
          target.fail(error);
        }
      }
      if (r >= 0) {
        log(
          `  round ${r + 1}/${ROUNDS}: ` +
            targets
              .filter((t) => !t.failed)
              .map((t) => {
                const last = t.result.rounds.at(-1);
                return `${LABEL[t.name]} ${last ? Math.round(last.deliveriesPerSec).toLocaleString('en-US') : '-'}/s`;
              })
              .join(', '),
        );
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.tearDown().catch(() => undefined)));
  }
  for (const target of targets) {
    const rounds = target.result.rounds;
    if (rounds.length === 0) continue;
    const pick = (key: keyof RoundResult) => median(rounds.map((r) => r[key]));
    target.result.median = {
      deliveriesPerSec: pick('deliveriesPerSec'),
      p50Ms: pick('p50Ms'),
      p99Ms: pick('p99Ms'),
      serverCpuUsPerDelivery: pick('serverCpuUsPerDelivery'),
      serverCpu: pick('serverCpu'),
      clientCpu: pick('clientCpu'),
    };
  }
}

async function main(): Promise<void> {
  // Fail fast, before spawning anything (a server child holds every connection of a size); the children check
  // again, each for its own share.
  assertOpenFileLimit(Math.max(...SIZES), 'A bench server process');

  log(
    `Broadcast bench: ${SERVERS.map((s) => LABEL[s]).join(', ')} × ${SIZES.join(', ')} connections, ` +
      `${ROUNDS} rounds + 1 warm-up, ~${DELIVERIES_PER_ROUND.toLocaleString('en-US')} deliveries per round, ` +
      `window ${WINDOW}, ${BODY_BYTES} B body. Node ${process.version}, ${cpus().length} CPUs, ws ${wsVersion}.`,
  );
  for (const n of SIZES) await benchSize(n);

  finished = true;
  const file = writeResults(true);
  console.log(
    `\nBroadcast fan-out (median of ${ROUNDS} rounds; ~${DELIVERIES_PER_ROUND.toLocaleString('en-US')} deliveries ` +
      `per round, ${WINDOW} broadcasts in flight, ${BODY_BYTES} B body; latency = server stamp to client receipt)`,
  );
  console.log(table(results));
  console.log('\nRatios (peers in this run):');
  for (const n of SIZES) console.log(ratioText(ratios(results, n)));
  console.log(
    '\nClients: raw ws sockets speaking each protocol by hand (SignalR JSON handshake + pings; engine.io v4 / ' +
      'Socket.IO v5 packets + pongs), identical work per message for all servers.\n' +
      'srv µs/deliv = server process CPU per delivered message; srv/cli CPU = busy share of one core during the ' +
      'rounds (cli: the busiest client process). heap/rss per idle connection after forced GC, 1 KiB = 1024 B.' +
      (METRICS_COST
        ? '\nHubwire: default options (metrics on), its Prometheus text collected once a second in the server; ' +
          'Hubwire, metrics off: the same with `metrics: false`.'
        : ''),
  );
  console.log(`\nResults: ${file}`);
  if (PROFILE_DIR) console.log(`CPU profiles of the servers: ${PROFILE_DIR}`);
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`\nInterrupted (${signal}); stopping children.`);
    killAllChildren();
    process.exit(130);
  });
}
// The whole bench always stops by itself, however a child misbehaves.
setTimeout(() => {
  if (finished) return;
  log(`\nThe bench exceeded its ${DEADLINE_S} s deadline; stopping. Partial results: ${writeResults(false)}`);
  killAllChildren();
  process.exit(1);
}, DEADLINE_S * 1000).unref();

main().then(
  () => {
    killAllChildren();
    process.exit(results.some((r) => r.error) ? 1 : 0);
  },
  (error: unknown) => {
    log(`\nbench failed: ${error instanceof SetupError ? error.message : ((error as Error).stack ?? String(error))}`);
    killAllChildren();
    process.exit(1);
  },
);
