// PostgresStore: the BackplaneStore on PostgreSQL: the pool, the SQL of append, read, top and trim, the keys, and
// the node registry (nodes.ts).

import { randomBytes, randomUUID } from 'node:crypto';
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
  type Lease,
  type NodeRecord,
  type NodeStore,
  optionWithAlias,
  parseKeyTime,
  parseStoredId,
  type StoredKey,
  type StoredRow,
  type StoreUrlOptions,
  validateKeyPurpose,
  validateKeyTime,
  validatePoolSize,
  validateStoredKey,
  validateTableCount,
  withConnection,
} from 'hubwire/backplane';
import pg from 'pg';
import { ListenConnection } from './listen.js';
import { PostgresNodes } from './nodes.js';
import type { PostgresStoreOptions } from './options.js';
import { DEFAULT_PUSH_ROW_BYTES, MAX_PUSH_ROW_BYTES, PUSH_KEY_PURPOSE, PushKey, parseNotification } from './push.js';
import { installOn, LOCK_KEYS, lockedTransaction, publisherConstraint, SCHEMA_VERSION, SchemaNames } from './schema.js';
import { buildStatements, type Statement, type Statements, TRIM_BLOCK } from './statements.js';

/** How long addKey waits for another node's addKey (its advisory lock) before it fails. */
const KEYS_LOCK_TIMEOUT = '10s';

/**
 * The PostgreSQL backplane store. Ids come from each stream's row in `streams`, incremented under its row lock in
 * the same statement that inserts the message, so the lock is held to commit and ids are gap-free and in commit
 * order (a sequence would hand them out at call time and let them commit out of order).
 */
export class PostgresStore implements BackplaneStore, NodeStore {
  readonly kind = 'postgres';
  readonly streamCount: number;
  readonly names: SchemaNames;

  readonly #pool: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #notify: boolean;
  readonly #pushRowBytes: number;
  /** The installation's push key, loaded by install() when rows are pushed. */
  #push: PushKey | undefined;
  /** Publishers that appended through this store: their own notifications are not opened (they skip them). */
  readonly #ownPublishers = new Set<string>();
  /** After the NOTIFY queue was found full, appends skip NOTIFY until then (other nodes poll meanwhile). */
  #quietUntil = 0;
  readonly #listenConfig: pg.ClientConfig;
  readonly #onError: (error: Error) => void;
  readonly #onPoolError: (error: Error) => void;
  readonly #listeners = new Set<ListenConnection>();
  readonly #lender: ConnectionLender<pg.PoolClient>;
  /** Built once: the SQL never changes and holds only validated names. */
  readonly #sql: Statements;
  /** The node registry (heartbeatNode, readNodes, removeNode, pruneNodes): its SQL is in nodes.ts. */
  readonly #nodes: PostgresNodes;
  #closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('PostgresStore needs options.');
    const { connectionString, pool, listenConnectionString } = options;
    if (pool === undefined && (typeof connectionString !== 'string' || connectionString === '')) {
      throw new TypeError('PostgresStore needs a connectionString or a pool.');
    }
    this.names = new SchemaNames(options.schema ?? DEFAULT_SCHEMA);
    this.streamCount = validateTableCount(options.tableCount ?? 1);
    this.#notify = optionWithAlias(options, 'wakeups', 'notify', 'PostgresStore') ?? true;
    const pushRowBytes = options.pushRowBytes ?? DEFAULT_PUSH_ROW_BYTES;
    if (!Number.isInteger(pushRowBytes) || pushRowBytes < 0 || pushRowBytes > MAX_PUSH_ROW_BYTES) {
      throw new RangeError(`pushRowBytes must be an integer from 0 to ${MAX_PUSH_ROW_BYTES}, got ${pushRowBytes}.`);
    }
    this.#pushRowBytes = this.#notify ? pushRowBytes : 0;
    const prepared = options.preparedStatements ?? true;
    const poolSize = validatePoolSize(options.poolSize ?? DEFAULT_POOL_SIZE);
    this.#onError = errorReporter(options.onError);

