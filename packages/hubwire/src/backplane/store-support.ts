// What every database store needs alike, so that the stores say and check the same things the same way: the
// stream-count option (one table per stream, 1..64: the original's practical ceiling, which also keeps NOTIFY
// payloads and `<schema>_messages_<n>` names short), exact ids, the argument checks of BackplaneStore's methods,
// option names and their deprecated aliases, the onError wrapper, and borrowing a pooled connection, a transaction
// or a lock so that a broken connection is never handed back. Exported to store authors by `hubwire/backplane`.

export const MAX_TABLE_COUNT = 64;

/** The schema (PostgreSQL) or table prefix (SQLite, MySQL) every store uses unless told otherwise. */
export const DEFAULT_SCHEMA = 'hubwire';

/** Throws a RangeError unless `tableCount` is an integer in 1..MAX_TABLE_COUNT. */
export function validateTableCount(tableCount: unknown): number {
  if (
    typeof tableCount !== 'number' ||
    !Number.isInteger(tableCount) ||
    tableCount < 1 ||
    tableCount > MAX_TABLE_COUNT
  ) {
    throw new RangeError(`tableCount must be an integer from 1 to ${MAX_TABLE_COUNT}, got ${String(tableCount)}.`);
  }
  return tableCount;
}

/**
 * A row id read from a database (bigint text or number) as a JS number; ids past 2^53 - 1 would round and make
 * readers skip rows, so they are refused.
 */
export function parseStoredId(text: unknown): number {
  const id = Number(text);
  if (!Number.isSafeInteger(id)) {
    throw new RangeError(
      `Row id ${String(text)} exceeds Number.MAX_SAFE_INTEGER (2^53 - 1); it cannot be represented.`,
    );
  }
  return id;
}

/** A key's `created_at` read from a database (bigint text or number) as a JS number; addKey stores safe integers. */
export function parseKeyTime(text: unknown): number {
  const value = Number(text);
  if (text === null || text === '' || !Number.isSafeInteger(value)) {
    throw new RangeError(`Key time ${String(text)} is not a safe integer.`);
  }
  return value;
}

/**
 * Throws a TypeError unless `name` is a safe SQL name for a schema or table prefix: a letter or `_`, then letters,
 * digits or `_`, `maxLength` characters in all. `what` names it in the message, e.g. `PostgreSQL schema name`.
 */
export function validateSchemaName(name: unknown, what: string, maxLength: number): string {
  if (typeof name !== 'string' || name.length > maxLength || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new TypeError(
      `Invalid ${what} ${JSON.stringify(name)}: use 1-${maxLength} letters, digits or underscores, not starting with a digit.`,
    );
  }
  return name;
}

/** Throws a RangeError unless `poolSize` is a positive integer. */
export function validatePoolSize(poolSize: unknown): number {
  if (typeof poolSize !== 'number' || !Number.isInteger(poolSize) || poolSize < 1) {
    throw new RangeError(`poolSize must be a positive integer, got ${String(poolSize)}.`);
  }
  return poolSize;
}

// The argument checks of BackplaneStore's methods: every store throws the same errors for the same mistakes.

/** Throws a RangeError unless `stream` is one of the store's streams, 0..streamCount-1. */
export function checkStream(stream: unknown, streamCount: number): void {
  if (typeof stream !== 'number' || !Number.isInteger(stream) || stream < 0 || stream >= streamCount) {
    throw new RangeError(`stream must be an integer from 0 to ${streamCount - 1}, got ${String(stream)}`);
  }
}

/** The arguments of `append` after the stream: a publisher id, a safe-integer batch sequence, a Buffer. */
export function checkAppend(publisher: unknown, batchSeq: unknown, payload: unknown): void {
  if (typeof publisher !== 'string' || publisher === '') throw new TypeError('publisher must be a non-empty string');
  if (!Number.isSafeInteger(batchSeq)) throw new TypeError(`batchSeq must be a safe integer, got ${String(batchSeq)}`);
  if (!Buffer.isBuffer(payload)) throw new TypeError('payload must be a Buffer');
}

