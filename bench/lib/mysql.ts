// The scaleout bench's side of MariaDB / MySQL: scratch table prefixes (swept and dropped). Only databases on this
// machine are accepted.

import mysql from 'mysql2/promise';
import { SetupError } from './common.js';

const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Throws unless the URL names a MySQL / MariaDB database on this machine. */
export function assertLocalMysql(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new SetupError(`BENCH_MYSQL_URL is not a URL: '${url}'.`);
  }
  if (!/^(mysql|mariadb):$/.test(parsed.protocol)) {
    throw new SetupError(`BENCH_MYSQL_URL must be mysql://… (got '${url}').`);
  }
  if (!LOCAL_HOSTS.has(parsed.hostname)) {
    throw new SetupError(`BENCH_MYSQL_URL must point at this machine (127.0.0.1), not '${parsed.hostname}'.`);
  }
  if (parsed.pathname.length < 2) throw new SetupError(`BENCH_MYSQL_URL must name a database (…/test).`);
  return parsed;
}

/** mysql2 takes `mysql://`; `mariadb://` is the store's alias. */
function connectionUrl(url: string): string {
  return url.replace(/^mariadb:/i, 'mysql:');
}

export async function withMysql<T>(url: string, work: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  const connection = await mysql.createConnection({ uri: connectionUrl(url), connectTimeout: 5000 });
  try {
    return await work(connection);
  } finally {
    await connection.end().catch(() => {});
  }
}

export async function mysqlVersion(url: string): Promise<string | undefined> {
  return withMysql(url, async (c) => {
    const [rows] = await c.query('SELECT VERSION() AS v');
    return (rows as { v: string }[])[0]?.v;
  });
}

/** The tables of the connection's database whose names start with `<prefix>_`. */
async function tablesOf(connection: mysql.Connection, prefix?: string): Promise<string[]> {
  const [rows] = await connection.query(
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE()',
  );
  const names = (rows as { name: string }[]).map((r) => r.name);
  return prefix === undefined ? names : names.filter((n) => n.startsWith(`${prefix}_`));
}

/** Drops every table of these prefixes (`<prefix>_*`). */
export async function dropPrefixes(url: string, prefixes: string[]): Promise<void> {
  if (prefixes.length === 0) return;
  await withMysql(url, async (connection) => {
    for (const prefix of prefixes) {
      for (const table of await tablesOf(connection, prefix)) {
        await connection.query(`DROP TABLE IF EXISTS \`${table}\``);
      }
    }
  });
}

/** Drops the tables of this bench's prefixes (`hw_bench_<time>_<random>_*`) left by runs that died an hour ago. */
export async function sweepStalePrefixes(url: string): Promise<string[]> {
  return withMysql(url, async (connection) => {
    const stale = new Set<string>();
    for (const table of await tablesOf(connection)) {
      const match = /^(hw_bench_([0-9a-z]+)_[0-9a-z]+)_/.exec(table);
      if (!match) continue;
      const created = Number.parseInt(match[2] as string, 36);
      if (Date.now() - created > 3_600_000) stale.add(match[1] as string);
    }
    const prefixes = [...stale];
    for (const prefix of prefixes) {
      for (const table of await tablesOf(connection, prefix)) {
        await connection.query(`DROP TABLE IF EXISTS \`${table}\``);
      }
    }
    return prefixes;
  });
}
