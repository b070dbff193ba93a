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

import { cpus, loadavg, totalmem } from 'node:os';
import { measureAnatomy } from './lib/anatomy.js';
import { killAllChildren } from './lib/child.js';
import { SetupError } from './lib/common.js';
import { dropSchemas, killPgbench, measurePgbench, scratchName } from './lib/postgres.js';
import { DATABASE_LABEL, type DatabaseName, SHAPES, SYSTEM_LABEL } from './lib/scaleout.js';
import { runDatabase } from './lib/scaleout-ladder.js';
import {
  anatomyTable,
  breakdownTable,
  invokeTable,
  metricsCost,
  metricsCostTable,
  stepTable,
  summaryText,
} from './lib/scaleout-results.js';
import {
  budget,
  CONFIG,
  elapsedSeconds,
  errors,
  loadAtStart,
  log,
  notes,
  REPORT_CONFIG,
  results,
  shareOfTimeLeft,
  startedAt,
  systemsOf,
  timeLeftSeconds,
} from './lib/scaleout-run.js';
import { cleanUpDatabases, prepareDatabases, scratch, versions } from './lib/scaleout-scratch.js';
import { wsVersion } from './lib/ws.js';
import { fixed, int, median, redactUrl, writeResultsFile } from './report.js';

let finished = false;

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
  const cost = metricsCost(results.steps);
  if (cost.length) {
    parts.push(
      `\nThe cost of metrics: Hubwire (default options, the Prometheus text collected once a second in each node) / ` +
        `Hubwire with metrics: false, the same steps interleaved; medians over passes; nodes µs/msg = CPU of both ` +
        `nodes / messages sent:`,
    );
    parts.push(metricsCostTable(cost));
    const ratios = cost.map((r) => r.cpuRatio);
    parts.push(
      `  Nodes' CPU per message, on / off: median ${fixed(median(ratios), 3)} over ${ratios.length} shape × rate ` +
        `rows (${fixed(Math.min(...ratios), 3)}–${fixed(Math.max(...ratios), 3)}).`,
    );
  }
  return parts.join('\n');
}

function writeResults(complete: boolean): string {
  return writeResultsFile('scaleout', startedAt, {
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
      postgres: versions.postgres,
      mariadb: versions.mariadb,
    },
    config: {
      ...CONFIG,
      dbUrl: redactUrl(CONFIG.dbUrl),
      mysqlUrl: redactUrl(CONFIG.mysqlUrl),
      scratch: { socketIoSchema: scratch.socketIoSchema, backplanes: scratch.used },
      shapes: CONFIG.shapes.map((s) => SHAPES[s]),
      hubwire:
        "the README's ChatHub: send(name, message) { return this.clients.all.broadcastMessage(name, message); } " +
        '(sendForget: the same without returning the promise); Backplane with default options on the ' +
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
    metricsCost: metricsCost(results.steps),
    summary: summaryText(results, REPORT_CONFIG),
    errors,
    notes,
  });
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
      budget.end = shareOfTimeLeft(weight(database), (CONFIG.passes - pass) * perPass + thisPass);
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
