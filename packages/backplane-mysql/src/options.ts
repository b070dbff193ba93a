// The options of MysqlStore (what each means, and its default).

import type { PooledStoreOptions } from 'hubwire/backplane';
import type mysql from 'mysql2/promise';

/**
 * Options of {@link MysqlStore}. One of `connectionString` and `pool` is required. The options every store has
 * (`schema`, `tableCount`, `wakeups`, `poolSize`, `onError`) mean the same in each (see `StoreOptions` of
 * `hubwire/backplane`).
 */
export interface MysqlStoreOptions extends PooledStoreOptions<mysql.Pool> {
  /** Where the store connects, e.g. `mysql://user:pass@host:3306/app` (or `mariadb://…`). It must name a database. */
  readonly connectionString?: string;
  /**
   * An existing `mysql2/promise` pool to run queries on instead (then `close()` leaves it open: it is yours). Its
   * connections must select a database and use the default row shape (no `rowsAsArray`, `nestTables`, `typeCast`).
   */
  readonly pool?: mysql.Pool;
  /**
   * The prefix of every table name, in the connection's database (MySQL's schemas are databases, which the
   * connection chooses): `<schema>_schema_version`, `<schema>_streams`, `<schema>_messages_<n>`. Default
   * `hubwire`. Letters, digits and `_`, at most 41, not starting with a digit.
   */
  readonly schema?: string;
  /**
   * The old name of `schema`.
   * @deprecated Use `schema`, the name every store uses (a DeprecationWarning says so once).
   */
  readonly prefix?: string;
  /** Number of streams, one table each, 1..64. More tables let more appends commit in parallel. Default 1. */
  readonly tableCount?: number;
  /**
   * MySQL has no LISTEN/NOTIFY, so this store has no push wake-ups: `false` (the default) is the only value, and
   * the backplane polls (see the README). `true` is refused.
   */
  readonly wakeups?: false;
  /** Size of the pool the store creates from `connectionString` (ignored with `pool`). Default 4. */
  readonly poolSize?: number;
  /**
   * Errors the store handles itself, reported for logging only: a pooled connection lost while idle, a pool that
   * failed to end. Default: ignored. Errors of calls are rejections instead.
   */
  readonly onError?: (error: Error) => void;
}
