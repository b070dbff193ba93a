// What bench/no-sticky.ts and its clients (clients/no-sticky-client.ts) share: the IPC messages, and how a
// scenario's numbers are computed, summarised and printed.

import { fixed, int, median, renderTable } from '../report.js';
import { Histogram } from './common.js';
import type { NodeStats } from './scaleout.js';

/**
 * The client's transport; `WebSockets+stateful`: WebSockets with `withStatefulReconnect()` (the hub with
 * `allowStatefulReconnects: true`): without affinity such a connection keeps its state in the backplane.
 */
export type Transport = 'WebSockets' | 'WebSockets+stateful' | 'ServerSentEvents' | 'LongPolling';
export const TRANSPORTS: Transport[] = ['WebSockets', 'WebSockets+stateful', 'ServerSentEvents', 'LongPolling'];
export const TRANSPORT_LABEL: Record<Transport, string> = {
  WebSockets: 'WebSockets',
  'WebSockets+stateful': 'WS stateful',
  ServerSentEvents: 'SSE',
  LongPolling: 'Long polling',
};

/** The official client's transport of a bench transport, and whether its connections ask for stateful reconnect. */
export function clientTransport(transport: Transport): {
  http: 'WebSockets' | 'ServerSentEvents' | 'LongPolling';
  stateful: boolean;
} {
  return transport === 'WebSockets+stateful'
    ? { http: 'WebSockets', stateful: true }
    : { http: transport, stateful: false };
}

/** `affinity`: every request of a client on one node, nodes with `stickySessions: true`; `any`: round robin, default. */
export type Mode = 'affinity' | 'any';
export const MODE_LABEL: Record<Mode, string> = { affinity: 'affinity', any: 'no affinity' };

// --- IPC: parent <-> clients ------------------------------------------------------------------------------------

export type ToNoStickyClient =
  | {
      type: 'connect';
      id: number;
      urls: string[];
      transport: Transport;
      count: number;
      senders: number;
      /** Round robin: one extra request before every other connection (see the client). */
      nudge: boolean;
    }
  | { type: 'churn'; id: number; count: number; offset: number }
  | { type: 'run'; id: number; durationMs: number; graceMs: number }
  | { type: 'stop' };

export interface ChurnReport {
  /** start() of each connection (negotiate → connected), µs. */
  starts: Uint32Array;
  /** stop() of each, µs. */
  stops: Uint32Array;
  errors: number;
  cpuUs: number;
}

export interface RunReport {
  /** Invocations completed without error. */
  sent: number;
  errors: number;
  /** How long the senders sent, µs. */
  sendUs: number;
  /** Each invocation's round trip (sender side), µs. */
  rtt: Uint32Array;
  /** Sender stamp → receipt, every connection, µs. */
  delivery: Uint32Array;
  deliveries: number;
  expected: number;
  duplicates: number;
  cpuUs: number;
}

export type FromNoStickyClient =
  | { type: 'ready' }
  | { type: 'connected'; id: number; starts: Uint32Array }
  | { type: 'churned'; id: number; report: ChurnReport }
  | { type: 'ran'; id: number; report: RunReport }
  | { type: 'lost'; reason: string }
  | { type: 'fatal'; message: string };

// --- One scenario's numbers -------------------------------------------------------------------------------------

/** What the parent measured around a phase: both nodes' stats before and after, and PostgreSQL's CPU. */
export interface PhaseSample {
  before: [NodeStats, NodeStats];
  after: [NodeStats, NodeStats];
  /** CPU of this run's PostgreSQL backends during the phase, µs (undefined without /proc). */
  pgUs: number | undefined;
  wallUs: number;
}

/** Backplane and CPU counters of both nodes over a phase. */
export interface PhaseCost {
  nodesCpuUs: number;
  pgUs: number | undefined;
  rowsWritten: number;
  rowsRead: number;
  rowsPushed: number;
  /** Backplane messages published (committed) by both nodes. */
  published: number;
  /** `store.readAfter` calls. */
  reads: number;
  /** `store.top` calls. */
  tops: number;
  /** Connection records published (marks of client messages taken, and messages for a connection). */
  records: number;
  /** Notices carrying stateful-reconnect checkpoints, and the checkpoints in them. */
  checkpointNotices: number;
  checkpoints: number;
}

function engine(stats: NodeStats, key: string): number {
  return stats.engine?.[key] ?? 0;
}

