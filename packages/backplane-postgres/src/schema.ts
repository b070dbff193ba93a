// The tables the PostgreSQL store owns: names and quoting, the numbered migrations, and install() itself.

import { createHash, randomUUID } from 'node:crypto';
import {
  CONNECT_TIMEOUT_MS,
  DEFAULT_SCHEMA,
  inTransaction,
  type Lease,
  MAX_TABLE_COUNT,
  type StoreUrlOptions,
  validateSchemaName as validateName,
  validateTableCount,
} from 'hubwire/backplane';
import pg from 'pg';

export { MAX_TABLE_COUNT, validateTableCount };

/** The schema version this code writes and reads. Each version above 1 has a step in `migrations`. */
export const SCHEMA_VERSION = 3;
// 51 characters at most so that `hubwire_<schema>` (the NOTIFY channel) stays within PostgreSQL's 63-byte
// identifier limit: a longer name would be silently truncated and two schemas could share a channel.
const MAX_SCHEMA_NAME = 51;

/** Throws a TypeError unless `schema` is a safe, unambiguous schema name. */
export function validateSchemaName(schema: unknown): string {
  return validateName(schema, 'PostgreSQL schema name', MAX_SCHEMA_NAME);
}

/** Quotes an identifier. Names are validated first; doubling quotes is defence in depth, not the safety net. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Every SQL name the store uses, built once from the validated schema name. Nothing else is ever interpolated
 * into SQL; values always go as parameters.
 */
export class SchemaNames {
  readonly schema: string;
  /** The quoted schema, e.g. `"hubwire"`. */
  readonly quoted: string;
  readonly versionTable: string;
  readonly streamsTable: string;
  /** The keys of key rings (see `addKey`), e.g. `"hubwire".keys`. */
  readonly keysTable: string;
  /** The node registry (see `heartbeatNode`), e.g. `"hubwire".nodes`. */
  readonly nodesTable: string;
  /** The NOTIFY channel, unquoted (as `pg_notify` takes it and as notifications report it). */
  readonly channel: string;
  /** The first half of every advisory lock key of this schema (see `lockKey`). */
  readonly lockNamespace: number;

  constructor(schema: string) {
    this.schema = validateSchemaName(schema);
    this.quoted = quoteIdentifier(schema);
    this.versionTable = `${this.quoted}.schema_version`;
    this.streamsTable = `${this.quoted}.streams`;
    this.keysTable = `${this.quoted}.keys`;
    this.nodesTable = `${this.quoted}.nodes`;
    this.channel = `hubwire_${schema}`;
    // A stable 32-bit hash of the name (not hashtext(), which PostgreSQL does not promise to keep stable), so
    // every node and every version of this package derives the same key for the same schema.
    this.lockNamespace = createHash('sha256').update(`hubwire:${schema}`).digest().readInt32BE(0);
  }

  /** The quoted messages table of a stream, e.g. `"hubwire".messages_0`. */
  messagesTable(stream: number): string {
    return `${this.quoted}.messages_${stream}`;
  }
}

/**
 * Advisory lock keys `(namespace, LOCK_INSTALL)`, `(namespace, LOCK_KEYS)` for adding keys and `(namespace, stream)`
 * for trimming (streams are ≥ 0): never equal.
 */
export const LOCK_INSTALL = -1;
export const LOCK_KEYS = -2;

/**
 * Runs `work` in one transaction that first takes the schema's transaction-scoped advisory lock `lockKey`, waiting
 * at most `lockTimeout` (e.g. `'10s'`): callers of every node queue on it, and each statement of `work` starts
 * after the previous holder committed (READ COMMITTED takes a snapshot per statement). The lock goes with the
 * transaction, so it cannot outlive a dropped connection and works through PgBouncer in transaction mode.
 */
export function lockedTransaction<T>(
  client: pg.ClientBase,
  names: SchemaNames,
  lockKey: number,
  lockTimeout: string,
  lease: Lease | undefined,
  work: () => Promise<T>,
): Promise<T> {
  return inTransaction(
    client,
    async () => {
      // Bounded: a node never waits forever behind a stuck holder.
      await client.query(`SET LOCAL lock_timeout = '${lockTimeout}'`);
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [names.lockNamespace, lockKey]);
      return work();
    },
    lease ? { lease } : {},
  );
}

