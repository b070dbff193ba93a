// The scaleout bench's results: what a step records, the sustained rates and the targets, and the printed tables.

import { fixed, int, median, percent, renderTable } from '../report.js';
import type { Anatomy } from './anatomy.js';
import type { PgbenchResult } from './postgres.js';
import {
  DATABASE_LABEL,
  type DatabaseName,
  type NodeStats,
  SHAPES,
  type ShapeName,
  SYSTEM_CODE,
  SYSTEM_LABEL,
  type SystemName,
} from './scaleout.js';

export interface Quantiles {
  p50Ms: number;
  p99Ms: number;
  avgMs: number;
}

export interface StepResult {
  pass: number;
  database: DatabaseName;
  shape: ShapeName;
  system: SystemName;
  /** Offered msg/s (the closed loop: the invocations/s it achieved). */
  rate: number;
  attempt: number;
  /** Client sockets sending on node A (0: the server-side publisher). */
  senders: number;
  messages: number;
  /** Rate the senders achieved (first to last send stamp). */
  sentPerSec: number;
  expectedDeliveries: number;
  deliveries: number;
  /** Deliveries / (last arrival − first send stamp), summed over receivers. */
  deliveriesPerSec: number;
  lost: number;
  duplicates: number;
  late: number;
  reordered: number;
  /** Sender stamp → receiver, over every delivery to node B's receivers. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time / wall time of the step (1 = one core busy throughout). */
  cpu: { nodeA: number; nodeB: number; database?: number; senders?: number; receivers: number };
  /** CPU time of both nodes during the step / messages sent (µs): what a message costs the system's servers. */
  nodeCpuUsPerMessage: number;
  /** The machine: share of time some runnable task waited for a CPU (PSI `some`), 1-minute load at the end. */
  machine: { cpuStall?: number; load1: number };
  eventLoop: { nodeA: NodeStats['eventLoop']; nodeB: NodeStats['eventLoop'] };
  senderMaxBufferedBytes: number;
  sendErrors: number;
  /** Hubwire: rows written by node A (its home stream), read by node B, and the stores' times. */
  backplane?: {
    rowsWritten: number;
    rowsPerSec: number;
    messagesPerRow: number;
    rowsRead: number;
    /** node A's appends as seen from the node (its store instance's method wrapped): pool, statement, commit. */
    append: Quantiles & { maxMs: number; count: number };
    /** node B's reads, average and slowest, and rows per read. */
    readAvgMs: number;
    readMaxMs: number;
    rowsPerRead: number;
    /** Reads node A made of the stream it writes itself, and the rows they returned. */
    readsByA: number;
    rowsReadByA: number;
    errors: number;
    gaps: number;
    queueAfter: number;
  };
  /**
   * Hubwire: where a message's time goes, from the stamp in it. Sender → node A's `engine.publish` (socket,
   * parse, dispatch, invocation queue); publish → delivered back on node A (outbox queue, the row's append,
   * resolve); sender → handed to node B's hub (…, NOTIFY wake-up or poll, node B's read); the rest up to
   * `p50Ms`/`p99Ms` is node B writing to its sockets and the receivers reading.
   */
  breakdown?: {
    toPublish: Quantiles;
    publishToCommit: Quantiles;
    toHubB: Quantiles;
    /** Every number of `backplane.stats()`: counters as the step's difference, gauges as at its end. */
    engineA: Record<string, number>;
    engineB: Record<string, number>;
    /** From the engine's own fields, where this version has them. */
    engineAppendAvgMs?: number;
    acceptToCommitAvgMs?: number;
  };
  /** The server-side publisher: each awaited broadcast (Socket.IO: each `io.emit` call). */
  publisher?: Quantiles & { errors: number };
  /** The closed loop: each invocation's round trip. */
  invoke?: Quantiles & { invocations: number; perSec: number; maxMs: number; errors: number };
  /** Socket.IO: node A's adapter queries (one pg_notify per message), pool checkout included. */
  notify?: { queries: number; avgMs: number; maxMs: number; waitingAfter: number };
  passed: boolean;
  reason?: string;
}

export interface Sustained {
  /** Highest step passed before the ladder stopped (0: not even the first). */
  rate: number;
  /** The ladder's top passed: the system may sustain more. */
  capped: boolean;
  p50Ms?: number;
  p99Ms?: number;
}

