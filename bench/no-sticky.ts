// `npm run bench:no-sticky`: what connections on any node (no sticky sessions, issue 15) cost, against the same
// cluster with affinity. Two Hubwire nodes (bench/servers/hubwire-node.ts: the README's chat hub on the PostgreSQL
// backplane, a fresh schema per scenario) behind Debian's HAProxy; official `@microsoft/signalr` clients (JSON) in a
// child process (clients/no-sticky-client.ts). For each transport, two modes:
//
// - affinity: nodes with `stickySessions: true`; each client talks to one node through an HAProxy of its own node
//   (`balance source`, one backend: every request of a client on one node, as a sticky balancer does), clients
//   alternating between the two nodes;
// - no affinity: nodes with the default (connections on any node); one HAProxy in round robin over both nodes,
//   balancing every request on its own (negotiate, upgrade, stream, each POST and poll).
//
// Transport `WebSockets+stateful` ("WS stateful"): WebSockets with clients built with `withStatefulReconnect()` and
// the hub with `allowStatefulReconnects: true`. With affinity (`stickySessions: true`) the nodes keep the plain
// stateful-reconnect buffer; without, each connection keeps its state in the backplane (a record per completion, a
// mark per client message, checkpoints), so that it can move to another node.
//
// Per scenario: the clients connect (4 senders + 10 receivers), then churn (connections started and stopped one at
// a time: start time, claims, head reads per start), a warm-up, then a measured closed loop: each sender awaits
// `invoke('send', name, message)` before the next; every connection receives every broadcast. Reported: messages/s,
// invoke round trip and delivery latency p50/p99, nodes' CPU per delivery, PostgreSQL CPU, backplane rows written
// and read and messages published per message sent, connection start p50/p99. Modes alternate (order flips every
// pass) so that they share the machine's noise. See bench/README.md ("No sticky sessions: the cost").

import { cpus, loadavg, totalmem } from 'node:os';
import pg from 'pg';
import { type Haproxy, startRoundRobin } from '../test/helpers/haproxy.js';
import { Child, runParent, stopOnSignalsAndDeadline } from './lib/child.js';
import { configOrExit, envInt, log, SetupError, sleep } from './lib/common.js';
import {
  type ChurnReport,
  clientTransport,
  type FromNoStickyClient,
  MODE_LABEL,
  type Mode,
  type PhaseSample,
  type RunReport,
  type ScenarioResult,
  scenarioResult,
  scenarioTable,
  summarize,
  summaryTable,
  type ToNoStickyClient,
  TRANSPORT_LABEL,
  TRANSPORTS,
  type Transport,
} from './lib/no-sticky.js';
import {
  assertLocalDatabase,
  dropSchemas,
  postgresCpu,
  postgresCpuBetween,
  preparePostgres,
  scratchName,
} from './lib/postgres.js';
import type { FromNode, NodeStats, ToNode } from './lib/scaleout.js';
import { redactUrl, writeResultsFile } from './report.js';

function readConfig() {
  const dbUrl = process.env.BENCH_DB_URL || 'postgres://postgres@127.0.0.1:5432/test';
  assertLocalDatabase(dbUrl);
  const transports = (process.env.BENCH_TRANSPORTS || TRANSPORTS.join(',')).split(',').map((t) => t.trim());
  for (const t of transports) {
    if (!TRANSPORTS.includes(t as Transport)) throw new SetupError(`BENCH_TRANSPORTS: unknown transport '${t}'.`);
  }
  return {
    dbUrl,
    transports: transports as Transport[],
    passes: envInt('BENCH_PASSES', 2, 1, 10),
    senders: envInt('BENCH_SENDERS', 4, 1, 100),
    receivers: envInt('BENCH_RECEIVERS', 10, 0, 1000),
    durationMs: envInt('BENCH_DURATION_MS', 10_000, 500, 120_000),
    warmupMs: envInt('BENCH_WARMUP_MS', 2000, 0, 30_000),
    churn: envInt('BENCH_CHURN', 40, 0, 1000),
    messageBytes: envInt('BENCH_MESSAGE_BYTES', 100, 20, 30_000),
    graceMs: envInt('BENCH_GRACE_MS', 5000, 100, 60_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 720, 30, 3600),
  };
}