/** The arguments of `readAfter` after the stream: afterId ≥ 0 and limit ≥ 1, safe integers. */
export function checkReadAfter(afterId: unknown, limit: unknown): void {
  if (!Number.isSafeInteger(afterId) || (afterId as number) < 0) {
    throw new RangeError(`afterId must be ≥ 0, got ${String(afterId)}`);
  }
  if (!Number.isSafeInteger(limit) || (limit as number) < 1) {
    throw new RangeError(`limit must be ≥ 1, got ${String(limit)}`);
  }
}

/** The arguments of `trim` after the stream: keepRows a safe integer ≥ 0, maxAgeMs a finite number ≥ 0. */
export function checkTrim(keepRows: unknown, maxAgeMs: unknown): void {
  if (!Number.isSafeInteger(keepRows) || (keepRows as number) < 0) {
    throw new RangeError(`keepRows must be ≥ 0, got ${String(keepRows)}`);
  }
  if (typeof maxAgeMs !== 'number' || !Number.isFinite(maxAgeMs) || maxAgeMs < 0) {
    throw new RangeError(`maxAgeMs must be ≥ 0, got ${String(maxAgeMs)}`);
  }
}

// Options.

/**
 * The options every bundled store takes, with one name and one meaning in each (a store's own docs say what they
 * are in its database). A store that cannot honour one narrows its type (e.g. `wakeups?: false`).
 */
export interface StoreOptions {
  /**
   * Where the store's tables live: the PostgreSQL schema, or the prefix of every table name where the database
   * has no schemas to spare (SQLite, MySQL). Default `hubwire`. Letters, digits and `_`, not starting with a digit
   * (at most 51; 41 with MySQL). The `--schema` of `hubwire install-schema` and the `schema` of `backplaneFromUrl`.
   */
  readonly schema?: string;
  /** Number of streams, one table each, 1..64. Default 1. */
  readonly tableCount?: number;
  /**
   * Push wake-ups: other nodes are told of a commit at once (LISTEN/NOTIFY, a watch on a file) instead of finding
   * it by polling. Default `true` where the store has them; with `false`, `subscribe` resolves undefined and the
   * backplane polls.
   */
  readonly wakeups?: boolean;
  /**
   * Errors the store handles itself, reported for logging only (a lost connection and its recovery). Default:
   * ignored. Errors of calls are rejections instead.
   */
  readonly onError?: (error: Error) => void;
}

/** The options of a store on a database server, reached through a connection pool. */
export interface PooledStoreOptions<Pool> extends StoreOptions {
  /** Where the store connects. One of `connectionString` and `pool` is required. */
  readonly connectionString?: string;
  /** An existing pool to run queries on instead (then `close()` leaves it open: it is yours). */
  readonly pool?: Pool;
  /** Size of the pool the store creates from `connectionString` (ignored with `pool`). Default 4. */
  readonly poolSize?: number;
}

/** The default of {@link PooledStoreOptions.poolSize}. */
export const DEFAULT_POOL_SIZE = 4;
/** How long a new connection may take, and how long a call may wait for a free connection of the pool. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** How many rows one trim statement deletes: each block is one short write transaction. */
export const TRIM_BLOCK_ROWS = 1000;

const warned = new Set<string>();

/**
 * The value of option `name`, or of `alias`, its deprecated older name (a one-time DeprecationWarning says so).
 * Both given with different values is a TypeError; `undefined` when neither is given.
 */
export function optionWithAlias<O extends object, K extends keyof O, A extends keyof O>(
  options: O,
  name: K,
  alias: A,
  store: string,
): O[K] | O[A] | undefined {
  const value = options[name];
  const old = options[alias];
  if (old === undefined) return value;
  if (!warned.has(`${store}.${String(alias)}`)) {
    warned.add(`${store}.${String(alias)}`);
    process.emitWarning(`${store}: the option '${String(alias)}' is deprecated; use '${String(name)}'.`, {
      type: 'DeprecationWarning',
      code: 'HUBWIRE_DEP_STORE_OPTION',
    });
  }
  if (value !== undefined && value !== (old as unknown)) {
    throw new TypeError(
      `${store}: '${String(name)}' ${JSON.stringify(value)} and its old name '${String(alias)}' ${JSON.stringify(old)} differ; give one.`,
    );
  }
  return old;
}

/**
 * The store's own `onError`: calls the user's function, if any, and swallows what it throws (a throwing logger
 * must not take the store down with it).
 */