/**
 * The numbered migrations. Step N brings a schema at version N-1 to version N; step 1 creates the base tables
 * from nothing. Stream tables are created per stream by `streamTableSql`, so a step that changes them must loop
 * over `streams` (the streams that exist when it runs). Steps only ever get appended; a shipped step never changes.
 */
const migrations: ReadonlyArray<(names: SchemaNames, streams: readonly number[]) => string[]> = [
  // Step 1: the version record and the id rows. The epoch is inserted by install() with the version.
  // The schema itself is created by installOn, only when missing (CREATE SCHEMA IF NOT EXISTS would still
  // demand CREATE on the database).
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.versionTable} (
       id int PRIMARY KEY CHECK (id = 1),
       version int NOT NULL,
       epoch text NOT NULL,
       installed_at timestamptz NOT NULL DEFAULT now()
     )`,
    // One row per stream, updated by every append. fillfactor leaves room in the page for HOT updates, so the
    // constant churn of these few rows never touches an index and is pruned in place.
    `CREATE TABLE IF NOT EXISTS ${names.streamsTable} (
       stream int PRIMARY KEY,
       last_id bigint NOT NULL
     ) WITH (fillfactor = 50)`,
  ],
  // Step 2: the keys of key rings (the classic protocol's token keys), shared by every node. created_at is the
  // creating node's clock in ms since 1970, as given to addKey. A few rows per purpose: the primary key is the
  // only index.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.keysTable} (
       purpose text NOT NULL,
       id text NOT NULL,
       secret bytea NOT NULL,
       created_at bigint NOT NULL,
       PRIMARY KEY (purpose, id)
     )`,
  ],
  // Step 3: the node registry, one row per node of the cluster (see nodes.ts). started_at and heartbeat_at are
  // the DATABASE's clock in ms since 1970, never a node's, so that nodes with skewed clocks agree on who is alive.
  (names) => [
    `CREATE TABLE IF NOT EXISTS ${names.nodesTable} (
       id text PRIMARY KEY,
       info text NOT NULL,
       started_at bigint NOT NULL,
       heartbeat_at bigint NOT NULL
     )`,
  ],
];

if (migrations.length !== SCHEMA_VERSION) throw new Error('schema.ts: one migration step per schema version');

/** The DDL for one stream's messages table (idempotent). */
function streamTableSql(names: SchemaNames, stream: number): string {
  // (publisher, batch_seq) is the idempotence key: a retried append fails on it and is reported as already
  // stored. The constraint is named so store.ts can tell it apart from any other unique violation.
  return `CREATE TABLE IF NOT EXISTS ${names.messagesTable(stream)} (
    id bigint PRIMARY KEY,
    publisher text NOT NULL,
    batch_seq bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload bytea NOT NULL,
    CONSTRAINT ${publisherConstraint(stream)} UNIQUE (publisher, batch_seq)
  )`;
}

/** The name of the idempotence constraint of a stream's table, as reported in unique-violation errors. */
export function publisherConstraint(stream: number): string {
  return `messages_${stream}_publisher_batch_seq`;
}

/** What install() found and did. */
export interface InstallResult {
  readonly epoch: string;
  /** The version found before installing (0 on a fresh database). */
  readonly previousVersion: number;
  /** Streams whose tables were created by this call. */
  readonly createdStreams: readonly number[];
}

/**
 * Creates or migrates the schema on `client` (a dedicated connection, not in a transaction) in ONE transaction
 * under a transaction-scoped advisory lock: nodes starting together queue on the lock, the first one installs,
 * the others find everything in place. Transaction-scoped so that the lock cannot outlive a dropped connection
 * and works through PgBouncer in transaction mode; one transaction so that a failed install leaves nothing half
 * made. When everything is in place it only reads, so it needs no CREATE privilege (a pre-installed schema).
 */
