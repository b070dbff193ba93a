// `npm run bench:scaleout`: cross-process broadcast through a SQL backplane with the README's chat hub as written
// (`send(name, message) { return this.clients.all.broadcastMessage(name, message); }`), on PostgreSQL against
// Socket.IO 4 + @socket.io/postgres-adapter doing the same (`io.emit('broadcastMessage', name, message)`), and on
// SQLite and MariaDB (Hubwire alone).
//
// For each database and system: two server nodes in separate processes on the same database; the senders (client
// sockets in their own process) on node A, N receivers (another process) on node B. Shapes: 1, 10 and 100 senders
// calling `send` (the offered rate split evenly among them), a server-side publisher on node A awaiting each
// broadcast, fire-and-forget (`sendForget`: the promise is not returned), and a closed loop of awaited invokes. Each
// shape's offered rate steps up a ladder; every step reports what the receivers got (rate, p50/p99 latency from the
// sender's stamp to the receiver's clock, loss) and where Hubwire's time went. A system's ladder stops at its first
// step with p99 over the limit or any loss (after one retry on fresh processes); the sustained rate is the highest
// step before that. Systems step side by side, rate by rate in rotating order. Before the shapes: the append
// anatomy (one append's statements, timed apart on an idle PostgreSQL) and pgbench's INSERT ceiling. See
// bench/README.md.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { measureAnatomy } from './lib/anatomy.js';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import { envInt, Histogram, SetupError } from './lib/common.js';
import { assertLocalMysql, dropPrefixes, mysqlVersion, sweepStalePrefixes } from './lib/mysql.js';
import {
  assertLocalDatabase,
  cpuStallUs,
  createSocketIoTable,
  dropPgbenchDatabase,
  dropSchemas,
  killPgbench,
  measurePgbench,
  postgresCpuBetween,
  processCpu,
  SCRATCH_PREFIXES,
  scratchName,
  sweepStaleSchemas,
  withClient,
} from './lib/postgres.js';
import {
  DATABASE_LABEL,
  type DatabaseName,
  DEFAULT_SHAPES,
  type FromClient,
  type FromNode,
  type NodeStats,
  type PublishReport,
  type ReceiveReport,
  type SendReport,
  SHAPE_NAMES,
  SHAPES,
  type Shape,
  type ShapeName,
  SYSTEM_LABEL,
  type SystemName,
  type ToClient,
  type ToNode,
} from './lib/scaleout.js';
import {
  anatomyTable,
  breakdownTable,
  fixed,
  int,
  invokeTable,
  percent,
  type Quantiles,
  type ReportConfig,
  type Results,
  rateText,
  type ShapeSummary,
  type StepResult,
  stepTable,
  summaryText,
} from './lib/scaleout-results.js';
import { wsVersion } from './lib/ws.js';

// --- Configuration -----------------------------------------------------------------------------------------------

function list<T extends string>(name: string, fallback: string, allowed: readonly T[]): T[] {
  const values = (process.env[name] || fallback).split(',').map((s) => s.trim());
  for (const v of values) {
    if (!allowed.includes(v as T)) throw new SetupError(`${name}: '${v}' is not one of ${allowed.join(', ')}.`);
  }
  return [...new Set(values)] as T[];
}

const DEFAULT_RATES = '500,1000,2000,5000,10000,20000,40000,80000';

function rates(name: string, fallback: string): number[] {
  const values = fallback.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new SetupError(`${name}: bad rate '${s}'.`);
    return n;
  });
  if (values.some((r, i) => i > 0 && r <= (values[i - 1] as number))) throw new SetupError(`${name} must increase.`);
  return values;
}

