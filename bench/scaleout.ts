// `npm run bench:scaleout`: cross-process broadcast through PostgreSQL, Hubwire (ScaleoutEngine + PostgresStore)
// against Socket.IO 4 (+ @socket.io/postgres-adapter), with the database's own ceiling measured by pgbench.
//
// For each system: two server nodes in separate processes on the same database, one sender client on node A
// (its own process) and N receiver clients on node B (another process). The sender offers a rate stepped up a
// ladder; every step reports what the receivers got: deliveries/s, p50/p99 latency (the sender's stamp in the
// payload to the receiver's clock, both CLOCK_MONOTONIC) and loss (not received by the end of the step plus a
// grace period). A system's ladder stops at its first step with p99 over the limit or any loss (after one retry
// on fresh processes); the sustained rate is the highest step before that. The two systems' steps are interleaved
// rate by rate, in rotating order, and the whole ladder is run several times (passes), each on fresh processes, so
// a noisy neighbour hurts both alike. See bench/README.md.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import { envInt, Histogram, SetupError } from './lib/common.js';
import {
  assertLocalDatabase,
  cpuStallUs,
  createSocketIoTable,
  dropPgbenchDatabase,
  dropSchemas,
  killPgbench,
  measurePgbench,
  type PgbenchResult,
  postgresCpu,
  postgresCpuBetween,
  SCRATCH_PREFIXES,
  scratchName,
  sweepStaleSchemas,
  withClient,
} from './lib/postgres.js';
import {
  type FromClient,
  type FromNode,
  type NodeStats,
  type SendReport,
  SYSTEM_LABEL,
  type SystemName,
  type ToClient,
  type ToNode,
} from './lib/scaleout.js';
import { wsVersion } from './lib/ws.js';

// --- Configuration ---------------------------------------------------------------------------------------------

function list<T extends string>(name: string, fallback: string, allowed: readonly T[]): T[] {
  const values = (process.env[name] || fallback).split(',').map((s) => s.trim());
  for (const v of values) {
    if (!allowed.includes(v as T)) throw new SetupError(`${name}: '${v}' is not one of ${allowed.join(', ')}.`);
  }
  return values as T[];
}

function readConfig() {
  const rates = (process.env.BENCH_RATES || '500,1000,2000,5000,10000,20000,40000,60000,80000').split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new SetupError(`BENCH_RATES: bad rate '${s}'.`);
    return n;
  });
  if (rates.some((r, i) => i > 0 && r <= (rates[i - 1] as number))) {
    throw new SetupError('BENCH_RATES must increase.');
  }
  const dbUrl = process.env.BENCH_DB_URL || 'postgres://postgres@127.0.0.1:5432/test';
  assertLocalDatabase(dbUrl);
  const hubwireSend = process.env.BENCH_HUBWIRE_SEND || 'forget';
  if (hubwireSend !== 'forget' && hubwireSend !== 'await') {
    throw new SetupError(`BENCH_HUBWIRE_SEND must be 'forget' or 'await' (got '${hubwireSend}').`);
  }
  return {
    dbUrl,
    systems: list<SystemName>('BENCH_SYSTEMS', 'hubwire,socketio', ['hubwire', 'socketio']),
    rates,
    /** How long the sender sends at each step. */
    stepMs: envInt('BENCH_STEP_MS', 3000, 200, 60_000),
    /** How long after the last send a message may still arrive without counting as lost. */
    graceMs: envInt('BENCH_GRACE_MS', 1500, 100, 60_000),
    passes: envInt('BENCH_PASSES', 5, 1, 20),
    receivers: envInt('BENCH_RECEIVERS', 10, 1, 1000),
    messageBytes: envInt('BENCH_MESSAGE_BYTES', 100, 60, 7000),
    p99LimitMs: envInt('BENCH_P99_LIMIT_MS', 100, 1, 60_000),
    /** A failed step is run again (on fresh processes) this many times before the ladder stops. */
    retries: envInt('BENCH_RETRIES', 1, 0, 5),
    /** pgbench seconds per client count; 0 skips it. */
    pgbenchSeconds: envInt('BENCH_PGBENCH_S', 10, 0, 120),
    pgbenchClients: [1, 4],
    hubwireSend: hubwireSend as 'forget' | 'await',
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 570, 30, 3600),
    /** BENCH_PROFILE=1: every node writes a V8 CPU profile here at exit. */
    profileDir: process.env.BENCH_PROFILE === '1' ? join(tmpdir(), 'hubwire-scaleout-profiles') : undefined,
  };
}

const CONFIG = (() => {
  try {
    return readConfig();
  } catch (error) {
    process.stderr.write(`bench:scaleout: ${(error as Error).message}\n`);
    process.exit(2);
  }
})();

const TARGET_RATIO = 5;
const TARGET_P50_MS = 2;
const TARGET_P50_RATE = 1000;
/** Below this share of the offered rate, the step measures the sender process, not the system. */
const SENDER_SHORTFALL = 0.9;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;
const WARMUP_RATE = 500;
const WARMUP_MS = 1000;
const WARMUP_ATTEMPTS = 5;

type NodeChild = Child<ToNode, FromNode>;
type ClientChild = Child<ToClient, FromClient>;

// --- Results ---------------------------------------------------------------------------------------------------

