// The reading half of a backplane: every stream is read in id order from this node's position (woken by the store,
// or polling with back-off), rows are delivered to the hubs in an order that respects what their publishers had
// seen (stamps), and the history of what was delivered serves replays and waits (StreamHistory).

import type { Envelope } from '../bus/envelope.js';
import { HubwireError } from '../errors.js';
import { withTimeout } from '../util/timing.js';
import type { ResolvedOptions } from './backplane-options.js';
import type { BackplaneStore, StoredRow } from './backplane-store.js';
import { type DecodedBatch, decodeBatch } from './envelope.js';
import { type CachedRow, type ReplayRow, replayRows } from './replay.js';
import type { EnvelopeObserver } from './stream-history.js';
import {
  newStreamRuntime,
  noteDelivered,
  noteHead,
  type ReaderCounters,
  type StreamRuntime,
  type StreamStanding,
  standingOf,
} from './stream-runtime.js';

export type { ReaderCounters, StreamStanding } from './stream-runtime.js';

/** How long a row waits for rows of other streams its publisher had seen before it is delivered anyway. */
const HOLD_LIMIT_MS = 5000;

export class StreamReaders {
  private readonly streams: StreamRuntime[];
  private readonly handlers = new Map<string, (envelope: Envelope) => void>();
  private readonly observers = new Set<EnvelopeObserver>();
  /** Whether delivered rows are kept for replays (see retainRecentRows). */
  private cacheEnabled: boolean;
  /** Rows delivered so far: positions() changes only when this does. */
  private rowsDelivered = 0;
  private heldTimer: NodeJS.Timeout | undefined;
  private running = false;
  private closed = false;
  /** Whether the store's wake-ups work: then only a slow safety poll runs. */
  pushHealthy = false;
  readonly counters: ReaderCounters = {
    rowsRead: 0,
    rowsPushed: 0,
    delivered: 0,
    gaps: 0,
    wakeupsPush: 0,
    wakeupsPoll: 0,
  };

  constructor(
    private readonly store: BackplaneStore,
    private readonly options: ResolvedOptions,
    cacheEnabled: boolean,
    private readonly fail: (error: unknown, where: string) => void,
  ) {
    this.cacheEnabled = cacheEnabled;
    this.streams = Array.from({ length: store.streamCount }, (_, stream) =>
      newStreamRuntime(stream, options.pollMin, options.cacheRows, options.cacheBytes),
    );
  }

  /** Where a hub's envelopes go when they are read. */
  register(hub: string, handler: (envelope: Envelope) => void): void {
    if (this.handlers.has(hub)) throw new Error(`A hub is already registered at '${hub}' on this backplane.`);
    this.handlers.set(hub, handler);
  }

  /** Positions the readers after `tops` (the newest ids when this node started: it delivers what comes next). */
  begin(tops: readonly number[]): void {
    for (const s of this.streams) noteDelivered(s, tops[s.stream] ?? 0);
    this.running = true;
  }

  /** Every stream reads now (then polls, or waits for wake-ups). */
  readAll(): void {
    for (const s of this.streams) this.schedulePoll(s, 0);
  }

  /** The highest row id this node has delivered, per stream, whether or not reading has started. */
  delivered(): number[] {
    return this.streams.map((s) => s.lastId);
  }

  /** Per stream: the position, the newest id known, and how long this node has been behind. */
  standings(now = Date.now()): StreamStanding[] {
    return this.streams.map((s) => standingOf(s, now));
  }

  /** The newest committed id of a stream, as the backplane read it (its periodic head probe). */
  noteHead(stream: number, id: number): void {
    const s = this.streams[stream];
    if (s) noteHead(s, id);
  }

  /**
   * The highest row id this node has delivered, per stream: every envelope of those rows and of all rows before
   * them has been handed to the hubs. Undefined until reading has started.
   */
  positions(): number[] | undefined {
    return this.running ? this.delivered() : undefined;
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

  /** Keeps recently delivered rows in memory from now on, for replays (a classic endpoint asks for it). */
  retainRecentRows(): void {
    this.cacheEnabled = true;
  }

  /** The rows after `from` up to `to` (per stream), merged in the order publishers saw them (see replayRows). */
  replay(
    from: readonly number[],
    to: readonly number[],
    maxRows = 50_000,
  ): Promise<{ rows: ReplayRow[]; missed: number }> {
    return replayRows(
      {
        streams: this.streams,
        pageSize: this.options.readBatchSize * 4,
        readAfter: (stream, afterId, limit) => this.store.readAfter(stream, afterId, limit),
        decode: (stream, row) => this.decode(this.streams[stream] as StreamRuntime, row),
        closed: () => this.closed,
      },
      from,
      to,
      maxRows,
    );
  }

  /**
   * Resolves true once this node has delivered every stream up to `target` (positions() ≥ target), or false
   * after `timeoutMs` or when reading stops.
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
  offer(stream: number, row: StoredRow | undefined): void {
    const s = this.streams[stream];
    if (!s) return;
    this.counters.wakeupsPush++;
    if (row) noteHead(s, row.id);
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

  /** Something was committed somewhere (a wake-up without its row): every stream reads. */
  wakeAll(): void {
    this.counters.wakeupsPush++;
    for (const s of this.streams) this.wake(s);
  }

  /**
   * A row this node just committed: delivered in id order like everyone else's, without a read when nothing
   * precedes it (a read in flight may return the same row: deliverRow skips ids already delivered).
   */
  ownRow(stream: number, id: number | undefined, payload: Buffer): void {
    const s = this.streams[stream];
    if (!s) return;
    if (id !== undefined) noteHead(s, id);
    if (id !== undefined && s.lastId === id - 1) this.deliverRow(s, { id, payload });
    else this.wake(s);
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
      this.counters.wakeupsPoll++;
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
        const last = rows.at(-1);
        if (last) noteHead(s, last.id);
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

  // --- Delivery in the order publishers saw -------------------------------------------------------------
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
    noteDelivered(s, row.id);
    this.rowsDelivered++;
    if (s.waiters.length > 0) this.releaseWaiters(s);
    if (this.cacheEnabled) {
      const cached: CachedRow = {
        stream: s.stream,
        id: row.id,
        envelopes: batch.envelopes,
        stamp: batch.stamp,
        bytes: row.payload.length,
      };
      s.recent.push(cached);
    }
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

  /** Stops reading: timers end, and waits resolve (false). */
  close(): void {
    this.closed = true;
    this.running = false;
    if (this.heldTimer) clearTimeout(this.heldTimer);
    for (const s of this.streams) {
      if (s.timer) clearTimeout(s.timer);
      for (const waiter of s.waiters) waiter.resolve();
      s.waiters = [];
    }
  }
}
