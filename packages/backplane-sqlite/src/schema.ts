// The tables the SQLite store owns: option checks, table names, the numbered migrations and install() itself.

import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';

import { MAX_TABLE_COUNT, validateSchemaName, validateTableCount } from 'hubwire/backplane';

export { MAX_TABLE_COUNT, validateTableCount };

/** The schema version this code writes and reads. Each version above 1 has a step in `migrations`. */
export const SCHEMA_VERSION = 3;
// The same rule as PostgreSQL schema names, so one `--schema` value is valid for every backplane. SQLite has no
// schemas inside a file: the prefix starts every table name instead (`hubwire_streams`).
const MAX_PREFIX = 51;

/** Throws a TypeError unless `prefix` is a safe table prefix. */
export function validatePrefix(prefix: unknown): string {
  return validateSchemaName(prefix, 'SQLite table prefix', MAX_PREFIX);
}

/**
 * Every table name the store uses, built once from the validated prefix. Nothing else is ever interpolated into
 * SQL; values always go as parameters. SQLite compares names case-insensitively, so `Hub` and `hub` are the same
 * tables.
 */
export class TableNames {
  readonly prefix: string;
  /** Quoted, e.g. `"hubwire_schema_version"`. */
  readonly versionTable: string;
  readonly streamsTable: string;
  /** The keys of key rings (see `addKey`), e.g. `"hubwire_keys"`. */
  readonly keysTable: string;
  /** The node registry (see `heartbeatNode`), e.g. `"hubwire_nodes"`. */
  readonly nodesTable: string;

  constructor(prefix: string) {
    this.prefix = validatePrefix(prefix);
    this.versionTable = `"${prefix}_schema_version"`;
    this.streamsTable = `"${prefix}_streams"`;
    this.keysTable = `"${prefix}_keys"`;
    this.nodesTable = `"${prefix}_nodes"`;
  }

  /** The unquoted name of a stream's messages table, as sqlite_schema lists it. */
  messagesName(stream: number): string {
    return `${this.prefix}_messages_${stream}`;
  }

  /** The quoted messages table of a stream, e.g. `"hubwire_messages_0"`. */
  messagesTable(stream: number): string {
    return `"${this.messagesName(stream)}"`;
  }
}

/**
 * The numbered migrations. Step N brings tables at version N-1 to version N; step 1 creates the base tables from
 * nothing. Stream tables are created per stream by `streamTableSql`, so a step that changes them must loop over
 * `streams` (the streams that exist when it runs). Steps only ever get appended; a shipped step never changes.
 */
