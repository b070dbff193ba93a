// The classic move bench's results: one round as recorded (from the clients' report and the nodes' counters), the
// medians per rate and mode with the moving / sticky ratios, and the printed table and summary.

import { finiteMedian, fixed, int, markdownTable, percent } from '../report.js';
import { type FromServer, MODES, type Mode, type PhaseReport, type ServerStats } from './classic-move.js';
import { HISTOGRAM_BUCKETS, Histogram } from './common.js';

export interface RoundResult {
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

export const fmtMs = (ms: number) => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : '-');

/** What one phase measured, from the outside. */
export interface PhaseMeasurement {
  rate: number;
  mode: Mode;
  round: number;
  warmup: boolean;
  firstSeq: number;
  messages: number;
  clients: number;
  complete: boolean;
  report: PhaseReport;
  published: Extract<FromServer, { type: 'published' }>;
  /** Both nodes' counters before and after. */
  before: [ServerStats, ServerStats];
  after: [ServerStats, ServerStats];
  /** CPU of this run's PostgreSQL backends, and of every postgres process, over the phase, µs. */
  pgUs: number | undefined;
  pgAllUs: number | undefined;
  /** Machine CPU stall counters (µs) before and after. */
  stallBefore: number | undefined;
  stallAfter: number | undefined;
  wallUs: number;
}

export function roundResult(m: PhaseMeasurement): RoundResult {
  const { rate, mode, round, warmup, firstSeq, messages, complete, report, published, before, after } = m;
  const { pgUs, pgAllUs, stallBefore, stallAfter, wallUs } = m;
  const CLIENTS = m.clients;
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
  return result;
}

export type Summary = ReturnType<typeof summarize>[number];

/** Per rate: each mode's medians over the measured rounds (checks over every round), and moving / sticky. */
export function summarize(rounds: RoundResult[], rates: number[], CLIENTS: number) {
  const measured = rounds.filter((r) => !r.warmup);
  return rates.map((rate) => {
    const modeSummary = (mode: Mode) => {
      const rs = measured.filter((r) => r.rate === rate && r.mode === mode);
      const sum = (f: (r: RoundResult) => number) => rs.reduce((a, r) => a + f(r), 0);
      const allRounds = rounds.filter((r) => r.rate === rate && r.mode === mode);
      return {
        deliveriesPerSec: finiteMedian(rs.map((r) => r.deliveriesPerSec)),
        p50Us: finiteMedian(rs.map((r) => r.p50Us)),
        p99Us: finiteMedian(rs.map((r) => r.p99Us)),
        serverUsPerDelivery: finiteMedian(rs.map((r) => r.serverUsPerDelivery)),
        serverUsPerPoll: finiteMedian(rs.map((r) => r.serverUsPerPoll)),
        deliveriesPerPoll: sum((r) => r.received) / sum((r) => r.polls),
        postgresUsPerDelivery: finiteMedian(rs.map((r) => r.postgresUsPerDelivery ?? Number.NaN)),
        postgresAllUsPerDelivery: finiteMedian(rs.map((r) => r.postgresAllUsPerDelivery ?? Number.NaN)),
        pollsPerSec: finiteMedian(rs.map((r) => r.pollsPerSec)),
        pollP50Us: finiteMedian(rs.map((r) => r.pollP50Us)),
        pollP99Us: finiteMedian(rs.map((r) => r.pollP99Us)),
        pgReadsPerPoll: sum((r) => r.pgReads) / sum((r) => r.polls),
        pgReadsPerSec: finiteMedian(rs.map((r) => r.pgReads / r.phaseSeconds)),
        pgRowsReadPerSec: finiteMedian(rs.map((r) => r.pgRowsRead / r.phaseSeconds)),
        pgRowsReadPerPoll: sum((r) => r.pgRowsRead) / sum((r) => r.polls),
        rowsWrittenPerSec: finiteMedian(rs.map((r) => r.rowsWritten / r.phaseSeconds)),
        appendAvgMs: finiteMedian(rs.map((r) => r.backplane.appendAvgMs)),
        replayAvgMs: finiteMedian(rs.map((r) => r.backplane.replayAvgMs)),
        waitAvgMs: finiteMedian(rs.map((r) => r.backplane.waitAvgMs)),
        replaysPerPoll: sum((r) => r.backplane.replays) / sum((r) => r.polls),
        movesPerPoll: sum((r) => r.moves) / sum((r) => r.polls),
        cpuStall: finiteMedian(rs.map((r) => r.cpu.stall ?? Number.NaN)),
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
}

/** The table, each rate's backplane line and the verdict, on stdout. */
export function printSummary(
  summary: Summary[],
  rounds: RoundResult[],
  config: { clients: number; rounds: number; roundMs: number },
  problems: string[],
  notes: string[],
): void {
  const CLIENTS = config.clients;
  const ms = (us: number) => (Number.isFinite(us) ? (us / 1000).toFixed(2) : '-');
  console.log(
    `\nClassic long polling on 2 nodes (PostgreSQL backplane), ${CLIENTS} clients (half homed on each node), ` +
      `node A broadcasts; ${config.rounds} rounds × ${config.roundMs / 1000} s per mode and rate, medians. ` +
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
        fixed(m.serverUsPerDelivery, 2),
        fixed(m.postgresUsPerDelivery, 2),
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
    const x = (n: number) => `${fixed(n, 2)}×`;
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
  console.log('');
  console.log(markdownTable(header, rows, [1]));
  for (const s of summary) {
    const m = (mode: Mode) => {
      const x = s[mode];
      return (
        `${mode}: ${fixed(x.deliveriesPerPoll, 1)} messages/poll, ${fixed(x.serverUsPerPoll, 0)} srv µs/poll, ` +
        `${fixed(x.replaysPerPoll, 2)} replays/poll (avg ${fmtMs(x.replayAvgMs)}), waits for catch-up avg ` +
        `${fmtMs(x.waitAvgMs)}, appends avg ${fmtMs(x.appendAvgMs)}, ${int(x.rowsWrittenPerSec)} rows written/s, ` +
        `all postgres processes ${fixed(x.postgresAllUsPerDelivery, 1)} µs/deliv, machine CPU stall ${percent(x.cpuStall)}`
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
}