    this.#ownsPool = pool === undefined;
    this.#pool =
      pool ??
      new pg.Pool({
        connectionString,
        max: poolSize,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        application_name: 'hubwire',
      });
    // An idle pooled connection that the server drops emits 'error' on the pool; unhandled, it kills the process.
    this.#onPoolError = (error) => this.#onError(error);
    this.#pool.on('error', this.#onPoolError);
    // And a permanent listener on every pooled connection: a FATAL (e.g. 57P01 during a restart) can arrive while a
    // connection is between pg-pool's own listener and ours; one unhandled 'error' event would end the process.
    this.#pool.on('connect', (client) => client.on('error', this.#onPoolError));
    // Borrowed connections: a server-side error (a duplicate, a timeout) keeps one; a broken one is discarded.
    // The watch covers errors emitted while a client is out of the pool, where pg-pool does not listen.
    const borrowFrom = this.#pool;
    this.#lender = {
      acquire: () => borrowFrom.connect(),
      release: (client, discard) => client.release(discard),
      survives: (error) => error instanceof pg.DatabaseError,
      watch: (client, onError) => {
        client.on('error', onError);
        return () => client.off('error', onError);
      },
    };
    this.#listenConfig =
      listenConnectionString !== undefined || connectionString !== undefined
        ? { connectionString: listenConnectionString ?? connectionString }
        : { ...(this.#pool.options as pg.ClientConfig) };
    this.#listenConfig = {
      application_name: 'hubwire-listen',
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      ...this.#listenConfig,
    };

    this.#sql = buildStatements(this.names, this.streamCount, { notify: this.#notify, prepared });
    this.#nodes = new PostgresNodes(this.names, (text, values) => this.#query(text, values));
  }

  /** Creates or migrates the schema and this store's stream tables; see {@link installSchema}. */
  async install(): Promise<{ epoch: string; version: number }> {
    const installed = await this.#installSchema();
    // After the install's connection went back to the pool: loading the key takes connections of its own.
    if (this.#pushRowBytes > 0) this.#push = await this.#loadPushKey();
    return installed;
  }

  #installSchema(): Promise<{ epoch: string; version: number }> {
    return this.#withClient(async (client, lease) => {
      try {
        const { epoch } = await installOn(client, this.names, this.streamCount);
        return { epoch, version: SCHEMA_VERSION };
      } catch (error) {
        // The connection may be mid-transaction or broken: never hand it back to the pool for reuse.
        lease.discard();
        throw error;
      }
    });
  }

  async append(stream: number, publisher: string, batchSeq: number, payload: Buffer): Promise<AppendResult> {
    checkStream(stream, this.streamCount);
    checkAppend(publisher, batchSeq, payload);
    const values: unknown[] = [stream, publisher, batchSeq, payload];
    let sql = this.#sql.append[stream]!;
    if (this.#notify && Date.now() < this.#quietUntil) sql = this.#sql.appendQuiet[stream]!;
    else if (this.#notify) {
      // `stream:publisher:id`, so the publishing node can skip its own wake-up (it delivers its rows itself).
      values.push(this.names.channel, `${stream}:${publisher}:`);
      const push = this.#push;
      if (push && payload.length <= this.#pushRowBytes) {
        if (!this.#ownPublishers.has(publisher) && this.#ownPublishers.size < 16) this.#ownPublishers.add(publisher);
        values.push(push.inner, push.outer, push.seal(payload));
        sql = this.#sql.appendPush[stream]!;
      }
    }
    let result: pg.QueryResult<{ id: string }>;
    try {
      result = await this.#query<{ id: string }>(sql, values);
    } catch (error) {
      if (error instanceof pg.DatabaseError && isNotifyQueueFull(error) && sql !== this.#sql.appendQuiet[stream]) {
        // A listener that stopped reading (a frozen process) filled PostgreSQL's notification queue: NOTIFY fails
        // and takes the transaction with it. Keep writing without it for a while; other nodes poll meanwhile.
        this.#quietUntil = Date.now() + NOTIFY_QUIET_MS;
        this.#onError(new Error(`${error.message}: appending without NOTIFY for ${NOTIFY_QUIET_MS} ms`));
        return this.append(stream, publisher, batchSeq, payload);
      }
      // The unique key (publisher, batch_seq) tells that an earlier attempt of this very batch committed.
      if (
        error instanceof pg.DatabaseError &&
        error.code === '23505' &&
        error.constraint === publisherConstraint(stream)
      ) {
        return { id: undefined };
      }
      throw error;
    }
    const row = result.rows[0];
    if (!row) throw this.#notInstalled(stream);
    return { id: parseStoredId(row.id) };
  }

  async readAfter(stream: number, afterId: number, limit: number): Promise<StoredRow[]> {
    checkStream(stream, this.streamCount);
    checkReadAfter(afterId, limit);
    const result = await this.#query<{ id: string; payload: Buffer }>(this.#sql.read[stream]!, [afterId, limit]);
    const rows: StoredRow[] = new Array(result.rows.length);
    for (let index = 0; index < rows.length; index++) {
      const row = result.rows[index]!;
      rows[index] = { id: parseStoredId(row.id), payload: row.payload };
    }
    return rows;
  }

  async top(stream: number): Promise<number> {
    checkStream(stream, this.streamCount);
    const result = await this.#query<{ id: string }>(this.#sql.top, [stream]);
    const row = result.rows[0];
    if (!row) throw this.#notInstalled(stream);
    return parseStoredId(row.id);
  }

  async trim(stream: number, keepRows: number, maxAgeMs: number): Promise<number> {
    checkStream(stream, this.streamCount);
    checkTrim(keepRows, maxAgeMs);
    let deleted = 0;
    let after = 0;
    for (;;) {
      const result = await this.#query<{ held: boolean; deleted: number; last: string | null }>(
        this.#sql.trim[stream]!,
        [this.names.lockNamespace, stream, keepRows, after, maxAgeMs],
      );
      const block = result.rows[0]!;
      // Not held: another node is trimming this stream right now; it will do the rest.
      if (!block.held) return deleted;
      deleted += block.deleted;
      if (block.deleted < TRIM_BLOCK || block.last === null) return deleted;
      after = parseStoredId(block.last);
    }
  }

  async subscribe(
    onChange: (stream: number, publisher?: string, row?: StoredRow) => void,
    onReconnect: () => void,
  ): Promise<(() => Promise<void>) | undefined> {
    if (this.#closing) throw new Error('PostgresStore is closed');
    // No push wake-ups: the engine polls with its short back-off instead.
    if (!this.#notify) return undefined;
    const streamCount = this.streamCount;
    const listener = new ListenConnection({
      config: this.#listenConfig,
      channel: this.names.channel,
      onNotification: (payload) => {
        // Anyone may NOTIFY this channel: a pushed row is delivered only if it authenticates.
        const notification = parseNotification(payload, streamCount);
        if (!notification) return;
        const { stream, publisher, id, mac, sealed } = notification;
        let row: StoredRow | undefined;
        if (id !== undefined && mac && sealed && this.#push && !this.#ownPublishers.has(publisher as string)) {
          const opened = this.#push.open(stream, id, mac, sealed);
          if (opened) row = { id, payload: opened };
          else this.#reportForgery();
        }
        onChange(stream, publisher, row);
      },
      onReconnect,
      onError: this.#onError,
    });
    await listener.start();
    if (this.#closing) {
      // close() ran while we were connecting: it could not see this listener, so end it here.
      await listener.stop();
      throw new Error('PostgresStore is closed');
    }
    this.#listeners.add(listener);
    return async () => {
      this.#listeners.delete(listener);
      await listener.stop();
    };
  }

  async readKeys(purpose: string): Promise<StoredKey[]> {
    validateKeyPurpose(purpose);
    const result = await this.#query<{ id: string; secret: Buffer; created_at: string }>(this.#sql.keys.read, [
      purpose,
    ]);
    return result.rows.map((row) => ({ id: row.id, secret: row.secret, createdAt: parseKeyTime(row.created_at) }));
  }

  /**
   * One transaction under a transaction-scoped advisory lock of the schema's keys: concurrent addKeys (of every
   * node) queue on it, and each checks for a newer key only once it holds the lock, in a statement that starts
   * after the previous holder committed (READ COMMITTED takes a snapshot per statement).
   */
  async addKey(purpose: string, key: StoredKey, unlessNewerThan: number): Promise<boolean> {
    validateKeyPurpose(purpose);
    validateStoredKey(key);
    validateKeyTime('unlessNewerThan', unlessNewerThan);
    return this.#withClient((client, lease) =>
      lockedTransaction(client, this.names, LOCK_KEYS, KEYS_LOCK_TIMEOUT, lease, async () => {
        const newer = await client.query(this.#sql.keys.newer, [purpose, unlessNewerThan]);
        const add = newer.rows.length === 0;
        if (add) await client.query(this.#sql.keys.insert, [purpose, key.id, key.secret, key.createdAt]);
        return add;
      }),
    );
  }

  async deleteKeys(purpose: string, createdBefore: number): Promise<number> {
    validateKeyPurpose(purpose);
    validateKeyTime('createdBefore', createdBefore);
    const result = await this.#query(this.#sql.keys.delete, [purpose, createdBefore]);
    return result.rowCount ?? 0;
  }

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

  /** Stops every subscription and ends the pool if the store created it. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const listeners = [...this.#listeners];
      this.#listeners.clear();
      await Promise.all(listeners.map((listener) => listener.stop()));
      if (this.#ownsPool) await this.#pool.end().catch((error: unknown) => this.#onError(asError(error)));
      this.#pool.off('error', this.#onPoolError);
    })();
    return this.#closing;
  }

  /** Work on a pooled connection, given back afterwards unless it broke (see `withConnection`). */
  #withClient<T>(work: (client: pg.PoolClient, lease: Lease) => Promise<T>): Promise<T> {
    return withConnection(this.#lender, work);
  }

  /** One query on a pooled connection (unlike `pool.query`, a server-side error keeps the connection). */
  #query<Row extends pg.QueryResultRow>(
    statement: Statement | string,
    values: unknown[],
  ): Promise<pg.QueryResult<Row>> {
    return this.#withClient((client) =>
      client.query<Row>(typeof statement === 'string' ? { text: statement, values } : { ...statement, values }),
    );
  }

  #lastForgeryReport = 0;

  #reportForgery(): void {
    const now = Date.now();
    if (now - this.#lastForgeryReport < 10_000) return;
    this.#lastForgeryReport = now;
    this.#onError(
      new Error(
        `A notification on channel ${this.names.channel} carried a row that does not authenticate (another role NOTIFYing the channel, or a push key that changed): ignored, the row is read from the table instead.`,
      ),
    );
  }

  /** The installation's push key: the first node to need one adds it (addKey serialises the race). */
  async #loadPushKey(): Promise<PushKey> {
    let keys = await this.readKeys(PUSH_KEY_PURPOSE);
    if (keys.length === 0) {
      await this.addKey(PUSH_KEY_PURPOSE, { id: randomUUID(), secret: randomBytes(32), createdAt: Date.now() }, -1);
      keys = await this.readKeys(PUSH_KEY_PURPOSE);
    }
    const key = keys.at(-1);
    if (!key) throw new Error(`No push key in ${this.names.keysTable}.`);
    return new PushKey(key);
  }

  #notInstalled(stream: number): Error {
    return new Error(`Stream ${stream} is not installed in schema ${this.names.quoted}: call install() first.`);
  }
}

/** A store from a `postgres://` URL, for `backplaneFromUrl` (hubwire); other options take their defaults. */
export function createStore(url: string, options: StoreUrlOptions = {}): PostgresStore {
  return new PostgresStore({ connectionString: url, schema: options.schema, tableCount: options.tableCount });
}

/** How long appends skip NOTIFY after PostgreSQL's notification queue was found full. */
const NOTIFY_QUIET_MS = 10_000;

function isNotifyQueueFull(error: pg.DatabaseError): boolean {
  return error.code === '54000' && /notif/i.test(error.message);
}
