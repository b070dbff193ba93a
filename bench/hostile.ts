// `npm run bench:hostile`: bounded memory and a fair event loop under slow, greedy and hostile clients (issue 12).
//
// Each scenario runs on a fresh server process (bench/servers/hostile-node.ts: examples/chat's ChatHub at /chat and
// as classic SignalR 2 at /signalr, no backplane) with two client processes (bench/hostile-client.ts): a probe that
// calls `echo` every 10 ms and times the round trips, and the scenario's hostile client (plus, for scenarios 1–6, a
// sender filling the hostile client's group with 1 KB messages at ~6,000/s). The parent samples the server's memory
// throughout (RSS from /proc, heap over IPC), then closes the hostile client, waits 5 s, forces GC in the server and
// samples again. It prints one table with the targets (probe p99 ≤ 50 ms, RSS growth ≤ 64 MB during, back within
// 16 MB after) and writes bench/results/hostile-<timestamp>.json. See bench/README.md ("Hostile clients benchmark").

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Child, killAllChildren, ROOT } from './lib/child.js';
import { configOrExit, envInt, Histogram, SetupError } from './lib/common.js';
import {
  type FromHostile,
  type FromProbe,
  type FromServer,
  type HostileReport,
  type ProbeReport,
  SCENARIOS,
  type Scenario,
  type ServerSample,
  sleep,
  type ToHostile,
  type ToProbe,
  type ToServer,
} from './lib/hostile.js';
import { wsVersion } from './lib/ws.js';

// --- Configuration -------------------------------------------------------------------------------------------

function readConfig() {
  const raw = process.env.BENCH_SCENARIOS?.trim();
  const scenarios = raw
    ? raw.split(',').map((entry) => {
        const key = entry.trim();
        const found = SCENARIOS.find((s) => String(s.n) === key || s.name === key);
        if (!found) {
          throw new SetupError(
            `BENCH_SCENARIOS: unknown scenario '${key}' (numbers 1–10 or names: ${SCENARIOS.map((s) => s.name).join(', ')}).`,
          );
        }
        return found;
      })
    : [...SCENARIOS];
  return {
    scenarios,
    /** How long the hostile part of a scenario lasts (scenarios 8–10 end once their work is done). */
    scenarioMs: envInt('BENCH_SCENARIO_MS', 15_000, 1000, 600_000),
    /** From the hostile client gone to the "after" sample (forced GC first). */
    afterMs: envInt('BENCH_AFTER_MS', 5000, 0, 60_000),
    warmupMs: envInt('BENCH_WARMUP_MS', 1000, 0, 60_000),
    deadlineSeconds: envInt('BENCH_DEADLINE_S', 300, 10, 3600),
  };
}

const CONFIG = configOrExit('bench:hostile', readConfig);

const MIB = 1024 * 1024;
const TARGETS = { probeP99Ms: 50, rssGrowthDuringMiB: 64, rssAfterMiB: 16 };
const READY_MS = 30_000;
const SETUP_MS = 20_000;
const MEM_MS = 10_000;
const GC_MS = 30_000;
const HOSTILE_END_MS = 15_000;
/** The probe's calls time out after 5 s; its report comes at most that long after 'stop'. */
const PROBE_REPORT_MS = 12_000;
/**
 * Scenarios that end by themselves (8–10) end this long after their work is done: the probe's percentiles are then
 * those of the time the hostile work ran, not diluted by calm seconds after it.
 */
const AFTER_DONE_MS = 100;
/** What a scenario needs beside its hostile part (processes, warm-up, after-wait, GC, stops), for the budget. */
const OVERHEAD_MS = 15_000 + CONFIG.warmupMs + CONFIG.afterMs;

type Server = Child<ToServer, FromServer>;
type Probe = Child<ToProbe, FromProbe>;
type HostileChild = Child<ToHostile, FromHostile>;

// --- Results -------------------------------------------------------------------------------------------------

interface ProbeResult {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  sent: number;
  answered: number;
  failed: number;
  timedOut: number;
  lost?: string;
}

interface MemoryResult {
  baseline?: ServerSample;
  /** Highest RSS during the hostile part and its end (sampled from /proc every 50 ms, and VmHWM when resettable). */
  peakRss?: number;
  /** Highest heapUsed among the IPC samples (every 250 ms while the server answers). */
  peakHeap?: number;
  /** After the hostile client was gone for afterMs, then forced GC. */
  after?: ServerSample;
  rssSamples: number;
  heapSamples: number;
  /** Whether the kernel's peak RSS (VmHWM) was reset at the start and read at the end. */
  hwm: boolean;
}