export interface ShapeSummary {
  pass: number;
  database: DatabaseName;
  shape: ShapeName;
  sustained: Partial<Record<SystemName, Sustained>>;
  ratio?: number;
}

export interface Results {
  steps: StepResult[];
  shapes: ShapeSummary[];
  anatomy?: Anatomy;
  anatomyError?: string;
  pgbench?: PgbenchResult[];
  pgbenchError?: string;
}

export interface ReportConfig {
  databases: DatabaseName[];
  shapes: ShapeName[];
  rates: Record<ShapeName, number[]>;
  receivers: number;
  p99LimitMs: number;
  pgbenchSeconds: number;
  messageBytes: number;
}

// --- Targets -----------------------------------------------------------------------------------------------------

export const TARGET_RATIO = 5;
export const TARGET_P50_MS = 2;
export const TARGET_P50_RATE = 1000;
/** Hubwire on PostgreSQL: the sustained rate each shape must reach. */
export const TARGET_RATES: Partial<Record<ShapeName, number>> = {
  send1: 5000,
  send100: 20_000,
  room100: 20_000,
  publisher: 5000,
};

// --- Formatting --------------------------------------------------------------------------------------------------

// Numbers and tables: ../report.ts, shared by the benches.

export function rateText(rate: number): string {
  return rate >= 1000 ? `${rate / 1000}k` : String(rate);
}

function pair(a: number | undefined, b: number | undefined, digits = 2): string {
  return `${fixed(a, digits)} / ${fixed(b, digits)}`;
}

function systemText(r: StepResult): string {
  return `${SYSTEM_LABEL[r.system]}${r.attempt > 1 ? ' (retry)' : ''}`;
}

/** A free last column: which Hubwire (when not the default one) and the step's outcome. */
function variantText(r: StepResult, outcome: string): string {
  return [r.system === 'hubwire' ? '' : SYSTEM_LABEL[r.system], outcome].filter((t) => t !== '').join(' ');
}

/** The steps of one database and shape, every system. */
export function stepTable(steps: StepResult[]): string {
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
    'msg/row',
    'A CPU',
    'B CPU',
    'DB CPU',
    'send CPU',
    'recv CPU',
    'result',
  ];
  const rows = steps.map((r) => [
    String(r.pass),
    systemText(r),
    int(r.rate),
    int(r.sentPerSec),
    int(r.deliveriesPerSec),
    fixed(r.p50Ms, 2),
    fixed(r.p99Ms, 2),
    fixed(r.maxMs, 1),
    int(r.lost),
    r.backplane ? fixed(r.backplane.messagesPerRow, 1) : '-',
    percent(r.cpu.nodeA),
    percent(r.cpu.nodeB),
    percent(r.cpu.database),
    percent(r.cpu.senders),
    percent(r.cpu.receivers),
    r.passed ? 'ok' : `FAIL: ${r.reason}`,
  ]);
  return renderTable(header, rows, 2, '  ');
}

/** Where the time goes in Hubwire's steps (p50 / p99 ms unless said). */
export function breakdownTable(steps: StepResult[]): string {
  const header = [
    'pass',
    'offered/s',
    '→publish A',
    'publish→commit A',
    'append A avg/p99',
    'eng append',
    'acc→commit',
    'rows/s',
    'msg/row',
    'B read avg',
    'rows/read',
    '→hub B',
    '→receiver',
    'loop p99 A/B',
    'publisher await',
    '',
  ];
  const rows = steps
    .filter((r) => SYSTEM_CODE[r.system] === 'hubwire' && r.breakdown)
    .map((r) => {
      const b = r.breakdown as NonNullable<StepResult['breakdown']>;
      const bp = r.backplane;
      return [
        String(r.pass),
        int(r.rate),
        pair(b.toPublish.p50Ms, b.toPublish.p99Ms),
        pair(b.publishToCommit.p50Ms, b.publishToCommit.p99Ms),
        pair(bp?.append.avgMs, bp?.append.p99Ms),
        fixed(b.engineAppendAvgMs, 2),
        fixed(b.acceptToCommitAvgMs, 2),
        int(bp?.rowsPerSec),
        fixed(bp?.messagesPerRow, 1),
        fixed(bp?.readAvgMs, 2),
        fixed(bp?.rowsPerRead, 1),
        pair(b.toHubB.p50Ms, b.toHubB.p99Ms),
        pair(r.p50Ms, r.p99Ms),
        pair(r.eventLoop.nodeA.p99Ms, r.eventLoop.nodeB.p99Ms, 1),
        r.publisher ? pair(r.publisher.p50Ms, r.publisher.p99Ms) : '-',
        variantText(r, r.attempt > 1 ? '(retry)' : ''),
      ];
    });
  if (rows.length === 0) return '';
  return renderTable(header, rows, 1, '  ');
}

