// A node's ordered outbox: the messages it accepted for the backplane and not yet committed, numbered in the order
// they were accepted, with the waits for them to become durable. The engine takes batches from it (one row each)
// and reports their commits; what a send's promise means is decided here (see `acknowledge`).

import type { Envelope } from '../bus/envelope.js';
import { HubwireError } from '../errors.js';

/** When a send's promise resolves: once the node's outbox accepted it (default), or once its row committed. */
export type Acknowledge = 'accepted' | 'committed';

export interface OutboxEntry {
  readonly envelope: Envelope;
  /** Position in the order of acceptance: 1, 2, 3, ... */
  readonly seq: number;
  /** performance.now() at acceptance. */
  readonly at: number;
}

interface DurableWaiter {
  readonly seq: number;
  resolve(): void;
  reject(error: Error): void;
}

const ACCEPTED: Promise<void> = Promise.resolve();

export class Outbox {
  /** Messages accepted so far (the seq of the newest). */
  accepted = 0;
  /** Every message with seq ≤ this has committed. */
  committed = 0;
  /** Accepted, not yet taken into a batch. */
  private queue: OutboxEntry[] = [];
  /** The batch being written (one row), if any. */
  inflight: OutboxEntry[] | undefined;
  /** Waits for seq ≤ n to commit, ordered by seq. */
  private waiters: DurableWaiter[] = [];
  /** Sum over committed messages of the time from acceptance to commit (ms), for stats. */
  acceptToCommitMs = 0;

  constructor(
    private readonly kind: string,
    private readonly maxLength: number,
    /**
     * With 'accepted': sends resolve at once while fewer than this many messages wait; a later one once no more than
     * this many accepted messages, its own included, are uncommitted.
     */
    private readonly acceptWindow: number,
    private readonly acknowledge: Acknowledge,
  ) {}

  /** Messages waiting for the database: queued and in flight. */
  get length(): number {
    return this.queue.length + (this.inflight?.length ?? 0);
  }

  get hasQueued(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Accepts an envelope and returns the send's promise: resolved at once (within the accept window), or when it
   * commits. Rejects at once when the outbox is full.
   */
  accept(envelope: Envelope): Promise<void> {
    const waiting = this.length;
    if (waiting >= this.maxLength) {
      return Promise.reject(
        new HubwireError(
          'HW_ERR_BACKPLANE_UNAVAILABLE',
          `The ${this.kind} backplane's send queue is full (${this.maxLength} messages); the database is unreachable or slower than the send rate: the message was not sent.`,
        ),
      );
    }
    const seq = ++this.accepted;
    this.queue.push({ envelope, seq, at: performance.now() });
    if (this.acknowledge === 'committed') return this.durable(seq) as Promise<void>;
    if (waiting < this.acceptWindow) return ACCEPTED;
    // Past the window a sender waits until at most acceptWindow accepted messages (its own included) are not
    // committed: backpressure instead of a queue that only fills up, and never more than the window at risk.
    return this.durable(seq - this.acceptWindow) as Promise<void>;
  }

  /** The next batch, at most `max` messages, now in flight. */
  take(max: number): OutboxEntry[] {
    const batch = this.queue.splice(0, max);
    this.inflight = batch;
    return batch;
  }

  /** The batch in flight committed. Its waiters are told by `settle()`, after the caller delivered the row. */
  commit(now: number): void {
    const batch = this.inflight;
    this.inflight = undefined;
    if (!batch || batch.length === 0) return;
    for (const entry of batch) this.acceptToCommitMs += now - entry.at;
    this.committed = (batch.at(-1) as OutboxEntry).seq;
  }

  /** Resolves the waits of everything committed so far. */
  settle(): void {
    let done = 0;
    while (done < this.waiters.length && (this.waiters[done] as DurableWaiter).seq <= this.committed) done++;
    if (done === 0) return;
    const ready = this.waiters.splice(0, done);
    for (const waiter of ready) waiter.resolve();
  }

  /**
   * Resolves once every message accepted up to `seq` has committed; undefined when they already have. Rejects when
   * they never will (see `fail`).
   */
  durable(seq: number): Promise<void> | undefined {
    if (seq <= this.committed) return undefined;
    return new Promise<void>((resolve, reject) => {
      const waiter = { seq, resolve, reject };
      // Usually the newest: insert from the end.
      let index = this.waiters.length;
      while (index > 0 && (this.waiters[index - 1] as DurableWaiter).seq > seq) index--;
      this.waiters.splice(index, 0, waiter);
    });
  }

  /** Drops everything not committed (the engine closed): their waits reject. Returns how many messages. */
  fail(error: Error): number {
    const dropped = this.length;
    this.queue = [];
    this.inflight = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
    return dropped;
  }
}