function readConfig() {
  const dbUrl = process.env.BENCH_DB_URL || 'postgres://postgres@127.0.0.1:5432/test';
  assertLocalDatabase(dbUrl);
  const mysqlUrl = process.env.BENCH_MYSQL_URL || 'mysql://root@127.0.0.1:3306/test';
  assertLocalMysql(mysqlUrl);
  const shapes = list<ShapeName>('BENCH_SHAPES', DEFAULT_SHAPES.join(','), SHAPE_NAMES);
  const shapeRates = {} as Record<ShapeName, number[]>;
  for (const shape of SHAPE_NAMES) {
    const own = `BENCH_RATES_${shape.toUpperCase()}`;
    shapeRates[shape] = process.env[own]
      ? rates(own, process.env[own] as string)
      : rates('BENCH_RATES', process.env.BENCH_RATES || DEFAULT_RATES);
  }
  return {
    dbUrl,
    mysqlUrl,
    databases: list<DatabaseName>('BENCH_DATABASES', 'postgres,sqlite,mysql', ['postgres', 'sqlite', 'mysql']),
    systems: list<SystemName>('BENCH_SYSTEMS', 'hubwire,socketio', ['hubwire', 'socketio']),
    shapes,
    rates: shapeRates,
    /** How long the senders send at each step. */
    stepMs: envInt('BENCH_STEP_MS', 3000, 200, 60_000),
    /** How long the closed loop of invokes runs. */
    invokeMs: envInt('BENCH_INVOKE_MS', 5000, 200, 60_000),
    /** How long after the last send a message may still arrive without counting as lost. */
    graceMs: envInt('BENCH_GRACE_MS', 1500, 100, 60_000),
    passes: envInt('BENCH_PASSES', 1, 1, 20),
    receivers: envInt('BENCH_RECEIVERS', 10, 1, 1000),
    messageBytes: envInt('BENCH_MESSAGE_BYTES', 100, 60, 7000),
    p99LimitMs: envInt('BENCH_P99_LIMIT_MS', 100, 1, 60_000),
    /** A failed step is run again (on fresh processes) this many times before the ladder stops. */
    retries: envInt('BENCH_RETRIES', 1, 0, 5),
    /** pgbench seconds per client count; 0 skips it. */
    pgbenchSeconds: envInt('BENCH_PGBENCH_S', 10, 0, 120),
    pgbenchClients: [1, 4],
    /** Statements per step of the append anatomy; 0 skips it. */
    anatomyIterations: envInt('BENCH_ANATOMY_N', 3000, 0, 100_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 900, 30, 7200),
    /** BENCH_PROFILE=1: every node writes a V8 CPU profile here at exit. */
    profileDir: process.env.BENCH_PROFILE === '1' ? join(tmpdir(), 'hubwire-scaleout-profiles') : undefined,
    /** BENCH_NODE_ARGS: extra Node flags for every server node (e.g. `--trace-gc`), space-separated. */
    nodeArgs: (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((arg) => arg !== ''),
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

const REPORT_CONFIG: ReportConfig = {
  databases: CONFIG.databases,
  shapes: CONFIG.shapes,
  rates: CONFIG.rates,
  receivers: CONFIG.receivers,
  p99LimitMs: CONFIG.p99LimitMs,
  pgbenchSeconds: CONFIG.pgbenchSeconds,
  messageBytes: CONFIG.messageBytes,
};

/** Below this share of the offered rate, the step measured the sender process (or the awaited publisher's limit). */
const SENDER_SHORTFALL = 0.9;
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;
const WARMUP_RATE = 500;
const WARMUP_MS = 1000;
const WARMUP_ATTEMPTS = 5;
/** Upper bound of a closed loop's invocations per second: its seq range (and the receivers' arrays). */
const MAX_INVOKES_PER_SECOND = 50_000;
/** Engine fields that are gauges (reported as at the step's end), not counters. */
const ENGINE_GAUGES = new Set(['queueLength']);

type NodeChild = Child<ToNode, FromNode>;
type ClientChild = Child<ToClient, FromClient>;

// --- Results -----------------------------------------------------------------------------------------------------

const results: Results = { steps: [], shapes: [] };
const errors: string[] = [];
const notes: string[] = [];

// --- Helpers -----------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

function quantiles(buckets: Uint32Array | undefined): Quantiles {
  const h = new Histogram(buckets);
  return { p50Ms: h.quantile(0.5) / 1000, p99Ms: h.quantile(0.99) / 1000, avgMs: h.mean() / 1000 };
}

function delta(after: number | undefined, before: number | undefined): number {
  return after === undefined || before === undefined ? Number.NaN : after - before;
}

function engineDelta(after: Record<string, number> = {}, before: Record<string, number> = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    out[key] = ENGINE_GAUGES.has(key) ? value : value - (before[key] ?? 0);
  }
  return out;
}

function databaseCpu(database: DatabaseName): Map<number, number> | undefined {
  if (database === 'postgres') return processCpu(['postgres']);
  if (database === 'mysql') return processCpu(['mariadbd', 'mysqld']);
  return undefined; // SQLite runs inside the nodes
}

// --- Scratch databases -------------------------------------------------------------------------------------------

const startedAt = new Date();
const loadAtStart = loadavg();
let finished = false;

const scratch = {
  socketIoSchema: scratchName('sio_bench'),
  /** PostgreSQL schemas to drop at the end (those not dropped already). */
  pgSchemas: [] as string[],
  /** MariaDB table prefixes to drop at the end. */
  mysqlPrefixes: [] as string[],
  sqliteDir: undefined as string | undefined,
  /** Every scratch name used, for the JSON. */
  used: [] as string[],
};

const SQLITE_DIR_PREFIX = 'hw-bench-sqlite-';

/** A fresh schema / table prefix / file for one pass of one database; the URL the Hubwire nodes take. */
function freshBackplane(database: DatabaseName, pass: number): { url: string; schema: string } {
  const schema = scratchName('hw_bench');
  scratch.used.push(`${database}:${schema}`);
  if (database === 'postgres') {
    scratch.pgSchemas.push(schema);
    return { url: CONFIG.dbUrl, schema };
  }
  if (database === 'mysql') {
    scratch.mysqlPrefixes.push(schema);
    return { url: CONFIG.mysqlUrl, schema };
  }
  scratch.sqliteDir ??= mkdtempSync(join(tmpdir(), SQLITE_DIR_PREFIX));
  return { url: `sqlite:${join(scratch.sqliteDir, `pass-${pass}-${schema}.db`)}`, schema };
}

async function dropBackplane(database: DatabaseName, schema: string): Promise<void> {
  if (database === 'postgres') {
    await dropSchemas(CONFIG.dbUrl, [schema]);
    scratch.pgSchemas = scratch.pgSchemas.filter((s) => s !== schema);
  } else if (database === 'mysql') {
    await dropPrefixes(CONFIG.mysqlUrl, [schema]);
    scratch.mysqlPrefixes = scratch.mysqlPrefixes.filter((s) => s !== schema);
  } else if (scratch.sqliteDir) {
    for (const file of readdirSync(scratch.sqliteDir)) {
      if (file.includes(schema)) rmSync(join(scratch.sqliteDir, file), { force: true });
    }
  }
}

/** SQLite directories of runs that died more than an hour ago. */
function sweepStaleSqliteDirs(): string[] {
  const swept: string[] = [];
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(SQLITE_DIR_PREFIX)) continue;
    const path = join(tmpdir(), entry);
    try {
      if (Date.now() - statSync(path).mtimeMs > 3_600_000) {
        rmSync(path, { recursive: true, force: true });
        swept.push(path);
      }
    } catch {
      // gone, or not ours to remove
    }
  }
  return swept;
}