/** The closed loops: invocations/s and their round trip. */
export function invokeTable(steps: StepResult[]): string {
  const header = [
    'pass',
    'database',
    'invocations/s',
    'RTT p50 ms',
    'RTT p99 ms',
    'RTT max ms',
    'errors',
    'recv p50/p99 ms',
    'lost',
    'msg/row',
    'append A avg',
    'A CPU',
    'B CPU',
    'DB CPU',
    '',
  ];
  const rows = steps
    .filter((r) => r.invoke)
    .map((r) => {
      const i = r.invoke as NonNullable<StepResult['invoke']>;
      return [
        String(r.pass),
        DATABASE_LABEL[r.database],
        int(i.perSec),
        fixed(i.p50Ms, 2),
        fixed(i.p99Ms, 2),
        fixed(i.maxMs, 1),
        int(i.errors),
        pair(r.p50Ms, r.p99Ms),
        int(r.lost),
        fixed(r.backplane?.messagesPerRow, 1),
        fixed(r.backplane?.append.avgMs, 2),
        percent(r.cpu.nodeA),
        percent(r.cpu.nodeB),
        percent(r.cpu.database),
        variantText(r, r.passed ? '' : `FAIL: ${r.reason}`),
      ];
    });
  return renderTable(header, rows, 2, '  ');
}

export function anatomyTable(anatomy: Anatomy): string {
  const header = ['step', 'p50 ms', 'p99 ms', 'avg ms', 'max ms', 'n'];
  const rows = anatomy.rows.map((r) => [
    r.name,
    fixed(r.p50Ms, 3),
    fixed(r.p99Ms, 3),
    fixed(r.avgMs, 3),
    fixed(r.maxMs, 2),
    int(r.iterations),
  ]);
  return renderTable(header, rows, 1, '  ');
}

// --- The cost of metrics (BENCH_METRICS=both) -------------------------------------------------------------------

interface CostSide {
  steps: number;
  passed: number;
  deliveriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  nodeCpuUsPerMessage: number;
}

/** One database, shape and offered rate, Hubwire with metrics on (collected once a second) against off. */
export interface MetricsCostRow {
  database: DatabaseName;
  shape: ShapeName;
  rate: number;
  /** Medians over the passes' steps (first attempts; a retry runs on fresh processes). */
  on: CostSide;
  off: CostSide;
  /** On / off of the medians: deliveries/s (below 1: fewer with metrics), the nodes' CPU per message (above 1: dearer). */
  deliveriesRatio: number;
  cpuRatio: number;
  /** On / off of the nodes' CPU per message pass by pass (same pass, same rate: steps seconds apart): min, max. */
  cpuRatioRange?: [number, number];
}

function costSide(steps: StepResult[]): CostSide {
  const of = (pick: (s: StepResult) => number) => median(steps.map(pick));
  return {
    steps: steps.length,
    passed: steps.filter((s) => s.passed).length,
    deliveriesPerSec: of((s) => s.deliveriesPerSec),
    p50Ms: of((s) => s.p50Ms),
    p99Ms: of((s) => s.p99Ms),
    nodeCpuUsPerMessage: of((s) => s.nodeCpuUsPerMessage),
  };
}