const migrations: ReadonlyArray<(names: TableNames, streams: readonly number[]) => string[]> = [
  // Step 1: the version record and the id rows. The epoch is inserted by installOn() with the version.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.versionTable} (
       id INTEGER PRIMARY KEY CHECK (id = 1),
       version INTEGER NOT NULL,
       epoch TEXT NOT NULL,
       installed_at INTEGER NOT NULL
     )`,
    // One row per stream: its last id, read and incremented inside each append's write transaction.
    `CREATE TABLE IF NOT EXISTS ${names.streamsTable} (
       stream INTEGER PRIMARY KEY,
       last_id INTEGER NOT NULL
     )`,
  ],
  // Step 2: the keys of key rings (the classic protocol's token keys), shared by every process. created_at is
  // integer ms since 1970 as given to addKey. Text compares byte by byte (BINARY), as the other databases do.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.keysTable} (
       purpose TEXT NOT NULL,
       id TEXT NOT NULL,
       secret BLOB NOT NULL,
       created_at INTEGER NOT NULL,
       PRIMARY KEY (purpose, id)
     ) WITHOUT ROWID`,
  ],
  // Step 3: the node registry, one row per live node. Times are integer ms since 1970 from the host's clock
  // (Date.now() of the process that writes; every process sharing the file runs on this host). WITHOUT ROWID, as
  // the keys: the id is the key, and it makes the PRIMARY KEY NOT NULL (a rowid table's TEXT key would allow NULL).
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.nodesTable} (
       id TEXT PRIMARY KEY,
       info TEXT NOT NULL,
       started_at INTEGER NOT NULL,
       heartbeat_at INTEGER NOT NULL
     ) WITHOUT ROWID`,
  ],
];

if (migrations.length !== SCHEMA_VERSION) throw new Error('schema.ts: one migration step per schema version');

/** The DDL for one stream's messages table (idempotent). */
function streamTableSql(names: TableNames, stream: number): string {
  // `id INTEGER PRIMARY KEY` is the rowid itself: reads by id range walk the table's own b-tree. Ids are given
  // by append(), never by SQLite. (publisher, batch_seq) is the idempotence key; its index makes the duplicate
  // check of append() one lookup. created_at is integer milliseconds since 1970 (Date.now()), for trim().
  return `CREATE TABLE IF NOT EXISTS ${names.messagesTable(stream)} (
    id INTEGER PRIMARY KEY,
    publisher TEXT NOT NULL,
    batch_seq INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    UNIQUE (publisher, batch_seq)
  )`;
}

/** What install() found and did. */
export interface InstallResult {
  readonly epoch: string;
  /** The version found before installing (0 in a fresh file). */
  readonly previousVersion: number;
  /** Streams whose tables were created by this call. */
  readonly createdStreams: readonly number[];
}

/**
 * Creates or migrates the tables in ONE `BEGIN IMMEDIATE` transaction: it takes the file's write lock first, so
 * installers in several processes run one after the other and the later ones find everything in place; a failed
 * install leaves nothing half made. Synchronous; throws SQLITE_BUSY when the lock stays taken longer than the
 * busy timeout (the caller retries). When everything is in place it only reads (the write lock is still taken).
 */
export function installOn(db: Database.Database, names: TableNames, tableCount: number): InstallResult {
  validateTableCount(tableCount);
  const run = db.transaction((): InstallResult => {
    const found = readState(db, names);
    let version = found.version;
    let epoch = found.epoch;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `The tables with prefix '${names.prefix}' are at version ${version}, newer than this @hubwire/sqlite supports (${SCHEMA_VERSION}); upgrade the package.`,
      );
    }
    while (version < SCHEMA_VERSION) {
      const step = migrations[version]!;
      for (const statement of step(names, found.streams)) db.exec(statement);
      version += 1;
      if (version === 1) {
        epoch = randomUUID();
        db.prepare(`INSERT INTO ${names.versionTable} (id, version, epoch, installed_at) VALUES (1, ?, ?, ?)`).run(
          1,
          epoch,
          Date.now(),
        );
      } else {
        db.prepare(`UPDATE ${names.versionTable} SET version = ? WHERE id = 1`).run(version);
      }
    }

    // Streams added since the last install (tableCount grew). Fewer streams than installed is fine: the extra
    // tables are left alone, so a rolling change of tableCount never drops data.
    const existing = new Set(found.streams);
    const createdStreams: number[] = [];
    for (let stream = 0; stream < tableCount; stream++) {
      if (existing.has(stream)) continue;
      db.exec(streamTableSql(names, stream));
      // Start from the table's highest id, not 0, in case the id row was deleted by hand: ids are never reused.
      db.prepare(
        `INSERT OR IGNORE INTO ${names.streamsTable} (stream, last_id)
         SELECT ?, coalesce(max(id), 0) FROM ${names.messagesTable(stream)}`,
      ).run(stream);
      createdStreams.push(stream);
    }
    return { epoch: epoch!, previousVersion: found.version, createdStreams };
  });
  return run.immediate();
}

interface FoundState {
  version: number;
  epoch: string | undefined;
  /** Streams with both their id row and their messages table. */
  streams: number[];
}

function tableExists(db: Database.Database, name: string): boolean {
  return db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ? COLLATE NOCASE`).get(name) != null;
}

function readState(db: Database.Database, names: TableNames): FoundState {
  if (!tableExists(db, `${names.prefix}_schema_version`)) return { version: 0, epoch: undefined, streams: [] };
  const row = db.prepare(`SELECT version, epoch FROM ${names.versionTable} WHERE id = 1`).get() as
    | { version: number; epoch: string }
    | undefined;
  if (!row) return { version: 0, epoch: undefined, streams: [] };
  // A stream counts as installed only if its table exists too, so a stream row whose table was dropped by hand
  // gets its table back (CREATE TABLE IF NOT EXISTS, and the row is kept).
  const rows = db.prepare(`SELECT stream FROM ${names.streamsTable} ORDER BY stream`).pluck().all() as number[];
  const streams = rows.filter((stream) => tableExists(db, names.messagesName(stream)));
  return { version: row.version, epoch: row.epoch, streams };
}

/** True for the errors that mean "another connection holds the lock": retry later. */
export function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** install() and opening retry SQLITE_BUSY this many times, sleeping in between, before giving up. */
const BUSY_ATTEMPTS = 20;

/**
 * Runs a synchronous call, retrying asynchronously while it fails with SQLITE_BUSY: each failure has already
 * waited busyTimeout, then the event loop gets a short, jittered pause before the next attempt.
 */
export async function retryBusy<T>(call: () => T): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return call();
    } catch (error) {
      if (!isBusy(error) || attempt >= BUSY_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
  }
}
