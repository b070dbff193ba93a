// The only code each database provides: durable, ordered streams of binary payloads. Everything else of a
// scaleout backplane (batching, cursors, catch-up, buffering through outages) is the engine's, shared by all.

/** A row as read back from a stream. */
export interface StoredRow {
  /** Position in its stream: consecutive (1, 2, 3, ...) and assigned in commit order. */
  readonly id: number;
  readonly payload: Buffer;
}

export interface AppendResult {
  /** The id given to the row, or undefined when the row had already been committed by an earlier attempt. */
  readonly id: number | undefined;
}

/**
 * Durable streams in a database.
 *
 * Ordering and atomicity: within a stream, ids are consecutive and assigned in commit order: a reader that has
 * seen id N will never later see a new row with an id ≤ N, and every id from 1 to the top exists until trimmed.
 * `append` is one transaction. A reader never skips a row that commits late.
 *
 * Idempotence: `append` carries the publisher's id and a per-stream batch sequence; appending the same
 * (publisher, stream, batchSeq) twice stores one row (the second call resolves with `id: undefined`), so a
 * publisher can retry after an ambiguous failure (e.g. the connection dropped during COMMIT) without duplicates.
 *
 * What a wake-up may lose: wake-ups (`subscribe`) are hints. Any may be lost (a dropped LISTEN connection, a
 * restart); `onReconnect` is called after the subscription was re-established, and the engine's periodic
 * poll covers the rest. Correctness never depends on a wake-up.
 */
export interface BackplaneStore {
  /** A short name for logs and errors, e.g. `postgres`. */
  readonly kind: string;
  /** Number of streams (tables). */
  readonly streamCount: number;
  /**
   * Creates or migrates the schema (safe when many nodes start at once). Resolves with the epoch: an id of this
   * installation, so positions from another installation are never mistaken for ours.
   */
  install(): Promise<{ epoch: string }>;
  /** Appends one row to a stream in one transaction (and wakes readers on other nodes, if supported). */
  append(stream: number, publisher: string, batchSeq: number, payload: Buffer): Promise<AppendResult>;
  /** Rows with id > afterId, in id order, at most `limit`. */
  readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]>;
  /** The highest id ever assigned in the stream (0 when empty). */
  top(stream: number): Promise<number>;
  /**
   * Deletes old rows in blocks without long locks: only rows that are both outside the newest `keepRows` and
   * older than `maxAgeMs`. Resolves with the number of rows deleted.
   */
  trim(stream: number, keepRows: number, maxAgeMs: number): Promise<number>;
  /**
   * Wake-ups: `onChange(stream, publisher?)` when a node committed to a stream (with the publisher's id when the
   * store knows it, so a node can skip its own); `onReconnect()` after the wake-up
   * channel was (re)established, when notifications may have been missed. Resolves once listening with a function
   * that stops it, or with undefined when the store has no push wake-ups (then the engine polls with a short
   * back-off instead of its slow safety poll).
   */
  subscribe(
    onChange: (stream: number, publisher?: string) => void,
    onReconnect: () => void,
  ): Promise<(() => Promise<void>) | undefined>;
  /** Releases connections. */
  close(): Promise<void>;
}