/** The steps both Hubwire systems ran at the same database, shape and rate (the ladders, not the closed loop). */
export function metricsCost(steps: StepResult[]): MetricsCostRow[] {
  const groups = new Map<string, { on: StepResult[]; off: StepResult[] }>();
  for (const step of steps) {
    if (step.attempt > 1 || step.invoke || SYSTEM_CODE[step.system] !== 'hubwire') continue;
    const key = `${step.database} ${step.shape} ${step.rate}`;
    const group = groups.get(key) ?? { on: [], off: [] };
    groups.set(key, group);
    group[step.system === 'hubwire' ? 'on' : 'off'].push(step);
  }
  const rows: MetricsCostRow[] = [];
  for (const { on, off } of groups.values()) {
    const first = on[0];
    if (!first || off.length === 0) continue;
    const a = costSide(on);
    const b = costSide(off);
    const perPass = on
      .map((s) => s.nodeCpuUsPerMessage / (off.find((o) => o.pass === s.pass)?.nodeCpuUsPerMessage ?? Number.NaN))
      .filter((x) => Number.isFinite(x));
    rows.push({
      database: first.database,
      shape: first.shape,
      rate: first.rate,
      on: a,
      off: b,
      deliveriesRatio: a.deliveriesPerSec / b.deliveriesPerSec,
      cpuRatio: a.nodeCpuUsPerMessage / b.nodeCpuUsPerMessage,
      cpuRatioRange: perPass.length ? [Math.min(...perPass), Math.max(...perPass)] : undefined,
    });
  }
  return rows;
}

export function metricsCostTable(rows: MetricsCostRow[]): string {
  const header = [
    'database',
    'shape',
    'offered/s',
    'deliveries/s on / off',
    'p50 ms on / off',
    'p99 ms on / off',
    'nodes µs/msg on / off',
    'deliv on/off',
    'CPU on/off',
    'CPU per pass',
    'passed on / off',
  ];
  const body = rows.map((r) => [
    DATABASE_LABEL[r.database],
    SHAPES[r.shape].label,
    int(r.rate),
    `${int(r.on.deliveriesPerSec)} / ${int(r.off.deliveriesPerSec)}`,
    pair(r.on.p50Ms, r.off.p50Ms),
    pair(r.on.p99Ms, r.off.p99Ms),
    pair(r.on.nodeCpuUsPerMessage, r.off.nodeCpuUsPerMessage, 1),
    fixed(r.deliveriesRatio, 3),
    fixed(r.cpuRatio, 3),
    r.cpuRatioRange ? `${fixed(r.cpuRatioRange[0], 2)}–${fixed(r.cpuRatioRange[1], 2)}` : '-',
    `${r.on.passed}/${r.on.steps} / ${r.off.passed}/${r.off.steps}`,
  ]);
  return renderTable(header, body, 2, '  ');
}

// --- Analysis ----------------------------------------------------------------------------------------------------

export interface ShapeAnalysis {
  database: DatabaseName;
  shape: ShapeName;
  /** Median over passes of the sustained rate, per system; capped when a pass passed the ladder's top. */
  sustained: Partial<Record<SystemName, { rate: number; capped: boolean; perPass: number[] }>>;
  /** Hubwire / Socket.IO of the medians; `lowerBound` when Socket.IO did not pass the first step. */
  ratio?: { value: number; lowerBound: boolean; capped: boolean };
  /** Hubwire with metrics on / off (BENCH_METRICS=both), of the medians: below 1, metrics cost a ladder step. */
  metricsOnOverOff?: number;
  /** Median p50 of the Hubwire steps at TARGET_P50_RATE that lost nothing. */
  hubwireP50At1kMs?: number;
}

export function analyse(results: Results, config: ReportConfig): ShapeAnalysis[] {
  const out: ShapeAnalysis[] = [];
  for (const database of config.databases) {
    for (const shape of config.shapes) {
      if (SHAPES[shape].kind === 'invoke') continue;
      const summaries = results.shapes.filter((s) => s.database === database && s.shape === shape);
      if (summaries.length === 0) continue;
      const analysis: ShapeAnalysis = { database, shape, sustained: {} };
      for (const system of Object.keys(SYSTEM_LABEL) as SystemName[]) {
        const perPass = summaries.map((s) => s.sustained[system]).filter((v): v is Sustained => v !== undefined);
        if (perPass.length === 0) continue;
        analysis.sustained[system] = {
          rate: median(perPass.map((p) => p.rate)),
          capped: perPass.some((p) => p.capped),
          perPass: perPass.map((p) => p.rate),
        };
      }
      const hw = analysis.sustained.hubwire;
      const sio = analysis.sustained.socketio;
      const off = analysis.sustained['hubwire-nometrics'];
      if (hw && off && off.rate > 0) analysis.metricsOnOverOff = hw.rate / off.rate;
      if (hw && sio && hw.rate > 0) {
        const first = config.rates[shape][0] as number;
        analysis.ratio =
          sio.rate > 0
            ? { value: hw.rate / sio.rate, lowerBound: false, capped: hw.capped }
            : { value: hw.rate / first, lowerBound: true, capped: hw.capped };
      }
      const p50s = results.steps
        .filter(
          (s) =>
            s.database === database &&
            s.shape === shape &&
            s.system === 'hubwire' &&
            s.rate === TARGET_P50_RATE &&
            s.lost === 0,
        )
        .map((s) => s.p50Ms);
      if (p50s.length) analysis.hubwireP50At1kMs = median(p50s);
      out.push(analysis);
    }
  }
  return out;
}