async function cleanUpDatabases(): Promise<void> {
  const work = (async () => {
    const problems: string[] = [];
    if (CONFIG.databases.includes('postgres')) {
      await dropSchemas(CONFIG.dbUrl, [...scratch.pgSchemas, scratch.socketIoSchema]).catch((e: Error) =>
        problems.push(`PostgreSQL schemas ${scratch.pgSchemas.join(', ')}: ${e.message}`),
      );
      if (CONFIG.pgbenchSeconds > 0) await dropPgbenchDatabase(CONFIG.dbUrl).catch(() => undefined);
    }
    if (scratch.mysqlPrefixes.length) {
      await dropPrefixes(CONFIG.mysqlUrl, scratch.mysqlPrefixes).catch((e: Error) =>
        problems.push(`MariaDB tables ${scratch.mysqlPrefixes.join(', ')}_*: ${e.message}`),
      );
    }
    if (scratch.sqliteDir) rmSync(scratch.sqliteDir, { recursive: true, force: true });
    if (problems.length) throw new Error(problems.join('; '));
  })();
  const timeout = sleep(10_000).then(() => {
    throw new Error('timed out');
  });
  try {
    await Promise.race([work, timeout]);
  } catch (error) {
    log(`Could not drop every scratch schema / table / file: ${(error as Error).message}`);
  }
}

// --- One system on one database: two nodes, the senders, the receivers ------------------------------------------

class Cluster {
  private nodeA!: NodeChild;
  private nodeB!: NodeChild;
  private senders: ClientChild | undefined;
  private receivers: ClientChild | undefined;
  private nextSeq = 0;
  /** A step failed on these processes: they may hold backlogs; the next shape starts on fresh ones. */
  dirty = false;

  constructor(
    readonly system: SystemName,
    readonly database: DatabaseName,
    private readonly env: Record<string, string>,
  ) {}

