// The tables the MySQL/MariaDB store owns: names and quoting, the lock names, the numbered migrations, and
// install() itself.

import { createHash, randomUUID } from 'node:crypto';
import { type Lease, MAX_TABLE_COUNT, validateSchemaName, validateTableCount, withLock } from 'hubwire/backplane';
import type mysql from 'mysql2/promise';

export { MAX_TABLE_COUNT, validateTableCount };

/** The schema version this code writes and reads. Each version above 1 has a step in `migrations`. */
export const SCHEMA_VERSION = 3;
// 41 characters at most so that the longest table name, `<prefix>_messages_63`, stays within MySQL's 64-character
// identifier limit (a longer name is an error, not a truncation, but better refused before anything is created).
const MAX_PREFIX = 41;
/** MySQL 5.7+ refuses user-level lock names longer than this. */
const MAX_LOCK_NAME = 64;

/** Throws a TypeError unless `prefix` is a safe, unambiguous table-name prefix. */
export function validatePrefix(prefix: unknown): string {
  return validateSchemaName(prefix, 'MySQL table prefix', MAX_PREFIX);
}

/** Quotes an identifier. Names are validated first; doubling backticks is defence in depth, not the safety net. */
export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/**
 * Every SQL name the store uses, built once from the validated prefix. Nothing else is ever interpolated into SQL;
 * values always go as parameters. Tables live in the connection's database and are never qualified with it, so a
 * pool or URL decides the database.
 */
export class TableNames {
  readonly prefix: string;
  /** The quoted version table, e.g. `` `hubwire_schema_version` ``. */
  readonly versionTable: string;
  readonly streamsTable: string;
  /** The keys of key rings (see `addKey`), e.g. `` `hubwire_keys` ``. */
  readonly keysTable: string;
  /** The node registry (see `heartbeatNode`), e.g. `` `hubwire_nodes` ``. */
  readonly nodesTable: string;

  constructor(prefix: string) {
    this.prefix = validatePrefix(prefix);
    this.versionTable = quoteIdentifier(`${prefix}_schema_version`);
    this.streamsTable = quoteIdentifier(`${prefix}_streams`);
    this.keysTable = quoteIdentifier(`${prefix}_keys`);
    this.nodesTable = quoteIdentifier(`${prefix}_nodes`);
  }

  /** The unquoted name of a stream's messages table, e.g. `hubwire_messages_0`. */
  messagesName(stream: number): string {
    return `${this.prefix}_messages_${stream}`;
  }

  /** The quoted messages table of a stream, e.g. `` `hubwire_messages_0` ``. */
  messagesTable(stream: number): string {
    return quoteIdentifier(this.messagesName(stream));
  }

  /**
   * The name of a user-level lock (`GET_LOCK`) of these tables, e.g. `test.hubwire_trim_0`. Such locks are
   * server-wide, not per database, so the name includes the database: two databases using the same prefix on one
   * server never share a lock. Names past MySQL's 64-character limit hash the database and prefix instead.
   */
  lockName(database: string, purpose: 'install' | 'keys' | `trim_${number}`): string {
    const plain = `${database}.${this.prefix}_${purpose}`;
    if (plain.length <= MAX_LOCK_NAME) return plain;
    const digest = createHash('sha256').update(`${database}.${this.prefix}`).digest('hex').slice(0, 32);
    return `hubwire_${digest}_${purpose}`;
  }

  /** The lock held while trimming a stream: a node that cannot take it at once skips the stream. */
  trimLock(database: string, stream: number): string {
    return this.lockName(database, `trim_${stream}`);
  }
}

/** How long install() waits for another node's install to finish before giving up, in seconds. */
const INSTALL_LOCK_TIMEOUT_S = 60;

/**
 * The numbered migrations. Step N brings a schema at version N-1 to version N; step 1 creates the base tables
 * from nothing. Stream tables are created per stream by `streamTableSql`, so a step that changes them must loop
 * over `streams` (the streams that exist when it runs). Steps only ever get appended; a shipped step never changes.
 * MySQL commits DDL implicitly, so every statement of a step must be idempotent: an install that died half-way
 * is finished by the next one.
 */
