// MysqlStore: the BackplaneStore on MySQL and MariaDB: the pool, the SQL of append, read, top and trim, the keys,
// and the node registry (its SQL in nodes.ts).

import {
  type AppendResult,
  asError,
  type BackplaneStore,
  CONNECT_TIMEOUT_MS,
  type ConnectionLender,
  checkAppend,
  checkReadAfter,
  checkStream,
  checkTrim,
  DEFAULT_POOL_SIZE,
  DEFAULT_SCHEMA,
  errorReporter,
  inTransaction,
  type Lease,
  type NodeRecord,
  type NodeStore,
  optionWithAlias,
  parseKeyTime,
  parseStoredId,
  type StoredKey,
  type StoredRow,
  type StoreUrlOptions,
  TRIM_BLOCK_ROWS,
  validateKeyPurpose,
  validateKeyTime,
  validatePoolSize,
  validateStoredKey,
  validateTableCount,
  withConnection,
} from 'hubwire/backplane';
import mysql from 'mysql2/promise';
import { acquireConnection } from './connections.js';
import { isBroken, isDuplicateBatch, NotInstalledError } from './errors.js';
import { NodeRegistry } from './nodes.js';
import type { MysqlStoreOptions } from './options.js';
import { currentDatabase, installOn, SCHEMA_VERSION, TableNames, withUserLock } from './schema.js';

/** How many rows one trim statement deletes: small enough to keep each transaction short. */
const TRIM_BLOCK = TRIM_BLOCK_ROWS;
/** maxAgeMs beyond this (about 100 years) trims by row count alone: the DATETIME arithmetic would overflow. */
const MAX_AGE_US = 100 * 365 * 86_400 * 1_000_000;
/** How long addKey waits for another node's addKey (its user-level lock), in seconds. */
const KEYS_LOCK_TIMEOUT_S = 10;
/** MySQL's limit on a VARBINARY(255) publisher, in bytes. */
const MAX_PUBLISHER_BYTES = 255;

/** Where errors of idle connections go; emptied on close, so a pool that outlives the store never calls into it. */
interface ErrorSink {
  report: ((error: Error) => void) | undefined;
}

/**
 * The MySQL/MariaDB backplane store. Ids come from each stream's row in `<prefix>_streams`, incremented under its
 * row lock in the transaction that inserts the message, so the lock is held to commit and ids are gap-free and in
 * commit order (AUTO_INCREMENT would hand them out at insert time and let them commit out of order).
 */
export class MysqlStore implements BackplaneStore, NodeStore {
  readonly kind = 'mysql';
  readonly streamCount: number;
  readonly names: TableNames;