interface StepResult {
  pass: number;
  system: SystemName;
  rate: number;
  attempt: number;
  messages: number;
  /** Rate the sender achieved (first to last send stamp). */
  sentPerSec: number;
  expectedDeliveries: number;
  deliveries: number;
  /** Deliveries / (last arrival − first send stamp), summed over receivers. */
  deliveriesPerSec: number;
  lost: number;
  duplicates: number;
  late: number;
  reordered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time / wall time of the step (1 = one core busy throughout). */
  cpu: { nodeA: number; nodeB: number; postgres?: number; sender: number; receivers: number };
  /**
   * The machine during the step: the share of time some runnable task waited for a CPU (Linux PSI `some`, this
   * bench's processes included), and the 1-minute load average at its end.
   */
  machine: { cpuStall?: number; load1: number };
  /** Event-loop delay of each node during the step. */
  eventLoop: { nodeA: NodeStats['eventLoop']; nodeB: NodeStats['eventLoop'] };
  senderMaxBufferedBytes: number;
  sendErrors: number;
  /** Hubwire: rows written by node A (its home stream), read by node B. */
  backplane?: {
    rowsWritten: number;
    rowsPerSec: number;
    messagesPerRow: number;
    rowsRead: number;
    /** Average time of node A's appends (pool checkout + the INSERT's round trip + commit), ms. */
    appendAvgMs: number;
    /** Slowest append of node A during the step, ms: one slow commit holds back every message queued behind it. */
    appendMaxMs: number;
    /** Average time of node B's reads, ms. */
    readAvgMs: number;
    readMaxMs: number;
    /** Reads node A made of the stream it writes itself (woken by its own NOTIFYs), and the rows they returned. */
    readsByA: number;
    rowsReadByA: number;
    errors: number;
    gaps: number;
    queueAfter: number;
  };
  /** Socket.IO: node A's adapter queries (one pg_notify per message), pool checkout included. */
  notify?: { queries: number; avgMs: number; maxMs: number; waitingAfter: number };
  passed: boolean;
  reason?: string;
}

interface PassSummary {
  pass: number;
  /** Highest step passed before the ladder stopped (0: not even the first); capped: the ladder's top passed. */
  sustained: Partial<Record<SystemName, { rate: number; capped: boolean; p50Ms?: number; p99Ms?: number }>>;
  ratio?: number;
}

const steps: StepResult[] = [];
const passes: PassSummary[] = [];
const errors: string[] = [];
let pgbench: PgbenchResult[] | undefined;
let pgbenchError: string | undefined;
const notes: string[] = [];

// --- Helpers ---------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function average(
  after: NodeStats['store'],
  before: NodeStats['store'],
  count: 'appends' | 'reads',
  total: 'appendMs' | 'readMs',
): number {
  if (!after || !before) return Number.NaN;
  return (after[total] - before[total]) / (after[count] - before[count]);
}

function rateText(rate: number): string {
  return rate >= 1000 ? `${rate / 1000}k` : String(rate);
}

function int(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US');
}

