// The scaleout bench's side of PostgreSQL: scratch schemas (created, swept, dropped), the pgbench ceiling in a
// scratch database, and the CPU the server's processes use. Only databases on this machine are accepted.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { log, SetupError } from './common.js';

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Throws unless the URL names a PostgreSQL on this machine. */
export function assertLocalDatabase(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SetupError(`BENCH_DB_URL is not a URL: '${url}'.`);
  }
  if (!/^postgres(ql)?:$/.test(parsed.protocol))
    throw new SetupError(`BENCH_DB_URL must be postgres://… (got '${url}').`);
  if (!LOCAL_HOSTS.has(parsed.hostname)) {
    throw new SetupError(`BENCH_DB_URL must point at this machine (127.0.0.1), not '${parsed.hostname}'.`);
  }
  return parsed;
}

/** Runs `work` on a fresh connection, closed afterwards. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000, application_name: 'bench' });
  client.on('error', () => {}); // errors after connecting surface through the pending query
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

// --- Scratch schemas -------------------------------------------------------------------------------------------

/** Schema names of this bench: `<prefix>_<creation time, base 36>_<random>`, so that stale ones can be swept. */
export const SCRATCH_PREFIXES = ['hw_bench', 'sio_bench'] as const;

export function scratchName(prefix: (typeof SCRATCH_PREFIXES)[number]): string {
  return `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
}

/** Drops this bench's schemas left by runs that died more than an hour ago (a crash, a SIGKILL). */
export async function sweepStaleSchemas(url: string): Promise<string[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname ~ '^(hw|sio)_bench_[0-9a-z]+_[0-9a-z]+$'`,
    );
    const dropped: string[] = [];
    for (const { nspname } of rows) {
      const created = Number.parseInt(nspname.split('_')[2] as string, 36);
      if (!(Date.now() - created > 3_600_000)) continue;
      await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
      dropped.push(nspname);
    }
    return dropped;
  });
}

/** The attachments table of `@socket.io/postgres-adapter` (its README's DDL), in a schema of its own. */
export async function createSocketIoTable(url: string, schema: string): Promise<string> {
  const table = `"${schema}".attachments`;
  await withClient(url, async (client) => {
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(
      `CREATE TABLE ${table} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`,
    );
  });
  return table;
}