export function errorReporter(onError: ((error: Error) => void) | undefined): (error: Error) => void {
  return (error) => {
    try {
      onError?.(error);
    } catch {
      // A throwing logger must not take the store down with it.
    }
  };
}

/** `error` if it is an Error, else an Error with its text. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

// Connections, transactions, locks.

/** A connection borrowed by {@link withConnection}. */
export interface Lease {
  /** Marks the connection unusable: it is destroyed, not given back to the pool. */
  discard(): void;
  readonly discarded: boolean;
}

/** How a store borrows connections from its pool: see {@link withConnection}. */
export interface ConnectionLender<C> {
  /** A connection from the pool. */
  acquire(): Promise<C>;
  /** Gives the connection back, or, when `discard` is true, destroys it (the pool opens another). */
  release(connection: C, discard: boolean): void;
  /**
   * Whether the connection is still usable after a call failed with `error`: true for the server's answers (a
   * duplicate key, a lock timeout), false for a lost or broken connection.
   */
  survives(error: unknown): boolean;
  /**
   * Listens for errors the connection emits while borrowed (the pool does not listen then); each one discards the
   * connection. Returns what stops listening.
   */
  watch?(connection: C, onError: (error: Error) => void): () => void;
}

/**
 * Runs `work` on a pooled connection and gives it back, unless the work failed with an error the connection does
 * not survive, an error was emitted on it meanwhile, or the work called `lease.discard()`: then the connection is
 * destroyed. Unlike `pool.query`, a server-side error (a duplicate, a timeout) keeps the connection.
 */
export async function withConnection<C, T>(
  lender: ConnectionLender<C>,
  work: (connection: C, lease: Lease) => Promise<T>,
): Promise<T> {
  const connection = await lender.acquire();
  let discarded = false;
  const lease: Lease = {
    discard: () => {
      discarded = true;
    },
    get discarded() {
      return discarded;
    },
  };
  const unwatch = lender.watch?.(connection, lease.discard);
  try {
    return await work(connection, lease);
  } catch (error) {
    if (!lender.survives(error)) discarded = true;
    throw error;
  } finally {
    unwatch?.();
    lender.release(connection, discarded);
  }
}

/** What {@link inTransaction} needs of a connection. */
export interface Transactional {
  query(sql: string): Promise<unknown>;
}

/**
 * Runs `work` in a transaction: `begin` (default `BEGIN`), then COMMIT, or ROLLBACK when the work (or the COMMIT)
 * failed. A ROLLBACK that fails means the connection is gone: `lease` is discarded (ending the session rolls back
 * just the same, and releases its transaction-scoped locks), and the work's error is what rejects.
 */
export async function inTransaction<T>(
  connection: Transactional,
  work: () => Promise<T>,
  options: { begin?: string; lease?: Lease } = {},
): Promise<T> {
  await connection.query(options.begin ?? 'BEGIN');
  try {
    const result = await work();
    await connection.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await connection.query('ROLLBACK');
    } catch {
      options.lease?.discard();
    }
    throw error;
  }
}

/** A lock held for the length of a call: see {@link withLock}. */
export interface HeldLock {
  /** Takes the lock; resolves false when it is busy and the caller does not wait (then nothing runs). */
  take(): Promise<boolean>;
  /** Frees it. */
  release(): Promise<unknown>;
  /**
   * Called when `release` failed (the lock may still be held): a store discards the connection, which frees a
   * session's locks. Without it, the release's error rejects the call.
   */
  onReleaseFailed?(error: unknown): void;
}

/**
 * Runs `work` holding `lock`, then releases it, also when the work failed. Resolves `undefined`, without running
 * the work, when `take` resolved false.
 */
export async function withLock<T>(lock: HeldLock, work: () => Promise<T>): Promise<T | undefined> {
  if (!(await lock.take())) return undefined;
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await release(lock).catch(() => {});
    throw error;
  }
  await release(lock);
  return result;
}

/** Releases `lock`; a failure goes to its `onReleaseFailed`, or rejects without one. */
async function release(lock: HeldLock): Promise<void> {
  try {
    await lock.release();
  } catch (error) {
    if (!lock.onReleaseFailed) throw error;
    lock.onReleaseFailed(error);
  }
}