function fixed(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

function percent(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '-' : `${Math.round(n * 100)}%`;
}

// --- One system: two nodes, a sender, the receivers ------------------------------------------------------------

class Cluster {
  private readonly nodeA: NodeChild;
  private readonly nodeB: NodeChild;
  private sender: ClientChild | undefined;
  private receivers: ClientChild | undefined;
  private nextSeq = 0;

  constructor(
    readonly system: SystemName,
    env: Record<string, string>,
  ) {
    const nodeArgs = CONFIG.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${CONFIG.profileDir}`] : [];
    const node = (name: string) =>
      new Child<ToNode, FromNode>(
        `${SYSTEM_LABEL[system]} node ${name}`,
        `bench/servers/${system}-node.ts`,
        [],
        { ...env, BENCH_NODE: name },
        nodeArgs,
      );
    this.nodeA = node('A');
    this.nodeB = node('B');
  }

  private children(): (NodeChild | ClientChild | undefined)[] {
    return [this.nodeA, this.nodeB, this.sender, this.receivers];
  }

  checkHealthy(): void {
    for (const child of this.children()) if (child?.error) throw child.error;
  }

  private stats(node: NodeChild): Promise<NodeStats> {
    return node
      .request((id) => ({ type: 'stats', id }), REQUEST_TIMEOUT_MS, 'stats')
      .then((m) => (m as Extract<FromNode, { type: 'reply' }>).stats);
  }

  async start(): Promise<void> {
    const ready = await Promise.all(
      [this.nodeA, this.nodeB].map(
        (n) =>
          n.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message') as Promise<
            Extract<FromNode, { type: 'ready' }>
          >,
      ),
    );
    const [a, b] = ready as [Extract<FromNode, { type: 'ready' }>, Extract<FromNode, { type: 'ready' }>];
    const client = (role: 'sender' | 'receivers', node: Extract<FromNode, { type: 'ready' }>) =>
      new Child<ToClient, FromClient>(
        `${SYSTEM_LABEL[this.system]} ${role}`,
        'bench/scaleout-client.ts',
        [this.system, role, `ws://127.0.0.1:${node.port}${node.path}`],
        { BENCH_MESSAGE_BYTES: String(CONFIG.messageBytes) },
      );
    this.sender = client('sender', a);
    this.receivers = client('receivers', b);
    const clients = [this.sender, this.receivers];
    await Promise.all(clients.map((c) => c.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')));
    await Promise.all([
      this.sender.request((id) => ({ type: 'connect', id, count: 1 }), READY_TIMEOUT_MS, 'connect'),
      this.receivers.request((id) => ({ type: 'connect', id, count: CONFIG.receivers }), READY_TIMEOUT_MS, 'connect'),
    ]);
    // Both nodes count their clients (past the handshake).
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const [sa, sb] = await Promise.all([this.stats(this.nodeA), this.stats(this.nodeB)]);
      if (sa.connections === 1 && sb.connections === CONFIG.receivers) break;
      if (Date.now() > deadline) {
        throw new Error(
          `nodes count ${sa.connections} and ${sb.connections} clients, expected 1 and ${CONFIG.receivers}`,
        );
      }
      await sleep(100);
    }
  }

  /**
   * Short unrecorded steps until one delivers everything: JIT warm-up, and proof that node B hears node A (the
   * Socket.IO adapter LISTENs in the background after it is created).
   */
  async warmUp(): Promise<void> {
    for (let attempt = 1; attempt <= WARMUP_ATTEMPTS; attempt++) {
      const result = await this.step(0, WARMUP_RATE, attempt, WARMUP_MS);
      if (result.lost === 0) return;
    }
    throw new Error(`warm-up steps kept losing messages (${WARMUP_ATTEMPTS} attempts)`);
  }

  /** One step: `rate` msg/s for `durationMs`, then up to the grace period for the last arrivals. */
  async step(pass: number, rate: number, attempt: number, durationMs = CONFIG.stepMs): Promise<StepResult> {
    this.checkHealthy();
    const sender = this.sender as ClientChild;
    const receivers = this.receivers as ClientChild;
    const count = Math.max(1, Math.round((rate * durationMs) / 1000));
    const firstSeq = this.nextSeq;
    this.nextSeq += count;

    const [beforeA, beforeB] = await Promise.all([this.stats(this.nodeA), this.stats(this.nodeB)]);
    const pgBefore = postgresCpu();
    const stallBefore = cpuStallUs();
    const started = process.hrtime.bigint();
    await receivers.request(
      (id) => ({ type: 'step-start', id, firstSeq, count, rate }),
      REQUEST_TIMEOUT_MS,
      'step start',
    );
    let complete = false;
    let onComplete: (() => void) | undefined;
    const stopListening = receivers.listen((m) => {
      if (m.type === 'complete' && m.firstSeq === firstSeq) {
        complete = true;
        onComplete?.();
      }
      if (m.type === 'lost') receivers.fail(new Error(`receivers: ${m.reason}`));
    });
    let sendReport: SendReport;
    try {
      const sent = await sender.request(
        (id) => ({ type: 'step-start', id, firstSeq, count, rate }),
        durationMs * 3 + 10_000,
        'end of sending',
      );
      sendReport = (sent as Extract<FromClient, { type: 'sent' }>).report;
      if (!complete) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, CONFIG.graceMs);
          const check = setInterval(() => {
            if (this.children().some((c) => c?.error)) done();
          }, 100);
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
    this.checkHealthy();
    const report = (
      (await receivers.request((id) => ({ type: 'step-end', id }), REQUEST_TIMEOUT_MS, 'step report')) as Extract<
        FromClient,
        { type: 'report' }
      >
    ).report;
    const [afterA, afterB] = await Promise.all([this.stats(this.nodeA), this.stats(this.nodeB)]);
    const pgAfter = postgresCpu();
    const pgCpuUs = postgresCpuBetween(pgBefore, pgAfter);
    const stallAfter = cpuStallUs();
    const wallUs = Number(process.hrtime.bigint() - started) / 1000;

    const histogram = new Histogram(report.buckets);
    const expectedDeliveries = count * CONFIG.receivers;
    const lost = expectedDeliveries - report.received;
    const activeUs = Math.max(report.lastReceivedUs, sendReport.lastUs) - sendReport.firstUs;
    const sentPerSec = count > 1 ? ((count - 1) * 1e6) / Math.max(1, sendReport.lastUs - sendReport.firstUs) : rate;
    const p99Ms = histogram.quantile(0.99) / 1000;
    const result: StepResult = {
      pass,
      system: this.system,
      rate,
      attempt,
      messages: count,
      sentPerSec,
      expectedDeliveries,
      deliveries: report.received,
      deliveriesPerSec: report.received / (Math.max(1, activeUs) / 1e6),
      lost,
      duplicates: report.duplicates,
      late: report.late,
      reordered: report.reordered,
      p50Ms: histogram.quantile(0.5) / 1000,
      p99Ms,
      maxMs: histogram.quantile(1) / 1000,
      cpu: {
        nodeA: (afterA.cpuUs - beforeA.cpuUs) / wallUs,
        nodeB: (afterB.cpuUs - beforeB.cpuUs) / wallUs,
        postgres: pgCpuUs === undefined ? undefined : pgCpuUs / wallUs,
        sender: sendReport.cpuUs / Math.max(1, sendReport.lastUs - sendReport.firstUs),
        receivers: report.cpuUs / wallUs,
      },
      eventLoop: { nodeA: afterA.eventLoop, nodeB: afterB.eventLoop },
      machine: {
        cpuStall:
          stallBefore !== undefined && stallAfter !== undefined ? (stallAfter - stallBefore) / wallUs : undefined,
        load1: loadavg()[0] as number,
      },
      senderMaxBufferedBytes: sendReport.maxBufferedBytes,
      sendErrors: afterA.sendErrors - beforeA.sendErrors + (afterB.sendErrors - beforeB.sendErrors),
      passed: false,
    };
    if (afterA.backplane && beforeA.backplane && afterB.backplane && beforeB.backplane) {
      const rows = afterA.backplane.rowsWritten - beforeA.backplane.rowsWritten;
      result.backplane = {
        rowsWritten: rows,
        rowsPerSec: rows / (Math.max(1, activeUs) / 1e6),
        messagesPerRow: (afterA.backplane.published - beforeA.backplane.published) / Math.max(1, rows),
        rowsRead: afterB.backplane.rowsRead - beforeB.backplane.rowsRead,
        appendAvgMs: average(afterA.store, beforeA.store, 'appends', 'appendMs'),
        appendMaxMs: afterA.store?.appendMaxMs ?? Number.NaN,
        readAvgMs: average(afterB.store, beforeB.store, 'reads', 'readMs'),
        readMaxMs: afterB.store?.readMaxMs ?? Number.NaN,
        readsByA: (afterA.store?.reads ?? 0) - (beforeA.store?.reads ?? 0),
        rowsReadByA: afterA.backplane.rowsRead - beforeA.backplane.rowsRead,
        errors:
          afterA.backplane.errors - beforeA.backplane.errors + (afterB.backplane.errors - beforeB.backplane.errors),
        gaps: afterB.backplane.gaps - beforeB.backplane.gaps,
        queueAfter: afterA.backplane.queueLength,
      };
    }
    if (afterA.pool && beforeA.pool) {
      const queries = afterA.pool.queries - beforeA.pool.queries;
      result.notify = {
        queries,
        avgMs: (afterA.pool.queryMs - beforeA.pool.queryMs) / queries,
        maxMs: afterA.pool.queryMaxMs,
        waitingAfter: afterA.pool.waiting,
      };
    }
    const reasons: string[] = [];
    if (lost > 0) reasons.push(`lost ${lost} of ${expectedDeliveries} deliveries`);
    if (!(p99Ms <= CONFIG.p99LimitMs)) reasons.push(`p99 ${fixed(p99Ms, 1)} ms > ${CONFIG.p99LimitMs} ms`);
    if (result.sendErrors > 0) reasons.push(`${result.sendErrors} publishes failed on the nodes`);
    if (sentPerSec < rate * SENDER_SHORTFALL) {
      reasons.push(`the sender reached only ${int(sentPerSec)}/s (sender process CPU-bound)`);
    }
    result.passed = reasons.length === 0;
    if (!result.passed) result.reason = reasons.join('; ');
    return result;
  }

  async stop(): Promise<void> {
    await Promise.all([this.sender?.stop(), this.receivers?.stop()]);
    await Promise.all([this.nodeA.stop({ type: 'stop' }), this.nodeB.stop({ type: 'stop' })]);
  }
}
// --- The run ---------------------------------------------------------------------------------------------------

const startedAt = new Date();
const loadAtStart = loadavg();
const scratch = {
  /** A fresh one per pass (installed by the pass's nodes), so that passes do not inherit rows or trimming work. */
  hubwireSchema: '',
  hubwireSchemas: [] as string[],
  socketIoSchema: scratchName('sio_bench'),
};
const createdSchemas: string[] = [];
let finished = false;

function envFor(system: SystemName): Record<string, string> {
  if (system === 'hubwire') {
    return { BENCH_DB_URL: CONFIG.dbUrl, BENCH_SCHEMA: scratch.hubwireSchema, BENCH_HUBWIRE_SEND: CONFIG.hubwireSend };
  }
  return {
    BENCH_DB_URL: CONFIG.dbUrl,
    BENCH_SIO_TABLE: `"${scratch.socketIoSchema}".attachments`,
    BENCH_SIO_CHANNEL: scratch.socketIoSchema,
  };
}

function elapsedSeconds(): number {
  return (Date.now() - startedAt.getTime()) / 1000;
}

/** Time left before the soft deadline (the hard one kills everything 30 s later). */
function timeLeftSeconds(): number {
  return CONFIG.deadlineSeconds - 30 - elapsedSeconds();
}

async function startCluster(system: SystemName): Promise<Cluster> {
  const cluster = new Cluster(system, envFor(system));
  try {
    await cluster.start();
    await cluster.warmUp();
    return cluster;
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    throw error;
  }
}

function stepLine(r: StepResult): string {
  const rows = r.backplane
    ? `, ${int(r.backplane.rowsPerSec)} rows/s × ${fixed(r.backplane.messagesPerRow, 1)}, append ${fixed(r.backplane.appendAvgMs, 2)} ms (max ${fixed(r.backplane.appendMaxMs, 1)}), ` +
      `B read ${fixed(r.backplane.readAvgMs, 2)} ms (max ${fixed(r.backplane.readMaxMs, 1)}), ` +
      `A read its own stream ${r.backplane.readsByA}× (${r.backplane.rowsReadByA} rows)`
    : '';
  return (
    `  pass ${r.pass} ${SYSTEM_LABEL[r.system].padEnd(9)} ${rateText(r.rate).padStart(4)}/s` +
    `${r.attempt > 1 ? ` (retry ${r.attempt - 1})` : ''}: ${int(r.deliveriesPerSec)} deliveries/s, ` +
    `p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, lost ${r.lost}${rows}, ` +
    `CPU A ${percent(r.cpu.nodeA)} B ${percent(r.cpu.nodeB)} PG ${percent(r.cpu.postgres)} ` +
    `send ${percent(r.cpu.sender)} recv ${percent(r.cpu.receivers)}, ` +
    `loop p99 A ${fixed(r.eventLoop.nodeA.p99Ms, 1)} B ${fixed(r.eventLoop.nodeB.p99Ms, 1)} ms, ` +
    `CPU stall ${percent(r.machine.cpuStall)}, load ${fixed(r.machine.load1, 1)}` +
    `${r.notify ? `, A pg_notify ${fixed(r.notify.avgMs, 2)} ms (max ${fixed(r.notify.maxMs, 1)})` : ''}` +
    `${r.reordered ? `, reordered ${r.reordered}` : ''}${r.duplicates ? `, duplicates ${r.duplicates}` : ''}` +
    `${r.sendErrors ? `, failed publishes ${r.sendErrors}` : ''}` +
    `${r.passed ? '' : `  FAIL: ${r.reason}`}`
  );
}

async function runPass(pass: number): Promise<PassSummary> {
  const summary: PassSummary = { pass, sustained: {} };
  const clusters = new Map<SystemName, Cluster>();
  const active = new Set<SystemName>();
  const best = new Map<SystemName, StepResult>();
  try {
    // One at a time: starting processes is CPU-heavy.
    for (const system of CONFIG.systems) {
      try {
        clusters.set(system, await startCluster(system));
        active.add(system);
      } catch (error) {
        errors.push(`pass ${pass}, ${SYSTEM_LABEL[system]}: could not start: ${(error as Error).message}`);
        log(`  ${SYSTEM_LABEL[system]}: could not start: ${(error as Error).message}`);
      }
    }
    const started = new Set(active);
    for (const [i, rate] of CONFIG.rates.entries()) {
      if (active.size === 0) break;
      if (timeLeftSeconds() < 15) {
        notes.push(`pass ${pass} stopped at ${rateText(rate)}/s: time budget (BENCH_DEADLINE_S) reached.`);
        log(`  time budget reached: pass ${pass} stops before ${rateText(rate)}/s`);
        break;
      }
      const systems = [...active];
      const order = systems.map((_, k) => systems[(k + pass + i) % systems.length] as SystemName);
      for (const system of order) {
        let final: StepResult | undefined;
        for (let attempt = 1; attempt <= 1 + CONFIG.retries; attempt++) {
          try {
            if (attempt > 1) {
              // Fresh processes: a failed step may leave a backlog behind (queued queries, buffered sends).
              await clusters.get(system)?.stop();
              clusters.delete(system);
              clusters.set(system, await startCluster(system));
            }
            const cluster = clusters.get(system) as Cluster;
            final = await cluster.step(pass, rate, attempt);
            steps.push(final);
            log(stepLine(final));
            if (final.passed) break;
          } catch (error) {
            final = undefined;
            const message = `pass ${pass}, ${SYSTEM_LABEL[system]} at ${rateText(rate)}/s (attempt ${attempt}): ${(error as Error).message}`;
            errors.push(message);
            log(`  ERROR ${message}`);
          }
        }
        if (final?.passed) {
          best.set(system, final);
        } else {
          active.delete(system);
          await clusters.get(system)?.stop();
          clusters.delete(system);
        }
      }
    }
    for (const system of started) {
      const top = best.get(system);
      summary.sustained[system] = {
        rate: top?.rate ?? 0,
        capped: active.has(system) && top?.rate === CONFIG.rates.at(-1),
        p50Ms: top?.p50Ms,
        p99Ms: top?.p99Ms,
      };
    }
    const hw = summary.sustained.hubwire?.rate;
    const sio = summary.sustained.socketio?.rate;
    if (hw !== undefined && sio) summary.ratio = hw / sio;
  } finally {
    await Promise.all([...clusters.values()].map((c) => c.stop().catch(() => undefined)));
  }
  return summary;
}

// --- Output ----------------------------------------------------------------------------------------------------

function table(): string {
  const header = [
    'pass',
    'system',
    'offered/s',
    'sent/s',
    'deliveries/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'lost',
    'rows/s',
    'msg/row',
    'A CPU',
    'B CPU',
    'PG CPU',
    'send CPU',
    'recv CPU',
    'result',
  ];
  const rows = steps.map((r) => [
    String(r.pass),
    `${SYSTEM_LABEL[r.system]}${r.attempt > 1 ? ' (retry)' : ''}`,
    int(r.rate),
    int(r.sentPerSec),
    int(r.deliveriesPerSec),
    fixed(r.p50Ms, 2),
    fixed(r.p99Ms, 2),
    fixed(r.maxMs, 1),
    int(r.lost),
    r.backplane ? int(r.backplane.rowsPerSec) : '-',
    r.backplane ? fixed(r.backplane.messagesPerRow, 1) : '-',
    percent(r.cpu.nodeA),
    percent(r.cpu.nodeB),
    percent(r.cpu.postgres),
    percent(r.cpu.sender),
    percent(r.cpu.receivers),
    r.passed ? 'ok' : `FAIL: ${r.reason}`,
  ]);
  const widths = header.map((h, i) =>
    i === header.length - 1 ? 0 : Math.max(h.length, ...rows.map((row) => (row[i] as string).length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        i === cells.length - 1 ? c : i < 2 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w || 6))), ...rows.map(line)].join('\n');
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED';
}