  private children(): (NodeChild | ClientChild | undefined)[] {
    return [this.nodeA, this.nodeB, this.senders, this.receivers];
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
    const nodeArgs = [
      ...(CONFIG.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${CONFIG.profileDir}`] : []),
      ...CONFIG.nodeArgs,
    ];
    const label = `${SYSTEM_LABEL[this.system]} on ${DATABASE_LABEL[this.database]}`;
    const node = (name: string) =>
      new Child<ToNode, FromNode>(
        `${label} node ${name}`,
        `bench/servers/${this.system}-node.ts`,
        [],
        { ...this.env, BENCH_NODE: name, BENCH_MESSAGE_BYTES: String(CONFIG.messageBytes) },
        nodeArgs,
      );
    this.nodeA = node('A');
    this.nodeB = node('B');
    this.dirty = false;
    const ready = await Promise.all(
      [this.nodeA, this.nodeB].map(
        (n) =>
          n.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message') as Promise<
            Extract<FromNode, { type: 'ready' }>
          >,
      ),
    );
    const [a, b] = ready as [Extract<FromNode, { type: 'ready' }>, Extract<FromNode, { type: 'ready' }>];
    const client = (role: 'senders' | 'receivers', n: Extract<FromNode, { type: 'ready' }>) =>
      new Child<ToClient, FromClient>(
        `${label} ${role}`,
        'bench/scaleout-client.ts',
        [this.system, role, `ws://127.0.0.1:${n.port}${n.path}`],
        { BENCH_MESSAGE_BYTES: String(CONFIG.messageBytes) },
      );
    this.senders = client('senders', a);
    this.receivers = client('receivers', b);
    await Promise.all(
      [this.senders, this.receivers].map((c) => c.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready')),
    );
    await this.receivers.request(
      (id) => ({ type: 'connect', id, count: CONFIG.receivers }),
      READY_TIMEOUT_MS,
      'connect',
    );
  }

  /** The shape's senders connected (and only those), counted by both nodes, then a warm-up. */
  async prepare(shape: Shape): Promise<void> {
    const senders = this.senders as ClientChild;
    await senders.request((id) => ({ type: 'connect', id, count: shape.senders }), READY_TIMEOUT_MS, 'connect');
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const [sa, sb] = await Promise.all([this.stats(this.nodeA), this.stats(this.nodeB)]);
      if (sa.connections === shape.senders && sb.connections === CONFIG.receivers) break;
      if (Date.now() > deadline) {
        throw new Error(
          `nodes count ${sa.connections} and ${sb.connections} clients, expected ${shape.senders} and ${CONFIG.receivers}`,
        );
      }
      await sleep(100);
    }
    await this.warmUp(shape);
  }

  /**
   * Short unrecorded steps of the shape until one delivers everything: JIT warm-up, and proof that node B hears
   * node A (the Socket.IO adapter LISTENs in the background after it is created).
   */
  private async warmUp(shape: Shape): Promise<void> {
    const warm = shape.kind === 'invoke' ? SHAPES.send1 : shape;
    for (let attempt = 1; attempt <= WARMUP_ATTEMPTS; attempt++) {
      const result = await this.step(0, warm, WARMUP_RATE, attempt, WARMUP_MS);
      if (result.lost === 0) return;
    }
    throw new Error(`warm-up steps kept losing messages (${WARMUP_ATTEMPTS} attempts)`);
  }

  /**
   * One step: `rate` msg/s for `durationMs` (the closed loop: invokes for `durationMs`), then up to the grace period
   * for the last arrivals.
   */
  async step(pass: number, shape: Shape, rate: number, attempt: number, durationMs: number): Promise<StepResult> {
    this.checkHealthy();
    const senders = this.senders as ClientChild;
    const receivers = this.receivers as ClientChild;
    const closedLoop = shape.kind === 'invoke';
    let count = closedLoop ? 0 : Math.max(1, Math.round((rate * durationMs) / 1000));
    const lanes = Math.max(1, shape.senders);
    const firstSeq = this.nextSeq;
    this.nextSeq += closedLoop ? Math.ceil((durationMs / 1000) * MAX_INVOKES_PER_SECOND) : count;

    const [beforeA, beforeB] = await Promise.all([this.stats(this.nodeA), this.stats(this.nodeB)]);
    const dbBefore = databaseCpu(this.database);
    const stallBefore = cpuStallUs();
    const started = process.hrtime.bigint();
    // What both client processes are told: the receivers expect what the senders send.
    const stepStart = (id: number): ToClient =>
      closedLoop
        ? { type: 'invoke-start', id, firstSeq, durationMs }
        : { type: 'step-start', id, firstSeq, count, rate, senders: lanes, target: shape.target };
    await receivers.request(stepStart, REQUEST_TIMEOUT_MS, 'step start');
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
    let publishReport: PublishReport | undefined;
    try {
      const timeout = durationMs * 3 + 10_000;
      if (shape.kind === 'publisher') {
        const published = await this.nodeA.request(
          (id) => ({ type: 'publish', id, firstSeq, count, rate }),
          timeout,
          'end of publishing',
        );
        publishReport = (published as Extract<FromNode, { type: 'published' }>).report;
        sendReport = { ...publishReport, maxBufferedBytes: 0, cpuUs: Number.NaN };
      } else {
        const sent = await senders.request(stepStart, timeout, 'end of sending');
        sendReport = (sent as Extract<FromClient, { type: 'sent' }>).report;
      }
      if (closedLoop) {
        count = sendReport.sent;
        await receivers.request((id) => ({ type: 'expect', id, count }), REQUEST_TIMEOUT_MS, 'expect');
      }
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
    const dbCpuUs = postgresCpuBetween(dbBefore, databaseCpu(this.database));
    const stallAfter = cpuStallUs();
    const wallUs = Number(process.hrtime.bigint() - started) / 1000;
    const result = this.result({
      pass,
      shape,
      rate,
      attempt,
      count,
      sendReport,
      publishReport,
      report,
      beforeA,
      beforeB,
      afterA,
      afterB,
      dbCpuUs,
      stall: stallBefore !== undefined && stallAfter !== undefined ? (stallAfter - stallBefore) / wallUs : undefined,
      wallUs,
    });
    return result;
  }

  private result(m: {
    pass: number;
    shape: Shape;
    rate: number;
    attempt: number;
    count: number;
    sendReport: SendReport;
    publishReport: PublishReport | undefined;
    report: ReceiveReport;
    beforeA: NodeStats;
    beforeB: NodeStats;
    afterA: NodeStats;
    afterB: NodeStats;
    dbCpuUs: number | undefined;
    stall: number | undefined;
    wallUs: number;
  }): StepResult {
    const { shape, sendReport, report, beforeA, beforeB, afterA, afterB, wallUs } = m;
    const histogram = new Histogram(report.buckets);
    const expectedDeliveries = m.count * CONFIG.receivers;
    const lost = expectedDeliveries - report.received;
    const sendSpanUs = Math.max(1, sendReport.lastUs - sendReport.firstUs);
    const activeUs = Math.max(1, Math.max(report.lastReceivedUs, sendReport.lastUs) - sendReport.firstUs);
    const sentPerSec = m.count > 1 ? ((m.count - 1) * 1e6) / sendSpanUs : m.rate;
    const p99Ms = histogram.quantile(0.99) / 1000;
    const result: StepResult = {
      pass: m.pass,
      database: this.database,
      shape: shape.name,
      system: this.system,
      rate: shape.kind === 'invoke' ? Math.round(sentPerSec) : m.rate,
      attempt: m.attempt,
      senders: shape.senders,
      messages: m.count,
      sentPerSec,
      expectedDeliveries,
      deliveries: report.received,
      deliveriesPerSec: report.received / (activeUs / 1e6),
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
        database: m.dbCpuUs === undefined ? undefined : m.dbCpuUs / wallUs,
        senders: shape.kind === 'publisher' ? undefined : sendReport.cpuUs / sendSpanUs,
        receivers: report.cpuUs / wallUs,
      },
      eventLoop: { nodeA: afterA.eventLoop, nodeB: afterB.eventLoop },
      machine: { cpuStall: m.stall, load1: loadavg()[0] as number },
      senderMaxBufferedBytes: sendReport.maxBufferedBytes,
      sendErrors: afterA.sendErrors - beforeA.sendErrors + (afterB.sendErrors - beforeB.sendErrors),
      passed: false,
    };
    const engineA = engineDelta(afterA.engine, beforeA.engine);
    const engineB = engineDelta(afterB.engine, beforeB.engine);
    if (afterA.store && beforeA.store && afterB.store && beforeB.store) {
      const rows = engineA.rowsWritten ?? delta(afterA.store.appends, beforeA.store.appends);
      const appends = afterA.store.appends - beforeA.store.appends;
      const reads = afterB.store.reads - beforeB.store.reads;
      const appendQ = quantiles(afterA.timings?.append);
      result.backplane = {
        rowsWritten: rows,
        rowsPerSec: rows / (activeUs / 1e6),
        messagesPerRow: (engineA.published ?? Number.NaN) / Math.max(1, rows),
        rowsRead: engineB.rowsRead ?? Number.NaN,
        append: {
          ...appendQ,
          avgMs: (afterA.store.appendMs - beforeA.store.appendMs) / appends,
          maxMs: afterA.store.appendMaxMs,
          count: appends,
        },
        readAvgMs: (afterB.store.readMs - beforeB.store.readMs) / reads,
        readMaxMs: afterB.store.readMaxMs,
        rowsPerRead: (afterB.store.rowsRead - beforeB.store.rowsRead) / reads,
        readsByA: afterA.store.reads - beforeA.store.reads,
        rowsReadByA: afterA.store.rowsRead - beforeA.store.rowsRead,
        errors: (engineA.errors ?? 0) + (engineB.errors ?? 0),
        gaps: engineB.gaps ?? 0,
        queueAfter: engineA.queueLength ?? Number.NaN,
      };
      const published = engineA.published;
      result.breakdown = {
        toPublish: quantiles(afterA.timings?.toPublish),
        publishToCommit: quantiles(afterA.timings?.publishToLocal),
        toHubB: quantiles(afterB.timings?.toRemoteHub),
        engineA,
        engineB,
        // Only where this engine's stats have these fields.
        engineAppendAvgMs: engineA.appendMs !== undefined && rows > 0 ? (engineA.appendMs as number) / rows : undefined,
        acceptToCommitAvgMs:
          engineA.acceptToCommitMs !== undefined && published
            ? (engineA.acceptToCommitMs as number) / published
            : undefined,
      };
    }
    if (m.publishReport) {
      result.publisher = { ...quantiles(m.publishReport.awaitBuckets), errors: m.publishReport.errors };
    }
    if (shape.kind === 'invoke' && sendReport.rttBuckets) {
      const rtt = new Histogram(sendReport.rttBuckets);
      result.invoke = {
        ...quantiles(sendReport.rttBuckets),
        maxMs: rtt.quantile(1) / 1000,
        invocations: sendReport.sent,
        perSec: sentPerSec,
        errors: sendReport.invokeErrors ?? 0,
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
    if (result.invoke?.errors) reasons.push(`${result.invoke.errors} invocations completed with an error`);
    if (shape.kind !== 'invoke' && sentPerSec < m.rate * SENDER_SHORTFALL) {
      reasons.push(
        shape.kind === 'publisher'
          ? `the publisher reached only ${int(sentPerSec)}/s (await avg ${fixed(result.publisher?.avgMs, 2)} ms)`
          : `the senders reached only ${int(sentPerSec)}/s (sender process CPU-bound)`,
      );
    }
    result.passed = reasons.length === 0;
    if (!result.passed) result.reason = reasons.join('; ');
    return result;
  }

  async stop(): Promise<void> {
    await Promise.all([this.senders?.stop(), this.receivers?.stop()]);
    await Promise.all([this.nodeA?.stop({ type: 'stop' }), this.nodeB?.stop({ type: 'stop' })]);
  }
}

// --- The run -----------------------------------------------------------------------------------------------------

function elapsedSeconds(): number {
  return (Date.now() - startedAt.getTime()) / 1000;
}

/** Time left before the soft deadline (the hard one kills everything 30 s later). */
function timeLeftSeconds(): number {
  return CONFIG.deadlineSeconds - 30 - elapsedSeconds();
}

/**
 * The time budget: each database of the run, then each shape of a database, gets an equal share of the time left
 * (what one does not use goes to the next), so that a tight deadline shortens ladders instead of skipping the
 * last database. Seconds since the start.
 */
let budgetEnd = Number.POSITIVE_INFINITY;

/** The end of a share `weight / totalWeight` of the time left until `until`. */
function shareOfTimeLeft(weight: number, totalWeight: number, until = CONFIG.deadlineSeconds - 30): number {
  return elapsedSeconds() + (Math.max(0, until - elapsedSeconds()) * weight) / Math.max(weight, totalWeight);
}

/** The systems a database runs (Socket.IO runs on PostgreSQL only). */
function systemsOf(database: DatabaseName): SystemName[] {
  return CONFIG.systems.filter((s) => s === 'hubwire' || database === 'postgres');
}

function budgetLeftSeconds(): number {
  return Math.min(timeLeftSeconds(), budgetEnd - elapsedSeconds());
}

function envFor(system: SystemName, backplane: { url: string; schema: string }): Record<string, string> {
  if (system === 'hubwire') return { BENCH_BACKPLANE_URL: backplane.url, BENCH_SCHEMA: backplane.schema };
  return {
    BENCH_DB_URL: CONFIG.dbUrl,
    BENCH_SIO_TABLE: `"${scratch.socketIoSchema}".attachments`,
    BENCH_SIO_CHANNEL: scratch.socketIoSchema,
  };
}

async function startCluster(
  system: SystemName,
  database: DatabaseName,
  env: Record<string, string>,
  shape?: Shape,
): Promise<Cluster> {
  const cluster = new Cluster(system, database, env);
  try {
    await cluster.start();
    if (shape) await cluster.prepare(shape);
    return cluster;
  } catch (error) {
    await cluster.stop().catch(() => undefined);
    throw error;
  }
}

function stepLine(r: StepResult): string {
  const b = r.breakdown;
  const bp = r.backplane;
  const hub =
    b && bp
      ? `, ${fixed(bp.messagesPerRow, 1)} msg/row, →publish ${fixed(b.toPublish.p50Ms, 2)}, publish→commit ` +
        `${fixed(b.publishToCommit.p50Ms, 2)}, append ${fixed(bp.append.avgMs, 2)} (max ${fixed(bp.append.maxMs, 1)}), ` +
        `→hub B ${fixed(b.toHubB.p50Ms, 2)} ms`
      : '';
  return (
    `  ${SYSTEM_LABEL[r.system].padEnd(9)} ${rateText(r.rate).padStart(4)}/s` +
    `${r.attempt > 1 ? ` (retry ${r.attempt - 1})` : ''}: ${int(r.deliveriesPerSec)} deliveries/s, ` +
    `p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, lost ${r.lost}${hub}, ` +
    `CPU A ${percent(r.cpu.nodeA)} B ${percent(r.cpu.nodeB)} DB ${percent(r.cpu.database)} ` +
    `send ${percent(r.cpu.senders)} recv ${percent(r.cpu.receivers)}, ` +
    `loop p99 A ${fixed(r.eventLoop.nodeA.p99Ms, 1)} B ${fixed(r.eventLoop.nodeB.p99Ms, 1)} ms, ` +
    `CPU stall ${percent(r.machine.cpuStall)}` +
    `${r.publisher ? `, publisher await p50 ${fixed(r.publisher.p50Ms, 2)} ms` : ''}` +
    `${r.invoke ? `, RTT p50 ${fixed(r.invoke.p50Ms, 2)} p99 ${fixed(r.invoke.p99Ms, 2)} ms` : ''}` +
    `${r.notify ? `, A pg_notify ${fixed(r.notify.avgMs, 2)} ms (max ${fixed(r.notify.maxMs, 1)})` : ''}` +
    `${r.reordered ? `, reordered ${r.reordered}` : ''}${r.duplicates ? `, duplicates ${r.duplicates}` : ''}` +
    `${r.sendErrors ? `, failed publishes ${r.sendErrors}` : ''}` +
    `${r.passed ? '' : `  FAIL: ${r.reason}`}`
  );
}

/** The systems' clusters of one database in one pass: restarted on fresh processes when a step leaves them dirty. */
class Clusters {
  readonly live = new Map<SystemName, Cluster>();

  constructor(
    private readonly database: DatabaseName,
    private readonly envs: Map<SystemName, Record<string, string>>,
  ) {}

  async start(system: SystemName, shape?: Shape): Promise<Cluster> {
    await this.stop(system);
    const cluster = await startCluster(system, this.database, this.envs.get(system) as Record<string, string>, shape);
    this.live.set(system, cluster);
    return cluster;
  }

  /** The system's cluster, ready for the shape: fresh processes when the last ones failed a step. */
  async ready(system: SystemName, shape: Shape): Promise<Cluster> {
    const existing = this.live.get(system);
    if (existing && !existing.dirty) {
      try {
        await existing.prepare(shape);
        return existing;
      } catch (error) {
        log(`  ${SYSTEM_LABEL[system]}: ${(error as Error).message}; starting fresh processes`);
      }
    }
    return this.start(system, shape);
  }

  async stop(system: SystemName): Promise<void> {
    await this.live
      .get(system)
      ?.stop()
      .catch(() => undefined);
    this.live.delete(system);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.live.keys()].map((s) => this.stop(s)));
  }
}

async function runShape(pass: number, database: DatabaseName, shape: Shape, clusters: Clusters, systems: SystemName[]) {
  const summary: ShapeSummary = { pass, database, shape: shape.name, sustained: {} };
  const active = new Set<SystemName>();
  const best = new Map<SystemName, StepResult>();
  for (const system of systems) {
    try {
      await clusters.ready(system, shape);
      active.add(system);
    } catch (error) {
      const message = `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label}, ${SYSTEM_LABEL[system]}: could not start: ${(error as Error).message}`;
      errors.push(message);
      log(`  ${message}`);
      await clusters.stop(system);
    }
  }
  /** Systems that ran a step of this shape (the time budget may leave none). */
  const ran = new Set<SystemName>();
  const ladder = CONFIG.rates[shape.name];
  for (const [i, rate] of ladder.entries()) {
    if (active.size === 0) break;
    if (budgetLeftSeconds() < 10) {
      notes.push(
        `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label} stopped at ${rateText(rate)}/s: time budget (BENCH_DEADLINE_S).`,
      );
      log(`  time budget reached: stops before ${rateText(rate)}/s`);
      break;
    }
    const order = [...active];
    const rotated = order.map((_, k) => order[(k + pass + i) % order.length] as SystemName);
    for (const system of rotated) {
      let final: StepResult | undefined;
      for (let attempt = 1; attempt <= 1 + CONFIG.retries; attempt++) {
        try {
          // A retry on fresh processes: a failed step may leave a backlog behind (queued queries, buffers).
          const cluster = attempt > 1 ? await clusters.start(system, shape) : (clusters.live.get(system) as Cluster);
          final = await cluster.step(pass, shape, rate, attempt, CONFIG.stepMs);
          ran.add(system);
          results.steps.push(final);
          log(stepLine(final));
          if (final.passed) break;
        } catch (error) {
          final = undefined;
          const message = `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label}, ${SYSTEM_LABEL[system]} at ${rateText(rate)}/s (attempt ${attempt}): ${(error as Error).message}`;
          errors.push(message);
          log(`  ERROR ${message}`);
          await clusters.stop(system);
        }
      }
      if (final?.passed) best.set(system, final);
      else {
        active.delete(system);
        const cluster = clusters.live.get(system);
        if (cluster) cluster.dirty = true;
      }
    }
  }
  for (const system of ran) {
    const top = best.get(system);
    summary.sustained[system] = {
      rate: top?.rate ?? 0,
      // Still climbing: the ladder's top passed, or the time budget cut the ladder short.
      capped: active.has(system) && top !== undefined,
      p50Ms: top?.p50Ms,
      p99Ms: top?.p99Ms,
    };
  }
  const hw = summary.sustained.hubwire?.rate;
  const sio = summary.sustained.socketio?.rate;
  if (hw !== undefined && sio) summary.ratio = hw / sio;
  results.shapes.push(summary);
}

async function runInvoke(pass: number, database: DatabaseName, clusters: Clusters): Promise<void> {
  const shape = SHAPES.invoke;
  if (budgetLeftSeconds() < 10 + CONFIG.invokeMs / 1000) {
    notes.push(`pass ${pass}, ${DATABASE_LABEL[database]}, closed loop skipped: time budget (BENCH_DEADLINE_S).`);
    return;
  }
  for (let attempt = 1; attempt <= 1 + CONFIG.retries; attempt++) {
    try {
      const cluster = attempt > 1 ? await clusters.start('hubwire', shape) : await clusters.ready('hubwire', shape);
      const result = await cluster.step(pass, shape, 0, attempt, CONFIG.invokeMs);
      results.steps.push(result);
      log(stepLine(result));
      return;
    } catch (error) {
      const message = `pass ${pass}, ${DATABASE_LABEL[database]}, closed loop (attempt ${attempt}): ${(error as Error).message}`;
      errors.push(message);
      log(`  ERROR ${message}`);
      await clusters.stop('hubwire');
    }
  }
}

async function runDatabase(pass: number, database: DatabaseName): Promise<void> {
  const systems = systemsOf(database);
  if (systems.length === 0) return;
  const backplane = freshBackplane(database, pass);
  log(
    `\nPass ${pass}/${CONFIG.passes}, ${DATABASE_LABEL[database]} (${systems.map((s) => SYSTEM_LABEL[s]).join(', ')}; ` +
      `Hubwire backplane ${backplane.url.startsWith('sqlite:') ? backplane.url : backplane.schema})`,
  );
  const envs = new Map(systems.map((s) => [s, envFor(s, backplane)] as const));
  const clusters = new Clusters(database, envs);
  const databaseEnd = budgetEnd;
  try {
    const ladders = CONFIG.shapes.filter((name) => SHAPES[name].kind !== 'invoke');
    const closedLoop = CONFIG.shapes.includes('invoke') && systems.includes('hubwire');
    // The closed loop's fixed time (and its warm-up) is set aside; the ladders share the rest.
    const reserved = closedLoop ? CONFIG.invokeMs / 1000 + 10 : 0;
    for (const [i, name] of ladders.entries()) {
      budgetEnd = shareOfTimeLeft(1, ladders.length - i, databaseEnd - reserved);
      const shape = SHAPES[name];
      log(` ${shape.label}:`);
      await runShape(pass, database, shape, clusters, systems);
    }
    if (closedLoop) {
      budgetEnd = databaseEnd;
      log(` ${SHAPES.invoke.label}:`);
      await runInvoke(pass, database, clusters);
    }
  } finally {
    budgetEnd = databaseEnd;
    await clusters.stopAll();
    // Its nodes are gone: drop it now rather than at the end.
    await dropBackplane(database, backplane.schema).catch((error: unknown) =>
      log(`  could not drop ${backplane.schema} yet: ${(error as Error).message}`),
    );
  }
}

// --- Output ------------------------------------------------------------------------------------------------------

function tablesText(): string {
  const parts: string[] = [];
  for (const database of CONFIG.databases) {
    for (const shape of CONFIG.shapes) {
      if (SHAPES[shape].kind === 'invoke') continue;
      const steps = results.steps.filter((s) => s.database === database && s.shape === shape);
      if (steps.length === 0) continue;
      const s = SHAPES[shape];
      const who =
        s.kind === 'publisher'
          ? 'node A publishes (awaits each broadcastMessage; Socket.IO: io.emit)'
          : `${s.senders} sender${s.senders > 1 ? 's' : ''} on node A call '${s.target}'`;
      parts.push(`\n${DATABASE_LABEL[database]}, ${s.label} (${who}; ${CONFIG.receivers} receivers on node B):`);
      parts.push(stepTable(steps));
      const breakdown = breakdownTable(steps);
      if (breakdown) {
        parts.push(`  Hubwire, where the time goes (p50 / p99 ms; see the README):`);
        parts.push(breakdown);
      }
    }
  }
  if (results.steps.some((s) => s.invoke)) {
    parts.push(
      `\nClosed loop: 1 client awaits invoke('send', …) (invocation id, completion) before the next, ` +
        `${CONFIG.invokeMs / 1000} s; ${CONFIG.receivers} receivers on node B:`,
    );
    parts.push(invokeTable(results.steps));
  }
  return parts.join('\n');
}

let postgresVersion: string | undefined;
let mariadbVersion: string | undefined;

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
      mariadb: mariadbVersion,
    },
    config: {
      ...CONFIG,
      dbUrl: CONFIG.dbUrl.replace(/\/\/[^@/]*@/, '//…@'),
      mysqlUrl: CONFIG.mysqlUrl.replace(/\/\/[^@/]*@/, '//…@'),
      scratch: { socketIoSchema: scratch.socketIoSchema, backplanes: scratch.used },
      shapes: CONFIG.shapes.map((s) => SHAPES[s]),
      hubwire:
        "the README's ChatHub: send(name, message) { return this.clients.all.broadcastMessage(name, message); } " +
        '(sendForget: the same without returning the promise); ScaleoutEngine with default options on the ' +
        "database's store; clients call it as non-blocking invocations (no invocation id), the closed loop with one",
      socketio:
        "socket.io 4 + @socket.io/postgres-adapter on a pg.Pool (default max 10); socket.on('send', (n, m) => " +
        "io.emit('broadcastMessage', n, m))",
      clients: 'raw ws sockets speaking each protocol (SignalR JSON handshake; engine.io v4 + Socket.IO v5 packets)',
    },
    anatomy: results.anatomy ?? { error: results.anatomyError ?? 'not measured' },
    pgbench: results.pgbench ?? { error: results.pgbenchError ?? 'not measured' },
    steps: results.steps,
    shapes: results.shapes,
    summary: summaryText(results, REPORT_CONFIG),
    errors,
    notes,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

