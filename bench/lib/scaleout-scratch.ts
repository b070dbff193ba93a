// The scaleout bench's scratch databases: a fresh PostgreSQL schema / MariaDB table prefix / SQLite file per pass and
// database, what the server nodes are told to use, and their removal (at the end, on a failure, and those of runs
// that died).

import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SetupError } from './common.js';
import { dropPrefixes, mysqlVersion, sweepStalePrefixes } from './mysql.js';
import {
  createSocketIoTable,
  dropPgbenchDatabase,
  dropSchemas,
  preparePostgres,
  SCRATCH_PREFIXES,
  scratchName,
} from './postgres.js';
import { type DatabaseName, SYSTEM_CODE, type SystemName } from './scaleout.js';
import { CONFIG, log, sleep } from './scaleout-run.js';

export const scratch = {
  socketIoSchema: scratchName('sio_bench'),
  /** PostgreSQL schemas to drop at the end (those not dropped already). */
  pgSchemas: [] as string[],
  /** MariaDB table prefixes to drop at the end. */
  mysqlPrefixes: [] as string[],
  sqliteDir: undefined as string | undefined,
  /** Every scratch name used, for the JSON. */
  used: [] as string[],
};

const SQLITE_DIR_PREFIX = 'hw-bench-sqlite-';

/** A fresh schema / table prefix / file for one pass of one database; the URL the Hubwire nodes take. */
export function freshBackplane(database: DatabaseName, pass: number): { url: string; schema: string } {
  const schema = scratchName('hw_bench');
  scratch.used.push(`${database}:${schema}`);
  if (database === 'postgres') {
    scratch.pgSchemas.push(schema);
    return { url: CONFIG.dbUrl, schema };
  }
  if (database === 'mysql') {
    scratch.mysqlPrefixes.push(schema);
    return { url: CONFIG.mysqlUrl, schema };
  }
  scratch.sqliteDir ??= mkdtempSync(join(tmpdir(), SQLITE_DIR_PREFIX));
  return { url: `sqlite:${join(scratch.sqliteDir, `pass-${pass}-${schema}.db`)}`, schema };
}

export async function dropBackplane(database: DatabaseName, schema: string): Promise<void> {
  if (database === 'postgres') {
    await dropSchemas(CONFIG.dbUrl, [schema]);
    scratch.pgSchemas = scratch.pgSchemas.filter((s) => s !== schema);
  } else if (database === 'mysql') {
    await dropPrefixes(CONFIG.mysqlUrl, [schema]);
    scratch.mysqlPrefixes = scratch.mysqlPrefixes.filter((s) => s !== schema);
  } else if (scratch.sqliteDir) {
    for (const file of readdirSync(scratch.sqliteDir)) {
      if (file.includes(schema)) rmSync(join(scratch.sqliteDir, file), { force: true });
    }
  }
}

/** SQLite directories of runs that died more than an hour ago. */
function sweepStaleSqliteDirs(): string[] {
  const swept: string[] = [];
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(SQLITE_DIR_PREFIX)) continue;
    const path = join(tmpdir(), entry);
    try {
      if (Date.now() - statSync(path).mtimeMs > 3_600_000) {
        rmSync(path, { recursive: true, force: true });
        swept.push(path);
      }
    } catch {
      // gone, or not ours to remove
    }
  }
  return swept;
}

export async function cleanUpDatabases(): Promise<void> {
  const work = (async () => {
    const problems: string[] = [];
    if (CONFIG.databases.includes('postgres')) {
      await dropSchemas(CONFIG.dbUrl, [...scratch.pgSchemas, scratch.socketIoSchema]).catch((e: Error) =>
        problems.push(`PostgreSQL schemas ${scratch.pgSchemas.join(', ')}: ${e.message}`),
      );
      if (CONFIG.pgbenchSeconds > 0) await dropPgbenchDatabase(CONFIG.dbUrl).catch(() => undefined);
    }
    if (scratch.mysqlPrefixes.length) {
      await dropPrefixes(CONFIG.mysqlUrl, scratch.mysqlPrefixes).catch((e: Error) =>
        problems.push(`MariaDB tables ${scratch.mysqlPrefixes.join(', ')}_*: ${e.message}`),
      );
    }
    if (scratch.sqliteDir) rmSync(scratch.sqliteDir, { recursive: true, force: true });
    if (problems.length) throw new Error(problems.join('; '));
  })();
  const timeout = sleep(10_000).then(() => {
    throw new Error('timed out');
  });
  try {
    await Promise.race([work, timeout]);
  } catch (error) {
    log(`Could not drop every scratch schema / table / file: ${(error as Error).message}`);
  }
}

/**
 * The environment of a system's server nodes: where its backplane (Hubwire: each Hubwire system its own) or adapter
 * table (Socket.IO) is, and whether Hubwire's metrics are on.
 */
export function envFor(
  system: SystemName,
  backplane: { url: string; schema: string } | undefined,
): Record<string, string> {
  if (SYSTEM_CODE[system] === 'hubwire') {
    if (!backplane) throw new Error(`${system} needs a backplane`);
    return {
      BENCH_BACKPLANE_URL: backplane.url,
      BENCH_SCHEMA: backplane.schema,
      BENCH_NODE_METRICS: system === 'hubwire-nometrics' ? 'off' : 'on',
    };
  }
  return {
    BENCH_DB_URL: CONFIG.dbUrl,
    BENCH_SIO_TABLE: `"${scratch.socketIoSchema}".attachments`,
    BENCH_SIO_CHANNEL: scratch.socketIoSchema,
  };
}

/** The database servers' versions, for the results. */
export const versions: { postgres?: string; mariadb?: string } = {};

export async function prepareDatabases(): Promise<void> {
  if (CONFIG.databases.includes('postgres')) {
    versions.postgres = await preparePostgres(CONFIG.dbUrl);
    if (CONFIG.systems.includes('socketio')) await createSocketIoTable(CONFIG.dbUrl, scratch.socketIoSchema);
    log(
      `PostgreSQL scratch schemas: ${scratch.socketIoSchema}, hw_bench_… (one per pass) ` +
        `(${SCRATCH_PREFIXES.join('_*, ')}_* of dead runs are swept after an hour)`,
    );
  }
  if (CONFIG.databases.includes('mysql')) {
    try {
      versions.mariadb = await mysqlVersion(CONFIG.mysqlUrl);
    } catch (error) {
      throw new SetupError(`MariaDB is not reachable at ${CONFIG.mysqlUrl}: ${(error as Error).message}`);
    }
    const swept = await sweepStalePrefixes(CONFIG.mysqlUrl);
    if (swept.length) log(`Dropped stale MariaDB tables of earlier runs: ${swept.map((p) => `${p}_*`).join(', ')}`);
  }
  if (CONFIG.databases.includes('sqlite')) {
    const swept = sweepStaleSqliteDirs();
    if (swept.length) log(`Removed stale SQLite directories of earlier runs: ${swept.join(', ')}`);
  }
}