function sustainedText(s: PassSummary['sustained'][SystemName]): string {
  if (!s) return 'n/a';
  if (s.rate === 0) return `< ${rateText(CONFIG.rates[0] as number)}/s`;
  return `${s.capped ? '≥ ' : ''}${int(s.rate)}/s (p50 ${fixed(s.p50Ms, 2)} ms, p99 ${fixed(s.p99Ms, 2)} ms)`;
}

function analyse() {
  const medianSustained = (system: SystemName) => {
    const values = passes.map((p) => p.sustained[system]?.rate).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : undefined;
  };
  const hubwire = medianSustained('hubwire');
  const socketio = medianSustained('socketio');
  const ratio = hubwire !== undefined && socketio ? hubwire / socketio : undefined;
  const ratios = passes.map((p) => p.ratio).filter((r): r is number => r !== undefined);
  const hubwireCapped = passes.some((p) => p.sustained.hubwire?.capped);
  // p50 at 1k msg/s: every Hubwire step at that rate that delivered everything (first attempt or retry).
  const p50At1k = steps
    .filter((s) => s.system === 'hubwire' && s.rate === TARGET_P50_RATE && s.lost === 0)
    .map((s) => s.p50Ms);
  const p50 = p50At1k.length ? median(p50At1k) : undefined;
  // The database's part: Hubwire's writes at its sustained step of each pass, against pgbench.
  const sustainedSteps = (system: SystemName) =>
    passes
      .map((p) =>
        steps.find((s) => s.pass === p.pass && s.system === system && s.rate === p.sustained[system]?.rate && s.passed),
      )
      .filter((s): s is StepResult => s !== undefined);
  const oneClient = pgbench?.find((r) => r.clients === 1)?.tps;
  const fourClients = pgbench?.find((r) => r.clients === 4)?.tps;
  const maxRows = Math.max(
    0,
    ...steps.filter((s) => s.system === 'hubwire' && s.backplane).map((s) => s.backplane?.rowsPerSec ?? 0),
  );
  // Per pass, each system's sustained step against the database's ceiling.
  const perPass = passes.map((p) => {
    const hw = sustainedSteps('hubwire').find((s) => s.pass === p.pass);
    const sio = sustainedSteps('socketio').find((s) => s.pass === p.pass);
    return {
      pass: p.pass,
      hubwire: hw && {
        rate: hw.rate,
        rowsPerSec: hw.backplane?.rowsPerSec,
        rowsShareOfTps1: hw.backplane && oneClient ? hw.backplane.rowsPerSec / oneClient : undefined,
        messagesPerRow: hw.backplane?.messagesPerRow,
        deliveriesPerSec: hw.deliveriesPerSec,
        deliveriesOverTps1: oneClient ? hw.deliveriesPerSec / oneClient : undefined,
        messagesOverTps1: oneClient ? hw.sentPerSec / oneClient : undefined,
      },
      socketio: sio && {
        rate: sio.rate,
        notifyTxPerSec: sio.sentPerSec,
        txShareOfTps4: fourClients ? sio.sentPerSec / fourClients : undefined,
      },
    };
  });
  return {
    sustained: { hubwire, socketio, hubwireCapped },
    ratio,
    ratioPerPass: ratios,
    targets: {
      ratio: ratio === undefined ? undefined : ratio >= TARGET_RATIO,
      p50At1k: p50 === undefined ? undefined : p50 <= TARGET_P50_MS,
    },
    hubwireP50At1kMs: { median: p50, steps: p50At1k },
    database: {
      pgbenchTps1: oneClient,
      pgbenchTps4: fourClients,
      hubwireMaxRowsPerSec: maxRows || undefined,
      perPass,
    },
  };
}

