// The database-independent half of a scaleout backplane: batches this node's messages into rows of its home
// stream, reads every stream in id order from its last position (woken by the store, or polling with back-off),
// buffers sends through outages up to maxQueueLength, and trims old rows. One engine serves every hub of a server.

import { randomUUID } from 'node:crypto';
import type { Envelope } from '../bus/envelope.js';
import { HubwireError } from '../errors.js';
import { sleep, withTimeout } from '../util/timing.js';
import { type BackplaneOptions, consoleReporter, type ResolvedOptions, resolveOptions } from './backplane-options.js';
import type { BackplaneStats, StreamState } from './backplane-stats.js';
import type { BackplaneStore } from './backplane-store.js';
import { encodeBatch } from './envelope.js';
import { type ClusterNode, NodeHeartbeat } from './node-heartbeat.js';
import { Outbox } from './outbox.js';
import type { ReplayRow } from './replay.js';
import type { EnvelopeObserver, StreamHistory } from './stream-history.js';
import { StreamReaders } from './stream-reader.js';
import { StreamUpkeep } from './stream-upkeep.js';

export type { BackplaneOptions } from './backplane-options.js';
export type { BackplaneStats, StreamState, StreamStatus } from './backplane-stats.js';
export type { ClusterNode } from './node-heartbeat.js';
export type { Acknowledge } from './outbox.js';
export type { ReplayRow } from './replay.js';
export type { EnvelopeObserver } from './stream-history.js';

// Retry delays (util/timing sleep) keep the process alive: work is pending. Idle poll timers do not.

export class Backplane implements StreamHistory {
  /** This process's identity in the backplane (rows it wrote, replies meant for it). */
  readonly nodeId = randomUUID();
  private readonly options: ResolvedOptions;
  /** Reads every stream and delivers its rows; keeps the history replays read. */
  private readonly readers: StreamReaders;
  /** Publishing state per stream (the home stream's writes; every stream's while the database is unreachable). */
  private readonly states: StreamState[];
  /** The stream this node writes to (a hash of its node id): its messages keep their order everywhere. */
  readonly homeStream: number;
  /** This node's messages on their way to its home stream. */
  private readonly outbox: Outbox;
  private batchSeq = 0;
  private flushScheduled = false;
  private readonly stateListeners = new Set<(stream: number, state: StreamState) => void>();
  private readonly reportError: (error: unknown, where: string) => void;
  private epochId: string | undefined;
  /** The schema version the store installed (when it says). */
  private schemaVersion: number | undefined;
  private started: Promise<void> | undefined;
  private running = false;
  private closed = false;
  /** close() was called: no new messages; the outbox drains (at most closeTimeout). */
  private closing = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  /** Trims old rows, and probes the stream heads (the lag). */
  private readonly upkeep: StreamUpkeep;
  /** This node's row in the node registry. */
  private readonly heartbeat: NodeHeartbeat;
  private readonly counters = { published: 0, rowsWritten: 0, errors: 0, appendMs: 0 };

  constructor(
    readonly store: BackplaneStore,
    options: BackplaneOptions = {},
  ) {
    this.options = resolveOptions(options);
    this.outbox = new Outbox(
      store.kind,
      this.options.maxQueueLength,
      this.options.acceptWindow,
      this.options.acknowledge,
    );
    this.reportError = options.onError ?? consoleReporter(store.kind);
    const fail = (error: unknown, where: string) => this.fail(error, where);
    this.readers = new StreamReaders(store, this.options, options.replayCache !== undefined, fail);
    this.upkeep = new StreamUpkeep(store, this.options, (stream, id) => this.readers.noteHead(stream, id), fail);
    this.states = Array.from({ length: store.streamCount }, () => 'initial' as StreamState);
    const { heartbeatInterval, nodeTimeout } = this.options;
    // Each heartbeat also says where this node stands in the streams (`hubwire status` shows the lag per node).
    const standing = () => ({
      epoch: this.epochId,
      schemaVersion: this.schemaVersion,
      retention: { rows: this.options.keepRows, ageMs: this.options.keepAgeMs },
      queueLength: this.outbox.length,
      streams: this.stats().streams,
    });
    this.heartbeat = new NodeHeartbeat(store, this.nodeId, { heartbeatInterval, nodeTimeout, standing }, fail);
    // Each node writes to one stream, so its messages keep their order everywhere.
    let hash = 0;
    for (const ch of this.nodeId) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
    this.homeStream = hash % store.streamCount;
  }

