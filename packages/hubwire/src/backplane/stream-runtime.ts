// One stream as a node's readers keep it (StreamReaders): its position, its read loop's state, the rows held for
// ordering, and what the node knows of the stream's head (for the lag in the metrics and the registry).

import type { StoredRow } from './backplane-store.js';
import type { DecodedBatch } from './envelope.js';
import { RecentRows } from './replay.js';

export interface StreamRuntime {
  readonly stream: number;
  lastId: number;
  reading: boolean;
  readAgain: boolean;
  pollDelay: number;
  timer: NodeJS.Timeout | undefined;
  /** Callers of waitFor() waiting for this stream to be delivered up to an id. */
  waiters: { id: number; resolve(): void }[];
  /** Recently delivered rows, for replays. */
  recent: RecentRows;
  /** Rows read but not delivered yet: their publisher had seen rows of other streams this node has not delivered. */
  held: { row: StoredRow; batch: DecodedBatch; since: number }[];
  /** The newest committed id this node knows of (wake-ups, reads, its own rows, and the backplane's head probe). */
  head: number;
  /** When this node last knew of a row it had not delivered, having delivered everything before (0: caught up). */
  behindSince: number;
}

/** Where a node stands in one stream: what it delivered, the newest id it knows of, and for how long it was behind. */
export interface StreamStanding {
  position: number;
  head: number;
  /** Milliseconds since this node last had delivered every row it knew of (0 when caught up). */
  behindMs: number;
}

/** What the readers count (part of the backplane's stats). */
export interface ReaderCounters {
  rowsRead: number;
  rowsPushed: number;
  delivered: number;
  gaps: number;
  /** Reads started by the store's wake-ups (a pushed row or a notification), and by a poll timer. */
  wakeupsPush: number;
  wakeupsPoll: number;
}

export function newStreamRuntime(stream: number, pollDelay: number, cacheRows: number, cacheBytes: number) {
  const runtime: StreamRuntime = {
    stream,
    lastId: 0,
    reading: false,
    readAgain: false,
    pollDelay,
    timer: undefined,
    waiters: [],
    recent: new RecentRows(cacheRows, cacheBytes),
    held: [],
    head: 0,
    behindSince: 0,
  };
  return runtime;
}

/** The node learned that `id` is committed in this stream. */
export function noteHead(s: StreamRuntime, id: number): void {
  if (id <= s.head) return;
  s.head = id;
  if (s.behindSince === 0 && id > s.lastId) s.behindSince = Date.now();
}

/** The node delivered `id`: caught up when it reached the head it knew. */
export function noteDelivered(s: StreamRuntime, id: number): void {
  s.lastId = id;
  if (id >= s.head) {
    s.head = id;
    s.behindSince = 0;
  }
}

export function standingOf(s: StreamRuntime, now: number): StreamStanding {
  return {
    position: s.lastId,
    head: Math.max(s.head, s.lastId),
    behindMs: s.behindSince === 0 ? 0 : Math.max(0, now - s.behindSince),
  };
}