function summaryText(a: ReturnType<typeof analyse>): string {
  const lines: string[] = [];
  lines.push(
    `Sustained rate = highest step with p99 ≤ ${CONFIG.p99LimitMs} ms and no loss (${CONFIG.receivers} receivers, ` +
      `so deliveries/s ≈ ${CONFIG.receivers} × rate):`,
  );
  for (const p of passes) {
    lines.push(
      `  pass ${p.pass}: Hubwire ${sustainedText(p.sustained.hubwire)}; Socket.IO ${sustainedText(p.sustained.socketio)}` +
        `; ratio ${p.ratio === undefined ? 'n/a' : `${p.sustained.hubwire?.capped ? '≥ ' : ''}${fixed(p.ratio, 1)}×`}`,
    );
  }
  const spread = a.ratioPerPass.length
    ? ` (per pass ${fixed(Math.min(...a.ratioPerPass), 1)}–${fixed(Math.max(...a.ratioPerPass), 1)})`
    : '';
  lines.push(
    `  median over passes: Hubwire ${int(a.sustained.hubwire)}/s, Socket.IO ${int(a.sustained.socketio)}/s → ` +
      `Hubwire / Socket.IO ${a.sustained.hubwireCapped ? '≥ ' : ''}${fixed(a.ratio, 1)}×${spread}` +
      `   target ≥ ${TARGET_RATIO}×: ${verdict(a.targets.ratio)}`,
  );
  lines.push(
    `  Hubwire p50 at ${rateText(TARGET_P50_RATE)} msg/s: ${fixed(a.hubwireP50At1kMs.median, 2)} ms ` +
      `(steps: ${a.hubwireP50At1kMs.steps.map((v) => fixed(v, 2)).join(', ') || '-'})` +
      `   target ≤ ${TARGET_P50_MS} ms: ${verdict(a.targets.p50At1k)}`,
  );
  const d = a.database;
  lines.push('');
  if (pgbench) {
    lines.push(
      `PostgreSQL ceiling (pgbench, single-row autocommit INSERT of a ${CONFIG.messageBytes} B bytea, ` +
        `${CONFIG.pgbenchSeconds} s each): ` +
        pgbench.map((r) => `${r.clients} client${r.clients > 1 ? 's' : ''} ${int(r.tps)} tps`).join(', '),
    );
  } else {
    lines.push(`PostgreSQL ceiling: not measured${pgbenchError ? ` (${pgbenchError})` : ' (BENCH_PGBENCH_S=0)'}`);
  }
  const pct = (x: number | undefined) => (x === undefined ? '' : ` (${fixed(x * 100, 0)}%)`);
  for (const p of d.perPass) {
    const hw = p.hubwire;
    const sio = p.socketio;
    const parts: string[] = [];
    if (hw) {
      parts.push(
        `Hubwire at ${rateText(hw.rate)}/s: ${int(hw.rowsPerSec)} rows/s${pct(hw.rowsShareOfTps1)} × ` +
          `${fixed(hw.messagesPerRow, 1)} msg/row, ${int(hw.deliveriesPerSec)} deliveries/s` +
          `${hw.deliveriesOverTps1 === undefined ? '' : ` (${fixed(hw.deliveriesOverTps1, 1)}×)`}`,
      );
    }
    if (sio) {
      parts.push(
        `Socket.IO at ${rateText(sio.rate)}/s: ${int(sio.notifyTxPerSec)} pg_notify tx/s${pct(sio.txShareOfTps4)}`,
      );
    }
    if (parts.length) lines.push(`  pass ${p.pass}: ${parts.join('; ')}`);
  }
  if (d.perPass.length) {
    lines.push(
      "  (Hubwire's rows/s as a share of the 1-client tps: one append is in flight per node; its deliveries/s as a " +
        "multiple of it. Socket.IO's one-transaction-per-message rate as a share of the 4-client tps: its pool runs " +
        'up to 10 at once.)',
    );
  }
  if (d.hubwireMaxRowsPerSec !== undefined) {
    lines.push(`  Hubwire's most rows/s in any step: ${int(d.hubwireMaxRowsPerSec)}`);
  }
  return lines.join('\n');
}

