// The options of PostgresStore (what each means, and its default).

import type { PooledStoreOptions } from 'hubwire/backplane';
import type pg from 'pg';

/**
 * Options of {@link PostgresStore}. One of `connectionString` and `pool` is required. The options every store has
 * (`schema`, `tableCount`, `wakeups`, `poolSize`, `onError`) mean the same in each (see `StoreOptions` of
 * `hubwire/backplane`).
 */
export interface PostgresStoreOptions extends PooledStoreOptions<pg.Pool> {
  /** Where the store connects, e.g. `postgres://user:pass@host:5432/db`. */
  readonly connectionString?: string;
  /**
   * An existing pool to run queries on instead (then `close()` leaves it open: it is yours). When it is given,
   * `connectionString` only serves as the LISTEN connection's default.
   */
  readonly pool?: pg.Pool;
  /**
   * Where the LISTEN connection goes, when it must differ from the queries' (e.g. the app goes through PgBouncer
   * in transaction mode, which cannot hold a LISTEN). Default: `connectionString`, or else the pool's settings.
   * It is always a dedicated `pg.Client`, never taken from the pool.
   */
  readonly listenConnectionString?: string;
  /** The schema that holds the store's tables. Default `hubwire`. Letters, digits and `_`, at most 51. */
  readonly schema?: string;
  /** Number of streams, one table each, 1..64. More tables let more appends commit in parallel. Default 1. */
  readonly tableCount?: number;
  /** Wake other nodes with LISTEN/NOTIFY. With `false` the store never NOTIFYs nor LISTENs. Default `true`. */
  readonly wakeups?: boolean;
  /**
   * The old name of `wakeups`.
   * @deprecated Use `wakeups`, the name every store uses (a DeprecationWarning says so once).
   */
  readonly notify?: boolean;
  /**
   * Rows up to this many bytes travel in their NOTIFY, encrypted and authenticated with a key kept in the schema's
   * keys table, so other nodes deliver them without reading them back (one round trip and one query less per
   * row); larger rows are read. 0 turns it off. At most 5600 (NOTIFY's payload limit). Default 4096.
   */
  readonly pushRowBytes?: number;
  /** Size of the pool the store creates from `connectionString` (ignored with `pool`). Default 4. */
  readonly poolSize?: number;
  /**
   * Run append, read, top and trim as named prepared statements, parsed and planned once per connection: this
   * halves the database's work per append. Turn it off behind PgBouncer older than 1.21 in transaction mode
   * (which cannot keep a prepared statement on a connection). Default `true`.
   */
  readonly preparedStatements?: boolean;
  /**
   * Errors the store handles itself, reported for logging only: a lost LISTEN connection and its reconnects, an
   * idle pool connection dropped by the server. Default: ignored. Errors of calls are rejections instead.
   */
  readonly onError?: (error: Error) => void;
}
