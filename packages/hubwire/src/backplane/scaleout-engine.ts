// The database-independent half of a scaleout backplane: batches this node's messages into rows of its home
// stream, reads every stream in id order from its last position (woken by the store, or polling with back-off),
// buffers sends through outages up to maxQueueLength, and trims old rows. One engine serves every hub of a server.

import { randomUUID } from 'node:crypto';
import type { Envelope } from '../bus/envelope.js';
import { HubwireError } from '../errors.js';
import { sleep, withTimeout } from '../util/timing.js';
import type { BackplaneStore, StoredRow } from './backplane-store.js';
import { type DecodedBatch, decodeBatch, encodeBatch } from './envelope.js';
import { Outbox } from './outbox.js';
import { type CachedRow, mergeByStamp, RecentRows, type ReplayRow } from './replay.js';
import { type ResolvedOptions, resolveOptions, type ScaleoutOptions } from './scaleout-options.js';

export type { Acknowledge } from './outbox.js';
export type { ReplayRow } from './replay.js';
export type { ScaleoutOptions } from './scaleout-options.js';

export type StreamState = 'initial' | 'open' | 'buffering' | 'closed';

export interface StreamStatus {
  stream: number;
  /** Publishing: open (writes succeed), buffering (database unreachable, sends queue), closed. */
  state: StreamState;
  /** Highest id this node has delivered. */
  position: number;
}

export interface ScaleoutStats {
  nodeId: string;
  epoch: string | undefined;
  streams: StreamStatus[];
  queueLength: number;
  /** Messages accepted by publish(); `published` of them have committed. */
  accepted: number;
  published: number;
  rowsWritten: number;
  rowsRead: number;
  /** Rows delivered as the store pushed them, without a read (PostgreSQL: rows that fit their NOTIFY). */
  rowsPushed: number;
  delivered: number;
  errors: number;
  /** Rows that were trimmed before this node could read them (messages this node missed). */
  gaps: number;
  /** Time spent in the store's appends that committed, summed (ms): divide by rowsWritten for the average. */
  appendMs: number;
  /** Time from acceptance to commit, summed over published messages (ms): divide by published. */
  acceptToCommitMs: number;
}

/** Sees every envelope this node delivers (any hub), with the stream and row it came from. */
export type EnvelopeObserver = (envelope: Envelope, stream: number, id: number) => void;

interface StreamRuntime {
  readonly stream: number;
  state: StreamState;
  lastId: number;
  reading: boolean;
  readAgain: boolean;
  pollDelay: number;
  timer: NodeJS.Timeout | undefined;
  /** sync() callers waiting for this stream to be delivered up to an id. */
  waiters: { id: number; resolve(): void }[];
  /** Recently delivered rows, for replays. */
  recent: RecentRows;
  /** Rows read but not delivered yet: their publisher had seen rows of other streams this node has not delivered. */
  held: { row: StoredRow; batch: DecodedBatch; since: number }[];
}

/** How long a row waits for rows of other streams its publisher had seen before it is delivered anyway. */
const HOLD_LIMIT_MS = 5000;

// Retry delays (util/timing sleep) keep the process alive: work is pending. Idle poll timers do not.

export class ScaleoutEngine {
  /** This process's identity in the backplane (rows it wrote, replies meant for it). */
  readonly nodeId = randomUUID();
  private readonly options: ResolvedOptions;
  private readonly handlers = new Map<string, (envelope: Envelope) => void>();
  private readonly observers = new Set<EnvelopeObserver>();
  /** Whether delivered rows are kept for replays (see retainRecentRows). */
  private cacheEnabled: boolean;
  /** Rows delivered so far: positions() changes only when this does. */
  private rowsDelivered = 0;
  private readonly streams: StreamRuntime[];
  /** The stream this node writes to (a hash of its node id): its messages keep their order everywhere. */
  readonly homeStream: number;
  /** This node's messages on their way to its home stream. */
  private readonly outbox: Outbox;
  private batchSeq = 0;
  private flushScheduled = false;
  private readonly stateListeners = new Set<(stream: number, state: StreamState) => void>();
  private readonly reportError: (error: unknown, where: string) => void;
  private epochId: string | undefined;
  private started: Promise<void> | undefined;
  private running = false;
  private closed = false;
  /** close() was called: no new messages; the outbox drains (at most closeTimeout). */
  private closing = false;
  private pushHealthy = false;
  private unsubscribe: (() => Promise<void>) | undefined;
  private trimTimer: NodeJS.Timeout | undefined;
  private readonly counters = {
    published: 0,
    rowsWritten: 0,
    rowsRead: 0,
    rowsPushed: 0,
    delivered: 0,
    errors: 0,
    gaps: 0,
    appendMs: 0,
  };