  readonly #pool: mysql.Pool;
  readonly #ownsPool: boolean;
  readonly #onError: (error: Error) => void;
  readonly #sink: ErrorSink;
  readonly #onPoolError: (error: Error) => void;
  readonly #onConnectionError: (error: Error) => void;
  readonly #lender: ConnectionLender<mysql.PoolConnection>;
  /** Core connections that already carry our 'error' listener. */
  readonly #watched = new WeakSet<object>();
  /** Per stream, built once: the SQL never changes and holds only validated names. */
  readonly #insertSql: string[] = [];
  readonly #readSql: string[] = [];
  readonly #trimInfoSql: string[] = [];
  readonly #trimSql: string[] = [];
  readonly #remainingSql: string[] = [];
  readonly #nextIdSql: string;
  readonly #topSql: string;
  readonly #keysSql: { read: string; newer: string; insert: string; delete: string };
  readonly #nodes: NodeRegistry;
  /** The connection's database, learnt on first use: user-level lock names include it. */
  #database: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: MysqlStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('MysqlStore needs options.');
    const { connectionString, pool } = options;
    if (pool === undefined && (typeof connectionString !== 'string' || connectionString === '')) {
      throw new TypeError('MysqlStore needs a connectionString or a pool.');
    }
    this.names = new TableNames(optionWithAlias(options, 'schema', 'prefix', 'MysqlStore') ?? DEFAULT_SCHEMA);
    this.streamCount = validateTableCount(options.tableCount ?? 1);
    if (options.wakeups !== undefined && options.wakeups !== false) {
      throw new TypeError('MysqlStore has no push wake-ups (MySQL has no LISTEN/NOTIFY): leave wakeups out or false.');
    }
    const poolSize = validatePoolSize(options.poolSize ?? DEFAULT_POOL_SIZE);
    this.#onError = errorReporter(options.onError);
    const sink: ErrorSink = { report: this.#onError };
    this.#sink = sink;
    // Not a method of the store: it stays attached to the connections of a pool passed in, even after close().
    this.#onConnectionError = (error) => sink.report?.(error);
    this.#onPoolError = (error) => sink.report?.(error);

    this.#ownsPool = pool === undefined;
    this.#pool =
      pool ??
      mysql.createPool({
        uri: connectionString,
        connectionLimit: poolSize,
        maxIdle: poolSize,
        connectTimeout: CONNECT_TIMEOUT_MS,
        enableKeepAlive: true,
        // Ids ≥ 2^31 exact, and past 2^53 as strings (refused by parseId) rather than rounded. Ids are also read
        // as text (CAST ... AS CHAR), so a pool passed in with other settings reads them exactly too.
        supportBigNumbers: true,
        bigNumberStrings: true,
        connectAttributes: { program_name: 'hubwire' },
      });
    // mysql2 pools do not emit 'error' today, but an unhandled 'error' event would kill the process if one did.
    (this.#pool as unknown as NodeJS.EventEmitter).on('error', this.#onPoolError);
    // Borrowed connections: a server-side error (a lock wait timeout) keeps one; a broken one is destroyed.
    this.#lender = {
      acquire: () => this.#acquire(),
      release: (connection, discard) => (discard ? connection.destroy() : connection.release()),
      survives: (error) => !isBroken(error),
    };

    const names = this.names;
    // The UPDATE takes the stream row's lock and holds it to COMMIT; a concurrent append waits, then reads the
    // committed last_id. LAST_INSERT_ID(expr) hands the new value back in the OK packet (insertId): no SELECT.
    this.#nextIdSql = `UPDATE ${names.streamsTable} SET last_id = LAST_INSERT_ID(last_id + 1) WHERE stream = ?`;
    for (let stream = 0; stream < this.streamCount; stream++) {
      const table = names.messagesTable(stream);
      this.#insertSql[stream] =
        `INSERT INTO ${table} (id, publisher, batch_seq, created_at, payload) VALUES (?, ?, ?, UTC_TIMESTAMP(3), ?)`;
      // Ids go out as text: exact whatever the pool's big-number settings. ORDER BY the column m.id, not the text.
      this.#readSql[stream] =
        `SELECT CAST(m.id AS CHAR) AS id, m.payload FROM ${table} m WHERE m.id > ? ORDER BY m.id LIMIT ?`;
      this.#trimInfoSql[stream] = `SELECT CAST(s.last_id AS CHAR) AS top,
          (SELECT CAST(MIN(m.id) AS CHAR) FROM ${table} m) AS low
        FROM ${names.streamsTable} s WHERE s.stream = ?`;
      // One block per statement (autocommit), over a window of at most TRIM_BLOCK ids: ids are consecutive, so the
      // scan (and the locks InnoDB takes on what it scans) never goes past the window, even when its rows are young.
      this.#trimSql[stream] = `DELETE FROM ${table}
        WHERE id > ? AND id <= ? AND created_at < UTC_TIMESTAMP(3) - INTERVAL ? MICROSECOND
        ORDER BY id LIMIT ${TRIM_BLOCK}`;
      this.#remainingSql[stream] = `SELECT 1 AS kept FROM ${table} WHERE id > ? AND id <= ? LIMIT 1`;
    }
    this.#topSql = `SELECT CAST(last_id AS CHAR) AS id FROM ${names.streamsTable} WHERE stream = ?`;
    // Ties of created_at are ordered by id in byte order (VARBINARY).
    this.#keysSql = {
      read: `SELECT id, secret, CAST(created_at AS CHAR) AS created_at FROM ${names.keysTable}
              WHERE purpose = ? ORDER BY created_at DESC, id DESC`,
      newer: `SELECT 1 AS found FROM ${names.keysTable} WHERE purpose = ? AND created_at > ? LIMIT 1`,
      insert: `INSERT INTO ${names.keysTable} (purpose, id, secret, created_at) VALUES (?, ?, ?, ?)`,
      delete: `DELETE FROM ${names.keysTable} WHERE purpose = ? AND created_at < ?`,
    };
    this.#nodes = new NodeRegistry(names, (work) => this.#withConnection(work));
  }

  /** Creates or migrates the tables and this store's stream tables; see {@link installSchema}. */
  install(): Promise<{ epoch: string; version: number }> {
    return this.#withConnection(async (connection, lease) => {
      try {
        const result = await installOn(connection, this.names, this.streamCount);
        this.#database = result.database;
        return { epoch: result.epoch, version: SCHEMA_VERSION };
      } catch (error) {
        // The install lock may still be held (its release failed): only ending the session frees it for sure.
        lease.discard();
        throw error;
      }
    });
  }

  async append(stream: number, publisher: string, batchSeq: number, payload: Buffer): Promise<AppendResult> {
    checkStream(stream, this.streamCount);
    checkAppend(publisher, batchSeq, payload);
    if (Buffer.byteLength(publisher) > MAX_PUBLISHER_BYTES) {
      throw new RangeError(`publisher must be at most ${MAX_PUBLISHER_BYTES} bytes of UTF-8`);
    }
    return this.#withConnection(async (connection, lease) => {
      try {
        return await inTransaction(
          connection,
          async () => {
            const [next] = await connection.execute<mysql.ResultSetHeader>(this.#nextIdSql, [stream]);
            if (next.affectedRows !== 1) throw this.#notInstalled(stream);
            const id = parseStoredId(String(next.insertId));
            await connection.execute(this.#insertSql[stream]!, [id, publisher, batchSeq, payload]);
            return { id };
          },
          { begin: 'START TRANSACTION', lease },
        );
      } catch (error) {
        // The unique key (publisher, batch_seq) tells that an earlier attempt of this very batch committed. The
        // ROLLBACK undid the last_id increment too, so there is no gap; a connection that could not roll back is
        // dropped, which rolls back just the same. A COMMIT that failed with the connection leaves the outcome
        // unknown: the caller retries with the same (publisher, batchSeq), which stores at most one row.
        if (isDuplicateBatch(error)) return { id: undefined };
        throw error;
      }
    });
  }

  async readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]> {
    checkStream(stream, this.streamCount);
    checkReadAfter(afterId, limit);
    const result = await this.#withConnection((connection) =>
      connection.execute<mysql.RowDataPacket[]>(this.#readSql[stream]!, [afterId, limit]),
    );
    const found = result[0];
    const rows: StoredRow[] = new Array(found.length);
    for (let index = 0; index < rows.length; index++) {
      const row = found[index]!;
      rows[index] = { id: parseStoredId(row.id), payload: row.payload as Buffer };
    }
    return rows;
  }

  async top(stream: number): Promise<number> {
    checkStream(stream, this.streamCount);
    const [rows] = await this.#withConnection((connection) =>
      connection.execute<mysql.RowDataPacket[]>(this.#topSql, [stream]),
    );
    const row = rows[0];
    if (!row) throw this.#notInstalled(stream);
    return parseStoredId(row.id);
  }

  async trim(stream: number, keepRows: number, maxAgeMs: number): Promise<number> {
    checkStream(stream, this.streamCount);
    checkTrim(keepRows, maxAgeMs);
    const ageUs = Math.min(Math.round(maxAgeMs * 1000), MAX_AGE_US);
    return this.#withConnection(async (connection, lease) => {
      const [info] = await connection.execute<mysql.RowDataPacket[]>(this.#trimInfoSql[stream]!, [stream]);
      if (!info[0]) throw this.#notInstalled(stream);
      // Bounds from committed state: rows beyond the newest `keepRows` of the top. Trimming never lowers the top.
      const bound = parseStoredId(info[0].top) - keepRows;
      if (info[0].low === null || bound < parseStoredId(info[0].low)) return 0;
      this.#database ??= await currentDatabase(connection);
      const lock = this.names.trimLock(this.#database, stream);
      // Not taken at once (wait 'none'): another node is trimming this stream right now; it will do the rest.
      const deleted = await withUserLock(connection, lock, { wait: 'none', lease }, async () => {
        let deleted = 0;
        for (let after = parseStoredId(info[0]!.low) - 1; after < bound; ) {
          const upTo = Math.min(bound, after + TRIM_BLOCK);
          const [gone] = await connection.execute<mysql.ResultSetHeader>(this.#trimSql[stream]!, [after, upTo, ageUs]);
          deleted += gone.affectedRows;
          if (gone.affectedRows < upTo - after) {
            // Fewer rows than ids: either holes (rows already gone) or young rows, which end the trim (ids are in
            // commit order, so every later row is younger still).
            const [kept] = await connection.execute<mysql.RowDataPacket[]>(this.#remainingSql[stream]!, [after, upTo]);
            if (kept.length > 0) break;
          }
          after = upTo;
        }
        return deleted;
      });
      return deleted ?? 0;
    });
  }

  async readKeys(purpose: string): Promise<StoredKey[]> {
    validateKeyPurpose(purpose);
    const [rows] = await this.#withConnection((connection) =>
      connection.execute<mysql.RowDataPacket[]>(this.#keysSql.read, [purpose]),
    );
    return rows.map((row) => ({
      id: Buffer.isBuffer(row.id) ? row.id.toString('utf8') : String(row.id),
      secret: row.secret as Buffer,
      createdAt: parseKeyTime(row.created_at),
    }));
  }

  /**
   * Under a user-level lock (`GET_LOCK`) of the database's keys, like install(): concurrent addKeys (of every node)
   * queue on it. The check and the insert are autocommit statements that start after the lock is taken, so each
   * sees what the previous holder committed before releasing it.
   */
  async addKey(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean> {
    validateKeyPurpose(purpose);
    validateStoredKey(key);
    validateKeyTime('unlessNewerThan', unlessNewerThan);
    return this.#withConnection(async (connection, lease) => {
      this.#database ??= await currentDatabase(connection);
      const lock = this.names.lockName(this.#database, 'keys');
      const wait = { seconds: KEYS_LOCK_TIMEOUT_S, name: 'keys', waitingFor: 'add a key' };
      const added = await withUserLock(connection, lock, { wait, lease }, async () => {
        const [newer] = await connection.execute<mysql.RowDataPacket[]>(this.#keysSql.newer, [
          purpose,
          unlessNewerThan,
        ]);
        if (newer.length > 0) return false;
        await connection.execute(this.#keysSql.insert, [purpose, key.id, key.secret, key.createdAt]);
        return true;
      });
      return added === true;
    });
  }

  async deleteKeys(purpose: string, createdBefore: number): Promise<number> {
    validateKeyPurpose(purpose);
    validateKeyTime('createdBefore', createdBefore);
    const [result] = await this.#withConnection((connection) =>
      connection.execute<mysql.ResultSetHeader>(this.#keysSql.delete, [purpose, createdBefore]),
    );
    return result.affectedRows;
  }

  /** The node registry (NodeStore), on the database's clock: see nodes.ts. */
  heartbeatNode(id: string, info: string): Promise<void> {
    return this.#nodes.heartbeat(id, info);
  }

  readNodes(): Promise<{ now: number; nodes: NodeRecord[] }> {
    return this.#nodes.read();
  }

  removeNode(id: string): Promise<boolean> {
    return this.#nodes.remove(id);
  }

  pruneNodes(olderThanMs: number): Promise<number> {
    return this.#nodes.prune(olderThanMs);
  }

  /**
   * MySQL and MariaDB have no LISTEN/NOTIFY: this store has no push wake-ups, so it resolves `undefined` and the
   * engine polls each stream with its short back-off (see the README for why no substitute is used).
   */
  async subscribe(
    _onChange: (stream: number) => void,
    _onReconnect: () => void,
  ): Promise<(() => Promise<void>) | undefined> {
    if (this.#closing) throw new Error('MysqlStore is closed');
    return undefined;
  }

  /** Ends the pool if the store created it. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#ownsPool) await this.#pool.end().catch((error: unknown) => this.#onError(asError(error)));
      (this.#pool as unknown as NodeJS.EventEmitter).off('error', this.#onPoolError);
      this.#sink.report = undefined;
    })();
    return this.#closing;
  }

  /** A pooled connection (see acquireConnection), unless the store is closed. */
  async #acquire(): Promise<mysql.PoolConnection> {
    if (this.#closing) throw new Error('MysqlStore is closed');
    return acquireConnection(this.#pool, this.#watched, this.#onConnectionError);
  }

  /**
   * Work on a pooled connection (see `withConnection`). Unlike `pool.execute`, the connection is our own choice to
   * keep: a server-side error (a lock wait timeout) keeps it; a broken one, or one the work discarded, is destroyed.
   */
  #withConnection<T>(work: (connection: mysql.PoolConnection, lease: Lease) => Promise<T>): Promise<T> {
    return withConnection(this.#lender, work);
  }

  #notInstalled(stream: number): Error {
    return new NotInstalledError(
      `Stream ${stream} is not installed (table prefix ${this.names.prefix}): call install() first.`,
    );
  }
}

/**
 * Creates or migrates the tables on its own connection and closes it: for `hubwire install-schema <url>` or a
 * deploy step, so that the application itself can run without CREATE privileges. Resolves with the epoch.
 */
export async function installSchema(
  connectionString: string,
  options: StoreUrlOptions = {},
): Promise<{ epoch: string; version: number }> {
  const names = new TableNames(options.schema ?? DEFAULT_SCHEMA);
  const tableCount = validateTableCount(options.tableCount ?? 1);
  const store = new MysqlStore({ connectionString, schema: names.prefix, tableCount, poolSize: 1 });
  try {
    const { epoch } = await store.install();
    return { epoch, version: SCHEMA_VERSION };
  } finally {
    await store.close();
  }
}

/** A store from a `mysql://` or `mariadb://` URL, for `backplaneFromUrl` (hubwire); other options take defaults. */
export function createStore(url: string, options: StoreUrlOptions = {}): MysqlStore {
  return new MysqlStore({ connectionString: url, schema: options.schema, tableCount: options.tableCount });
}