async function prepareDatabases(): Promise<void> {
  if (CONFIG.databases.includes('postgres')) {
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
    if (CONFIG.systems.includes('socketio')) await createSocketIoTable(CONFIG.dbUrl, scratch.socketIoSchema);
    log(
      `PostgreSQL scratch schemas: ${scratch.socketIoSchema}, hw_bench_… (one per pass) ` +
        `(${SCRATCH_PREFIXES.join('_*, ')}_* of dead runs are swept after an hour)`,
    );
  }
  if (CONFIG.databases.includes('mysql')) {
    try {
      mariadbVersion = await mysqlVersion(CONFIG.mysqlUrl);
    } catch (error) {
      throw new SetupError(`MariaDB is not reachable at ${CONFIG.mysqlUrl}: ${(error as Error).message}`);
    }
    const swept = await sweepStalePrefixes(CONFIG.mysqlUrl);
    if (swept.length) log(`Dropped stale MariaDB tables of earlier runs: ${swept.map((p) => `${p}_*`).join(', ')}`);
  }
  if (CONFIG.databases.includes('sqlite')) {
    const swept = sweepStaleSqliteDirs();
    if (swept.length) log(`Removed stale SQLite directories of earlier runs: ${swept.join(', ')}`);
  }
}

async function measureDatabaseFloor(): Promise<void> {
  if (!CONFIG.databases.includes('postgres')) return;
  if (CONFIG.anatomyIterations > 0) {
    const schema = scratchName('hw_bench');
    scratch.pgSchemas.push(schema);
    log(
      `\nAppend anatomy (idle PostgreSQL, one pg.Client, sequential, ${CONFIG.anatomyIterations} each after a warm-up; ` +
        `schema ${schema}):`,
    );
    try {
      results.anatomy = await measureAnatomy(
        CONFIG.dbUrl,
        schema,
        CONFIG.anatomyIterations,
        CONFIG.messageBytes,
        (line) => log(line),
      );
    } catch (error) {
      results.anatomyError = (error as Error).message;
      log(`  anatomy failed: ${results.anatomyError}`);
    }
    await dropSchemas(CONFIG.dbUrl, [schema]).then(
      () => {
        scratch.pgSchemas = scratch.pgSchemas.filter((s) => s !== schema);
      },
      () => undefined,
    );
  }
  if (CONFIG.pgbenchSeconds > 0) {
    log(
      `\npgbench: single-row INSERTs, ${CONFIG.pgbenchClients.join(' and ')} clients, ${CONFIG.pgbenchSeconds} s each`,
    );
    try {
      results.pgbench = await measurePgbench(
        CONFIG.dbUrl,
        CONFIG.pgbenchClients,
        CONFIG.pgbenchSeconds,
        CONFIG.messageBytes,
      );
      for (const r of results.pgbench)
        log(`  ${r.clients} client(s): ${int(r.tps)} tps, ${r.latencyAverageMs} ms average`);
    } catch (error) {
      results.pgbenchError = (error as Error).message;
      log(`  pgbench failed: ${results.pgbenchError}`);
    }
  }
}

