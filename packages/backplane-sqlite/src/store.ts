// SqliteStore: the BackplaneStore in one SQLite file shared by the processes of one host: the
// connection (WAL, short busy timeout), and the SQL of append, read, top and trim. The key statements are in
// keys.ts, the node registry (heartbeatNode, readNodes, removeNode, pruneNodes) in nodes.ts.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  type AppendResult,
  asError,
  type BackplaneStore,
  checkAppend,
  checkReadAfter,
  checkStream,
  checkTrim,
  DEFAULT_SCHEMA,
  errorReporter,
  type NodeRecord,
  type NodeStore,
  optionWithAlias,
  parseStoredId,
  type StoredKey,
  type StoredRow,
  type StoreUrlOptions,
  TRIM_BLOCK_ROWS,
  validateKeyPurpose,
  validateKeyTime,
  validateStoredKey,
  validateTableCount,
} from 'hubwire/backplane';
import { type KeyStatements, prepareKeyStatements } from './keys.js';
import { SqliteNodes } from './nodes.js';
import { pathFromUrl, resolveDatabasePath, type SqliteStoreOptions } from './options.js';
import { installOn, retryBusy, SCHEMA_VERSION, TableNames } from './schema.js';
import { WalWatcher } from './wakeup.js';

/** How many rows one trim statement deletes: each block is one short write transaction. */
const TRIM_BLOCK = TRIM_BLOCK_ROWS;

interface StreamStatements {
  append(publisher: string, batchSeq: number, payload: Buffer): number | undefined;
  readAfter: Database.Statement<[number, number], StoredRow>;
  trimBlock: Database.Statement<[number, number]>;
}

/**
 * The SQLite backplane store. Every append is one `BEGIN IMMEDIATE` transaction: it takes the file's single
 * write lock first, so appends of all processes are serialised and the id read and incremented from the
 * stream's row inside it is consecutive and in commit order. WAL mode lets readers run beside the writer.
 */
export class SqliteStore implements BackplaneStore, NodeStore {
  readonly kind = 'sqlite';
  readonly streamCount: number;
  readonly names: TableNames;
  /** The absolute path of the database file. */
  readonly path: string;

  readonly #wakeups: boolean;
  readonly #busyTimeout: number;
  readonly #onError: (error: Error) => void;
  readonly #watchers = new Set<WalWatcher>();
  readonly #statements = new Map<number, StreamStatements>();
  readonly #nodes: SqliteNodes;
  #db: Database.Database | undefined;
  #opening: Promise<Database.Database> | undefined;
  #topStatement: Database.Statement<[number], number> | undefined;
  #topsStatement: Database.Statement<[number], { stream: number; last_id: number }> | undefined;
  #keyStatements: KeyStatements | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: SqliteStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('SqliteStore needs options.');
    this.path = resolveDatabasePath(options.path);
    this.names = new TableNames(optionWithAlias(options, 'schema', 'tablePrefix', 'SqliteStore') ?? DEFAULT_SCHEMA);
    this.streamCount = validateTableCount(options.tableCount ?? 1);
    this.#wakeups = options.wakeups ?? true;
    this.#busyTimeout = options.busyTimeout ?? 50;
    if (!Number.isInteger(this.#busyTimeout) || this.#busyTimeout < 0) {
      throw new RangeError(`busyTimeout must be a non-negative integer (ms), got ${String(options.busyTimeout)}.`);
    }
    this.#onError = errorReporter(options.onError);
    this.#nodes = new SqliteNodes(this.names, this.path, () => this.#connection());
  }

  /** Creates or migrates the tables (safe when many processes start at once); resolves with the epoch. */
  async install(): Promise<{ epoch: string; version: number }> {
    const db = await this.#connection();
    const { epoch } = await retryBusy(() => installOn(db, this.names, this.streamCount));
    // New tables: statements prepared against the old ones (or that failed) are prepared again.
    this.#statements.clear();
    this.#keyStatements = undefined;
    this.#nodes.reset();
    return { epoch, version: SCHEMA_VERSION };
  }

  async append(stream: number, publisher: string, batchSeq: number, payload: Buffer): Promise<AppendResult> {
    checkStream(stream, this.streamCount);
    checkAppend(publisher, batchSeq, payload);
    const statements = this.#streamStatements(await this.#connection(), stream);
    const id = statements.append(publisher, batchSeq, payload);
    if (id !== undefined) for (const watcher of this.#watchers) watcher.noteOwnAppend(stream, id);
    return { id };
  }

  async readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]> {
    checkStream(stream, this.streamCount);
    checkReadAfter(afterId, limit);
    const statements = this.#streamStatements(await this.#connection(), stream);
    return statements.readAfter.all(afterId, limit);
  }

  async top(stream: number): Promise<number> {
    checkStream(stream, this.streamCount);
    const top = this.#top(await this.#connection(), stream);
    if (top === undefined) throw this.#notInstalled(stream);
    return top;
  }

