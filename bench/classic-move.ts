// What "no sticky sessions" costs: classic SignalR 2 long-polling clients on two Hubwire nodes sharing a PostgreSQL
// backplane, whose polls either always go to the client's home node (sticky) or alternate between the two nodes on
// every poll (moving: each poll lands on the node that did not write its cursor, which rebuilds the connection from
// the backplane). Node A broadcasts numbered messages at a fixed offered rate; every client must get every message
// once and in order. Per mode: deliveries/s, latency p50/p99 (publish → receipt), losses, duplicates, reorders,
// server and PostgreSQL CPU per delivery, backplane rows read and written. See bench/README.md ("Classic move
// benchmark").
//
// Three roles, each its own process: this parent, two server nodes (servers/classic-move-node.ts <A|B>: Hubwire on
// the PostgreSQL backplane, hub at /hub, classic `BenchHub` at /signalr) and the clients (clients/classic-move-
// clients.ts <portA> <portB>: HTTP long polls speaking the classic protocol by hand over a keep-alive agent).

import { cpus, loadavg, totalmem } from 'node:os';
import pg from 'pg';
import { Child, runParent, stopOnSignalsAndDeadline } from './lib/child.js';
import type { FromClients, FromServer, Mode, ServerStats, ToClients, ToServer } from './lib/classic-move.js';
import { fmtMs, printSummary, type RoundResult, roundResult, summarize } from './lib/classic-move-results.js';
import { configOrExit, envInt, HISTOGRAM_BUCKETS, log, nowUs, SetupError, sleep } from './lib/common.js';
import {
  assertLocalDatabase,
  cpuStallUs,
  dropSchemas,
  postgresCpu,
  postgresCpuBetween,
  preparePostgres,
  scratchName,
} from './lib/postgres.js';
import { writeResultsFile } from './report.js';

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

const CONFIG = configOrExit('bench:classic-move', readConfig);

const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;

/** The nodes' backplane schema: fresh for this run, installed by the nodes, dropped at the end (also on failure). */
const schema = scratchName('hw_bench');
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
  stopOnSignalsAndDeadline({
    script: 'bench:classic-move',
    deadlineSeconds: CONFIG.deadlineSeconds,
    stopping: `stopping children and dropping ${schema}`,
    cleanUp: cleanUpDatabase,
    finished: () => finished,
  });
  await preparePostgres(CONFIG.dbUrl);
  log(
    `Classic move bench: ${CLIENTS} long-polling clients on 2 nodes (PostgreSQL schema ${schema}), rates ` +
      `${CONFIG.rates.join(', ')} msg/s, ${CONFIG.rounds} rounds per mode of ${CONFIG.roundMs / 1000} s ` +
      `(+ ${CONFIG.warmupMs} ms warm-up). Node ${process.version}, ${cpus().length} CPUs, load ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
  );

  const env = {
    BENCH_DB_URL: CONFIG.dbUrl,
    BENCH_SCHEMA: schema,
    BENCH_CLASSIC_MOVE_CLIENTS: String(CLIENTS),
    BENCH_PG_POOL: CONFIG.pgPool ? String(CONFIG.pgPool) : '',
  };
  schemaCreated = true; // the nodes install it
  const nodes = ['A', 'B'].map(
    (name) => new Child<ToServer, FromServer>(`node ${name}`, 'bench/servers/classic-move-node.ts', [name], env),
  );
  const [nodeA, nodeB] = nodes as [Child<ToServer, FromServer>, Child<ToServer, FromServer>];
  const ports = (await Promise.all(
    nodes.map((n) => n.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')),
  )) as Extract<FromServer, { type: 'ready' }>[];
  const cli = new Child<ToClients, FromClients>(
    'clients',
    'bench/clients/classic-move-clients.ts',
    [String(ports[0]?.port), String(ports[1]?.port)],
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
    const result = roundResult({
      rate,
      mode,
      round,
      warmup,
      firstSeq,
      messages,
      clients: CLIENTS,
      complete,
      report,
      published,
      before,
      after,
      pgUs,
      pgAllUs,
      stallBefore,
      stallAfter,
      wallUs,
    });
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

  const summary = summarize(
    rounds,
    CONFIG.rates.filter((rate) => !skipped.includes(rate)),
    CLIENTS,
  );

  finished = true;
  printSummary(summary, rounds, { clients: CLIENTS, rounds: CONFIG.rounds, roundMs: CONFIG.roundMs }, problems, notes);

  const file = writeResultsFile('classic-move', new Date(), {
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
  });
  console.log(`\nwrote ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  // Clients first: a poll that moves while its node closes would make that node report a failed claim notice.
  await cli.stop({ type: 'stop' });
  await sleep(300);
  await Promise.all([nodeA.stop({ type: 'stop' }), nodeB.stop({ type: 'stop' })]);
  await cleanUpDatabase();
  return problems.length ? 1 : 0;
}

runParent('bench:classic-move', parent, cleanUpDatabase);