export function phaseCost(sample: PhaseSample): PhaseCost {
  let cost: PhaseCost = {
    nodesCpuUs: 0,
    pgUs: sample.pgUs,
    rowsWritten: 0,
    rowsRead: 0,
    rowsPushed: 0,
    published: 0,
    reads: 0,
    tops: 0,
    records: 0,
    checkpointNotices: 0,
    checkpoints: 0,
  };
  for (const i of [0, 1] as const) {
    const b = sample.before[i];
    const a = sample.after[i];
    const d = (key: string) => engine(a, key) - engine(b, key);
    const p = (key: string) => (a.publishes?.[key] ?? 0) - (b.publishes?.[key] ?? 0);
    cost = {
      ...cost,
      nodesCpuUs: cost.nodesCpuUs + a.cpuUs - b.cpuUs,
      rowsWritten: cost.rowsWritten + d('rowsWritten'),
      rowsRead: cost.rowsRead + d('rowsRead'),
      rowsPushed: cost.rowsPushed + d('rowsPushed'),
      published: cost.published + d('published'),
      reads: cost.reads + (a.store?.reads ?? 0) - (b.store?.reads ?? 0),
      tops: cost.tops + (a.store?.tops ?? 0) - (b.store?.tops ?? 0),
      records: cost.records + p('recordMarks') + p('recordMessages'),
      checkpointNotices: cost.checkpointNotices + p('checkpointNotices'),
      checkpoints: cost.checkpoints + p('checkpoints'),
    };
  }
  return cost;
}

export interface ScenarioResult {
  pass: number;
  transport: Transport;
  mode: Mode;
  // The load.
  messagesPerSec: number;
  deliveriesPerSec: number;
  invokeP50Ms: number;
  invokeP99Ms: number;
  deliveryP50Ms: number;
  deliveryP99Ms: number;
  /** Nodes' CPU (both) per delivered message, µs; and per invocation (message sent). */
  cpuUsPerDelivery: number;
  cpuUsPerMessage: number;
  pgUsPerMessage: number | undefined;
  rowsWrittenPerMessage: number;
  rowsReadPerMessage: number;
  readsPerMessage: number;
  publishedPerMessage: number;
  /** Connection records (marks and messages) and checkpoint notices published per message sent. */
  recordsPerMessage: number;
  checkpointNoticesPerMessage: number;
  lost: number;
  duplicates: number;
  invokeErrors: number;
  // Connection starts (the churn phase).
  startP50Ms: number;
  startP99Ms: number;
  starts: number;
  startErrors: number;
  rowsWrittenPerStart: number;
  publishedPerStart: number;
  topsPerStart: number;
  /** Requests HAProxy sent to node A and to node B over the whole scenario. */
  requestsPerNode: [number, number];
  /** Connections each node holds during the measured run (senders and receivers). */
  connectionsPerNode: [number, number];
  run: { report: RunReport; cost: PhaseCost };
  churn: { report: ChurnReport; cost: PhaseCost };
}

const ms = (us: number) => us / 1000;

export function scenarioResult(
  pass: number,
  transport: Transport,
  mode: Mode,
  run: { report: RunReport; sample: PhaseSample },
  churn: { report: ChurnReport; sample: PhaseSample },
  requestsPerNode: [number, number],
): ScenarioResult {
  const r = run.report;
  const cost = phaseCost(run.sample);
  const churnCost = phaseCost(churn.sample);
  const rtt = new Histogram(r.rtt);
  const delivery = new Histogram(r.delivery);
  const starts = new Histogram(churn.report.starts);
  const seconds = r.sendUs / 1e6;
  const perMessage = (n: number) => n / Math.max(1, r.sent);
  return {
    pass,
    transport,
    mode,
    messagesPerSec: r.sent / seconds,
    deliveriesPerSec: r.deliveries / seconds,
    invokeP50Ms: ms(rtt.quantile(0.5)),
    invokeP99Ms: ms(rtt.quantile(0.99)),
    deliveryP50Ms: ms(delivery.quantile(0.5)),
    deliveryP99Ms: ms(delivery.quantile(0.99)),
    cpuUsPerDelivery: cost.nodesCpuUs / Math.max(1, r.deliveries),
    cpuUsPerMessage: perMessage(cost.nodesCpuUs),
    pgUsPerMessage: cost.pgUs === undefined ? undefined : perMessage(cost.pgUs),
    rowsWrittenPerMessage: perMessage(cost.rowsWritten),
    rowsReadPerMessage: perMessage(cost.rowsRead),
    readsPerMessage: perMessage(cost.reads),
    publishedPerMessage: perMessage(cost.published),
    recordsPerMessage: perMessage(cost.records),
    checkpointNoticesPerMessage: perMessage(cost.checkpointNotices),
    lost: r.expected - r.deliveries,
    duplicates: r.duplicates,
    invokeErrors: r.errors,
    startP50Ms: ms(starts.quantile(0.5)),
    startP99Ms: ms(starts.quantile(0.99)),
    starts: starts.count,
    startErrors: churn.report.errors,
    rowsWrittenPerStart: churnCost.rowsWritten / Math.max(1, starts.count),
    publishedPerStart: churnCost.published / Math.max(1, starts.count),
    topsPerStart: churnCost.tops / Math.max(1, starts.count),
    requestsPerNode,
    connectionsPerNode: [run.sample.after[0].connections, run.sample.after[1].connections],
    run: { report: r, cost },
    churn: { report: churn.report, cost: churnCost },
  };
}