const migrations: ReadonlyArray<(names: TableNames, streams: readonly number[]) => string[]> = [
  // Step 1: the version record and the id rows. The epoch is inserted by install() with the version.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.versionTable} (
       id TINYINT NOT NULL PRIMARY KEY CHECK (id = 1),
       version INT NOT NULL,
       epoch VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
       installed_at DATETIME(3) NOT NULL
     ) ENGINE = InnoDB`,
    // One row per stream, updated by every append under its row lock (held to commit): the id counter.
    `CREATE TABLE IF NOT EXISTS ${names.streamsTable} (
       stream INT NOT NULL PRIMARY KEY,
       last_id BIGINT NOT NULL
     ) ENGINE = InnoDB`,
  ],
  // Step 2: the keys of key rings (the classic protocol's token keys), shared by every node. VARBINARY compares
  // bytes exactly (no case-insensitive or PAD SPACE collation); created_at is ms since 1970 as given to addKey.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.keysTable} (
       purpose VARBINARY(100) NOT NULL,
       id VARBINARY(64) NOT NULL,
       secret VARBINARY(1024) NOT NULL,
       created_at BIGINT NOT NULL,
       PRIMARY KEY (purpose, id)
     ) ENGINE = InnoDB`,
  ],
  // Step 3: the node registry, one row per node of the cluster. Ids are printable ASCII compared byte for byte
  // (ascii_bin: no case folding, no PAD SPACE); info is up to 4096 bytes of UTF-8 (utf8mb4, which keeps every
  // character; utf8mb3 would refuse 4-byte ones). Times are ms since 1970 from the database's clock.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.nodesTable} (
       id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
       info TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
       started_at BIGINT NOT NULL,
       heartbeat_at BIGINT NOT NULL
     ) ENGINE = InnoDB`,
  ],
];

if (migrations.length !== SCHEMA_VERSION) throw new Error('schema.ts: one migration step per schema version');

/** The name of the idempotence key of every messages table, as reported in ER_DUP_ENTRY messages. */
export const PUBLISHER_KEY = 'publisher_batch_seq';

/** The DDL for one stream's messages table (idempotent). */
function streamTableSql(names: TableNames, stream: number): string {
  // (publisher, batch_seq) is the idempotence key: a retried append fails on it and is reported as already stored.
  // VARBINARY compares bytes exactly: a case-insensitive or PAD SPACE collation could make two publishers equal
  // and drop one's batch as a "duplicate". created_at is UTC (UTC_TIMESTAMP), so no session time zone and no
  // daylight-saving change moves it.
  return `CREATE TABLE IF NOT EXISTS ${names.messagesTable(stream)} (
    id BIGINT NOT NULL PRIMARY KEY,
    publisher VARBINARY(255) NOT NULL,
    batch_seq BIGINT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    payload LONGBLOB NOT NULL,
    UNIQUE KEY ${PUBLISHER_KEY} (publisher, batch_seq)
  ) ENGINE = InnoDB`;
}

/** What install() found and did. */
export interface InstallResult {
  readonly epoch: string;
  /** The version found before installing (0 on a fresh database). */
  readonly previousVersion: number;
  /** Streams whose tables or id rows were created by this call. */
  readonly createdStreams: readonly number[];
  /** The connection's database (from `DATABASE()`), which lock names include. */
  readonly database: string;
}

type Queryable = Pick<mysql.Connection, 'query' | 'execute'>;

/** The connection's current database; an error when none is selected (no database in the URL). */
export async function currentDatabase(connection: Queryable): Promise<string> {
  const [rows] = await connection.execute<mysql.RowDataPacket[]>('SELECT DATABASE() AS db');
  const database = rows[0]?.db;
  if (typeof database !== 'string' || database === '') {
    throw new Error('No database selected: name one in the connection settings, e.g. mysql://user@host:3306/app.');
  }
  return database;
}

/** How {@link withUserLock} waits for a lock another session holds. */
export type LockWait =
  | 'none'
  | {
      /** How long to wait, in seconds, before failing. */
      readonly seconds: number;
      /** The lock's name in the error, e.g. `keys`. */
      readonly name: string;
      /** What the holder is doing, for the error, e.g. `add a key`. */
      readonly waitingFor: string;
    };

/**
 * Runs `work` holding the user-level lock `lock` (`GET_LOCK`), then releases it (`RELEASE_LOCK`). With `wait:
 * 'none'` a lock held by another session is not waited for: `work` does not run and the call resolves undefined.
 * Otherwise it waits up to `wait.seconds` and throws when the lock is not taken. A lock left on a pooled connection
 * would stop every node: if the release fails, `lease` is discarded (ending the session frees the lock), or,
 * without a lease, the release's error rejects (the caller must discard the connection).
 */
export function withUserLock<T>(
  connection: Queryable,
  lock: string,
  options: { wait: LockWait; lease?: Lease },
  work: () => Promise<T>,
): Promise<T | undefined> {
  const { wait, lease } = options;
  return withLock(
    {
      take: async () => {
        const seconds = wait === 'none' ? 0 : wait.seconds;
        const [locked] = await connection.execute<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS held', [
          lock,
          seconds,
        ]);
        // GET_LOCK: 1 taken, 0 timed out, NULL an error (e.g. killed). Read as a number whatever the driver settings.
        const held = locked[0]?.held == null ? null : Number(locked[0].held);
        if (held === 1) return true;
        if (wait === 'none') return false;
        throw new Error(
          held === 0
            ? `Timed out after ${seconds} s waiting for another node to ${wait.waitingFor} (lock '${lock}').`
            : `Could not take the ${wait.name} lock '${lock}'.`,
        );
      },
      release: () => connection.execute('SELECT RELEASE_LOCK(?)', [lock]),
      ...(lease ? { onReleaseFailed: () => lease.discard() } : {}),
    },
    work,
  );
}

/**
 * Creates or migrates the tables on `connection` (a dedicated connection, not in a transaction) under a user-level
 * lock (`GET_LOCK`): nodes starting together queue on it, the first one installs, the others find everything in
 * place. MySQL commits each DDL statement on its own, so install cannot be one transaction; instead each step is
 * idempotent and a half-finished install is completed by the next. When everything is in place it only reads, so it
 * needs no CREATE privilege (a pre-installed schema). The lock is released before returning; if the release itself
 * fails, the caller must discard the connection (the server drops the lock with the session).
 */
export async function installOn(connection: Queryable, names: TableNames, tableCount: number): Promise<InstallResult> {
  validateTableCount(tableCount);
  const database = await currentDatabase(connection);
  const lock = names.lockName(database, 'install');
  const wait = { seconds: INSTALL_LOCK_TIMEOUT_S, name: 'install', waitingFor: `finish installing ${names.prefix}_*` };
  // A failed release throws out of here: the caller discards the connection, and the server drops the lock.
  const result = await withUserLock(connection, lock, { wait }, async (): Promise<InstallResult> => {
    const found = await readState(connection, names);
    let version = found.version;
    let epoch = found.epoch;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Tables ${names.prefix}_* are at schema version ${version}, newer than this @hubwire/mysql supports (${SCHEMA_VERSION}); upgrade the package.`,
      );
    }
    while (version < SCHEMA_VERSION) {
      const step = migrations[version]!;
      for (const statement of step(names, found.streams)) await connection.query(statement);
      version += 1;
      if (version === 1) {
        // Under the lock nobody else inserts; ON DUPLICATE KEY keeps an epoch that somehow exists anyway.
        await connection.execute(
          `INSERT INTO ${names.versionTable} (id, version, epoch, installed_at) VALUES (1, ?, ?, UTC_TIMESTAMP(3))
             ON DUPLICATE KEY UPDATE id = id`,
          [1, randomUUID()],
        );
        const [rows] = await connection.execute<mysql.RowDataPacket[]>(
          `SELECT epoch FROM ${names.versionTable} WHERE id = 1`,
        );
        epoch = rows[0]?.epoch as string;
      } else {
        await connection.execute(`UPDATE ${names.versionTable} SET version = ? WHERE id = 1`, [version]);
      }
    }

    // Streams added since the last install (tableCount grew), or left half-made. Fewer streams than installed is
    // fine: the extra tables are left alone, so a rolling change of tableCount never drops data.
    const createdStreams: number[] = [];
    for (let stream = 0; stream < tableCount; stream++) {
      const hasTable = found.tables.has(names.messagesName(stream));
      const hasRow = found.rows.has(stream);
      if (hasTable && hasRow) continue;
      if (!hasTable) await connection.query(streamTableSql(names, stream));
      // Start from the table's highest id, not 0, in case the id row was deleted by hand: ids are never reused.
      // An id row whose table was dropped by hand is kept, so its ids go on from where they were.
      if (!hasRow) {
        await connection.execute(
          `INSERT INTO ${names.streamsTable} (stream, last_id)
             SELECT ?, COALESCE(MAX(id), 0) FROM ${names.messagesTable(stream)}
             ON DUPLICATE KEY UPDATE stream = stream`,
          [stream],
        );
      }
      createdStreams.push(stream);
    }
    if (createdStreams.length > 0 || version !== found.version) await checkEngines(connection, names);
    return { epoch: epoch!, previousVersion: found.version, createdStreams, database };
  });
  return result!;
}