async function main(): Promise<void> {
  log(
    `Scaleout bench: ${CONFIG.databases.map((d) => DATABASE_LABEL[d]).join(', ')}; ${CONFIG.systems.map((s) => SYSTEM_LABEL[s]).join(' vs ')} ` +
      `(Socket.IO on PostgreSQL only); shapes ${CONFIG.shapes.map((s) => SHAPES[s].label).join(', ')}; ` +
      `${CONFIG.receivers} receivers, ${CONFIG.messageBytes} B messages, steps of ${CONFIG.stepMs / 1000} s, grace ` +
      `${CONFIG.graceMs} ms, ${CONFIG.passes} pass(es), deadline ${CONFIG.deadlineSeconds} s. Node ${process.version}, ` +
      `${cpus().length} CPUs, load ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}.`,
  );
  await prepareDatabases();
  await measureDatabaseFloor();

  let lastPassSeconds = 0;
  for (let pass = 1; pass <= CONFIG.passes; pass++) {
    if (pass > 1 && timeLeftSeconds() < lastPassSeconds) {
      notes.push(`passes ${pass}–${CONFIG.passes} skipped: the time budget would not hold another pass.`);
      log(`\nSkipping passes ${pass}–${CONFIG.passes}: not enough time left for another pass.`);
      break;
    }
    const passStarted = Date.now();
    for (const [i, database] of CONFIG.databases.entries()) {
      // Shares weighted by the systems each database runs side by side.
      const weight = (d: DatabaseName) => systemsOf(d).length;
      const perPass = CONFIG.databases.reduce((sum, d) => sum + weight(d), 0);
      const thisPass = CONFIG.databases.slice(i).reduce((sum, d) => sum + weight(d), 0);
      budgetEnd = shareOfTimeLeft(weight(database), (CONFIG.passes - pass) * perPass + thisPass);
      if (timeLeftSeconds() < 30) {
        notes.push(`pass ${pass}, ${DATABASE_LABEL[database]} skipped: time budget (BENCH_DEADLINE_S).`);
        log(`\nSkipping ${DATABASE_LABEL[database]} in pass ${pass}: time budget reached.`);
        continue;
      }
      await runDatabase(pass, database);
    }
    lastPassSeconds = (Date.now() - passStarted) / 1000;
  }

  finished = true;
  const file = writeResults(true);
  console.log(
    `\nScaleout broadcast, the README's chat hub: 2 nodes per system on one database, senders on node A, ` +
      `${CONFIG.receivers} receivers on node B, ${CONFIG.messageBytes} B messages, ${CONFIG.stepMs / 1000} s per step + ` +
      `≤ ${CONFIG.graceMs} ms grace; latency = sender stamp → receiver (same clock). CPU = share of one core ` +
      `during the step (DB: the database server's processes; SQLite runs inside the nodes).`,
  );
  if (results.anatomy) {
    console.log(
      `\nAppend anatomy (idle PostgreSQL, one connection, sequential, ${results.anatomy.iterations} each, ` +
        `${results.anatomy.payloadBytes} B payload):`,
    );
    console.log(anatomyTable(results.anatomy));
  }
  console.log(tablesText());
  if (errors.length) console.log(`\nErrors:\n${errors.map((e) => `  ${e}`).join('\n')}`);
  if (notes.length) console.log(`\nNotes:\n${notes.map((n) => `  ${n}`).join('\n')}`);
  console.log(`\n${summaryText(results, REPORT_CONFIG)}`);
  console.log(`\nRun time ${Math.round(elapsedSeconds())} s. Results: ${file}`);
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
    cleanUpDatabases().finally(() => process.exit(130));
  });
}
// The whole bench always stops by itself, however a child misbehaves.
setTimeout(() => {
  if (finished) return;
  log(
    `\nThe bench exceeded its ${CONFIG.deadlineSeconds} s deadline; stopping. Partial results: ${writeResults(false)}`,
  );
  killEverything();
  cleanUpDatabases().finally(() => process.exit(1));
}, CONFIG.deadlineSeconds * 1000).unref();

main().then(
  async () => {
    killEverything();
    await cleanUpDatabases();
    process.exit(errors.length ? 1 : 0);
  },
  async (error: unknown) => {
    log(
      `\nbench:scaleout failed: ${error instanceof SetupError ? error.message : ((error as Error).stack ?? String(error))}`,
    );
    if (!finished && (results.steps.length || results.pgbench || results.anatomy)) {
      log(`Partial results: ${writeResults(false)}`);
    }
    killEverything();
    await cleanUpDatabases();
    process.exit(1);
  },
);