const CONFIG = configOrExit('bench:no-sticky', readConfig);

const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 15_000;

type NodeChild = Child<ToNode, FromNode>;
type ClientChild = Child<ToNoStickyClient, FromNoStickyClient>;

/** Scratch schemas not dropped yet (dropped after each scenario, and on any exit path). */
const schemas = new Set<string>();
const proxies = new Set<Haproxy>();

async function cleanUp(): Promise<void> {
  await Promise.all([...proxies].map((p) => p.close().catch(() => {})));
  proxies.clear();
  if (schemas.size === 0) return;
  try {
    await Promise.race([dropSchemas(CONFIG.dbUrl, [...schemas]), sleep(10_000)]);
    schemas.clear();
  } catch (error) {
    log(`Could not drop the scratch schemas ${[...schemas].join(', ')}: ${(error as Error).message}`);
  }
}

async function stats(nodes: NodeChild[]): Promise<[NodeStats, NodeStats]> {
  const replies = await Promise.all(
    nodes.map((n) => n.request((id) => ({ type: 'stats', id }), REQUEST_TIMEOUT_MS, 'stats')),
  );
  return replies.map((m) => (m as Extract<FromNode, { type: 'reply' }>).stats) as [NodeStats, NodeStats];
}

/** One transport in one mode on fresh nodes, a fresh schema, fresh proxies and a fresh client process. */
async function scenario(pass: number, transport: Transport, mode: Mode, problems: string[]): Promise<ScenarioResult> {
  const schema = scratchName('hw_bench');
  schemas.add(schema);
  const env = {
    BENCH_BACKPLANE_URL: CONFIG.dbUrl,
    BENCH_SCHEMA: schema,
    BENCH_MESSAGE_BYTES: String(CONFIG.messageBytes),
    BENCH_STICKY_SESSIONS: mode === 'affinity' ? '1' : '',
    BENCH_STATEFUL: clientTransport(transport).stateful ? '1' : '',
  };
  const label = `${TRANSPORT_LABEL[transport]}, ${MODE_LABEL[mode]}`;
  const children: (NodeChild | ClientChild)[] = [];
  const scenarioProxies: Haproxy[] = [];
  const monitor = new pg.Client({ connectionString: CONFIG.dbUrl, application_name: 'bench' });
  monitor.on('error', () => {});
  const hubwireBackends = async (): Promise<Set<number>> => {
    const { rows } = await monitor.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'hubwire%'",
    );
    return new Set(rows.map((r) => r.pid));
  };
  try {
    await monitor.connect();
    // Backends of other Hubwire processes on this machine (tests running beside the bench) are not ours.
    const others = await hubwireBackends();
    // Node A installs the schema before node B starts.
    const nodes: NodeChild[] = [];
    const ports: number[] = [];
    for (const name of ['A', 'B']) {
      const node = new Child<ToNode, FromNode>(`${label}: node ${name}`, 'bench/servers/hubwire-node.ts', [], {
        ...env,
        BENCH_NODE: name,
      });
      children.push(node);
      nodes.push(node);
      const ready = (await node.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message')) as Extract<
        FromNode,
        { type: 'ready' }
      >;
      ports.push(ready.port);
    }
    const hubUrl = (proxy: Haproxy) => `${proxy.url}/hub`;
    if (mode === 'affinity') {
      for (const port of ports) scenarioProxies.push(await startRoundRobin({ backends: [port], balance: 'source' }));
    } else {
      scenarioProxies.push(await startRoundRobin({ backends: ports, balance: 'roundrobin' }));
    }
    for (const p of scenarioProxies) proxies.add(p);
    const urls = scenarioProxies.map(hubUrl);

    const clients = new Child<ToNoStickyClient, FromNoStickyClient>(
      `${label}: clients`,
      'bench/clients/no-sticky-client.ts',
      [],
      { BENCH_MESSAGE_BYTES: String(CONFIG.messageBytes) },
    );
    children.push(clients);
    clients.listen((m) => {
      if (m.type === 'lost') problems.push(`pass ${pass}, ${label}: ${m.reason}`);
    });
    await clients.wait((m) => m.type === 'ready', READY_TIMEOUT_MS, 'ready message');
    const count = CONFIG.senders + CONFIG.receivers;
    await clients.request(
      (id) => ({ type: 'connect', id, urls, transport, count, senders: CONFIG.senders, nudge: mode === 'any' }),
      120_000,
      'connections',
    );

    // The nodes' backends: Hubwire's (application_name hubwire, hubwire-listen) that appeared since they started.
    const ourBackends = async () => new Set([...(await hubwireBackends())].filter((pid) => !others.has(pid)));
    /** Runs `work` between two samples of the nodes' stats and of this run's PostgreSQL backends' CPU. */
    const measured = async <T>(work: () => Promise<T>): Promise<{ value: T; sample: PhaseSample }> => {
      const before = await stats(nodes);
      const pidsBefore = await ourBackends();
      const pgBefore = postgresCpu();
      const t0 = performance.now();
      const value = await work();
      const wallUs = (performance.now() - t0) * 1000;
      const pgAfter = postgresCpu();
      const after = await stats(nodes);
      const pids = new Set([...pidsBefore, ...(await ourBackends())]);
      const only = (m: Map<number, number> | undefined) => m && new Map([...m].filter(([pid]) => pids.has(pid)));
      return { value, sample: { before, after, pgUs: postgresCpuBetween(only(pgBefore), only(pgAfter)), wallUs } };
    };

    const churn = await measured(async () => {
      const answer = (await clients.request(
        (id) => ({ type: 'churn', id, count: CONFIG.churn, offset: pass }),
        120_000,
        'churn report',
      )) as Extract<FromNoStickyClient, { type: 'churned' }>;
      return answer.report as ChurnReport;
    });
    const runFor = (durationMs: number) =>
      clients.request(
        (id) => ({ type: 'run', id, durationMs, graceMs: CONFIG.graceMs }),
        durationMs + CONFIG.graceMs + REQUEST_TIMEOUT_MS,
        'run report',
      ) as Promise<Extract<FromNoStickyClient, { type: 'ran' }>>;
    if (CONFIG.warmupMs > 0) await runFor(CONFIG.warmupMs);
    const run = await measured(async () => (await runFor(CONFIG.durationMs)).report as RunReport);

    const requestsPerNode: [number, number] = [0, 0];
    for (const [i, proxy] of scenarioProxies.entries()) {
      for (const request of proxy.requests) {
        // Affinity: proxy i has node i as its only backend (its server 0).
        const node = mode === 'affinity' ? (request.server === 0 ? i : -1) : request.server;
        if (node === 0 || node === 1) requestsPerNode[node]++;
      }
    }
    const result = scenarioResult(
      pass,
      transport,
      mode,
      { report: run.value, sample: run.sample },
      { report: churn.value, sample: churn.sample },
      requestsPerNode,
    );
    if (result.lost || result.duplicates || result.invokeErrors || result.startErrors) {
      problems.push(
        `pass ${pass}, ${label}: ${result.lost} deliveries lost, ${result.duplicates} duplicated, ` +
          `${result.invokeErrors} invocations failed, ${result.startErrors} connection starts failed`,
      );
    }
    for (const child of children) if (child.error) problems.push(`pass ${pass}, ${label}: ${child.error.message}`);
    log(
      `  pass ${pass} ${label.padEnd(24)} ${Math.round(result.messagesPerSec)} msg/s, invoke p50 ` +
        `${result.invokeP50Ms.toFixed(2)} / p99 ${result.invokeP99Ms.toFixed(2)} ms, delivery p50 ` +
        `${result.deliveryP50Ms.toFixed(2)} / p99 ${result.deliveryP99Ms.toFixed(2)} ms, ` +
        `${result.cpuUsPerDelivery.toFixed(1)} µs/deliv, ${result.rowsWrittenPerMessage.toFixed(2)} rows w/msg, ` +
        `${result.publishedPerMessage.toFixed(2)} bp msgs/msg (${result.recordsPerMessage.toFixed(2)} records), ` +
        `start p50 ${result.startP50Ms.toFixed(1)} ms, requests A/B ${requestsPerNode.join('/')}`,
    );
    await clients.stop({ type: 'stop' });
    await sleep(200);
    await Promise.all(nodes.map((n) => n.stop({ type: 'stop' })));
    return result;
  } finally {
    await monitor.end().catch(() => {});
    await Promise.all(children.map((c) => c.stop()));
    await Promise.all(scenarioProxies.map((p) => p.close().catch(() => {})));
    for (const p of scenarioProxies) proxies.delete(p);
    await dropSchemas(CONFIG.dbUrl, [schema]).then(
      () => schemas.delete(schema),
      (error: Error) => log(`Could not drop ${schema}: ${error.message}`),
    );
  }
}