  async trim(stream: number, keepRows: number, maxAgeMs: number): Promise<number> {
    checkStream(stream, this.streamCount);
    checkTrim(keepRows, maxAgeMs);
    const db = await this.#connection();
    const statements = this.#streamStatements(db, stream);
    const top = this.#top(db, stream);
    if (top === undefined) throw this.#notInstalled(stream);
    // Both bounds are fixed once: the newest keepRows as of now, and rows created before now - maxAgeMs.
    const lastDoomed = top - keepRows;
    const createdBefore = Date.now() - maxAgeMs;
    let deleted = 0;
    while (lastDoomed > 0 && !this.#closing) {
      // Deleted rows leave the b-tree at once (unlike PostgreSQL's dead tuples), so every block starts its scan
      // at the oldest remaining row without a moving lower bound.
      const changes = statements.trimBlock.run(lastDoomed, createdBefore).changes;
      deleted += changes;
      if (changes < TRIM_BLOCK) break;
      // Between blocks, let this process's appends and reads run (and other processes take the write lock).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return deleted;
  }

  async subscribe(
    onChange: (stream: number) => void,
    onReconnect: () => void,
  ): Promise<(() => Promise<void>) | undefined> {
    if (this.#closing) throw new Error('SqliteStore is closed');
    // No push wake-ups: the engine polls with its short back-off instead.
    if (!this.#wakeups) return undefined;
    const db = await this.#connection();
    // Fails here (a missing table) rather than at the first event.
    this.#readTops(db);
    const watcher = new WalWatcher({
      file: this.path,
      readTops: () => this.#readTops(db),
      onChange,
      onReconnect,
      onError: this.#onError,
    });
    try {
      watcher.start();
    } catch (error) {
      watcher.stop();
      throw new Error(`SQLite wake-ups: cannot watch ${dirname(this.path)}: ${asError(error).message}`, {
        cause: error,
      });
    }
    this.#watchers.add(watcher);
    return async () => {
      this.#watchers.delete(watcher);
      watcher.stop();
    };
  }

  async readKeys(purpose: string): Promise<StoredKey[]> {
    validateKeyPurpose(purpose);
    const statements = this.#keysStatements(await this.#connection());
    const rows = await retryBusy(() => statements.read.all(purpose));
    return rows.map((row) => ({ id: row.id, secret: row.secret, createdAt: row.created_at }));
  }

  /**
   * One `BEGIN IMMEDIATE` transaction: it takes the file's write lock before it looks for a newer key, so addKeys
   * of every process run one after the other and each sees the keys the previous one committed. SQLITE_BUSY
   * (another process holds the lock past busyTimeout) is retried, as install() does.
   */
  async addKey(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean> {
    validateKeyPurpose(purpose);
    validateStoredKey(key);
    validateKeyTime('unlessNewerThan', unlessNewerThan);
    const statements = this.#keysStatements(await this.#connection());
    return retryBusy(() => statements.add(purpose, key, unlessNewerThan));
  }

  async deleteKeys(purpose: string, createdBefore: number): Promise<number> {
    validateKeyPurpose(purpose);
    validateKeyTime('createdBefore', createdBefore);
    const statements = this.#keysStatements(await this.#connection());
    return retryBusy(() => statements.delete.run(purpose, createdBefore).changes);
  }

  /** Registers the node or refreshes its row (one upsert; times are this host's clock, see nodes.ts). */
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

  /** Stops every subscription and closes the database. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const watcher of this.#watchers) watcher.stop();
      this.#watchers.clear();
      const db = this.#db ?? (await this.#opening?.catch(() => undefined));
      this.#db = undefined;
      this.#statements.clear();
      this.#keyStatements = undefined;
      this.#nodes.reset();
      try {
        db?.close();
      } catch (error) {
        this.#onError(asError(error));
      }
    })();
    return this.#closing;
  }

  /** The open connection; the first call opens it (creating the file and its directory). */
  async #connection(): Promise<Database.Database> {
    if (this.#closing) throw new Error('SqliteStore is closed');
    if (this.#db) return this.#db;
    this.#opening ??= this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #open(): Promise<Database.Database> {
    let db: Database.Database;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
    } catch (error) {
      throw this.#cannotOpen(`cannot create its directory ${dirname(this.path)}`, error);
    }
    try {
      db = new Database(this.path, { timeout: this.#busyTimeout });
    } catch (error) {
      throw this.#cannotOpen('cannot open the file', error);
    }
    try {
      // WAL: readers never wait for the writer, and a commit is one append to the -wal file (which the
      // wake-ups watch). The mode is stored in the file; switching needs a moment's exclusive access, so a
      // process opening a fresh file while another one does may have to retry.
      const mode = await retryBusy(() => db.pragma('journal_mode = WAL', { simple: true }));
      if (String(mode).toLowerCase() !== 'wal') {
        throw new Error(`journal_mode is '${String(mode)}', not 'wal' (is the file on a file system without mmap?)`);
      }
      // NORMAL in WAL mode: no fsync per commit, only at checkpoints. A power loss can lose the last commits but
      // never corrupts the file; the messages of a real-time hub are worth less than a synchronous disk write.
      db.pragma('synchronous = NORMAL');
    } catch (error) {
      db.close();
      throw this.#cannotOpen('cannot set it up', error);
    }
    if (this.#closing) {
      db.close();
      throw new Error('SqliteStore is closed');
    }
    this.#db = db;
    return db;
  }

  #streamStatements(db: Database.Database, stream: number): StreamStatements {
    let statements = this.#statements.get(stream);
    if (statements) return statements;
    const table = this.names.messagesTable(stream);
    try {
      const exists = db.prepare<[string, number], number>(
        `SELECT 1 FROM ${table} WHERE publisher = ? AND batch_seq = ?`,
      );
      const bump = db
        .prepare<[number], number>(
          `UPDATE ${this.names.streamsTable} SET last_id = last_id + 1 WHERE stream = ? RETURNING last_id`,
        )
        .pluck();
      const insert = db.prepare<[number, string, number, number, Buffer]>(
        `INSERT INTO ${table} (id, publisher, batch_seq, created_at, payload) VALUES (?, ?, ?, ?, ?)`,
      );
      // The duplicate check runs inside the write transaction, so two attempts of one batch (from two
      // connections even) cannot both insert; the UNIQUE index is the safety net that makes it one lookup.
      const transaction = db.transaction((publisher: string, batchSeq: number, payload: Buffer) => {
        if (exists.get(publisher, batchSeq) !== undefined) return undefined;
        const id = bump.get(stream);
        if (id === undefined) throw this.#notInstalled(stream);
        parseStoredId(id);
        insert.run(id, publisher, batchSeq, Date.now(), payload);
        return id;
      });
      statements = {
        // IMMEDIATE: take the write lock at BEGIN, waiting at most busyTimeout. A deferred transaction would
        // read first and could then fail to upgrade (SQLITE_BUSY_SNAPSHOT) after another process committed.
        append: (publisher, batchSeq, payload) => transaction.immediate(publisher, batchSeq, payload),
        readAfter: db.prepare<[number, number], StoredRow>(
          `SELECT id, payload FROM ${table} WHERE id > ? ORDER BY id LIMIT ?`,
        ),
        trimBlock: db.prepare<[number, number]>(
          `DELETE FROM ${table} WHERE id IN (
             SELECT id FROM ${table} WHERE id <= ? AND created_at < ? ORDER BY id LIMIT ${TRIM_BLOCK}
           )`,
        ),
      };
    } catch (error) {
      if (/no such table/i.test(asError(error).message)) throw this.#notInstalled(stream, error);
      throw error;
    }
    this.#statements.set(stream, statements);
    return statements;
  }

  #keysStatements(db: Database.Database): KeyStatements {
    this.#keyStatements ??= prepareKeyStatements(db, this.names, this.path);
    return this.#keyStatements;
  }

  #top(db: Database.Database, stream: number): number | undefined {
    try {
      this.#topStatement ??= db
        .prepare<[number], number>(`SELECT last_id FROM ${this.names.streamsTable} WHERE stream = ?`)
        .pluck();
    } catch (error) {
      if (/no such table/i.test(asError(error).message)) throw this.#notInstalled(stream, error);
      throw error;
    }
    const top = this.#topStatement.get(stream);
    if (top !== undefined) parseStoredId(top);
    return top;
  }

  /** Every stream's top in one SELECT, for the wake-up checks. */
  #readTops(db: Database.Database): number[] {
    this.#topsStatement ??= db.prepare(
      `SELECT stream, last_id FROM ${this.names.streamsTable} WHERE stream >= 0 AND stream < ?`,
    );
    const tops = new Array<number>(this.streamCount).fill(0);
    for (const row of this.#topsStatement.all(this.streamCount)) tops[row.stream] = row.last_id;
    return tops;
  }

  #notInstalled(stream: number, cause?: unknown): Error {
    return new Error(
      `Stream ${stream} is not installed in ${this.path} (prefix '${this.names.prefix}'): call install() first.`,
      { cause },
    );
  }

  #cannotOpen(what: string, cause: unknown): Error {
    const error = new Error(`Cannot open the SQLite database ${this.path}: ${what}: ${asError(cause).message}`, {
      cause,
    });
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code === 'string') Object.assign(error, { code });
    return error;
  }
}

/** For `hubwire install-schema sqlite:<file>`: creates or migrates the tables, then closes the file. */
export async function installSchema(
  url: string,
  options: StoreUrlOptions = {},
): Promise<{ epoch: string; version: number }> {
  const store = createStore(url, options);
  try {
    const { epoch } = await store.install();
    return { epoch, version: SCHEMA_VERSION };
  } finally {
    await store.close();
  }
}

/** The store of a `sqlite:` URL or path, for `backplaneFromUrl`. */
export function createStore(url: string, options: StoreUrlOptions = {}): SqliteStore {
  return new SqliteStore({ path: pathFromUrl(url), schema: options.schema, tableCount: options.tableCount });
}