export async function dropSchemas(url: string, schemas: string[]): Promise<void> {
  await withClient(url, async (client) => {
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
}

// --- pgbench ---------------------------------------------------------------------------------------------------

export const PGBENCH_DATABASE = 'hw_pgbench';
const running = new Set<ChildProcess>();

/** Kills a pgbench still running (synchronous: safe in an 'exit' handler). */
export function killPgbench(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export interface PgbenchResult {
  clients: number;
  seconds: number;
  tps: number;
  transactions: number;
  latencyAverageMs: number;
}

function runPgbench(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('pgbench', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`pgbench could not start: ${error.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      if (code === 0) resolve(output);
      else reject(new Error(`pgbench exited with ${signal ?? `code ${code}`}: ${output.trim().slice(-500)}`));
    });
  });
}

/**
 * The database's ceiling for single-row autocommit INSERTs of a `payloadBytes` bytea into a scratch table, at each
 * client count, in a scratch database that is created here and dropped afterwards.
 */
export async function measurePgbench(
  url: string,
  clientCounts: number[],
  seconds: number,
  payloadBytes: number,
): Promise<PgbenchResult[]> {
  const target = assertLocalDatabase(url);
  const createDb = async () =>
    withClient(url, async (client) => {
      await client.query(`DROP DATABASE IF EXISTS ${PGBENCH_DATABASE} WITH (FORCE)`);
      await client.query(`CREATE DATABASE ${PGBENCH_DATABASE}`);
    });
  await createDb();
  const scratchUrl = new URL(url);
  scratchUrl.pathname = `/${PGBENCH_DATABASE}`;
  const script = join(tmpdir(), `hw-pgbench-${process.pid}.sql`);
  try {
    await withClient(scratchUrl.toString(), (client) =>
      client.query('CREATE TABLE scratch (id bigserial PRIMARY KEY, payload bytea NOT NULL)'),
    );
    const hex = Buffer.alloc(payloadBytes, 0xab).toString('hex');
    writeFileSync(script, `INSERT INTO scratch (payload) VALUES ('\\x${hex}'::bytea);\n`);
    const results: PgbenchResult[] = [];
    for (const clients of clientCounts) {
      const args = [
        '-n', // no vacuum of pgbench's own tables (there are none)
        '-h',
        target.hostname,
        '-p',
        target.port || '5432',
        '-U',
        decodeURIComponent(target.username || 'postgres'),
        '-f',
        script,
        '-c',
        String(clients),
        '-j',
        String(Math.min(clients, 2)),
        '-T',
        String(seconds),
        PGBENCH_DATABASE,
      ];
      const output = await runPgbench(args, (seconds + 30) * 1000);
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(output);
      const transactions = /number of transactions actually processed: (\d+)/.exec(output);
      const latency = /latency average = ([\d.]+) ms/.exec(output);
      if (!tps) throw new Error(`cannot read tps from pgbench's output: ${output.slice(-500)}`);
      results.push({
        clients,
        seconds,
        tps: Number(tps[1]),
        transactions: Number(transactions?.[1] ?? Number.NaN),
        latencyAverageMs: Number(latency?.[1] ?? Number.NaN),
      });
    }
    return results;
  } finally {
    rmSync(script, { force: true });
    await dropPgbenchDatabase(url);
  }
}

export async function dropPgbenchDatabase(url: string): Promise<void> {
  await withClient(url, (client) => client.query(`DROP DATABASE IF EXISTS ${PGBENCH_DATABASE} WITH (FORCE)`));
}

// --- CPU of the database server --------------------------------------------------------------------------------

const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim();
  const ticks = Number(out);
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/**
 * CPU (user + system, µs) used so far by each live process whose command is one of `commands` (e.g. `postgres`:
 * the postmaster, its backends and workers; `mariadbd`), by pid, from /proc; undefined where /proc cannot be read.
 */
export function processCpu(commands: readonly string[]): Map<number, number> | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const byPid = new Map<number, number>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (!commands.includes(stat.slice(open + 1, close))) continue;
    // Fields after the command: state ppid … utime (14th field overall) stime (15th).
    const fields = stat.slice(close + 2).split(' ');
    byPid.set(Number(entry), ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS);
  }
  return byPid;
}

/** {@link processCpu} of the PostgreSQL server's processes. */
export function postgresCpu(): Map<number, number> | undefined {
  return processCpu(['postgres']);
}

/**
 * CPU the database used between two snapshots, µs: processes in both count their difference, processes started
 * in between count whole; those that exited in between are missed (so this is a lower bound).
 */
export function postgresCpuBetween(
  before: Map<number, number> | undefined,
  after: Map<number, number> | undefined,
): number | undefined {
  if (!before || !after) return undefined;
  let total = 0;
  for (const [pid, us] of after) total += us - (before.get(pid) ?? 0);
  return total;
}

// --- The machine -------------------------------------------------------------------------------------------------

/**
 * Time (µs, cumulative) during which some runnable task waited for a CPU, from Linux's pressure stall information;
 * undefined where /proc/pressure/cpu does not exist. Its growth over a step, divided by the step's duration, tells
 * how contended the machine was (the bench's own processes included).
 */
export function cpuStallUs(): number | undefined {
  try {
    const match = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks that PostgreSQL answers at `url` (a SetupError naming it otherwise), sweeps the scratch schemas of dead runs
 * (logging them), and returns the server's version.
 */
export async function preparePostgres(url: string): Promise<string | undefined> {
  let version: string | undefined;
  try {
    version = await withClient(url, async (c) => (await c.query('SHOW server_version')).rows[0]?.server_version);
  } catch (error) {
    throw new SetupError(`PostgreSQL is not reachable at ${url}: ${(error as Error).message}`);
  }
  const swept = await sweepStaleSchemas(url);
  if (swept.length) log(`Dropped stale schemas of earlier runs: ${swept.join(', ')}`);
  return version;
}