function writeResults(complete: boolean): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `scaleout-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    benchmark: 'scaleout',
    complete,
    startedAt: startedAt.toISOString(),
    durationSeconds: elapsedSeconds(),
    environment: {
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      totalMemoryBytes: totalmem(),
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg(),
      ws: wsVersion,
      postgres: postgresVersion,
    },
    config: {
      ...CONFIG,
      dbUrl: CONFIG.dbUrl.replace(/\/\/[^@/]*@/, '//…@'),
      schemas: scratch,
      hubwire:
        'ScaleoutEngine + PostgresStore, default options; sender: non-blocking invocation (no invocation id) of ' +
        `hub method broadcast(payload) → this.clients.others.send('m', payload) (${CONFIG.hubwireSend === 'forget' ? 'not awaited' : 'awaited: returned to the invocation'})`,
      socketio:
        "socket.io 4 + @socket.io/postgres-adapter on a pg.Pool (default max 10); sender emits 'm', node A does socket.broadcast.emit('m', payload)",
      clients: 'raw ws sockets speaking each protocol (SignalR JSON handshake; engine.io v4 + Socket.IO v5 packets)',
    },
    pgbench: pgbench ?? { error: pgbenchError ?? 'not measured' },
    steps,
    passes,
    summary: analyse(),
    errors,
    notes,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

let postgresVersion: string | undefined;

async function cleanUpDatabase(): Promise<void> {
  const work = (async () => {
    if (createdSchemas.length) await dropSchemas(CONFIG.dbUrl, createdSchemas);
    if (CONFIG.pgbenchSeconds > 0) await dropPgbenchDatabase(CONFIG.dbUrl);
  })();
  const timeout = sleep(10_000).then(() => {
    throw new Error('timed out');
  });
  try {
    await Promise.race([work, timeout]);
  } catch (error) {
    log(`Could not drop the scratch schemas ${createdSchemas.join(', ')}: ${(error as Error).message}`);
  }
}

async function main(): Promise<void> {
  log(
    `Scaleout bench: ${CONFIG.systems.map((s) => SYSTEM_LABEL[s]).join(' vs ')}, 2 nodes on PostgreSQL, 1 sender → ` +
      `${CONFIG.receivers} receivers, ${CONFIG.messageBytes} B messages, steps of ${CONFIG.stepMs / 1000} s at ` +
      `${CONFIG.rates.map(rateText).join(', ')} msg/s, grace ${CONFIG.graceMs} ms, ${CONFIG.passes} passes. ` +
      `Node ${process.version}, ${cpus().length} CPUs, load ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}.`,
  );
  try {
    postgresVersion = await withClient(
      CONFIG.dbUrl,
      async (c) => (await c.query('SHOW server_version')).rows[0]?.server_version,
    );
  } catch (error) {
    throw new SetupError(`PostgreSQL is not reachable at ${CONFIG.dbUrl}: ${(error as Error).message}`);
  }
  const swept = await sweepStaleSchemas(CONFIG.dbUrl);
  if (swept.length) log(`Dropped stale schemas of earlier runs: ${swept.join(', ')}`);
  if (CONFIG.systems.includes('socketio')) {
    createdSchemas.push(scratch.socketIoSchema);
    await createSocketIoTable(CONFIG.dbUrl, scratch.socketIoSchema);
  }
  log(
    `Scratch schemas: ${[...createdSchemas, 'hw_bench_… (one per pass)'].join(', ')} ` +
      `(${SCRATCH_PREFIXES.join('_*, ')}_* of dead runs are swept after an hour)`,
  );

  if (CONFIG.pgbenchSeconds > 0) {
    log(
      `\npgbench: single-row INSERTs, ${CONFIG.pgbenchClients.join(' and ')} clients, ${CONFIG.pgbenchSeconds} s each`,
    );
    try {
      pgbench = await measurePgbench(CONFIG.dbUrl, CONFIG.pgbenchClients, CONFIG.pgbenchSeconds, CONFIG.messageBytes);
      for (const r of pgbench) log(`  ${r.clients} client(s): ${int(r.tps)} tps, ${r.latencyAverageMs} ms average`);
    } catch (error) {
      pgbenchError = (error as Error).message;
      log(`  pgbench failed: ${pgbenchError}`);
    }
  }

  let lastPassSeconds = 0;
  for (let pass = 1; pass <= CONFIG.passes; pass++) {
    if (pass > 1 && timeLeftSeconds() < lastPassSeconds) {
      notes.push(`passes ${pass}–${CONFIG.passes} skipped: the time budget would not hold another pass.`);
      log(`\nSkipping passes ${pass}–${CONFIG.passes}: not enough time left for another pass.`);
      break;
    }
    const passStarted = Date.now();
    scratch.hubwireSchema = scratchName('hw_bench');
    scratch.hubwireSchemas.push(scratch.hubwireSchema);
    createdSchemas.push(scratch.hubwireSchema); // the nodes install it
    log(`\nPass ${pass}/${CONFIG.passes} (Hubwire schema ${scratch.hubwireSchema})`);
    passes.push(await runPass(pass));
    // Its nodes are gone: drop it now rather than at the end.
    await dropSchemas(CONFIG.dbUrl, [scratch.hubwireSchema]).catch((error: unknown) =>
      log(`  could not drop ${scratch.hubwireSchema} yet: ${(error as Error).message}`),
    );
    lastPassSeconds = (Date.now() - passStarted) / 1000;
  }

  finished = true;
  const file = writeResults(true);
  console.log(
    `\nScaleout broadcast through PostgreSQL: 2 nodes, sender on A → ${CONFIG.receivers} receivers on B, ` +
      `${CONFIG.messageBytes} B messages, ${CONFIG.stepMs / 1000} s per step + ≤ ${CONFIG.graceMs} ms grace; ` +
      `latency = sender stamp → receiver (same clock). CPU = share of one core during the step.`,
  );
  console.log(table());
  if (errors.length) console.log(`\nErrors:\n${errors.map((e) => `  ${e}`).join('\n')}`);
  if (notes.length) console.log(`\nNotes:\n${notes.map((n) => `  ${n}`).join('\n')}`);
  console.log(`\n${summaryText(analyse())}`);
  console.log(
    `\nHubwire: hub method broadcast(payload) → this.clients.others.send('m', payload), ` +
      `${CONFIG.hubwireSend === 'forget' ? 'not awaited' : 'awaited'}, called as a non-blocking invocation ` +
      `(no invocation id). Socket.IO: socket.broadcast.emit. Clients: raw ws, one message per frame.`,
  );
  console.log(`\nResults: ${file}`);
  if (CONFIG.profileDir) console.log(`CPU profiles of the nodes: ${CONFIG.profileDir}`);
}

function killEverything(): void {
  killAllChildren();
  killPgbench();
}

process.on('exit', killEverything);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`\nInterrupted (${signal}); stopping children and dropping the scratch schemas.`);
    killEverything();
    cleanUpDatabase().finally(() => process.exit(130));
  });
}
// The whole bench always stops by itself, however a child misbehaves.
setTimeout(() => {
  if (finished) return;
  log(
    `\nThe bench exceeded its ${CONFIG.deadlineSeconds} s deadline; stopping. Partial results: ${writeResults(false)}`,
  );
  killEverything();
  cleanUpDatabase().finally(() => process.exit(1));
}, CONFIG.deadlineSeconds * 1000).unref();

main().then(
  async () => {
    killEverything();
    await cleanUpDatabase();
    process.exit(errors.length ? 1 : 0);
  },
  async (error: unknown) => {
    log(
      `\nbench:scaleout failed: ${error instanceof SetupError ? error.message : ((error as Error).stack ?? String(error))}`,
    );
    if (!finished && (steps.length || pgbench)) log(`Partial results: ${writeResults(false)}`);
    killEverything();
    await cleanUpDatabase();
    process.exit(1);
  },
);
