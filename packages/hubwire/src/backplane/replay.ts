// What a replay needs besides the database: the rows a node delivered recently (so a classic client moving between
// nodes is served from memory), and the merge of several streams in the order publishers saw them (row stamps).

import type { Envelope } from '../bus/envelope.js';
import type { StoredRow } from './backplane-store.js';
import type { DecodedBatch } from './envelope.js';

/** A row read back for a replay: its envelopes, and the publisher's stamp (see encodeBatch). */
export interface ReplayRow {
  readonly stream: number;
  readonly id: number;
  readonly envelopes: readonly Envelope[];
  readonly stamp: readonly number[] | undefined;
}

export interface CachedRow extends ReplayRow {
  /** Payload size: what the cache's byte limit counts. */
  readonly bytes: number;
}

/** The newest delivered rows of one stream (ids increasing), within a row and a byte limit. */
export class RecentRows {
  rows: CachedRow[] = [];
  private bytes = 0;

  constructor(
    private readonly maxRows: number,
    private readonly maxBytes: number,
  ) {}

  get oldestId(): number | undefined {
    return this.rows[0]?.id;
  }

  push(row: CachedRow): void {
    if (this.maxRows === 0) return;
    this.rows.push(row);
    this.bytes += row.bytes;
    const overRows = this.rows.length - this.maxRows;
    if (overRows <= this.maxRows / 4 && this.bytes <= this.maxBytes) return;
    // Drop in chunks (not one shift per row).
    let drop = Math.max(overRows, 0);
    let bytes = this.bytes;
    for (let i = 0; i < drop; i++) bytes -= (this.rows[i] as CachedRow).bytes;
    while (bytes > this.maxBytes && drop < this.rows.length) bytes -= (this.rows[drop++] as CachedRow).bytes;
    this.rows.splice(0, drop);
    this.bytes = bytes;
  }
}

/**
 * Merges per-stream row lists (each in id order) so that a row comes after every row of the other streams its
 * publisher had delivered when it wrote it (its stamp, bounded by `to`). Stamps never form a cycle: a row a stamp
 * names was committed before the row that carries it.
 */
export function mergeByStamp(perStream: ReplayRow[][], from: readonly number[], to: readonly number[]): ReplayRow[] {
  if (perStream.length === 1) return perStream[0] ?? [];
  const next = perStream.map(() => 0);
  const done = [...from];
  const out: ReplayRow[] = [];
  const ready = (row: ReplayRow): boolean => {
    if (!row.stamp) return true;
    for (let b = 0; b < perStream.length; b++) {
      if (b === row.stream) continue;
      const needed = Math.min(row.stamp[b] ?? 0, to[b] ?? 0);
      // Waits for a row of that stream it depends on that is still to come (missing rows cannot be waited for).
      const pending = perStream[b]?.[next[b] ?? 0];
      if ((done[b] ?? 0) < needed && pending !== undefined && pending.id <= needed) return false;
    }
    return true;
  };
  for (;;) {
    let picked = -1;
    let fallback = -1;
    for (let s = 0; s < perStream.length; s++) {
      const row = perStream[s]?.[next[s] ?? 0];
      if (!row) continue;
      if (fallback < 0) fallback = s;
      if (ready(row)) {
        picked = s;
        break;
      }
    }
    if (picked < 0) picked = fallback; // only if stamps were inconsistent (e.g. rows missing)
    if (picked < 0) return out;
    const row = perStream[picked]?.[next[picked] ?? 0] as ReplayRow;
    next[picked] = (next[picked] ?? 0) + 1;
    done[picked] = row.id;
    out.push(row);
  }
}

/** What a replay reads: per stream, the last row delivered and the recent rows kept; the store's rows before them. */
export interface ReplaySource {
  readonly streams: readonly { readonly stream: number; readonly lastId: number; readonly recent: RecentRows }[];
  /** Rows per database read. */
  readonly pageSize: number;
  readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]>;
  /** Undefined for a row this version cannot read (it still counts as read). */
  decode(stream: number, row: StoredRow): DecodedBatch | undefined;
  closed(): boolean;
}

/**
 * The rows of every stream after `from` up to `to` (both per stream, `to` ≤ positions()), in an order that
 * respects what each publisher had seen when it wrote (its stamp): a row comes after every row of other streams
 * that its publisher had delivered. Served from the recent-rows cache where it reaches, else read back from the
 * database; at most `maxRows` rows (the newest: older ones count as missed). Resolves with the rows and the
 * number of rows that were trimmed (or cut) before they could be read: messages the caller will not get.
 */
export async function replayRows(
  source: ReplaySource,
  from: readonly number[],
  to: readonly number[],
  maxRows: number,
): Promise<{ rows: ReplayRow[]; missed: number }> {
  let missed = 0;
  let total = 0;
  for (const s of source.streams) total += Math.max(0, (to[s.stream] ?? 0) - (from[s.stream] ?? 0));
  const start = [...from];
  if (total > maxRows) {
    // Keep the newest rows of each stream in proportion; the rest is reported as missed.
    for (const s of source.streams) {
      const span = Math.max(0, (to[s.stream] ?? 0) - (from[s.stream] ?? 0));
      const keep = Math.floor((span * maxRows) / total);
      missed += span - keep;
      start[s.stream] = (to[s.stream] ?? 0) - keep;
    }
  }
  const perStream: ReplayRow[][] = [];
  for (const s of source.streams) {
    const result = await readRange(source, s, start[s.stream] ?? 0, to[s.stream] ?? 0);
    perStream.push(result.rows);
    missed += result.missed;
  }
  return { rows: mergeByStamp(perStream, start, to), missed };
}

/** Rows of one stream in (afterId, toId]: the database for what the cache no longer holds, then the cache. */
async function readRange(
  source: ReplaySource,
  s: ReplaySource['streams'][number],
  afterId: number,
  toId: number,
): Promise<{ rows: ReplayRow[]; missed: number }> {
  const rows: ReplayRow[] = [];
  let missed = 0;
  let last = afterId;
  const oldestCached = s.recent.oldestId ?? s.lastId + 1;
  while (last < toId && last + 1 < oldestCached && !source.closed()) {
    const read = await source.readAfter(s.stream, last, source.pageSize);
    if (read.length === 0) break;
    for (const row of read) {
      if (row.id > toId || row.id >= oldestCached) break;
      if (row.id !== last + 1) missed += row.id - last - 1;
      last = row.id;
      const batch = source.decode(s.stream, row);
      if (batch) rows.push({ stream: s.stream, id: row.id, envelopes: batch.envelopes, stamp: batch.stamp });
    }
    if (read.length < source.pageSize) break;
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