  constructor(
    readonly store: BackplaneStore,
    options: ScaleoutOptions = {},
  ) {
    this.options = resolveOptions(options);
    this.cacheEnabled = options.replayCache !== undefined;
    this.outbox = new Outbox(
      store.kind,
      this.options.maxQueueLength,
      this.options.acceptWindow,
      this.options.acknowledge,
    );
    const lastReport = new Map<string, number>();
    this.reportError =
      options.onError ??
      ((error, where) => {
        const now = Date.now();
        if (now - (lastReport.get(where) ?? 0) < 1000) return;
        lastReport.set(where, now);
        console.error(`[hubwire] ${store.kind} backplane, ${where}:`, error instanceof Error ? error.message : error);
      });
    this.streams = Array.from({ length: store.streamCount }, (_, stream) => ({
      stream,
      state: 'initial' as StreamState,
      lastId: 0,
      reading: false,
      readAgain: false,
      pollDelay: this.options.pollMin,
      timer: undefined,
      waiters: [],
      recent: new RecentRows(this.options.cacheRows, this.options.cacheBytes),
      held: [],
    }));
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
    if (this.handlers.has(hub)) throw new Error(`A hub is already registered at '${hub}' on this backplane.`);
    this.handlers.set(hub, handler);
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
        const { epoch } = await this.store.install();
        const tops = await Promise.all(this.streams.map((s) => this.store.top(s.stream)));
        this.epochId = epoch;
        for (const s of this.streams) s.lastId = tops[s.stream] as number;
        break;
      } catch (error) {
        this.fail(error, 'starting');
        for (const s of this.streams) this.setState(s, 'buffering');
        await sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMax);
      }
    }
    if (this.closed) return;
    this.running = true;
    await this.subscribe();
    for (const s of this.streams) {
      this.setState(s, 'open');
      this.schedulePoll(s, 0);
    }
    if (this.outbox.hasQueued) this.scheduleFlush();
    this.trimTimer = setInterval(() => void this.trimAll(), this.options.trimInterval);
    this.trimTimer.unref();
  }

  private async subscribe(): Promise<void> {
    try {
      this.unsubscribe = await this.store.subscribe(
        (stream, publisher, row) => {
          // Our own commits are delivered (or read) by writeNext() already.
          if (publisher === this.nodeId) return;
          const s = this.streams[stream];
          if (s) this.offer(s, row);
        },
        () => {
          for (const s of this.streams) this.wake(s);
        },
      );
      // undefined: this store never pushes; poll with the short back-off.
      this.pushHealthy = this.unsubscribe !== undefined;
    } catch (error) {
      // Polling keeps delivery correct without wake-ups; try to subscribe again later.
      this.pushHealthy = false;
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
    const s = this.streams[this.homeStream] as StreamRuntime;
    const batch = outbox.take(this.options.batchSize);
    const batchSeq = ++this.batchSeq;
    const payload = encodeBatch(
      this.nodeId,
      batch.map((p) => p.envelope),
      this.streams.length > 1 ? this.streams.map((r) => r.lastId) : undefined,
    );
    let delay = this.options.retryMin;
    let result: { id: number | undefined } | undefined;
    let started = 0;
    while (!this.closed) {
      try {
        started = performance.now();
        // The same (publisher, batchSeq) on every attempt: a retry after an ambiguous failure stores one row.
        result = await this.store.append(s.stream, this.nodeId, batchSeq, payload);
        break;
      } catch (error) {
        this.fail(error, `writing to stream ${s.stream}`);
        this.setState(s, 'buffering');
        await sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMax);
      }
    }
    if (!result || this.closed) return; // closed: close() failed the batch
    const now = performance.now();
    this.counters.appendMs += now - started;
    outbox.commit(now);
    this.setState(s, 'open');
    this.counters.published += batch.length;
    this.counters.rowsWritten++;
    // Our own rows are delivered in id order like everyone else's; skip the read when nothing precedes them.
    // A read in flight may return the same row: deliverRow skips ids already delivered.
    if (result.id !== undefined && s.lastId === result.id - 1) {
      this.deliverRow(s, { id: result.id, payload });
    } else {
      this.wake(s);
    }
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
      tops = await Promise.all(this.streams.map((s) => this.store.top(s.stream)));
    } catch {
      return false;
    }
    return this.waitFor(tops, timeoutMs);
  }

  // --- Positions and replay (classic SignalR 2 cursors) ---------------------------------------------------
  /**
   * The highest row id this node has delivered, per stream: every envelope of those rows and of all rows before
   * them has been handed to the hubs. Undefined until the engine has started reading.
   */
  positions(): number[] | undefined {
    return this.running ? this.streams.map((s) => s.lastId) : undefined;
  }

  /** Changes whenever positions() does (a cheap check before recomputing something derived from them). */
  get positionVersion(): number {
    return this.running ? this.rowsDelivered + 1 : 0;
  }

  /** Calls `observer` for every envelope delivered from now on (before its hub's handler). Returns a remover. */
  observe(observer: EnvelopeObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  /**
   * The rows of every stream after `from` up to `to` (both per stream, `to` ≤ positions()), in an order that
   * respects what each publisher had seen when it wrote (its stamp): a row comes after every row of other streams
   * that its publisher had delivered. Served from the recent-rows cache where it reaches, else read back from the
   * database; at most `maxRows` rows (the newest: older ones count as missed). Resolves with the rows and the
   * number of rows that were trimmed (or cut) before they could be read: messages the caller will not get.
   */
  async replay(
    from: readonly number[],
    to: readonly number[],
    maxRows = 50_000,
  ): Promise<{ rows: ReplayRow[]; missed: number }> {
    let missed = 0;
    let total = 0;
    for (const s of this.streams) total += Math.max(0, (to[s.stream] ?? 0) - (from[s.stream] ?? 0));
    const start = [...from];
    if (total > maxRows) {
      // Keep the newest rows of each stream in proportion; the rest is reported as missed.
      for (const s of this.streams) {
        const span = Math.max(0, (to[s.stream] ?? 0) - (from[s.stream] ?? 0));
        const keep = Math.floor((span * maxRows) / total);
        missed += span - keep;
        start[s.stream] = (to[s.stream] ?? 0) - keep;
      }
    }
    const perStream: ReplayRow[][] = [];
    for (const s of this.streams) {
      const result = await this.readRange(s, start[s.stream] ?? 0, to[s.stream] ?? 0);
      perStream.push(result.rows);
      missed += result.missed;
    }
    return { rows: mergeByStamp(perStream, start, to), missed };
  }

  /** Rows of one stream in (afterId, toId]: the database for what the cache no longer holds, then the cache. */
  private async readRange(
    s: StreamRuntime,
    afterId: number,
    toId: number,
  ): Promise<{ rows: ReplayRow[]; missed: number }> {
    const rows: ReplayRow[] = [];
    let missed = 0;
    let last = afterId;
    const oldestCached = s.recent.oldestId ?? s.lastId + 1;
    while (last < toId && last + 1 < oldestCached && !this.closed) {
      const read = await this.store.readAfter(s.stream, last, this.options.readBatchSize * 4);
      if (read.length === 0) break;
      for (const row of read) {
        if (row.id > toId || row.id >= oldestCached) break;
        if (row.id !== last + 1) missed += row.id - last - 1;
        last = row.id;
        const batch = this.decode(s, row);
        if (batch) rows.push({ stream: s.stream, id: row.id, envelopes: batch.envelopes, stamp: batch.stamp });
      }
      if (read.length < this.options.readBatchSize * 4) break;
    }
    for (const row of s.recent.rows) {
      if (row.id <= last) continue;
      if (row.id > toId) break;
      if (row.id !== last + 1) missed += row.id - last - 1;
      last = row.id;
      rows.push(row);
    }
    if (last < toId) missed += toId - last;
    return { rows, missed };
  }

  /** Keeps recently delivered rows in memory from now on, for replays (a classic endpoint asks for it). */
  retainRecentRows(): void {
    this.cacheEnabled = true;
  }

  private remember(s: StreamRuntime, row: CachedRow): void {
    if (this.cacheEnabled) s.recent.push(row);
  }

  /**
   * Resolves true once this node has delivered every stream up to `target` (positions() ≥ target), or false
   * after `timeoutMs` or when the engine closes.
   */
  async waitFor(target: readonly number[], timeoutMs: number): Promise<boolean> {
    if (!this.running) return false;
    const waits: Promise<void>[] = [];
    const added: [StreamRuntime, { id: number; resolve(): void }][] = [];
    for (const s of this.streams) {
      const id = target[s.stream] ?? 0;
      if (s.lastId >= id) continue;
      waits.push(
        new Promise<void>((resolve) => {
          const waiter = { id, resolve };
          s.waiters.push(waiter);
          added.push([s, waiter]);
        }),
      );
      this.wake(s);
    }
    if (waits.length === 0) return true;
    const result = await withTimeout(
      Promise.all(waits).then(() => !this.closed),
      timeoutMs,
      false,
    );
    // Waiters of a wait that timed out are not kept.
    for (const [s, waiter] of added) {
      const index = s.waiters.indexOf(waiter);
      if (index >= 0) s.waiters.splice(index, 1);
    }
    return result;
  }

  // --- Reading ----------------------------------------------------------------------------------------
  /** A wake-up, with the committed row when the store pushed it: delivered at once when it is the next id. */
  private offer(s: StreamRuntime, row: StoredRow | undefined): void {
    if (row && this.running && !this.closed) {
      const next = (s.held.at(-1)?.row.id ?? s.lastId) + 1;
      if (row.id < next) return; // delivered (or held) already
      if (row.id === next) {
        this.counters.rowsPushed++;
        this.deliverRow(s, row);
        return;
      }
    }
    this.wake(s);
  }

  private wake(s: StreamRuntime): void {
    if (!this.running || this.closed) return;
    if (s.reading) {
      s.readAgain = true;
      return;
    }
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    void this.read(s);
  }

  private schedulePoll(s: StreamRuntime, delay: number): void {
    if (this.closed) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      void this.read(s);
    }, delay);
    s.timer.unref();
  }

  private async read(s: StreamRuntime): Promise<void> {
    if (s.reading || this.closed) return;
    s.reading = true;
    let found = false;
    try {
      do {
        s.readAgain = false;
        const after = s.held.at(-1)?.row.id ?? s.lastId;
        const rows = await this.store.readAfter(s.stream, after, this.options.readBatchSize);
        this.counters.rowsRead += rows.length;
        for (const row of rows) this.deliverRow(s, row);
        if (rows.length > 0) found = true;
        if (rows.length === this.options.readBatchSize && s.held.length < this.options.readBatchSize * 4) {
          s.readAgain = true;
          // Behind: let sockets and timers run between batches.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } while (s.readAgain && !this.closed);
      s.reading = false;
      // Back off while idle; with working wake-ups, only a slow safety poll.
      if (found) s.pollDelay = this.options.pollMin;
      else s.pollDelay = Math.min(Math.max(s.pollDelay * 2, this.options.pollMin), this.options.pollMax);
      this.schedulePoll(s, this.pushHealthy ? this.options.safetyPollInterval : s.pollDelay);
    } catch (error) {
      s.reading = false;
      this.fail(error, `reading stream ${s.stream}`);
      s.pollDelay = Math.min(Math.max(s.pollDelay * 2, this.options.retryMin), this.options.retryMax);
      this.schedulePoll(s, s.pollDelay);
    }
  }

  /**
   * A row read (or written) by this node. With several streams, a row whose publisher had delivered rows of other
   * streams that this node has not delivered yet waits for them (and the rows after it in its stream wait too), so
   * every node delivers in an order that respects what publishers saw: a group join made through one node and a
   * send made after it through another arrive in that order everywhere.
   */
  private deliverRow(s: StreamRuntime, row: StoredRow): void {
    if (row.id <= (s.held.at(-1)?.row.id ?? s.lastId)) return; // already delivered or held (our own row, read back)
    // A row this version cannot read is delivered empty: its id still counts.
    const batch = this.decode(s, row) ?? { publisher: '', envelopes: [] };
    if (s.held.length > 0 || !this.seen(s, batch.stamp)) {
      if (s.held.length === 0) this.scheduleHeldCheck();
      s.held.push({ row, batch, since: Date.now() });
      return;
    }
    this.deliverDecoded(s, row, batch);
    // Only with several streams can rows be held (stamps).
    if (this.streams.length > 1) this.releaseHeld();
  }

  private decode(s: StreamRuntime, row: StoredRow): DecodedBatch | undefined {
    try {
      return decodeBatch(row.payload);
    } catch (error) {
      this.fail(error, `decoding row ${row.id} of stream ${s.stream}`);
      return undefined;
    }
  }

  /** Whether this node has delivered every row of other streams that a stamp names. */
  private seen(s: StreamRuntime, stamp: readonly number[] | undefined): boolean {
    if (!stamp) return true;
    for (const other of this.streams) {
      if (other !== s && other.lastId < (stamp[other.stream] ?? 0)) return false;
    }
    return true;
  }

  /** Delivers held rows whose dependencies arrived (or that waited past the limit), in each stream's order. */
  private releaseHeld(): void {
    let progress = true;
    while (progress) {
      progress = false;
      for (const s of this.streams) {
        while (s.held.length > 0) {
          const head = s.held[0] as (typeof s.held)[number];
          const overdue = Date.now() - head.since > HOLD_LIMIT_MS;
          if (!overdue && !this.seen(s, head.batch.stamp)) break;
          if (overdue && !this.seen(s, head.batch.stamp)) {
            this.fail(
              new HubwireError(
                'HW_ERR_BACKPLANE_UNAVAILABLE',
                `Row ${head.row.id} of stream ${s.stream} waited ${HOLD_LIMIT_MS} ms for rows of other streams that this node could not read; delivered without them.`,
              ),
              `reading stream ${s.stream}`,
            );
          }
          s.held.shift();
          this.deliverDecoded(s, head.row, head.batch);
          progress = true;
        }
        // Its reader stopped while rows were held: carry on.
        if (progress && s.held.length === 0) this.wake(s);
      }
    }
  }

  private heldTimer: NodeJS.Timeout | undefined;

  private scheduleHeldCheck(): void {
    if (this.heldTimer || this.closed) return;
    this.heldTimer = setTimeout(() => {
      this.heldTimer = undefined;
      this.releaseHeld();
      if (this.streams.some((s) => s.held.length > 0)) this.scheduleHeldCheck();
    }, HOLD_LIMIT_MS / 4);
    this.heldTimer.unref();
  }

  private deliverDecoded(s: StreamRuntime, row: StoredRow, batch: DecodedBatch): void {
    if (row.id !== s.lastId + 1) {
      this.counters.gaps++;
      this.fail(
        new HubwireError(
          'HW_ERR_BACKPLANE_UNAVAILABLE',
          `Rows ${s.lastId + 1} to ${row.id - 1} of stream ${s.stream} were trimmed before this node read them; their messages were missed. Raise the retention.`,
        ),
        `reading stream ${s.stream}`,
      );
    }
    s.lastId = row.id;
    this.rowsDelivered++;
    if (s.waiters.length > 0) this.releaseWaiters(s);
    this.remember(s, {
      stream: s.stream,
      id: row.id,
      envelopes: batch.envelopes,
      stamp: batch.stamp,
      bytes: row.payload.length,
    });
    if (this.observers.size > 0) {
      for (const envelope of batch.envelopes) {
        for (const observer of this.observers) observer(envelope, s.stream, row.id);
      }
    }
    for (const envelope of batch.envelopes) {
      const handler = this.handlers.get(envelope.hub);
      if (!handler) continue; // a hub this node does not map
      this.counters.delivered++;
      try {
        handler(envelope);
      } catch (error) {
        this.fail(error, `delivering to hub '${envelope.hub}'`);
      }
    }
  }

  private releaseWaiters(s: StreamRuntime): void {
    const ready = s.waiters.filter((w) => w.id <= s.lastId);
    if (ready.length === 0) return;
    s.waiters = s.waiters.filter((w) => w.id > s.lastId);
    // After this row's envelopes are delivered (deliverRow continues synchronously first).
    queueMicrotask(() => {
      for (const waiter of ready) waiter.resolve();
    });
  }

  private async trimAll(): Promise<void> {
    for (const s of this.streams) {
      if (this.closed) return;
      try {
        await this.store.trim(s.stream, this.options.keepRows, this.options.keepAgeMs);
      } catch (error) {
        this.fail(error, `trimming stream ${s.stream}`);
      }
    }
  }

  // --- State ------------------------------------------------------------------------------------------
  private setState(s: StreamRuntime, state: StreamState): void {
    if (s.state === state) return;
    s.state = state;
    for (const listener of this.stateListeners) {
      try {
        listener(s.stream, state);
      } catch (error) {
        this.fail(error, 'a state listener');
      }
    }
  }

  private fail(error: unknown, where: string): void {
    this.counters.errors++;
    this.reportError(error, where);
  }

  stats(): ScaleoutStats {
    return {
      nodeId: this.nodeId,
      epoch: this.epochId,
      streams: this.streams.map((s) => ({ stream: s.stream, state: s.state, position: s.lastId })),
      queueLength: this.outbox.length,
      accepted: this.outbox.accepted,
      acceptToCommitMs: this.outbox.acceptToCommitMs,
      ...this.counters,
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
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.heldTimer) clearTimeout(this.heldTimer);
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
    for (const s of this.streams) {
      if (s.timer) clearTimeout(s.timer);
      for (const waiter of s.waiters) waiter.resolve();
      s.waiters = [];
      this.setState(s, 'closed');
    }
    try {
      await this.unsubscribe?.();
    } catch (failure) {
      this.fail(failure, 'closing');
    }
    await this.store.close();
  }
}
