// The only code each database provides: durable, ordered streams of binary payloads. Everything else of a
// scaleout backplane (batching, cursors, catch-up, buffering through outages) is the engine's, shared by all.

/** A row as read back from a stream. */
export interface StoredRow {
  /** Position in its stream: consecutive (1, 2, 3, ...) and assigned in commit order. */
  readonly id: number;
  readonly payload: Buffer;
}

/**
 * A secret of a key ring (see `key-ring.ts`), as a store keeps it: one row per key, grouped by purpose (e.g. the
 * classic protocol's token keys).
 */
export interface StoredKey {
  /** Unique within its purpose: 1-64 printable ASCII characters (no spaces), e.g. a random UUID. */
  readonly id: string;
  /** The key material, 1-1024 bytes, stored as bytes (bytea, BLOB, VARBINARY). */
  readonly secret: Buffer;
  /**
   * When the key was made, in integer milliseconds since 1970, by the clock of the node that made it (the store
   * keeps the value it is given; it never substitutes the database's clock).
   */
  readonly createdAt: number;
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
   * installation, so positions from another installation are never mistaken for ours; and, when the store has
   * one, the schema version it installed or found (`hubwire status` shows what the nodes report).
   */
  install(): Promise<{ epoch: string; version?: number }>;
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
   * Wake-ups: `onChange(stream, publisher?, row?)` when a node committed to a stream (with the publisher's id when
   * the store knows it, so a node can skip its own, and with the committed row itself when the store pushes rows:
   * the engine delivers it without reading when it is the next id, else reads). A pushed row must be exactly what
   * `readAfter` would return for its id: a store pushes only rows it has authenticated. `onReconnect()` after the
   * wake-up channel was (re)established, when notifications may have been missed. Resolves once listening with a
   * function that stops it, or with undefined when the store has no push wake-ups (then the engine polls with a
   * short back-off instead of its slow safety poll).
   */
  subscribe(
    onChange: (stream: number, publisher?: string, row?: StoredRow) => void,
    onReconnect: () => void,
  ): Promise<(() => Promise<void>) | undefined>;
  /** Releases connections. */
  close(): Promise<void>;

  // Keys shared by every node (optional: a store has all three or none; see `supportsKeys` in key-ring.ts).
  // A purpose is 1-100 printable ASCII characters (no spaces). The table is made by install(); arguments that
  // are not valid (purpose, id, secret size, non-integer times) are rejected with a TypeError or RangeError.

  /**
   * Every key of a purpose, newest first (by `createdAt`, then by `id`); empty when there is none. Reads
   * committed keys only.
   */
  readKeys?(purpose: string): Promise<StoredKey[]>;
  /**
   * Adds `key` to its purpose unless a key of that purpose has `createdAt > unlessNewerThan`, atomically: check
   * and insert are serialised with every other `addKey` of the namespace (nodes, processes), so when several nodes
   * decide to add a key at once, exactly one does. Resolves with true when the key was added, false when a newer
   * key was found (nothing was written). Pass `-1` to add only when the purpose has no key at all. A key whose id
   * already exists in the purpose is an error.
   */
  addKey?(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean>;
  /** Deletes the keys of a purpose with `createdAt < createdBefore`. Resolves with the number of keys deleted. */
  deleteKeys?(purpose: string, createdBefore: number): Promise<number>;
}