interface FoundState {
  version: number;
  epoch: string | undefined;
  /** Streams with an id row. */
  rows: Set<number>;
  /** Our tables that exist (as we spell their names). */
  tables: Set<string>;
  /** Streams with both their id row and their messages table, for migration steps. */
  streams: number[];
}

/**
 * Our tables that exist, by their names as we spell them, with their storage engine. information_schema shows only
 * tables we have some right on. With lower_case_table_names set (Windows, macOS, some hosted servers) the server
 * folds names to lower case, so names then match whatever their case.
 */
async function listTables(connection: Queryable, names: TableNames): Promise<Map<string, string>> {
  const [rows] = await connection.execute<mysql.RowDataPacket[]>(
    `SELECT table_name AS name, engine, @@lower_case_table_names AS folded FROM information_schema.tables
      WHERE table_schema = DATABASE() AND LOWER(LEFT(table_name, ?)) = LOWER(?)`,
    [names.prefix.length + 1, `${names.prefix}_`],
  );
  const ours = [
    `${names.prefix}_schema_version`,
    `${names.prefix}_streams`,
    `${names.prefix}_keys`,
    `${names.prefix}_nodes`,
  ];
  for (let stream = 0; stream < MAX_TABLE_COUNT; stream++) ours.push(names.messagesName(stream));
  const tables = new Map<string, string>();
  for (const row of rows) {
    const name = String(row.name);
    const folded = Number(row.folded) !== 0;
    // information_schema compares case-insensitively: keep only exact matches unless the server folds names.
    const mine = ours.find((own) => own === name || (folded && own.toLowerCase() === name.toLowerCase()));
    if (mine !== undefined) tables.set(mine, String(row.engine));
  }
  return tables;
}

