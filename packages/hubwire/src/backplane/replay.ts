// What a replay needs besides the database: the rows a node delivered recently (so a classic client moving between
// nodes is served from memory), and the merge of several streams in the order publishers saw them (row stamps).

import type { Envelope } from '../bus/envelope.js';

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