function verdict(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'met' : 'MISSED';
}

function sustainedText(s: ShapeAnalysis['sustained'][SystemName], first: number): string {
  if (!s) return '-';
  if (s.rate === 0) return `< ${rateText(first)}`;
  return `${s.capped ? '≥ ' : ''}${int(s.rate)}`;
}

export interface Target {
  what: string;
  value: string;
  met: boolean | undefined;
}

/** The issue's targets, on PostgreSQL (the only database with a Socket.IO peer). */
export function targets(analyses: ShapeAnalysis[], config: ReportConfig): Target[] {
  const list: Target[] = [];
  const pg = (shape: ShapeName) => analyses.find((a) => a.database === 'postgres' && a.shape === shape);
  for (const [shape, target] of Object.entries(TARGET_RATES) as [ShapeName, number][]) {
    const a = pg(shape);
    const hw = a?.sustained.hubwire;
    list.push({
      what: `Hubwire ${SHAPES[shape].label} ≥ ${int(target)} msg/s`,
      value: hw ? `${sustainedText(hw, config.rates[shape][0] as number)}/s` : 'not run',
      // A ladder that ended below the target without a failing step says nothing.
      met: hw && !(hw.capped && hw.rate < target) ? hw.rate >= target : undefined,
    });
  }
  for (const a of analyses.filter((x) => x.database === 'postgres')) {
    if (!a.ratio) continue;
    const r = a.ratio;
    list.push({
      what: `${SHAPES[a.shape].label}: Hubwire ≥ ${TARGET_RATIO}× Socket.IO`,
      value: `${r.lowerBound ? '> ' : r.capped ? '≥ ' : ''}${fixed(r.value, 1)}×`,
      // A lower bound that reaches the target is met; one that does not is unknown.
      met: r.value >= TARGET_RATIO ? true : r.lowerBound || r.capped ? undefined : false,
    });
  }
  const send1 = pg('send1') ?? analyses.find((a) => a.database === 'postgres');
  if (send1) {
    list.push({
      what: `Hubwire p50 ≤ ${TARGET_P50_MS} ms at ${rateText(TARGET_P50_RATE)} msg/s (${SHAPES[send1.shape].label})`,
      value: `${fixed(send1.hubwireP50At1kMs, 2)} ms`,
      met: send1.hubwireP50At1kMs === undefined ? undefined : send1.hubwireP50At1kMs <= TARGET_P50_MS,
    });
  }
  return list;
}