export async function installOn(client: pg.ClientBase, names: SchemaNames, tableCount: number): Promise<InstallResult> {
  validateTableCount(tableCount);
  return lockedTransaction(client, names, LOCK_INSTALL, '60s', undefined, async () => {
    const found = await readState(client, names);
    let version = found.version;
    let epoch = found.epoch;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `Schema ${names.quoted} is at version ${version}, newer than this @hubwire/postgres supports (${SCHEMA_VERSION}); upgrade the package.`,
      );
    }
    if (version === 0) {
      const schema = await client.query('SELECT to_regnamespace($1) IS NOT NULL AS present', [names.quoted]);
      if (!schema.rows[0]?.present) await client.query(`CREATE SCHEMA ${names.quoted}`);
    }
    while (version < SCHEMA_VERSION) {
      const step = migrations[version]!;
      for (const statement of step(names, found.streams)) await client.query(statement);
      version += 1;
      if (version === 1) {
        epoch = randomUUID();
        await client.query(`INSERT INTO ${names.versionTable} (id, version, epoch) VALUES (1, $1, $2)`, [1, epoch]);
      } else {
        await client.query(`UPDATE ${names.versionTable} SET version = $1 WHERE id = 1`, [version]);
      }
    }

    // Streams added since the last install (tableCount grew). Fewer streams than installed is fine: the extra
    // tables are left alone, so a rolling change of tableCount never drops data.
    const existing = new Set(found.streams);
    const createdStreams: number[] = [];
    for (let stream = 0; stream < tableCount; stream++) {
      if (existing.has(stream)) continue;
      await client.query(streamTableSql(names, stream));
      // Start from the table's highest id, not 0, in case the id row was deleted by hand: ids are never reused.
      await client.query(
        `INSERT INTO ${names.streamsTable} (stream, last_id)
         SELECT $1, coalesce(max(id), 0) FROM ${names.messagesTable(stream)}
         ON CONFLICT DO NOTHING`,
        [stream],
      );
      createdStreams.push(stream);
    }
    return { epoch: epoch!, previousVersion: found.version, createdStreams };
  });
}

interface FoundState {
  version: number;
  epoch: string | undefined;
  /** Streams with both their id row and their messages table. */
  streams: number[];
}

async function readState(client: pg.ClientBase, names: SchemaNames): Promise<FoundState> {
  // to_regclass instead of catching "relation does not exist": an error would abort the transaction.
  const exists = await client.query<{ present: string | null }>('SELECT to_regclass($1)::text AS present', [
    names.versionTable,
  ]);
  if (exists.rows[0]?.present == null) return { version: 0, epoch: undefined, streams: [] };
  const row = await client.query<{ version: number; epoch: string }>(
    `SELECT version, epoch FROM ${names.versionTable} WHERE id = 1`,
  );
  if (row.rows.length === 0) return { version: 0, epoch: undefined, streams: [] };
  // A stream counts as installed only if its table exists too, so a stream row whose table was dropped by hand
  // gets its table back (CREATE TABLE IF NOT EXISTS, and the row is kept).
  const streams = await client.query<{ stream: number }>(
    `SELECT stream FROM ${names.streamsTable}
      WHERE to_regclass(format('%I.%I', $1::text, 'messages_' || stream)) IS NOT NULL
      ORDER BY stream`,
    [names.schema],
  );
  return { version: row.rows[0]!.version, epoch: row.rows[0]!.epoch, streams: streams.rows.map((r) => r.stream) };
}

/**
 * Creates or migrates the schema on its own connection and closes it: for `hubwire install-schema <url>` or a
 * deploy step, so that the application itself can run without CREATE privileges. Resolves with the epoch.
 */
export async function installSchema(
  connectionString: string,
  options: StoreUrlOptions = {},
): Promise<{ epoch: string; version: number }> {
  const names = new SchemaNames(options.schema ?? DEFAULT_SCHEMA);
  const tableCount = validateTableCount(options.tableCount ?? 1);
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'hubwire-install',
  });
  // Errors after connecting surface through the pending query; this listener only keeps the process alive.
  client.on('error', () => {});
  try {
    await client.connect();
    const { epoch } = await installOn(client, names, tableCount);
    return { epoch, version: SCHEMA_VERSION };
  } finally {
    await client.end().catch(() => {});
  }
}