async function readState(connection: Queryable, names: TableNames): Promise<FoundState> {
  // Checked first instead of catching "table doesn't exist", so that an installed schema is only ever read.
  const tables = await listTables(connection, names);
  const empty: FoundState = {
    version: 0,
    epoch: undefined,
    rows: new Set(),
    tables: new Set(tables.keys()),
    streams: [],
  };
  if (!tables.has(`${names.prefix}_schema_version`)) return empty;
  const [version] = await connection.execute<mysql.RowDataPacket[]>(
    `SELECT version, epoch FROM ${names.versionTable} WHERE id = 1`,
  );
  if (version.length === 0) return empty;
  const [streams] = await connection.execute<mysql.RowDataPacket[]>(
    `SELECT stream FROM ${names.streamsTable} ORDER BY stream`,
  );
  const rows = streams.map((row) => Number(row.stream));
  return {
    version: Number(version[0]!.version),
    epoch: String(version[0]!.epoch),
    rows: new Set(rows),
    tables: empty.tables,
    streams: rows.filter((stream) => empty.tables.has(names.messagesName(stream))),
  };
}

/**
 * Without NO_ENGINE_SUBSTITUTION in sql_mode, a server lacking InnoDB silently creates MyISAM tables, which have
 * neither transactions nor row locks: ids would no longer be gap-free and commit-ordered. Refuse such tables.
 */
async function checkEngines(connection: Queryable, names: TableNames): Promise<void> {
  for (const [name, engine] of await listTables(connection, names)) {
    if (engine.toLowerCase() !== 'innodb') {
      throw new Error(
        `Table ${name} uses the ${engine} engine; @hubwire/mysql needs InnoDB (transactions, row locks).`,
      );
    }
  }
}