async function main(): Promise<number> {
  const startedAt = new Date();
  let finished = false;
  stopOnSignalsAndDeadline({
    script: 'bench:no-sticky',
    deadlineSeconds: CONFIG.deadlineSeconds,
    stopping: 'stopping children and proxies, dropping the scratch schemas',
    cleanUp,
    finished: () => finished,
  });
  await preparePostgres(CONFIG.dbUrl);
  log(
    `No-sticky bench: 2 Hubwire nodes on PostgreSQL behind HAProxy, ${CONFIG.senders} senders + ` +
      `${CONFIG.receivers} receivers (@microsoft/signalr, JSON), ${CONFIG.durationMs / 1000} s closed loop ` +
      `(+ ${CONFIG.warmupMs / 1000} s warm-up), ${CONFIG.churn} connection starts, ${CONFIG.passes} pass(es) of ` +
      `${CONFIG.transports.join(', ')}. Node ${process.version}, ${cpus().length} CPUs, load ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}.`,
  );

  const results: ScenarioResult[] = [];
  const problems: string[] = [];
  const notes: string[] = [];
  const t0 = Date.now();
  let scenarioSeconds = 30;
  outer: for (let pass = 1; pass <= CONFIG.passes; pass++) {
    for (const transport of CONFIG.transports) {
      // Alternate which mode goes first: neither always follows the other.
      const modes: Mode[] =
        (pass + CONFIG.transports.indexOf(transport)) % 2 === 1 ? ['affinity', 'any'] : ['any', 'affinity'];
      for (const mode of modes) {
        if ((Date.now() - t0) / 1000 + scenarioSeconds > CONFIG.deadlineSeconds - 20) {
          notes.push(`stopped before pass ${pass} ${transport} ${mode}: BENCH_DEADLINE_S=${CONFIG.deadlineSeconds}`);
          break outer;
        }
        const started = Date.now();
        try {
          results.push(await scenario(pass, transport, mode, problems));
        } catch (error) {
          problems.push(
            `pass ${pass}, ${TRANSPORT_LABEL[transport]}, ${MODE_LABEL[mode]}: ${(error as Error).message}`,
          );
          log(`  pass ${pass} ${transport} ${mode} failed: ${(error as Error).message}`);
        }
        scenarioSeconds = Math.max(scenarioSeconds, (Date.now() - started) / 1000);
      }
    }
  }
  finished = true;

  const summary = summarize(results);
  console.log('\nEvery scenario:');
  console.log(scenarioTable(results));
  console.log(
    `\nMedians over passes, and no affinity / affinity (nodes µs/deliv: both nodes' CPU per delivered message; pg: ` +
      `this run's PostgreSQL backends; rows w / rows r: backplane rows written / read by both nodes per message ` +
      `sent; reads: readAfter queries; bp msgs: backplane messages published; start: negotiate → connected; ` +
      `heads: stream heads read per start):`,
  );
  console.log(summaryTable(summary));
  for (const problem of problems) console.log(`PROBLEM: ${problem}`);
  for (const note of notes) console.log(`note: ${note}`);

  const file = writeResultsFile('no-sticky', startedAt, {
    benchmark: 'no-sticky',
    startedAt: startedAt.toISOString(),
    durationSeconds: (Date.now() - startedAt.getTime()) / 1000,
    environment: {
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      totalMemoryBytes: totalmem(),
      loadAverageAtEnd: loadavg(),
    },
    config: { ...CONFIG, dbUrl: redactUrl(CONFIG.dbUrl) },
    summary,
    results,
    problems,
    notes,
  });
  console.log(`\nwrote ${file} (${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s)`);
  return problems.length ? 1 : 0;
}

runParent('bench:no-sticky', main, cleanUp);