  get epoch(): string | undefined {
    return this.epochId;
  }

  /** Where a hub's envelopes go when they are read. */
  register(hub: string, handler: (envelope: Envelope) => void): void {
    this.readers.register(hub, handler);
  }

  onStateChange(listener: (stream: number, state: StreamState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Installs the schema and starts reading; retries until the database answers. Idempotent. */
  start(): Promise<void> {
    if (!this.started) this.started = this.run();
    return this.started;
  }

  private async run(): Promise<void> {
    let delay = this.options.retryMin;
    for (;;) {
      if (this.closed) return;
      try {
        const installed = await this.store.install();
        const epoch = installed.epoch;
        if (typeof installed.version === 'number') this.schemaVersion = installed.version;
        const tops = await Promise.all(this.states.map((_, stream) => this.store.top(stream)));
        this.epochId = epoch;
        this.readers.begin(tops);
        break;
      } catch (error) {
        this.fail(error, 'starting');
        for (let stream = 0; stream < this.states.length; stream++) this.setState(stream, 'buffering');
        await sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMax);
      }
    }
    if (this.closed) return;
    this.running = true;
    await this.subscribe();
    for (let stream = 0; stream < this.states.length; stream++) this.setState(stream, 'open');
    this.readers.readAll();
    if (this.outbox.hasQueued) this.scheduleFlush();
    this.upkeep.start();
    this.heartbeat.start();
  }

  private async subscribe(): Promise<void> {
    try {
      this.unsubscribe = await this.store.subscribe(
        (stream, publisher, row) => {
          // Our own commits are delivered (or read) by writeNext() already.
          if (publisher === this.nodeId) return;
          this.readers.offer(stream, row);
        },
        () => this.readers.wakeAll(),
      );
      // undefined: this store never pushes; poll with the short back-off.
      this.readers.pushHealthy = this.unsubscribe !== undefined;
    } catch (error) {
      // Polling keeps delivery correct without wake-ups; try to subscribe again later.
      this.readers.pushHealthy = false;
      this.fail(error, 'subscribing to wake-ups');
      const retry = setTimeout(() => {
        if (!this.closed) void this.subscribe();
      }, this.options.retryMax);
      retry.unref();
    }
  }

  // --- Publishing -------------------------------------------------------------------------------------
  /**
   * Takes an envelope into this node's ordered outbox; it is written to the home stream in the next row. Resolves
   * as `acknowledge` says (by default at once, or later when the outbox is past `acceptWindow`); rejects at once
   * when the queue is full or the engine is closing.
   */
  publish(envelope: Envelope): Promise<void> {
    if (this.closing) {
      return Promise.reject(new HubwireError('HW_ERR_BACKPLANE_UNAVAILABLE', 'The backplane is closed.'));
    }
    const acknowledged = this.outbox.accept(envelope);
    this.scheduleFlush();
    return acknowledged;
  }

  /** How many messages this node has accepted so far: a mark to pass to `whenCommitted`. */
  get accepted(): number {
    return this.outbox.accepted;
  }

  /**
   * Resolves once every message this node accepted up to the mark `accepted` (default: all so far) has committed;
   * undefined when they already have. Rejects when the engine closes before they could be written.
   */
  whenCommitted(accepted = this.outbox.accepted): Promise<void> | undefined {
    return this.outbox.durable(accepted);
  }

  /** Resolves once everything accepted so far is committed (durable in the database). */
  async flush(): Promise<void> {
    await this.outbox.durable(this.outbox.accepted);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.outbox.inflight || !this.running) return;
    this.flushScheduled = true;
    // After this event-loop turn's I/O callbacks: the sends of every frame read in this turn (all connections)
    // share one row, and so do all sends made while a row is being written.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.writeNext();
    });
  }

  /** Writes the next batch of the outbox as one row, retrying until it commits (or the engine closes). */
  private async writeNext(): Promise<void> {
    const outbox = this.outbox;
    if (outbox.inflight || !outbox.hasQueued || this.closed) return;
    const stream = this.homeStream;
    const batch = outbox.take(this.options.batchSize);
    const batchSeq = ++this.batchSeq;
    const payload = encodeBatch(
      this.nodeId,
      batch.map((p) => p.envelope),
      this.states.length > 1 ? this.readers.delivered() : undefined,
    );
    let delay = this.options.retryMin;
    let result: { id: number | undefined } | undefined;
    let started = 0;
    while (!this.closed) {
      try {
        started = performance.now();
        // The same (publisher, batchSeq) on every attempt: a retry after an ambiguous failure stores one row.
        result = await this.store.append(stream, this.nodeId, batchSeq, payload);
        break;
      } catch (error) {
        this.fail(error, `writing to stream ${stream}`);
        this.setState(stream, 'buffering');
        await sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMax);
      }
    }
    if (!result || this.closed) return; // closed: close() failed the batch
    const now = performance.now();
    this.counters.appendMs += now - started;
    outbox.commit(now);
    this.setState(stream, 'open');
    this.counters.published += batch.length;
    this.counters.rowsWritten++;
    this.readers.ownRow(stream, result.id, payload);
    outbox.settle();
    if (outbox.hasQueued) void this.writeNext();
  }

  /**
   * Resolves once this node has delivered everything committed to any stream before the call: a group change
   * applied after it cannot overtake a message sent before it (the order one node would give). Gives up after
   * `timeoutMs` or when the database is unreachable (resolving false), so an outage never blocks a hub call.
   */
  async sync(timeoutMs = 5000): Promise<boolean> {
    if (!this.running) return false;
    // This node's own accepted messages first: they precede the call too.
    const own = this.outbox.durable(this.outbox.accepted);
    if (
      own &&
      !(await withTimeout(
        own.then(
          () => true,
          () => false,
        ),
        timeoutMs,
        false,
      ))
    )
      return false;
    let tops: number[];
    try {
      tops = await Promise.all(this.states.map((_, stream) => this.store.top(stream)));
    } catch {
      return false;
    }
    return this.waitFor(tops, timeoutMs);
  }

  // --- History (StreamHistory: classic SignalR 2 cursors; each method is documented there) -------------------
  positions(): number[] | undefined {
    return this.running ? this.readers.positions() : undefined;
  }

  get positionVersion(): number {
    return this.running ? this.readers.positionVersion : 0;
  }

  observe(observer: EnvelopeObserver): () => void {
    return this.readers.observe(observer);
  }

  replay(
    from: readonly number[],
    to: readonly number[],
    maxRows?: number,
  ): Promise<{ rows: ReplayRow[]; missed: number }> {
    return this.readers.replay(from, to, maxRows);
  }

  retainRecentRows(): void {
    this.readers.retainRecentRows();
  }

  waitFor(target: readonly number[], timeoutMs: number): Promise<boolean> {
    return this.running ? this.readers.waitFor(target, timeoutMs) : Promise.resolve(false);
  }

  // --- State ------------------------------------------------------------------------------------------
  private setState(stream: number, state: StreamState): void {
    if (this.states[stream] === state) return;
    this.states[stream] = state;
    for (const listener of this.stateListeners) {
      try {
        listener(stream, state);
      } catch (error) {
        this.fail(error, 'a state listener');
      }
    }
  }

  private fail(error: unknown, where: string): void {
    this.counters.errors++;
    this.reportError(error, where);
    for (const listener of this.errorListeners) listener(error, where);
  }

  private readonly errorListeners = new Set<(error: unknown, where: string) => void>();

  /** Hears every error the backplane reports (besides onError): the server's metrics keep the recent ones. */
  observeErrors(listener: (error: unknown, where: string) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  // --- The node registry ------------------------------------------------------------------------------------
  /**
   * Every node in the registry: alive (a heartbeat within nodeTimeout, by the database's clock) or not yet aged
   * out, this one included. Reads the database; what it says is at most heartbeatInterval old.
   */
  nodes(): Promise<ClusterNode[]> {
    return this.heartbeat.nodes();
  }

  /**
   * The registry as read at most `maxAgeMs` ago (one read shared by every caller meanwhile: client results, presence
   * queries and forwarded requests come in bursts). A failed read is not kept.
   */
  recentNodes(maxAgeMs = 1000): Promise<ClusterNode[]> {
    const now = Date.now();
    const cached = this.recent;
    if (cached && now - cached.at <= maxAgeMs) return cached.nodes;
    const nodes = this.heartbeat.nodes();
    const entry = { at: now, nodes };
    this.recent = entry;
    nodes.catch(() => {
      if (this.recent === entry) this.recent = undefined;
    });
    return nodes;
  }

  private recent: { at: number; nodes: Promise<ClusterNode[]> } | undefined;

  /** What this node says about itself in its registry row (the Hubwire server sets it). */
  setNodeInfo(provider: () => Record<string, unknown>): void {
    this.heartbeat.setInfo(provider);
  }

  stats(): BackplaneStats {
    return {
      nodeId: this.nodeId,
      epoch: this.epochId,
      streams: this.readers.standings().map((standing, stream) => ({
        stream,
        state: this.states[stream] ?? 'initial',
        ...standing,
      })),
      queueLength: this.outbox.length,
      accepted: this.outbox.accepted,
      acceptToCommitMs: this.outbox.acceptToCommitMs,
      ...this.counters,
      ...this.readers.counters,
      trims: this.upkeep.trims,
      rowsTrimmed: this.upkeep.rowsTrimmed,
    };
  }

  /**
   * Stops reading and writing. Messages already accepted are written first, for at most `closeTimeout` ms (the
   * database may be down); what is still not committed then is dropped and reported, and its waits reject.
   */
  async close(): Promise<void> {
    if (this.closing) return this.closingDone;
    this.closing = true;
    this.closingDone = this.shutDown();
    return this.closingDone;
  }

  private closingDone: Promise<void> | undefined;

  private async shutDown(): Promise<void> {
    const draining = this.running ? this.outbox.durable(this.outbox.accepted) : undefined;
    if (draining)
      await withTimeout(
        draining.catch(() => {}),
        this.options.closeTimeout,
        undefined,
      );
    this.closed = true;
    this.running = false;
    this.upkeep.stop();
    this.readers.close();
    // Other nodes see this one gone at once (bounded: the database may be down).
    await withTimeout(this.heartbeat.stop(), this.options.closeTimeout, undefined);
    const dropped = this.outbox.fail(
      new HubwireError('HW_ERR_BACKPLANE_UNAVAILABLE', 'The backplane was closed before the message was written.'),
    );
    if (dropped > 0) {
      this.fail(
        new HubwireError(
          'HW_ERR_BACKPLANE_UNAVAILABLE',
          `${dropped} accepted message(s) were not written before the backplane closed (closeTimeout ${this.options.closeTimeout} ms); they are lost.`,
        ),
        'closing',
      );
    }
    for (let stream = 0; stream < this.states.length; stream++) this.setState(stream, 'closed');
    try {
      await this.unsubscribe?.();
    } catch (failure) {
      this.fail(failure, 'closing');
    }
    await this.store.close();
  }
}
