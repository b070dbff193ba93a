// The processes of one system on one database in the scaleout bench: its two server nodes (bench/servers/
// <system>-node.ts) and its two client processes (bench/clients/scaleout-client.ts: the senders on node A, the
// receivers on node B), started, prepared for a shape (connections counted, warm-up) and driven through steps.

import { Child } from './child.js';
import { cpuStallUs, postgresCpuBetween, processCpu } from './postgres.js';
import {
  DATABASE_LABEL,
  type DatabaseName,
  type FromClient,
  type FromNode,
  type NodeStats,
  type PublishReport,
  type SendReport,
  SHAPES,
  type Shape,
  SYSTEM_CODE,
  SYSTEM_LABEL,
  type SystemName,
  type ToClient,
  type ToNode,
} from './scaleout.js';
import type { StepResult } from './scaleout-results.js';
import {
  CONFIG,
  log,
  MAX_INVOKES_PER_SECOND,
  READY_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
  sleep,
  WARMUP_ATTEMPTS,
  WARMUP_MS,
  WARMUP_RATE,
} from './scaleout-run.js';
import { stepResult } from './scaleout-step.js';

type NodeChild = Child<ToNode, FromNode>;
type ClientChild = Child<ToClient, FromClient>;

function databaseCpu(database: DatabaseName): Map<number, number> | undefined {
  if (database === 'postgres') return processCpu(['postgres']);
  if (database === 'mysql') return processCpu(['mariadbd', 'mysqld']);
  return undefined; // SQLite runs inside the nodes
}

export class Cluster {
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
        `bench/servers/${SYSTEM_CODE[this.system]}-node.ts`,
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
        'bench/clients/scaleout-client.ts',
        [SYSTEM_CODE[this.system], role, `ws://127.0.0.1:${n.port}${n.path}`],
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
    const result = stepResult(this.system, this.database, {
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

  async stop(): Promise<void> {
    await Promise.all([this.senders?.stop(), this.receivers?.stop()]);
    await Promise.all([this.nodeA?.stop({ type: 'stop' }), this.nodeB?.stop({ type: 'stop' })]);
  }
}

export async function startCluster(
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

/** The systems' clusters of one database in one pass: restarted on fresh processes when a step leaves them dirty. */
export class Clusters {
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
