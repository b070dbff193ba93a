// One step of the scaleout bench as recorded: what the senders and receivers reported and what the nodes counted,
// turned into a StepResult (rates, latency, CPU, where Hubwire's time went, passed or not), and its log line.

import { loadavg } from 'node:os';
import { fixed, int, percent } from '../report.js';
import { Histogram } from './common.js';
import {
  type DatabaseName,
  type NodeStats,
  type PublishReport,
  type ReceiveReport,
  type SendReport,
  type Shape,
  SYSTEM_LABEL,
  type SystemName,
} from './scaleout.js';
import { type Quantiles, rateText, type StepResult } from './scaleout-results.js';
import { CONFIG, ENGINE_GAUGES, SENDER_SHORTFALL } from './scaleout-run.js';

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

/** What one step measured, as recorded; `passed` with the reasons it did not. */
export function stepResult(
  system: SystemName,
  database: DatabaseName,
  m: {
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
  },
): StepResult {
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
    database,
    shape: shape.name,
    system,
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
    nodeCpuUsPerMessage: (afterA.cpuUs - beforeA.cpuUs + (afterB.cpuUs - beforeB.cpuUs)) / Math.max(1, m.count),
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

/** The systems' labels of this run, padded alike in the step lines. */
const LABEL_WIDTH = Math.max(...CONFIG.systems.map((s) => SYSTEM_LABEL[s].length));

export function stepLine(r: StepResult): string {
  const b = r.breakdown;
  const bp = r.backplane;
  const hub =
    b && bp
      ? `, ${fixed(bp.messagesPerRow, 1)} msg/row, →publish ${fixed(b.toPublish.p50Ms, 2)}, publish→commit ` +
        `${fixed(b.publishToCommit.p50Ms, 2)}, append ${fixed(bp.append.avgMs, 2)} (max ${fixed(bp.append.maxMs, 1)}), ` +
        `→hub B ${fixed(b.toHubB.p50Ms, 2)} ms`
      : '';
  return (
    `  ${SYSTEM_LABEL[r.system].padEnd(LABEL_WIDTH)} ${rateText(r.rate).padStart(4)}/s` +
    `${r.attempt > 1 ? ` (retry ${r.attempt - 1})` : ''}: ${int(r.deliveriesPerSec)} deliveries/s, ` +
    `p50 ${fixed(r.p50Ms, 2)} ms, p99 ${fixed(r.p99Ms, 2)} ms, lost ${r.lost}${hub}, ` +
    `CPU A ${percent(r.cpu.nodeA)} B ${percent(r.cpu.nodeB)} DB ${percent(r.cpu.database)} ` +
    `send ${percent(r.cpu.senders)} recv ${percent(r.cpu.receivers)}, nodes ${fixed(r.nodeCpuUsPerMessage, 1)} µs/msg, ` +
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