export function summaryText(results: Results, config: ReportConfig): string {
  const analyses = analyse(results, config);
  const lines: string[] = [];
  lines.push(
    `Sustained rate = highest step with p99 ≤ ${config.p99LimitMs} ms and no loss, median over passes (msg/s; ` +
      `${config.receivers} receivers, so deliveries/s ≈ ${config.receivers} × rate; ≥: no step failed, the ladder's top ` +
      'passed or the time budget cut it short):',
  );
  // BENCH_METRICS=off or both: Hubwire with metrics off has columns of its own.
  const metricsOff = analyses.some((a) => a.sustained['hubwire-nometrics']);
  const perPass = (s: ShapeAnalysis['sustained'][SystemName]) => (s ? s.perPass.map(int).join(', ') : '-');
  for (const database of config.databases) {
    const rows = analyses
      .filter((a) => a.database === database)
      .map((a) => {
        const first = config.rates[a.shape][0] as number;
        const r = a.ratio;
        const off = a.sustained['hubwire-nometrics'];
        return [
          SHAPES[a.shape].label,
          sustainedText(a.sustained.hubwire, first),
          sustainedText(a.sustained.socketio, first),
          r ? `${r.lowerBound ? '> ' : r.capped ? '≥ ' : ''}${fixed(r.value, 1)}×` : '-',
          perPass(a.sustained.hubwire),
          ...(metricsOff
            ? [sustainedText(off, first), perPass(off), a.metricsOnOverOff ? `${fixed(a.metricsOnOverOff, 2)}×` : '-']
            : []),
          fixed(a.hubwireP50At1kMs, 2),
        ];
      });
    if (rows.length === 0) continue;
    lines.push(`\n  ${DATABASE_LABEL[database]}:`);
    lines.push(
      renderTable(
        [
          'shape',
          'Hubwire',
          'Socket.IO',
          'ratio',
          'Hubwire per pass',
          ...(metricsOff ? ['metrics off', 'off per pass', 'on/off'] : []),
          `Hubwire p50 @${rateText(TARGET_P50_RATE)}`,
        ],
        rows,
        1,
        '    ',
      ),
    );
  }
  const invokes = results.steps.filter((s) => s.invoke);
  if (invokes.length) {
    lines.push('\n  The cost of one awaited invoke (closed loop, 1 client):');
    for (const database of config.databases) {
      for (const system of Object.keys(SYSTEM_LABEL) as SystemName[]) {
        const mine = invokes.filter((s) => s.database === database && s.system === system);
        if (!mine.length) continue;
        const perSec = median(mine.map((s) => s.invoke?.perSec ?? Number.NaN));
        const p50 = median(mine.map((s) => s.invoke?.p50Ms ?? Number.NaN));
        const p99 = median(mine.map((s) => s.invoke?.p99Ms ?? Number.NaN));
        lines.push(
          `    ${DATABASE_LABEL[database]}${system === 'hubwire' ? '' : ` (${SYSTEM_LABEL[system]})`}: ` +
            `${int(perSec)} invocations/s, round trip p50 ${fixed(p50, 2)} ms, p99 ${fixed(p99, 2)} ms`,
        );
      }
    }
  }
  const list = config.databases.includes('postgres') ? targets(analyses, config) : [];
  if (list.length) {
    lines.push('\nTargets (PostgreSQL):');
    const width = Math.max(...list.map((t) => t.what.length));
    for (const t of list) lines.push(`  ${t.what.padEnd(width)}  ${t.value.padStart(10)}  ${verdict(t.met)}`);
  }
  if (results.anatomy) {
    const rows = results.anatomy.rows;
    const at = (prefix: string) => rows.find((r) => r.name.startsWith(prefix))?.p50Ms;
    const plain = at('INSERT');
    const noNotify = at('append statement, no');
    const notify = at('append statement +');
    const store = at('PostgresStore');
    const trip = at('SELECT 1');
    lines.push(
      `\nAppend anatomy (p50): round trip ${fixed(trip, 3)} ms; plain INSERT ${fixed(plain, 3)} ms; the append ` +
        `statement ${fixed(noNotify, 3)} ms (+${fixed((noNotify ?? Number.NaN) - (plain ?? Number.NaN), 3)} over ` +
        `the INSERT); pg_notify adds ${fixed((notify ?? Number.NaN) - (noNotify ?? Number.NaN), 3)} ms; ` +
        `PostgresStore.append() ${fixed(store, 3)} ms.`,
    );
  }
  if (results.pgbench) {
    lines.push(
      `PostgreSQL ceiling (pgbench, single-row autocommit INSERT of a ${config.messageBytes} B bytea, ` +
        `${config.pgbenchSeconds} s each): ` +
        results.pgbench.map((r) => `${r.clients} client${r.clients > 1 ? 's' : ''} ${int(r.tps)} tps`).join(', '),
    );
  } else if (config.databases.includes('postgres')) {
    lines.push(
      `PostgreSQL ceiling: not measured${results.pgbenchError ? ` (${results.pgbenchError})` : ' (BENCH_PGBENCH_S=0)'}`,
    );
  }
  return lines.join('\n');
}