interface ScenarioResult {
  n: number;
  name: string;
  label: string;
  /** Length of the hostile part (ms). */
  phaseMs?: number;
  probe?: ProbeResult;
  memory: MemoryResult;
  /** The server's event-loop delay during the hostile part (ms). */
  loop?: { maxMs: number; p99Ms: number };
  hostile?: HostileReport;
  /** The server counted the hostile client's joinGroup before the sender started (scenarios 1–6). */
  joinConfirmed?: boolean;
  targets: { probeP99: boolean | undefined; rssDuring: boolean | undefined; rssAfter: boolean | undefined };
  notes: string[];
  error?: string;
}

const results: ScenarioResult[] = [];
let finished = false;
const startedAt = Date.now();

function log(text: string): void {
  process.stderr.write(`${text}\n`);
}

// --- Server memory -------------------------------------------------------------------------------------------

function mem(server: Server, gc: boolean, resetLoop = false): Promise<ServerSample> {
  return server
    .request(
      (id) => ({ type: 'mem', id, gc, resetLoop }),
      gc ? GC_MS : MEM_MS,
      gc ? 'memory after forced GC' : 'memory sample',
    )
    .then((m) => (m as Extract<FromServer, { type: 'mem' }>).sample);
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples the server's RSS from /proc (works while its event loop is stuck) and its heap over IPC. */
class Sampler {
  peakRss = 0;
  peakHeap = 0;
  rssSamples = 0;
  heapSamples = 0;
  hwm = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private inflight = false;

  constructor(
    private readonly server: Server,
    private readonly pid: number,
  ) {}

  start(): void {
    try {
      // "5": reset the peak resident set size (VmHWM) to the current RSS (proc(5), Linux ≥ 4.0).
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      this.hwm = procStatus(this.pid, 'VmHWM') !== undefined;
    } catch {
      this.hwm = false;
    }
    this.timers.push(
      setInterval(() => {
        const rss = procStatus(this.pid, 'VmRSS');
        if (rss === undefined) return;
        this.rssSamples++;
        this.peakRss = Math.max(this.peakRss, rss);
      }, 50),
      setInterval(() => {
        if (this.inflight || this.server.error) return;
        this.inflight = true;
        mem(this.server, false)
          .then((sample) => {
            this.heapSamples++;
            this.peakHeap = Math.max(this.peakHeap, sample.heapUsed);
            this.peakRss = Math.max(this.peakRss, sample.rss);
          })
          .catch(() => undefined)
          .finally(() => {
            this.inflight = false;
          });
      }, 250),
    );
  }

  stop(): void {
    for (const timer of this.timers) clearInterval(timer);
    const rss = procStatus(this.pid, 'VmRSS');
    if (rss !== undefined) this.peakRss = Math.max(this.peakRss, rss);
    if (this.hwm) {
      const hwm = procStatus(this.pid, 'VmHWM');
      if (hwm !== undefined) this.peakRss = Math.max(this.peakRss, hwm);
    }
  }
}

// --- One scenario ----------------------------------------------------------------------------------------------

function probeResult(report: ProbeReport): ProbeResult {
  const histogram = new Histogram(report.buckets);
  return {
    p50Ms: histogram.quantile(0.5) / 1000,
    p99Ms: histogram.quantile(0.99) / 1000,
    maxMs: histogram.quantile(1) / 1000,
    sent: report.sent,
    answered: report.answered,
    failed: report.failed,
    timedOut: report.timedOut,
    lost: report.lost,
  };
}

function stopProbe(probe: Probe): Promise<ProbeReport> {
  return probe
    .request((id) => ({ type: 'stop', id }), PROBE_REPORT_MS, 'probe report')
    .then((m) => (m as Extract<FromProbe, { type: 'report' }>).report);
}

const messageOf = (error: unknown) => (error as Error).message ?? String(error);

async function runScenario(scenario: Scenario): Promise<ScenarioResult> {
  const result: ScenarioResult = {
    n: scenario.n,
    name: scenario.name,
    label: scenario.label,
    memory: { rssSamples: 0, heapSamples: 0, hwm: false },
    targets: { probeP99: undefined, rssDuring: undefined, rssAfter: undefined },
    notes: [],
  };
  const children: { stop(): Promise<void> }[] = [];
  let sampler: Sampler | undefined;
  try {
    const server: Server = new Child('hostile server', join(ROOT, 'bench/servers/hostile-node.ts'), [], {}, [
      '--expose-gc',
    ]);
    children.push(server);
    const ready = (await server.wait((m) => m.type === 'ready', READY_MS, 'ready message')) as Extract<
      FromServer,
      { type: 'ready' }
    >;
    const client = join(ROOT, 'bench/hostile-client.ts');
    const probe: Probe = new Child('probe', client, ['probe', String(ready.port)], {});
    const hostile: HostileChild = new Child(
      'hostile client',
      client,
      ['hostile', String(ready.port), scenario.name],
      {},
    );
    children.push(probe, hostile);
    await Promise.all([
      probe.wait((m) => m.type === 'ready', READY_MS, 'probe ready'),
      hostile.wait((m) => m.type === 'ready', READY_MS, 'hostile client ready'),
    ]);

    // Warm-up: the probe's calls compile the server's paths before anything is measured.
    probe.send({ type: 'start' });
    await sleep(CONFIG.warmupMs);
    await stopProbe(probe);
    result.memory.baseline = await mem(server, true);

    const setUp = (await hostile.request((id) => ({ type: 'setup', id }), SETUP_MS, 'hostile set-up')) as Extract<
      FromHostile,
      { type: 'set-up' }
    >;
    result.notes.push(...setUp.notes);
    if (scenario.sender) {
      // A client that cannot read its joinGroup completion (long polling that never polls) is confirmed here.
      const deadline = Date.now() + 5000;
      result.joinConfirmed = false;
      while (Date.now() < deadline) {
        if ((await mem(server, false)).joins >= 1) {
          result.joinConfirmed = true;
          break;
        }
        await sleep(100);
      }
      if (!result.joinConfirmed) result.notes.push('the server did not count the join within 5 s');
    }

    // The hostile part. The event-loop delay counts from here (the reset is answered before anything starts).
    await mem(server, false, true);
    sampler = new Sampler(server, ready.pid);
    sampler.start();
    let doneAt: number | undefined;
    const stopListening = hostile.listen((m) => {
      if (m.type === 'done') doneAt = Date.now();
    });
    probe.send({ type: 'start' });
    const goAt = Date.now();
    hostile.send({ type: 'go' });
    for (;;) {
      const now = Date.now();
      if (now - goAt >= CONFIG.scenarioMs) break;
      if (doneAt !== undefined && now - doneAt >= AFTER_DONE_MS) break;
      const failure = server.error ?? hostile.error ?? probe.error;
      if (failure) throw failure;
      await sleep(50);
    }
    stopListening();
    result.phaseMs = Date.now() - goAt;
    if (scenario.finishes && doneAt === undefined) {
      result.notes.push(`the hostile client's work was not done after ${CONFIG.scenarioMs} ms`);
    }

    // The end: the probe stops (its report comes once its calls are answered or timed out), the loop delay is read,
    // the hostile client stops, reads what it can of a close from the server, and closes.
    const probeReport = stopProbe(probe);
    probeReport.catch(() => undefined);
    const loopSample = mem(server, false);
    loopSample.catch(() => undefined);
    try {
      const ended = (await hostile.request((id) => ({ type: 'end', id }), HOSTILE_END_MS, 'hostile report')) as Extract<
        FromHostile,
        { type: 'report' }
      >;
      result.hostile = ended.report;
    } catch (error) {
      result.notes.push(`no report from the hostile client: ${messageOf(error)}`);
    }
    await hostile.stop();
    const goneAt = Date.now();
    try {
      const sample = await loopSample;
      result.loop = { maxMs: sample.loopMaxMs, p99Ms: sample.loopP99Ms };
    } catch (error) {
      result.notes.push(`no event-loop sample: ${messageOf(error)}`);
    }
    sampler.stop();
    result.memory.peakRss = sampler.peakRss || undefined;
    result.memory.peakHeap = sampler.peakHeap || undefined;
    result.memory.rssSamples = sampler.rssSamples;
    result.memory.heapSamples = sampler.heapSamples;
    result.memory.hwm = sampler.hwm;
    sampler = undefined;

    await sleep(Math.max(0, CONFIG.afterMs - (Date.now() - goneAt)));
    try {
      result.memory.after = await mem(server, true);
    } catch (error) {
      result.notes.push(`no memory sample after: ${messageOf(error)}`);
    }
    try {
      result.probe = probeResult(await probeReport);
    } catch (error) {
      result.notes.push(`no probe report: ${messageOf(error)}`);
    }
  } catch (error) {
    result.error = messageOf(error);
  } finally {
    sampler?.stop();
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
  }
  judge(result);
  return result;
}

function judge(result: ScenarioResult): void {
  const { baseline, peakRss, after } = result.memory;
  result.targets.probeP99 = result.probe ? result.probe.p99Ms <= TARGETS.probeP99Ms : undefined;
  if (result.probe && (result.probe.lost || result.probe.sent === 0)) result.targets.probeP99 = false;
  result.targets.rssDuring =
    baseline && peakRss !== undefined ? peakRss - baseline.rss <= TARGETS.rssGrowthDuringMiB * MIB : undefined;
  result.targets.rssAfter = baseline && after ? after.rss - baseline.rss <= TARGETS.rssAfterMiB * MIB : undefined;
}

// --- Output ----------------------------------------------------------------------------------------------------

const mib = (bytes: number | undefined) => (bytes === undefined ? '?' : (bytes / MIB).toFixed(0));
const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : '−'}${(Math.abs(bytes) / MIB).toFixed(0)}`;
const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
const met = (value: boolean | undefined) => (value === undefined ? '?' : value ? 'met' : 'MISSED');

function closedText(hostile: HostileReport | undefined): string {
  if (!hostile) return '?';
  if (hostile.closed === 'no') return 'no';
  if (hostile.closed === 'unknown') return 'unknown (backlog)';
  const when =
    hostile.closedAtMs !== undefined ? ` at ${(hostile.closedAtMs / 1000).toFixed(1)} s` : ' (seen at the end)';
  const how = (hostile.closedHow ?? '').split(';')[0] as string;
  return `yes${when}: ${how.length > 46 ? `${how.slice(0, 45)}…` : how}`;
}

function row(r: ScenarioResult): string[] {
  const { baseline, peakRss, peakHeap, after } = r.memory;
  const p = r.probe;
  const rss = baseline
    ? `${mib(baseline.rss)} → ${mib(peakRss)}${peakRss !== undefined ? ` (${signedMib(peakRss - baseline.rss)})` : ''} → ` +
      `${mib(after?.rss)}${after ? ` (${signedMib(after.rss - baseline.rss)})` : ''}`
    : '?';
  const heap = baseline ? `${mib(baseline.heapUsed)} → ${mib(peakHeap)} → ${mib(after?.heapUsed)}` : '?';
  const sender = r.hostile?.sender;
  return [
    `${r.n} ${r.label}`,
    p ? `${ms(p.p50Ms)} / ${ms(p.p99Ms)} / ${ms(p.maxMs)}` : '?',
    p ? `${p.sent} / ${p.failed} / ${p.timedOut}${p.lost ? ' LOST' : ''}` : '?',
    rss,
    heap,
    r.error ? `ERROR` : closedText(r.hostile),
    sender ? `${(sender.bytesSent / 1e6).toFixed(1)} MB` : '-',
    met(r.targets.probeP99),
    met(r.targets.rssDuring),
    met(r.targets.rssAfter),
  ];
}

function table(rows: string[][], header: string[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function details(r: ScenarioResult): string {
  const parts: string[] = [];
  if (r.error) parts.push(`ERROR: ${r.error}`);
  if (r.phaseMs !== undefined) parts.push(`hostile part ${(r.phaseMs / 1000).toFixed(1)} s`);
  if (r.loop) parts.push(`server event-loop delay max ${ms(r.loop.maxMs)} ms, p99 ${ms(r.loop.p99Ms)} ms`);
  const h = r.hostile;
  if (h) {
    if (h.closed === 'yes') parts.push(`closed by the server: ${h.closedHow}`);
    parts.push(
      `hostile read ${(h.bytesRead / 1e6).toFixed(1)} MB${h.bytesDrained ? `, drained ${(h.bytesDrained / 1e6).toFixed(1)} MB at the end` : ''}`,
    );
    if (h.items !== undefined) {
      parts.push(
        `stream items read ${h.items.toLocaleString('en-US')} / ${h.expected?.toLocaleString('en-US')}` +
          (h.workMs !== undefined ? ` in ${(h.workMs / 1000).toFixed(2)} s` : ' (not complete)'),
      );
    }
    if (h.answers !== undefined) {
      parts.push(
        `echo answers ${h.answers.toLocaleString('en-US')} / ${h.expected?.toLocaleString('en-US')}` +
          (h.workMs !== undefined ? ` in ${(h.workMs / 1000).toFixed(2)} s` : ' (not all)'),
      );
    }
    const s = h.sender;
    if (s) {
      parts.push(
        `sender ${s.messages.toLocaleString('en-US')} messages in ${s.seconds.toFixed(1)} s ` +
          `(${Math.round(s.messages / Math.max(s.seconds, 0.001)).toLocaleString('en-US')}/s), ` +
          `${(s.bytesSent / 1e6).toFixed(1)} MB out, ${(s.bytesBuffered / 1e6).toFixed(1)} MB stuck in its buffer, ` +
          `${s.heldBack.toLocaleString('en-US')} held back${s.lost ? `, ${s.lost}` : ''}`,
      );
    }
    parts.push(...h.notes);
  }
  if (r.probe?.lost) parts.push(`probe: ${r.probe.lost}`);
  if (r.joinConfirmed === false) parts.push('join NOT confirmed by the server');
  for (const note of r.notes) if (!parts.includes(note)) parts.push(note);
  return `  ${r.n} ${r.name}: ${parts.join('; ')}`;
}

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], { cwd: ROOT, encoding: 'utf8' });
    return dirty.trim() ? `${head} (+ uncommitted changes under packages/)` : head;
  } catch {
    return 'unknown';
  }
}

function writeResults(complete: boolean): string {
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `hostile-${new Date(startedAt).toISOString().replace(/[:.]/g, '-')}.json`);
  const json = {
    bench: 'hostile',
    complete,
    date: new Date(startedAt).toISOString(),
    seconds: (Date.now() - startedAt) / 1000,
    commit: commit(),
    machine: { node: process.version, cpus: cpus().length, totalMemory: totalmem(), loadavg: loadavg(), ws: wsVersion },
    config: {
      ...CONFIG,
      scenarios: CONFIG.scenarios.map((s) => s.name),
      targets: TARGETS,
      server:
        "examples/chat's ChatHub at /chat and as classic 'chatHub' at /signalr, no backplane, default options + allowStatefulReconnects",
      probe: 'Core WebSocket client, echo with invocation id every 10 ms (open loop), 5 s timeout',
    },
    results,
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}

const HEADER = [
  'scenario',
  'probe echo ms p50 / p99 / max',
  'calls / failed / t.o.',
  'RSS MiB base → peak → after',
  'heap MiB base → peak → after',
  'closed by server',
  'sender sent',
  'p99 ≤ 50 ms',
  'RSS ≤ +64 MiB',
  'after ≤ +16 MiB',
];

// --- Main ------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const deadlineAt = startedAt + CONFIG.deadlineSeconds * 1000;
  log(
    `Hostile clients bench: scenarios ${CONFIG.scenarios.map((s) => s.n).join(', ')}, ` +
      `${CONFIG.scenarioMs / 1000} s each, deadline ${CONFIG.deadlineSeconds} s. Node ${process.version}, ` +
      `${cpus().length} CPUs, ws ${wsVersion}, commit ${commit()}.`,
  );
  for (const scenario of CONFIG.scenarios) {
    if (Date.now() + CONFIG.scenarioMs + OVERHEAD_MS > deadlineAt - 5000) {
      log(`  ${scenario.n} ${scenario.name}: skipped (not enough time left before the deadline)`);
      results.push({
        n: scenario.n,
        name: scenario.name,
        label: scenario.label,
        memory: { rssSamples: 0, heapSamples: 0, hwm: false },
        targets: { probeP99: undefined, rssDuring: undefined, rssAfter: undefined },
        notes: ['skipped: not enough time left before the deadline'],
        error: 'skipped (deadline)',
      });
      continue;
    }
    log(`  ${scenario.n} ${scenario.name}: running`);
    const result = await runScenario(scenario);
    results.push(result);
    log(`    ${row(result).slice(1).join(' | ')}`);
  }
  finished = true;
  const file = writeResults(true);
  console.log(
    `\nHostile clients (issue 12), commit ${commit()}: one probe calls echo every 10 ms throughout; ` +
      `hostile part ${CONFIG.scenarioMs / 1000} s (8–10: until done + ${AFTER_DONE_MS} ms); after = ` +
      `${CONFIG.afterMs / 1000} s after ` +
      'the hostile client left, forced GC. 1 MiB = 1024² B.',
  );
  console.log(table(results.map(row), HEADER));
  console.log('\nDetails:');
  for (const r of results) console.log(details(r));
  console.log(`\nResults: ${file}`);
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`\nInterrupted (${signal}); stopping children.`);
    killAllChildren();
    process.exit(130);
  });
}
setTimeout(() => {
  if (finished) return;
  log(
    `\nThe bench exceeded its ${CONFIG.deadlineSeconds} s deadline; stopping. Partial results: ${writeResults(false)}`,
  );
  killAllChildren();
  process.exit(1);
}, CONFIG.deadlineSeconds * 1000).unref();

main().then(
  () => {
    killAllChildren();
    process.exit(results.some((r) => r.error) ? 1 : 0);
  },
  (error: unknown) => {
    log(
      `\nbench:hostile failed: ${error instanceof SetupError ? error.message : ((error as Error).stack ?? String(error))}`,
    );
    killAllChildren();
    process.exit(1);
  },
);