// --- Summary ----------------------------------------------------------------------------------------------------

/** The numbers compared, with how to print them. */
const METRICS: { key: keyof ScenarioResult; label: string; digits: number }[] = [
  { key: 'messagesPerSec', label: 'msg/s', digits: 0 },
  { key: 'invokeP50Ms', label: 'invoke p50 ms', digits: 2 },
  { key: 'invokeP99Ms', label: 'invoke p99 ms', digits: 2 },
  { key: 'deliveryP50Ms', label: 'deliv p50 ms', digits: 2 },
  { key: 'deliveryP99Ms', label: 'deliv p99 ms', digits: 2 },
  { key: 'cpuUsPerDelivery', label: 'nodes µs/deliv', digits: 1 },
  { key: 'pgUsPerMessage', label: 'pg µs/msg', digits: 0 },
  { key: 'rowsWrittenPerMessage', label: 'rows w/msg', digits: 2 },
  { key: 'rowsReadPerMessage', label: 'rows r/msg', digits: 2 },
  { key: 'readsPerMessage', label: 'reads/msg', digits: 2 },
  { key: 'publishedPerMessage', label: 'bp msgs/msg', digits: 2 },
  { key: 'recordsPerMessage', label: 'records/msg', digits: 2 },
  { key: 'checkpointNoticesPerMessage', label: 'ckpt/msg', digits: 3 },
  { key: 'startP50Ms', label: 'start p50 ms', digits: 1 },
  { key: 'startP99Ms', label: 'start p99 ms', digits: 1 },
  { key: 'publishedPerStart', label: 'bp msgs/start', digits: 2 },
  { key: 'topsPerStart', label: 'heads/start', digits: 1 },
];

export interface SummaryRow {
  transport: Transport;
  mode: Mode;
  passes: number;
  /** Medians over passes, by metric key. */
  values: Record<string, number>;
}

export function summarize(results: ScenarioResult[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const transport of TRANSPORTS) {
    for (const mode of ['affinity', 'any'] as Mode[]) {
      const of = results.filter((r) => r.transport === transport && r.mode === mode);
      if (of.length === 0) continue;
      const values: Record<string, number> = {};
      for (const { key } of METRICS) values[key] = median(of.map((r) => Number(r[key] ?? Number.NaN)));
      rows.push({ transport, mode, passes: of.length, values });
    }
  }
  return rows;
}

/** Each scenario's line, as measured. */
export function scenarioTable(results: ScenarioResult[]): string {
  return renderTable(
    ['pass', 'transport', 'mode', ...METRICS.map((m) => m.label), 'lost', 'dup', 'conn A/B', 'req A/B'],
    results.map((r) => [
      String(r.pass),
      TRANSPORT_LABEL[r.transport],
      MODE_LABEL[r.mode],
      ...METRICS.map((m) => (m.digits === 0 ? int(r[m.key] as number) : fixed(r[m.key] as number, m.digits))),
      String(r.lost),
      String(r.duplicates),
      r.connectionsPerNode.join('/'),
      r.requestsPerNode.join('/'),
    ]),
    3,
  );
}

/** Medians per transport and mode, then the ratio no affinity / affinity. */
export function summaryTable(rows: SummaryRow[]): string {
  const lines: string[][] = [];
  for (const transport of TRANSPORTS) {
    const affinity = rows.find((r) => r.transport === transport && r.mode === 'affinity');
    const any = rows.find((r) => r.transport === transport && r.mode === 'any');
    for (const row of [affinity, any]) {
      if (!row) continue;
      lines.push([
        TRANSPORT_LABEL[transport],
        MODE_LABEL[row.mode],
        ...METRICS.map((m) => (m.digits === 0 ? int(row.values[m.key]) : fixed(row.values[m.key] as number, m.digits))),
      ]);
    }
    if (affinity && any) {
      lines.push([
        '',
        'ratio',
        ...METRICS.map((m) => {
          const a = affinity.values[m.key] as number;
          const b = any.values[m.key] as number;
          return a > 0 && Number.isFinite(b) ? `${fixed(b / a, 2)}×` : '-';
        }),
      ]);
    }
  }
  return renderTable(['transport', 'mode', ...METRICS.map((m) => m.label)], lines, 2);
}
